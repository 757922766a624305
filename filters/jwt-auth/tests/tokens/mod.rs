//! Keys, key sets and tokens for the filter's tests, built from the fixtures in jwt-crypto's tests/data.
#![allow(dead_code)]

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The HMAC secret of the `hmac` key.
pub const SECRET: &[u8] = b"a-secret-of-at-least-32-bytes-for-hs512-tokens!!";

/// The signing key for `alg`.
pub fn encoding_key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => EncodingKey::from_secret(SECRET),
        Algorithm::ES256 => {
            EncodingKey::from_ec_der(include_bytes!("../../crypto/tests/data/p256.der"))
        }
        Algorithm::ES384 => {
            EncodingKey::from_ec_der(include_bytes!("../../crypto/tests/data/p384.der"))
        }
        Algorithm::EdDSA => {
            EncodingKey::from_ed_der(include_bytes!("../../crypto/tests/data/ed25519.der"))
        }
        _ => EncodingKey::from_rsa_der(include_bytes!("../../crypto/tests/data/rsa2048.der")),
    }
}

/// The kid the tests give each key family.
pub fn kid(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "hmac",
        Algorithm::ES256 => "p256",
        Algorithm::ES384 => "p384",
        Algorithm::EdDSA => "ed25519",
        _ => "rsa",
    }
}

/// A JWK for `alg`'s key, with its kid and no `alg` (so one RSA key serves RS* and PS*).
pub fn jwk(alg: Algorithm) -> Value {
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&encoding_key(alg), alg).expect("JWK"))
            .expect("JSON");
    let object = jwk.as_object_mut().expect("object");
    object.remove("alg");
    object.insert("kid".into(), json!(kid(alg)));
    jwk
}

/// Every algorithm the filter verifies.
pub const ALL: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A key set with one key of each family.
pub fn jwks() -> Value {
    let families = [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    json!({"keys": families.iter().map(|alg| jwk(*alg)).collect::<Vec<_>>()})
}

/// Seconds since the epoch of `at`.
pub fn seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
}

/// A token signed with `alg`'s test key, with `kid` set.
pub fn token(alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid(alg).to_string());
    encode(&header, claims, &encoding_key(alg)).expect("sign")
}

/// Standard claims for issuer `iss` valid around `now`.
pub fn claims(now: u64) -> Value {
    json!({"iss": "https://issuer.example", "sub": "alice", "aud": "api", "iat": now, "exp": now + 600})
}
