//! basic-auth: HTTP Basic authentication against htpasswd users (`{SHA}` as Envoy's native
//! `basic_auth`, and bcrypt with a cache of verified credentials), with native's replies. See
//! README.md for the configuration reference.

pub mod config;
pub mod filter;
pub mod htpasswd;
