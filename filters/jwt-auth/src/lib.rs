//! jwt-auth: JWT authentication configured like Envoy's native `jwt_authn`, with local or remote
//! key sets, a verified-token cache and a fast RSA verifier. See README.md.

pub mod config;
pub mod extract;
pub mod filter;
pub mod jwks;
pub mod jwt;
pub mod verify;
