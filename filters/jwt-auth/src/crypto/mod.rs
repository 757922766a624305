//! Cryptography for JWT verification: fast, variable-time RSA and ECDSA verifiers plugged into
//! jsonwebtoken's [`CryptoProvider`](jsonwebtoken::crypto::CryptoProvider).
//!
//! Verification only handles public data (key, message, signature), so it does not need the
//! constant-time arithmetic the `rsa`, `p256` and `p384` crates use. HMAC and Ed25519 use the
//! RustCrypto crates rust_crypto uses; signing is delegated to jsonwebtoken's `rust_crypto`.

pub mod bignum;
pub mod ecc;
pub mod ecdsa;
pub mod p256;
pub mod p384;
pub mod provider;
pub mod rsa;

pub use provider::{new_verifier, prepare_ec_key, prepare_key, PROVIDER};
