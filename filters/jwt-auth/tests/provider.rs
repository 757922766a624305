//! The provider as a whole: delegation of everything but RSA and ECDSA verification, key-family
//! errors, `prepare_key`, concurrent use, and `jsonwebtoken::decode` with the provider installed.

mod common;

use common::{agree, b64url_decode, data_key, verify_with, RSA_ALGS};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use jwt_auth::crypto::rsa::KeyError;
use jwt_auth::crypto::{prepare_key, PROVIDER};
use serde_json::{json, Value};

fn ec_p256() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("data/p256.der"))
}

fn ec_p384() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("data/p384.der"))
}

fn ed25519() -> EncodingKey {
    EncodingKey::from_ed_der(include_bytes!("data/ed25519.der"))
}

/// Encoding key and matching decoding key for each non-RSA algorithm.
fn other_keys() -> Vec<(Algorithm, EncodingKey, DecodingKey)> {
    let mut out = Vec::new();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        out.push((
            alg,
            EncodingKey::from_secret(b"secret"),
            DecodingKey::from_secret(b"secret"),
        ));
    }
    for (alg, enc) in [
        (Algorithm::ES256, ec_p256()),
        (Algorithm::ES384, ec_p384()),
        (Algorithm::EdDSA, ed25519()),
    ] {
        let jwk = Jwk::from_encoding_key(&enc, alg).expect("public JWK");
        out.push((alg, enc, DecodingKey::from_jwk(&jwk).expect("decoding key")));
    }
    out
}

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
        DecodingKey::from_rsa_raw_components(&[0xc5; 520], &[3]),
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

/// The one test that installs the provider process-wide, then uses jsonwebtoken's public API.
#[test]
fn installed_provider_decodes_tokens() {
    // Only this test installs it, so this is the first installation in this process.
    assert!(PROVIDER.install_default().is_ok());
    let claims = json!({"sub": "alice", "exp": 4_000_000_000u64});
    let rsa = data_key(2048);
    let mut cases: Vec<(Algorithm, EncodingKey, DecodingKey)> = RSA_ALGS
        .iter()
        .map(|&alg| (alg, rsa.encoding.clone(), rsa.jwk().clone()))
        .collect();
    cases.extend(other_keys());
    for (alg, enc, dec) in cases {
        let token = encode(&Header::new(alg), &claims, &enc).expect("encode");
        let got = decode::<Value>(&token, &dec, &Validation::new(alg)).expect("decode");
        assert_eq!(got.claims, claims);
        // A changed payload keeps the signature but not its validity.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = encode(&Header::new(alg), &json!({"sub": "mallory"}), &enc).expect("encode");
        parts[1] = other.split('.').nth(1).expect("payload");
        let forged = parts.join(".");
        let err = decode::<Value>(&forged, &dec, &Validation::new(alg)).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidSignature, "{alg:?}");
    }
    // openssl-made tokens through the whole decode path.
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = RSA_ALGS.to_vec();
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let mut checked = 0;
    for line in include_str!("data/openssl_tokens.txt").lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let ["2048", _, expect, token] = fields[..] else {
            continue;
        };
        let dec = DecodingKey::from_rsa_der(include_bytes!("data/rsa2048_pub.der"));
        let result = decode::<Value>(token, &dec, &validation);
        assert_eq!(result.is_ok(), expect == "accept", "{line}");
        assert!(!b64url_decode(token.rsplit('.').next().expect("sig")).is_empty());
        checked += 1;
    }
    assert!(checked >= 10);
}
