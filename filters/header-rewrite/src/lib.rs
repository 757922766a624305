//! header-rewrite: adds, sets and removes request and response headers, configured like Envoy's
//! native `header_mutation` filter. See README.md for the configuration reference.

pub mod config;
pub mod filter;
pub mod format;
