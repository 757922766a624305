//! json-redact: masks or removes fields of JSON request and response bodies, named by JSON
//! pointers (with `*` wildcards), before they reach the upstream or the client. See README.md
//! for the configuration reference.

pub mod config;
pub mod filter;
pub mod redact;
