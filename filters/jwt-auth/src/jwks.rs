//! JSON Web Key Sets: parsed with Envoy's rules (bad keys are skipped when another is usable),
//! keys picked by `kid` and `alg` as Envoy picks them, signatures checked by jsonwebtoken with
//! this crate's fast verifier.

use crate::jwt::{Jwt, JwtError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use jwt_crypto::ecdsa::EcdsaCurve;
use jwt_crypto::p521::P521PublicKey;
use serde_json::{Map, Value};
use std::str::FromStr;

/// A key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `RSA`.
    Rsa,
    /// `EC`.
    Ec,
    /// `oct` (HMAC).
    Oct,
    /// `OKP` (Ed25519).
    Okp,
}

/// One usable key.
#[derive(Clone)]
pub struct Key {
    /// `kid`, empty when absent.
    pub kid: String,
    /// `alg`, empty when absent.
    pub alg: String,
    /// `kty`.
    pub kty: KeyType,
    /// The key for jsonwebtoken.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Key {{ kid: {:?}, alg: {:?}, kty: {:?} }}",
            self.kid, self.alg, self.kty
        )
    }
}

/// A parsed key set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Usable keys, in JWKS order.
    pub keys: Vec<Key>,
}

fn text<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    missing: &'static str,
    bad: &'static str,
) -> Result<&'a str, &'static str> {
    match object.get(name) {
        None => Err(missing),
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(bad),
    }
}

fn optional(object: &Map<String, Value>, name: &str) -> String {
    // A non-string `kid` or `alg` counts as absent, as in Envoy.
    object
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The curves of EC JWKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JwkCurve {
    P256,
    P384,
    P521,
}

impl JwkCurve {
    fn field_len(self) -> usize {
        match self {
            JwkCurve::P256 => 32,
            JwkCurve::P384 => 48,
            JwkCurve::P521 => jwt_crypto::p521::FIELD_LEN,
        }
    }
}

/// `04 || x || y` with each coordinate left-padded with zeros to `field_len` bytes: some issuers
/// strip leading zero bytes (RFC 7518 says not to), and Envoy accepts that. A coordinate longer
/// than the field is refused, even with leading zeros; `None` then.
fn uncompressed_point(x: &[u8], y: &[u8], field_len: usize) -> Option<Vec<u8>> {
    if x.len() > field_len || y.len() > field_len {
        return None;
    }
    let mut point = Vec::with_capacity(1 + 2 * field_len);
    point.push(4);
    for coordinate in [x, y] {
        point.resize(point.len() + field_len - coordinate.len(), 0);
        point.extend_from_slice(coordinate);
    }
    Some(point)
}

fn parse_key(object: &Map<String, Value>) -> Result<Key, &'static str> {
    let kty = text(
        object,
        "kty",
        "[kty] is missing in [keys]",
        "[kty] is bad in [keys]",
    )?;
    let kid = optional(object, "kid");
    let alg = optional(object, "alg");
    let (kty, decoding) = match kty {
        "RSA" => {
            if !alg.is_empty() && !alg.starts_with("RS") && !alg.starts_with("PS") {
                return Err("[alg] is not started with [RS] or [PS] for an RSA key");
            }
            let n = text(
                object,
                "n",
                "[n] field is missing for a RSA key",
                "[n] field is not string for a RSA key",
            )?;
            let e = text(
                object,
                "e",
                "[e] field is missing for a RSA key",
                "[e] field is not string for a RSA key",
            )?;
            const PARSE: &str = "Jwks RSA [n] or [e] field is missing or has a parse error";
            let n = URL_SAFE_NO_PAD
                .decode(n.trim_end_matches('='))
                .map_err(|_| PARSE)?;
            let e = URL_SAFE_NO_PAD
                .decode(e.trim_end_matches('='))
                .map_err(|_| PARSE)?;
            // Envoy accepts only the exponents 3 and 65537.
            let exponent = e
                .iter()
                .skip_while(|&&b| b == 0)
                .copied()
                .collect::<Vec<_>>();
            if exponent != [3] && exponent != [1, 0, 1] {
                return Err(PARSE);
            }
            let key = DecodingKey::from_rsa_raw_components(&n, &e);
            // Checks the key and caches its Montgomery constants for every later verify.
            jwt_crypto::prepare_key(&key).map_err(|_| PARSE)?;
            (KeyType::Rsa, key)
        }
        "EC" => {
            if !alg.is_empty() && !alg.starts_with("ES") {
                return Err("[alg] is not started with [ES] for an EC key");
            }
            let crv = optional(object, "crv");
            let curve_of_alg = match alg.as_str() {
                "" => None,
                "ES256" => Some(JwkCurve::P256),
                "ES384" => Some(JwkCurve::P384),
                "ES512" => Some(JwkCurve::P521),
                _ => return Err("[crv] or [alg] field is not supported for an EC key"),
            };
            let curve = match (crv.as_str(), curve_of_alg) {
                ("", alg_curve) => alg_curve.unwrap_or(JwkCurve::P256),
                ("P-256", None | Some(JwkCurve::P256)) => JwkCurve::P256,
                ("P-384", None | Some(JwkCurve::P384)) => JwkCurve::P384,
                ("P-521", None | Some(JwkCurve::P521)) => JwkCurve::P521,
                ("P-256" | "P-384" | "P-521", Some(_)) => {
                    return Err("[crv] field specified is not compatible with [alg] for an EC key")
                }
                _ => return Err("[crv] or [alg] field is not supported for an EC key"),
            };
            let x = text(
                object,
                "x",
                "[x] field is missing for an EC key",
                "[x] field is not string for an EC key",
            )?;
            let y = text(
                object,
                "y",
                "[y] field is missing for an EC key",
                "[y] field is not string for an EC key",
            )?;
            const BASE64: &str = "Jwks EC [x] or [y] field is an invalid Base64.";
            const POINT: &str = "Jwks EC [x] and [y] fields have a parse error.";
            let x = URL_SAFE_NO_PAD
                .decode(x.trim_end_matches('='))
                .map_err(|_| BASE64)?;
            let y = URL_SAFE_NO_PAD
                .decode(y.trim_end_matches('='))
                .map_err(|_| BASE64)?;
            let point = uncompressed_point(&x, &y, curve.field_len()).ok_or(POINT)?;
            let key = DecodingKey::from_ec_der(&point);
            // Checks the point (and for P-256/P-384 caches its table, so the first token pays
            // no preparation).
            match curve {
                JwkCurve::P256 => jwt_crypto::prepare_ec_key(EcdsaCurve::P256, &key)
                    .map(drop)
                    .map_err(|_| POINT)?,
                JwkCurve::P384 => jwt_crypto::prepare_ec_key(EcdsaCurve::P384, &key)
                    .map(drop)
                    .map_err(|_| POINT)?,
                JwkCurve::P521 => P521PublicKey::from_uncompressed(&point)
                    .map(drop)
                    .map_err(|_| POINT)?,
            }
            (KeyType::Ec, key)
        }
        "oct" => {
            if !alg.is_empty() && !alg.starts_with("HS") {
                return Err("[alg] does not start with [HS] for an HMAC key");
            }
            let k = text(
                object,
                "k",
                "[k] field is missing for an HMAC key",
                "[k] field is not string for an HMAC key",
            )?;
            let secret = URL_SAFE_NO_PAD
                .decode(k.trim_end_matches('='))
                .map_err(|_| "Jwks Oct key is an invalid Base64")?;
            if secret.is_empty() {
                return Err("Jwks Oct key is an invalid Base64");
            }
            (KeyType::Oct, DecodingKey::from_secret(&secret))
        }
        "OKP" => {
            if !alg.is_empty() && alg != "EdDSA" {
                return Err("[alg] is not [EdDSA] for an OKP key");
            }
            if optional(object, "crv") != "Ed25519" {
                return Err("[crv] field is not supported for an OKP key");
            }
            let x = text(
                object,
                "x",
                "[x] field is missing for an OKP key",
                "[x] field is not string for an OKP key",
            )?;
            let raw = URL_SAFE_NO_PAD
                .decode(x.trim_end_matches('='))
                .map_err(|_| "Jwks OKP [x] field is an invalid Base64")?;
            if raw.len() != 32 {
                return Err("Jwks OKP [x] field is an invalid Base64");
            }
            (KeyType::Okp, DecodingKey::from_ed_der(&raw))
        }
        _ => return Err("[kty] is not supported in [keys]"),
    };
    Ok(Key {
        kid,
        alg,
        kty,
        decoding,
    })
}

/// ES512 with an EC key, which must be a P-521 point (a P-256 or P-384 key never verifies it).
fn verify_es512(key: &Key, signing_input: &[u8], jwt: &Jwt) -> bool {
    key.decoding
        .try_get_as_bytes()
        .ok()
        .and_then(|point| P521PublicKey::from_uncompressed(point).ok())
        .is_some_and(|public| public.verify(signing_input, &jwt.signature).is_ok())
}

impl KeySet {
    /// Parses a JWKS document. Keys that fail are skipped as long as one key is usable; when
    /// none is, the first key's error is returned (Envoy's status strings).
    pub fn parse(document: &[u8]) -> Result<KeySet, &'static str> {
        let value: Value =
            serde_json::from_slice(document).map_err(|_| "Jwks is an invalid JSON")?;
        let keys = match value.get("keys") {
            None => return Err("Jwks does not have [keys] field"),
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err("[keys] in Jwks is not an array"),
        };
        let mut parsed = Vec::new();
        let mut first_error = None;
        for key in keys.iter().filter_map(Value::as_object) {
            match parse_key(key) {
                Ok(key) => parsed.push(key),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match (parsed.is_empty(), first_error) {
            (true, Some(error)) => Err(error),
            (true, None) => Err("Jwks doesn't have any valid public key"),
            _ => Ok(KeySet { keys: parsed }),
        }
    }

    /// Checks the token's signature with the keys Envoy would try: in JWKS order, skipping a key
    /// whose `kid` differs from a token `kid`, or whose `alg` differs from the token's.
    pub fn verify(&self, jwt: &Jwt) -> Result<(), JwtError> {
        let algorithm = Algorithm::from_str(&jwt.alg).ok();
        let signing_input = jwt.signing_input();
        // The verifier factory of this crate's CryptoProvider, called directly so the signature is
        // not decoded from base64 a second time and the provider's signing half is not linked.
        let mut candidates = 0;
        for key in &self.keys {
            if !jwt.kid.is_empty() && !key.kid.is_empty() && key.kid != jwt.kid {
                continue;
            }
            if !key.alg.is_empty() && key.alg != jwt.alg {
                continue;
            }
            candidates += 1;
            if key.kty == KeyType::Okp && jwt.signature.len() != 64 {
                return Err(JwtError::Ed25519SignatureWrongLength);
            }
            if jwt.alg == "ES512" {
                // Not a jsonwebtoken algorithm: the key's bytes go to the P-521 verifier itself.
                if key.kty == KeyType::Ec && verify_es512(key, signing_input.as_bytes(), jwt) {
                    return Ok(());
                }
                continue;
            }
            let Some(algorithm) = &algorithm else {
                continue;
            };
            let verified =
                jwt_crypto::new_verifier(algorithm, &key.decoding).is_ok_and(|verifier| {
                    verifier
                        .verify(signing_input.as_bytes(), &jwt.signature)
                        .is_ok()
                });
            if verified {
                return Ok(());
            }
        }
        if candidates == 0 {
            Err(JwtError::KidAlgMismatch)
        } else {
            Err(JwtError::VerificationFail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeySet;

    // The P-256 generator: a valid point.
    const X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
    const Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

    fn ec_jwks(x: &str, y: &str, crv: &str) -> Vec<u8> {
        format!(r#"{{"keys":[{{"kty":"EC","crv":"{crv}","x":"{x}","y":"{y}"}}]}}"#).into_bytes()
    }

    #[test]
    fn ec_key_on_its_curve_is_accepted() {
        assert!(KeySet::parse(&ec_jwks(X, Y, "P-256")).is_ok());
    }

    #[test]
    fn ec_key_off_its_curve_is_refused_when_loaded() {
        // The same x with y = x is not on P-256; nor is the P-256 generator on P-384 (wrong size).
        for jwks in [ec_jwks(X, X, "P-256"), ec_jwks(X, Y, "P-384")] {
            assert_eq!(
                KeySet::parse(&jwks).err(),
                Some("Jwks EC [x] and [y] fields have a parse error.")
            );
        }
    }
}
