//! rbac: Envoy's RBAC HTTP filter (`envoy.filters.http.rbac`) as a proxy-wasm filter: ALLOW,
//! DENY and LOG policies over headers, paths, ports and client addresses, with shadow rules.
//! See README.md for the configuration reference.

pub mod config;
pub mod engine;
pub mod filter;
