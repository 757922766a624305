//! {{name}}: refuses requests that lack a configured header with a JSON 403, and adds a
//! configured header to every response. See README.md for the configuration reference.

pub mod config;
pub mod filter;
