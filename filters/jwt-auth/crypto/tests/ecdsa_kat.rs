//! Known-answer tests for ES256 and ES384: tokens signed by openssl 3.0 (independently of the
//! p256/p384 crates) with the keys in tests/data, in the JOSE form, with high S, and with
//! openssl's DER signature left as it is (refused). See tests/data/make_fixtures.py.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{agree, b64url_decode, EcTestKey};
use jsonwebtoken::{decode, Algorithm, Validation};
use jwt_crypto::PROVIDER;
use serde_json::Value;

/// (key name, algorithm, expected verdict, token) for every line of the fixture.
fn tokens() -> Vec<(&'static str, Algorithm, bool, &'static str)> {
    include_str!("data/openssl_ec_tokens.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [name, alg, expect, token] = fields[..] else {
                panic!("malformed line {line}");
            };
            let alg = match alg {
                "ES256" => Algorithm::ES256,
                "ES384" => Algorithm::ES384,
                _ => panic!("unexpected algorithm {alg}"),
            };
            (name, alg, expect == "accept", token)
        })
        .collect()
}

fn key(name: &str) -> EcTestKey {
    match name {
        "p256" => EcTestKey::from_pkcs8(name, Algorithm::ES256, include_bytes!("data/p256.der")),
        "p384" => EcTestKey::from_pkcs8(name, Algorithm::ES384, include_bytes!("data/p384.der")),
        _ => panic!("unknown key {name}"),
    }
}

#[test]
fn openssl_tokens_through_both_providers() {
    let keys = [key("p256"), key("p384")];
    let mut checked = [0usize; 2];
    for (name, alg, expect, token) in tokens() {
        let key = keys.iter().find(|k| k.name == name).expect("key");
        let (signing_input, sig) = token.rsplit_once('.').expect("three parts");
        let sig = b64url_decode(sig);
        for (form, dk) in &key.decoding {
            let what = format!("{name} {form} {token}");
            assert_eq!(
                agree(alg, dk, signing_input.as_bytes(), &sig, &what),
                expect,
                "{what}"
            );
        }
        // Under the other curve's algorithm the key is refused.
        let other = if alg == Algorithm::ES256 {
            Algorithm::ES384
        } else {
            Algorithm::ES256
        };
        assert!(!agree(
            other,
            key.jwk(),
            signing_input.as_bytes(),
            &sig,
            name
        ));
        checked[usize::from(expect)] += 1;
    }
    assert!(checked[0] >= 6 && checked[1] >= 12, "{checked:?}");
}

/// The one test that installs the provider process-wide, then uses `jsonwebtoken::decode`.
#[test]
fn installed_provider_decodes_openssl_tokens() {
    assert!(PROVIDER.install_default().is_ok());
    let keys = [key("p256"), key("p384")];
    let mut validation = Validation::new(Algorithm::ES256);
    validation.algorithms = vec![Algorithm::ES256, Algorithm::ES384];
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    for (name, _, expect, token) in tokens() {
        let key = keys.iter().find(|k| k.name == name).expect("key");
        for (form, dk) in &key.decoding {
            let result = decode::<Value>(token, dk, &validation);
            assert_eq!(result.is_ok(), expect, "{name} {form} {token}: {result:?}");
        }
    }
}
