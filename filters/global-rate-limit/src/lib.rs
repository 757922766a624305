//! global-rate-limit: Envoy's `ratelimit` HTTP filter (`envoy.filters.http.ratelimit`). Each
//! request whose `rate_limits` yield descriptors is held while a `ShouldRateLimit` gRPC call goes
//! to a rate limit service; its answer lets the request on, refuses it, or (failure, timeout)
//! `failure_mode_deny` decides. See README.md.

pub mod config;
pub mod filter;
pub mod rls;
