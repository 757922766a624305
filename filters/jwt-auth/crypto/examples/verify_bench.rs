//! Verification micro-benchmark: this crate's provider against jsonwebtoken's `rust_crypto`.
//!
//! Natively: `cargo run --release --example verify_bench -p jwt-crypto [seconds-per-case]
//! [case-prefix]`.
//! In V8 (as in Envoy): `cargo build --release --target wasm32-wasip1 --example verify_bench -p
//! jwt-crypto`, then `node filters/jwt-auth/crypto/bench/run_wasm.mjs
//! target/wasm32-wasip1/release/examples/verify_bench.wasm [seconds-per-case] [case-prefix]`.
//!
//! Each timed call is what `jsonwebtoken::decode` does per token: the verifier factory (with our
//! key-cache lookup) followed by `verify`. Reported: the best mean over many short batches.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use jwt_crypto::ecdsa::{EcdsaCurve, EcdsaPublicKey};
use jwt_crypto::p521::P521PublicKey;
use jwt_crypto::rsa::RsaPublicKey;
use jwt_crypto::{prepare_ec_key, prepare_key, PROVIDER};

const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoIn0.\
eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbSIsInN1YiI6IjEyMzQ1Njc4OTAiLCJhdWQiOiJlbnZveSIsImV4\
cCI6MTkwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAwLCJzY29wZSI6InJlYWQgd3JpdGUifQ";

fn verify_once(
    provider: &CryptoProvider,
    alg: Algorithm,
    key: &DecodingKey,
    sig: &Vec<u8>,
) -> bool {
    match (provider.verifier_factory)(&alg, key) {
        Ok(v) => v.verify(MESSAGE, sig).is_ok(),
        Err(_) => false,
    }
}

/// Mean microseconds per verification: the best of many short batches within `budget`. Short
/// batches let the best one run without preemption on a busy machine.
fn time_it(budget: Duration, mut f: impl FnMut() -> bool) -> f64 {
    // Warm-up, also lets V8 tier the hot functions up to its optimizing compiler.
    let warm = Instant::now();
    let mut calls = 0u32;
    while warm.elapsed() < budget / 5 || calls < 3 {
        assert!(f(), "verification failed");
        calls += 1;
    }
    // About 2 ms per batch.
    let per_call = warm.elapsed().as_secs_f64() / f64::from(calls);
    let per_batch = ((0.002 / per_call) as u32).max(1);
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut batches = 0;
    while start.elapsed() < budget || batches < 3 {
        let t = Instant::now();
        for _ in 0..per_batch {
            assert!(f(), "verification failed");
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / f64::from(per_batch));
        batches += 1;
    }
    best
}

fn main() {
    let budget = std::env::args()
        .nth(1)
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs_f64);
    // Only the cases whose name starts with the second argument, if any.
    let only = std::env::args().nth(2).unwrap_or_default();
    let rsa2048 = EncodingKey::from_rsa_der(include_bytes!("../tests/data/rsa2048.der"));
    let rsa4096 = EncodingKey::from_rsa_der(include_bytes!("../tests/data/rsa4096.der"));
    let cases = [
        ("RS256-2048", Algorithm::RS256, rsa2048.clone(), true),
        ("RS256-4096", Algorithm::RS256, rsa4096.clone(), true),
        ("PS256-2048", Algorithm::PS256, rsa2048, true),
        ("PS512-4096", Algorithm::PS512, rsa4096, true),
        (
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_der(include_bytes!("../tests/data/p256.der")),
            true,
        ),
        (
            "ES384",
            Algorithm::ES384,
            EncodingKey::from_ec_der(include_bytes!("../tests/data/p384.der")),
            true,
        ),
        (
            "EdDSA",
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(include_bytes!("../tests/data/ed25519.der")),
            false,
        ),
    ];
    println!(
        "{:<12} {:>14} {:>14} {:>8}",
        "case", "ours µs", "rust_crypto µs", "speedup"
    );
    for (name, alg, enc, ours_too) in cases.into_iter().filter(|c| c.0.starts_with(&only)) {
        let sig = (RUST_CRYPTO.signer_factory)(&alg, &enc)
            .and_then(|s| Ok(s.try_sign(MESSAGE)?))
            .expect("signing works");
        let jwk = Jwk::from_encoding_key(&enc, alg).expect("public JWK");
        let dec = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let mut bad = sig.clone();
        bad[7] ^= 1;
        assert!(!verify_once(&RUST_CRYPTO, alg, &dec, &bad));
        let theirs = time_it(budget, || verify_once(&RUST_CRYPTO, alg, &dec, &sig));
        if ours_too {
            assert!(!verify_once(&PROVIDER, alg, &dec, &bad));
            // One-off cost of preparing a key (what prepare_key / prepare_ec_key pay on a cache
            // miss); for EC keys that is parsing the point and building its table.
            let prep = if let Some(curve) = EcdsaCurve::from_algorithm(alg) {
                let point = prepare_ec_key(curve, &dec)
                    .expect("valid EC key")
                    .to_uncompressed();
                time_it(budget / 4, || {
                    EcdsaPublicKey::from_sec1(curve, &point).is_ok()
                })
            } else {
                let n = prepare_key(&dec).expect("valid RSA key").modulus();
                time_it(budget / 4, || {
                    RsaPublicKey::from_components(&n, &[1, 0, 1]).is_ok()
                })
            };
            let ours = time_it(budget, || verify_once(&PROVIDER, alg, &dec, &sig));
            println!(
                "{name:<12} {ours:>14.1} {theirs:>14.1} {:>7.1}x  (key preparation {prep:.1} µs)",
                theirs / ours
            );
        } else {
            println!("{name:<12} {:>14} {theirs:>14.1}", "-");
        }
    }
    if "RS256-8192".starts_with(&only) {
        rsa_8192(budget);
    }
    if "ES512".starts_with(&only) {
        es512(budget);
    }
}

/// RS256 with the openssl-made 8192-bit key of tests/data (rust_crypto refuses such keys).
fn rsa_8192(budget: Duration) {
    let line = include_str!("../tests/data/openssl_tokens.txt")
        .lines()
        .find(|l| l.starts_with("8192 RS256 "))
        .expect("an 8192-bit RS256 token");
    let token = line.rsplit(' ').next().expect("token");
    let (msg, sig) = token.rsplit_once('.').expect("three parts");
    let sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)
        .expect("base64url");
    let der = include_bytes!("../tests/data/rsa8192_pub.der");
    let key = DecodingKey::from_rsa_der(der);
    let verify = || {
        (PROVIDER.verifier_factory)(&Algorithm::RS256, &key)
            .is_ok_and(|v| v.verify(msg.as_bytes(), &sig).is_ok())
    };
    let ours = time_it(budget, verify);
    println!("{:<12} {ours:>14.1} {:>14}", "RS256-8192", "refused");
}

/// ES512 as the filter checks it: the key parsed from its SEC1 point, then verified (p521 crate).
fn es512(budget: Duration) {
    use p521::ecdsa::signature::Signer;
    let mut scalar = [7u8; 66];
    scalar[0] = 0;
    let signing = p521::ecdsa::SigningKey::from_slice(&scalar).expect("scalar below n");
    let sig: p521::ecdsa::Signature = signing.sign(MESSAGE);
    let sig = sig.to_bytes().to_vec();
    let point = p521::ecdsa::VerifyingKey::from(&signing).to_encoded_point(false);
    let point = point.as_bytes();
    let mut bad = sig.clone();
    bad[7] ^= 1;
    let verify = |sig: &[u8]| {
        P521PublicKey::from_uncompressed(point).is_ok_and(|k| k.verify(MESSAGE, sig).is_ok())
    };
    assert!(!verify(&bad));
    let prep = time_it(budget / 4, || {
        P521PublicKey::from_uncompressed(point).is_ok()
    });
    let ours = time_it(budget, || verify(&sig));
    println!(
        "{:<12} {ours:>14.1} {:>14}  (key parsing {prep:.1} µs, included)",
        "ES512", "-"
    );
}
