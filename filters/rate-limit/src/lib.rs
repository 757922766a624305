//! rate-limit: token buckets shared by every Envoy worker through proxy-wasm shared data,
//! configured like Envoy's native `local_ratelimit` filter. See README.md.

pub mod bucket;
pub mod config;
pub mod descriptors;
pub mod filter;
pub mod limiter;
pub mod runtime;
pub mod store;
