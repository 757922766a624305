//! The provider as a whole: signing and key utilities delegated to rust_crypto, HMAC and EdDSA
//! verification that agrees with rust_crypto's, key-family errors, `prepare_key` and concurrent
//! use. `jsonwebtoken::decode` with the provider installed is in installed_provider.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{agree, data_key, other_keys, verify_with, RSA_ALGS};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use jwt_crypto::rsa::KeyError;
use jwt_crypto::{prepare_key, PROVIDER};

#[test]
fn other_algorithms_are_delegated() {
    let msg = b"header.payload";
    for (alg, enc, dec) in other_keys() {
        let signer = (PROVIDER.signer_factory)(&alg, &enc).expect("signer");
        assert_eq!(signer.algorithm(), alg);
        let sig = signer.try_sign(msg).expect("signature");
        assert!(agree(alg, &dec, msg, &sig, &format!("{alg:?} valid")));
        let mut bad = sig.clone();
        bad[3] ^= 0x40;
        assert!(!agree(alg, &dec, msg, &bad, &format!("{alg:?} tampered")));
        let v = (PROVIDER.verifier_factory)(&alg, &dec).expect("verifier");
        assert_eq!(v.algorithm(), alg);
    }
}

// Keys are made without `Jwk::from_encoding_key`, which would fix jsonwebtoken's process-wide
// provider before `installed_provider_decodes_tokens` installs ours.
#[test]
fn hmac_and_eddsa_edge_cases_match_rust_crypto() {
    use ed25519_dalek::Signer;
    let msg = b"header.payload";
    let ed_signing = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let ed_public = ed_signing.verifying_key().to_bytes();
    let mut cases = vec![(
        Algorithm::EdDSA,
        DecodingKey::from_ed_der(&ed_public),
        ed_signing.sign(msg).to_bytes().to_vec(),
    )];
    // HMAC takes a key of any length, the empty key included.
    for (alg, secret) in [
        (Algorithm::HS256, &b"secret"[..]),
        (Algorithm::HS384, b""),
        (Algorithm::HS512, &[7u8; 200]),
    ] {
        let sig = (RUST_CRYPTO.signer_factory)(&alg, &EncodingKey::from_secret(secret))
            .expect("signer")
            .try_sign(msg)
            .expect("signature");
        cases.push((alg, DecodingKey::from_secret(secret), sig));
    }
    for (alg, dec, sig) in &cases {
        assert!(agree(*alg, dec, msg, sig, &format!("{alg:?} valid")));
        // Signatures of other lengths, empty, and the right one over another message.
        let mut longer = sig.clone();
        longer.push(0);
        for bad in [&sig[..sig.len() - 1], &longer[..], &[][..]] {
            let what = format!("{alg:?} length {}", bad.len());
            assert!(!agree(*alg, dec, msg, bad, &what));
        }
        assert!(!agree(
            *alg,
            dec,
            b"other",
            sig,
            &format!("{alg:?} message")
        ));
    }
    // Ed25519 keys: 32 bytes that are not all points, and a longer key (its first 32 bytes count).
    let kind = |key: &DecodingKey, provider: &CryptoProvider| {
        (provider.verifier_factory)(&Algorithm::EdDSA, key)
            .map(|v| v.algorithm())
            .map_err(|e| format!("{:?}", e.kind()))
    };
    let mut keys: Vec<Vec<u8>> = (0u8..8).map(|seed| vec![seed * 31 + 2; 32]).collect();
    keys.push([&ed_public[..], &[1, 2, 3]].concat());
    let mut refused = 0;
    for bytes in &keys {
        let key = DecodingKey::from_ed_der(bytes);
        let ours = kind(&key, &PROVIDER);
        assert_eq!(ours, kind(&key, &RUST_CRYPTO), "{bytes:?}");
        refused += usize::from(ours.is_err());
    }
    assert!(refused > 0);
    let longer = DecodingKey::from_ed_der(&keys[8]);
    assert!(agree(
        Algorithm::EdDSA,
        &longer,
        msg,
        &cases[0].2,
        "long key"
    ));
}

#[test]
fn rsa_signer_is_delegated_and_verifier_reports_algorithm() {
    let key = data_key(2048);
    for alg in RSA_ALGS {
        let sig = (PROVIDER.signer_factory)(&alg, &key.encoding)
            .expect("signer")
            .try_sign(b"m")
            .expect("signature");
        assert!(agree(alg, key.jwk(), b"m", &sig, "signed through PROVIDER"));
        let v = (PROVIDER.verifier_factory)(&alg, key.jwk()).expect("verifier");
        assert_eq!(v.algorithm(), alg);
    }
}

#[test]
fn key_family_mismatches_fail_in_the_factory_like_rust_crypto() {
    let rsa = data_key(2048);
    let others = other_keys();
    let all_algs = [
        Algorithm::HS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::PS512,
    ];
    let mut keys: Vec<&DecodingKey> = others.iter().map(|(_, _, d)| d).collect();
    keys.push(rsa.jwk());
    keys.push(&rsa.decoding[1].1);
    for alg in all_algs {
        for key in &keys {
            let ours = (PROVIDER.verifier_factory)(&alg, key).map(|v| v.algorithm());
            let theirs = (RUST_CRYPTO.verifier_factory)(&alg, key).map(|v| v.algorithm());
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{alg:?} {:?}", key.family());
            if let (Err(a), Err(b)) = (ours, theirs) {
                assert_eq!(format!("{:?}", a.kind()), format!("{:?}", b.kind()));
            }
        }
    }
}

#[test]
fn invalid_rsa_keys_fail_at_verification_like_rust_crypto() {
    let bad_keys = [
        DecodingKey::from_rsa_der(b"not der"),
        DecodingKey::from_rsa_der(&[]),
        DecodingKey::from_rsa_raw_components(&[0xc4; 256], &[1, 0, 1]),
        DecodingKey::from_rsa_raw_components(&[0xc5; 256], &[1]),
        // Above Envoy's 8,192 bits (rust_crypto already refuses above 4,096).
        DecodingKey::from_rsa_raw_components(&[0xc5; 1025], &[3]),
        DecodingKey::from_rsa_raw_components(&[], &[]),
    ];
    for key in &bad_keys {
        for alg in RSA_ALGS {
            // The factory succeeds for both; the verifier then rejects everything.
            assert!((PROVIDER.verifier_factory)(&alg, key).is_ok());
            assert!((RUST_CRYPTO.verifier_factory)(&alg, key).is_ok());
            assert!(!agree(alg, key, b"m", &[0u8; 256], "bad key"));
        }
        assert!(prepare_key(key).is_err());
    }
    let ec = &other_keys()[3].2;
    assert_eq!(prepare_key(ec).unwrap_err(), KeyError::NotRsa);
}

#[test]
fn key_utils_are_delegated() {
    let rsa_priv = include_bytes!("data/rsa2048.der");
    let rsa_pub = include_bytes!("data/rsa2048_pub.der");
    let ku = (&PROVIDER.key_utils, &RUST_CRYPTO.key_utils);
    assert_eq!(
        (ku.0.rsa_pub_components_from_private_key)(rsa_priv).ok(),
        (ku.1.rsa_pub_components_from_private_key)(rsa_priv).ok()
    );
    assert_eq!(
        (ku.0.rsa_pub_components_from_public_key)(rsa_pub).ok(),
        (ku.1.rsa_pub_components_from_public_key)(rsa_pub).ok()
    );
    assert!((ku.0.rsa_pub_components_from_public_key)(b"junk").is_err());
    let p256 = include_bytes!("data/p256.der");
    let ours = (ku.0.ec_pub_components_from_private_key)(p256, Algorithm::ES256).expect("ec");
    let theirs = (ku.1.ec_pub_components_from_private_key)(p256, Algorithm::ES256).expect("ec");
    assert_eq!((ours.1, ours.2), (theirs.1, theirs.2));
    let ed = include_bytes!("data/ed25519.der");
    assert_eq!(
        (ku.0.ed_pub_components_from_private_key)(ed, &EllipticCurve::Ed25519).ok(),
        (ku.1.ed_pub_components_from_private_key)(ed, &EllipticCurve::Ed25519).ok()
    );
    for h in [
        ThumbprintHash::SHA256,
        ThumbprintHash::SHA384,
        ThumbprintHash::SHA512,
    ] {
        assert_eq!(
            (ku.0.compute_digest)(b"abc", h.clone()).ok(),
            (ku.1.compute_digest)(b"abc", h).ok()
        );
    }
}

#[test]
fn prepare_key_accepts_both_forms() {
    let key = data_key(2049);
    let a = prepare_key(key.jwk()).expect("jwk form");
    let b = prepare_key(&key.decoding[1].1).expect("der form");
    assert_eq!(a.modulus(), b.modulus());
    assert_eq!(a.modulus_bits(), 2049);
    assert_eq!(a.exponent(), 65537);
}

#[test]
fn concurrent_verification() {
    let keys = [data_key(2048), data_key(2049)];
    let sigs: Vec<_> = keys
        .iter()
        .map(|k| {
            (
                k.sign(Algorithm::RS256, b"m").expect("sig"),
                k.sign(Algorithm::PS256, b"m").expect("sig"),
            )
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (keys, sigs) = (&keys, &sigs);
            s.spawn(move || {
                for i in 0..10 {
                    let ki = (t + i) % 2;
                    let (rs, ps) = &sigs[ki];
                    let dk = &keys[ki].decoding[i % 2].1;
                    assert!(verify_with(&PROVIDER, Algorithm::RS256, dk, b"m", rs));
                    assert!(verify_with(&PROVIDER, Algorithm::PS256, dk, b"m", ps));
                    assert!(!verify_with(&PROVIDER, Algorithm::PS256, dk, b"m", rs));
                }
            });
        }
    });
}
