//! cors: Envoy's CORS filter (`envoy.filters.http.cors`) as a proxy-wasm filter. Policies are
//! native `CorsPolicy` messages, each scoped by a route match; preflights from allowed origins
//! are answered locally, and responses to allowed origins get the `access-control-*` headers.
//! See README.md for the configuration reference.

pub mod config;
pub mod filter;
