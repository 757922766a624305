//! The e2e tests in real Envoy, one test binary: its tests run side by side (each file keeps its
//! Envoy instances to itself), and the workspace links one binary instead of one per file.
//! `cargo test -p envoy-harness --test e2e rbac::` runs one file's tests.

// Test keys and tokens, shared with jwt-auth's own tests.
#[path = "../../../filters/jwt-auth/tests/tokens/mod.rs"]
mod tokens;

// libtest starts tests in name order: the soak's name sorts first, so that it runs beside the
// other tests (as it is paced to) rather than alone on one of two threads after them.
mod all_filters_soak;
mod basic_auth;
mod chain;
mod configs;
mod cors;
mod ext_authz;
mod fail_policy;
mod global_rate_limit;
mod header_rewrite;
mod host_parity;
mod istio;
mod json_redact;
mod jwt_auth;
mod jwt_differential;
mod jwt_jwks;
mod prometheus_stats;
mod rate_limit;
mod rbac;
mod scenarios;
mod sdk_callouts;
