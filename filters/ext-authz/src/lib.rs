//! ext-authz: Envoy's `ext_authz` HTTP filter in `http_service` mode. Each request is held while
//! a check request goes to an authorization service; its answer lets the request on, refuses it
//! with the service's reply, or (failure, timeout) applies `failure_mode_allow`. See README.md.

pub mod config;
pub mod filter;
