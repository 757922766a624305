//! Cryptography for JWT verification: fast, variable-time RSA and ECDSA verifiers plugged into
//! jsonwebtoken's [`CryptoProvider`](jsonwebtoken::crypto::CryptoProvider).
//!
//! Verification only handles public data (key, message, signature), so it does not need the
//! constant-time arithmetic the `rsa`, `p256` and `p384` crates use. HMAC and Ed25519 use the
//! RustCrypto crates rust_crypto uses, ES512 the `p521` crate; signing is delegated to
//! jsonwebtoken's `rust_crypto`.
//!
//! # What it does not defend against
//!
//! The RSA and P-256/P-384 code is variable-time: its running time depends on the key, the
//! signature and the message. That leaks nothing secret, because a verifier holds no secret; it
//! must never be used to sign or decrypt. It also does not limit work per token beyond the key
//! sizes it accepts (RSA up to 8,192 bits, public exponents below 2^33).
//!
//! # How it is tested
//!
//! - Known answers: tokens signed by OpenSSL (`tests/kat.rs`, `tests/ecdsa_kat.rs`).
//! - Wycheproof's vectors for ECDSA P-256/P-384/P-521, RSA PKCS#1 v1.5 (2,048 to 8,192 bits) and
//!   RSA-PSS, natively and in V8 on the wasm SIMD path (`tests/crypto_ci/wycheproof.rs`).
//! - A bounded differential fuzz of the bignum exponentiation (both limb widths) against
//!   num-bigint and of the P-256/P-384 field and scalar operations against the p256/p384 crates,
//!   in `make test` natively and in V8; `make fuzz-crypto` runs it longer with a random seed.
//! - Differential tests against jsonwebtoken's `rust_crypto` verifiers on valid, mutated and
//!   crafted signatures and keys (`tests/differential.rs`, `tests/ecdsa_*.rs`, `tests/keys.rs`,
//!   `tests/fuzz.rs`), where the documented departures are asserted as departures.

// The arithmetic indexes fixed-size limb arrays with loop counters bounded by the same constants
// (`for i in 0..N` over `[u32; N]`); rewriting those hot loops with `get` costs speed for no
// safety. Indexing stays bounds-checked, so a mistake traps rather than reads past an array, and
// Wycheproof's vectors and the differential fuzz run every path natively and in V8.
#![allow(clippy::indexing_slicing)]

pub mod bignum;
pub mod ecc;
pub mod ecdsa;
pub mod p256;
pub mod p384;
pub mod p521;
pub mod provider;
pub mod rsa;

pub use provider::{new_verifier, prepare_ec_key, prepare_key, PROVIDER};
