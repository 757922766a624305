//! Cryptography for JWT verification: a fast, variable-time RSA verifier plugged into
//! jsonwebtoken's [`CryptoProvider`](jsonwebtoken::crypto::CryptoProvider).
//!
//! Verification only handles public data (key, message, signature), so it does not need the
//! constant-time arithmetic the `rsa` crate uses; everything else is delegated to jsonwebtoken's
//! `rust_crypto` backend.

pub mod bignum;
pub mod provider;
pub mod rsa;

pub use provider::{prepare_key, PROVIDER};
