//! `jsonwebtoken::decode` with [`PROVIDER`] installed as the process default. A file of its own,
//! so a process of its own: anything that touches jsonwebtoken's default first (such as
//! `Jwk::from_encoding_key`) would install rust_crypto instead.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{b64url_decode, data_key, other_keys, RSA_ALGS};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use jwt_crypto::PROVIDER;
use serde_json::{json, Value};

#[test]
fn installed_provider_decodes_tokens() {
    // The only test in this process, so this is the first installation.
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
