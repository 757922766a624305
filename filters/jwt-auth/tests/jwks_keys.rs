//! Keys as a JWKS delivers them, through `KeySet::parse` and `KeySet::verify` (the path every
//! token takes): RSA moduli up to Envoy's 8,192 bits, EC coordinates with their leading zero bytes
//! stripped (accepted, as Envoy does), ES512, and the alg/key confusions we refuse on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_auth::jwks::KeySet;
use jwt_auth::jwt::{Jwt, JwtError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rsa::pkcs1::der::Decode;

fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

const POINT_ERROR: &str = "Jwks EC [x] and [y] fields have a parse error.";
const RSA_ERROR: &str = "Jwks RSA [n] or [e] field is missing or has a parse error";

fn ec_jwk(crv: &str, alg: &str, x: &[u8], y: &[u8]) -> String {
    let alg = if alg.is_empty() {
        String::new()
    } else {
        format!(r#","alg":"{alg}""#)
    };
    format!(
        r#"{{"kty":"EC","crv":"{crv}"{alg},"x":"{}","y":"{}"}}"#,
        b64url_encode(x),
        b64url_encode(y)
    )
}

fn jwks(keys: &[String]) -> Vec<u8> {
    format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
}

/// `header.payload.signature` for `alg` with `sign` over the signing input.
fn token(alg: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = b64url_encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
    let payload = b64url_encode(br#"{"iss":"https://issuer","sub":"s"}"#);
    let input = format!("{header}.{payload}");
    format!("{input}.{}", b64url_encode(&sign(input.as_bytes())))
}

fn verify(jwks_doc: &[u8], token: &str) -> Result<(), JwtError> {
    let set = KeySet::parse(jwks_doc).expect("key set");
    set.verify(&Jwt::parse(token).expect("token"))
}

/// The token with its signature replaced by `sig`.
fn with_signature(token: &str, sig: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').expect("three parts");
    format!("{input}.{}", b64url_encode(sig))
}

fn signature(token: &str) -> Vec<u8> {
    b64url_decode(token.rsplit_once('.').expect("three parts").1)
}

/// Signs a message, returning the raw JWS signature.
type Sign = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A key pair of one curve: public coordinates and a signer.
struct EcKey {
    x: Vec<u8>,
    y: Vec<u8>,
    sign: Sign,
}

/// Makes the key pair of one curve from a seed.
type MakeKey = fn(u64) -> EcKey;

macro_rules! ec_key_fn {
    ($name:ident, $crate_:ident) => {
        fn $name(seed: u64) -> EcKey {
            use $crate_::ecdsa::signature::Signer;
            use $crate_::ecdsa::{Signature, SigningKey, VerifyingKey};
            let key = SigningKey::random(&mut StdRng::seed_from_u64(seed));
            let point = VerifyingKey::from(&key).to_encoded_point(false);
            let (x, y) = (
                point.x().expect("x").to_vec(),
                point.y().expect("y").to_vec(),
            );
            EcKey {
                x,
                y,
                sign: Box::new(move |msg| {
                    let sig: Signature = key.sign(msg);
                    sig.to_bytes().to_vec()
                }),
            }
        }
    };
}

ec_key_fn!(p256_key, p256);
ec_key_fn!(p384_key, p384);
ec_key_fn!(p521_key, p521);

/// The first seed from 0 whose key has a leading zero byte in x (or y when `in_y`).
fn key_with_leading_zero(make: MakeKey, in_y: bool) -> (u64, EcKey) {
    (0..5000)
        .map(|seed| (seed, make(seed)))
        .find(|(_, k)| (if in_y { &k.y } else { &k.x })[0] == 0)
        .expect("one in 256 keys has one")
}

#[test]
fn ec_coordinates_without_leading_zeros_are_padded() {
    let curves: [(&str, &str, MakeKey); 3] = [
        ("P-256", "ES256", p256_key),
        ("P-384", "ES384", p384_key),
        ("P-521", "ES512", p521_key),
    ];
    for (crv, alg, make) in curves {
        for in_y in [false, true] {
            let (seed, key) = key_with_leading_zero(make, in_y);
            let what = format!(
                "{crv} seed {seed}, zero in {}",
                if in_y { "y" } else { "x" }
            );
            let tok = token(alg, &key.sign);
            let strip = |v: &[u8]| v[v.iter().take_while(|&&b| b == 0).count()..].to_vec();
            let (sx, sy) = if in_y {
                (key.x.clone(), strip(&key.y))
            } else {
                (strip(&key.x), key.y.clone())
            };
            assert!(sx.len() < key.x.len() || sy.len() < key.y.len(), "{what}");
            for doc_alg in ["", alg] {
                // Full length and stripped both verify.
                for (x, y) in [(&key.x, &key.y), (&sx, &sy)] {
                    let doc = jwks(&[ec_jwk(crv, doc_alg, x, y)]);
                    assert_eq!(verify(&doc, &tok), Ok(()), "{what} alg '{doc_alg}'");
                }
            }
            // Longer than the field, even by a zero byte, is refused when the JWKS is loaded.
            let long = [&[0u8][..], &key.x].concat();
            let doc = jwks(&[ec_jwk(crv, alg, &long, &key.y)]);
            assert_eq!(KeySet::parse(&doc).err(), Some(POINT_ERROR), "{what}");
            // A stripped coordinate padded on the wrong side is another (off-curve) point.
            if !in_y {
                let mut right = sx.clone();
                right.resize(key.x.len(), 0);
                let doc = jwks(&[ec_jwk(crv, alg, &right, &key.y)]);
                assert_eq!(KeySet::parse(&doc).err(), Some(POINT_ERROR), "{what}");
            }
        }
    }
}

#[test]
fn es512_verifies_and_refuses_malleated_signatures() {
    let key = p521_key(7);
    let tok = token("ES512", &key.sign);
    let doc = jwks(&[ec_jwk("P-521", "ES512", &key.x, &key.y)]);
    assert_eq!(verify(&doc, &tok), Ok(()));
    let sig = signature(&tok);
    assert_eq!(sig.len(), 132);
    let mut flipped = sig.clone();
    flipped[70] ^= 1;
    let mut trailing = sig.clone();
    trailing.push(0);
    let cases = [
        ("bit flipped", flipped),
        ("trailing byte", trailing),
        ("one byte short", sig[..131].to_vec()),
        ("zeros", vec![0u8; 132]),
        ("r and s swapped", [&sig[66..], &sig[..66]].concat()),
    ];
    for (what, bad) in cases {
        assert_eq!(
            verify(&doc, &with_signature(&tok, &bad)),
            Err(JwtError::VerificationFail),
            "{what}"
        );
    }
    // s + n does not fit in 66 bytes with r; n - s (the other valid s) is accepted, as natively.
    let s = {
        use p521::elliptic_curve::PrimeField;
        let s: Option<p521::Scalar> =
            p521::Scalar::from_repr(p521::FieldBytes::clone_from_slice(&sig[66..])).into();
        (-s.expect("s below n")).to_repr()
    };
    let high = [&sig[..66], &s[..]].concat();
    assert_eq!(verify(&doc, &with_signature(&tok, &high)), Ok(()));
    // Another key, and a token signed for another message.
    let other = p521_key(8);
    let doc_other = jwks(&[ec_jwk("P-521", "", &other.x, &other.y)]);
    assert_eq!(verify(&doc_other, &tok), Err(JwtError::VerificationFail));
    // Both keys in the set: the matching one is found.
    let both = jwks(&[
        ec_jwk("P-521", "", &other.x, &other.y),
        ec_jwk("P-521", "", &key.x, &key.y),
    ]);
    assert_eq!(verify(&both, &tok), Ok(()));
}

/// Envoy verifies an ES256 header with a P-384 key (and other such mixes); we refuse them.
#[test]
fn algorithm_and_curve_confusions_are_refused() {
    let p256 = p256_key(1);
    let p384 = p384_key(2);
    let p521 = p521_key(3);
    let keys: [(&str, &EcKey); 3] = [("P-256", &p256), ("P-384", &p384), ("P-521", &p521)];
    let algs = [("ES256", &p256), ("ES384", &p384), ("ES512", &p521)];
    for (alg, signer) in algs {
        let tok = token(alg, &signer.sign);
        for (crv, key) in keys {
            let doc = jwks(&[ec_jwk(crv, "", &key.x, &key.y)]);
            let own_curve = std::ptr::eq(signer, key);
            let want = if own_curve {
                Ok(())
            } else {
                Err(JwtError::VerificationFail)
            };
            assert_eq!(verify(&doc, &tok), want, "{alg} token, {crv} key");
        }
    }
    // A JWK whose alg names another curve than its crv is refused when loaded.
    for (crv, alg) in [
        ("P-256", "ES384"),
        ("P-256", "ES512"),
        ("P-384", "ES256"),
        ("P-384", "ES512"),
        ("P-521", "ES256"),
        ("P-521", "ES384"),
    ] {
        let doc = jwks(&[ec_jwk(crv, alg, &p256.x, &p256.y)]);
        assert_eq!(
            KeySet::parse(&doc).err(),
            Some("[crv] field specified is not compatible with [alg] for an EC key"),
            "{crv} {alg}"
        );
    }
    // No crv: the curve follows alg; a P-521 point read as P-256 is refused.
    let doc = jwks(&[ec_jwk("", "ES512", &p521.x, &p521.y)]);
    assert!(KeySet::parse(&doc).is_ok());
    let doc = jwks(&[ec_jwk("", "", &p521.x, &p521.y)]);
    assert_eq!(KeySet::parse(&doc).err(), Some(POINT_ERROR));
    // An RS256 header with an EC key or an HMAC secret never verifies, even when the signature
    // is the HMAC of the signing input under that secret.
    let secret = b"0123456789abcdef0123456789abcdef";
    let hmac = |msg: &[u8]| {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any length");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    };
    let oct = format!(r#"{{"kty":"oct","k":"{}"}}"#, b64url_encode(secret));
    let oct_doc = jwks(std::slice::from_ref(&oct));
    assert_eq!(verify(&oct_doc, &token("HS256", hmac)), Ok(()));
    let tok = token("RS256", hmac);
    for doc in [jwks(&[ec_jwk("P-256", "", &p256.x, &p256.y)]), jwks(&[oct])] {
        assert_eq!(verify(&doc, &tok), Err(JwtError::VerificationFail));
    }
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> String {
    format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#,
        b64url_encode(n),
        b64url_encode(e)
    )
}

/// The openssl-signed 8192-bit tokens of tests/data verify through a JWKS; a modulus above
/// 8,192 bits is refused when the JWKS is loaded.
#[test]
fn rsa_keys_up_to_8192_bits() {
    let der = include_bytes!("../crypto/tests/data/rsa8192_pub.der");
    let key = rsa::pkcs1::RsaPublicKey::from_der(der).expect("PKCS#1 key");
    let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
    assert_eq!(n.len(), 1024);
    let doc = jwks(&[rsa_jwk(n, e)]);
    let mut checked = 0;
    for line in include_str!("../crypto/tests/data/openssl_tokens.txt").lines() {
        let Some(tok) = line.strip_prefix("8192 ") else {
            continue;
        };
        let tok = tok.rsplit(' ').next().expect("token");
        assert_eq!(verify(&doc, tok), Ok(()), "{line}");
        // PS* malleability: s + n has the same length when s + n < 2^8192.
        let s = num_bigint::BigUint::from_bytes_be(&signature(tok));
        let plus = (s + num_bigint::BigUint::from_bytes_be(n)).to_bytes_be();
        if plus.len() == 1024 {
            let bad = with_signature(tok, &plus);
            assert_eq!(
                verify(&doc, &bad),
                Err(JwtError::VerificationFail),
                "{line}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 2);
    // 8,193 to 8,200 bits: refused.
    for bits in [8193usize, 8200] {
        let mut big = vec![0xffu8; bits.div_ceil(8)];
        big[0] = 0xff >> (8 * big.len() - bits);
        let doc = jwks(&[rsa_jwk(&big, e)]);
        assert_eq!(KeySet::parse(&doc).err(), Some(RSA_ERROR), "{bits}");
    }
}

/// Envoy takes a trailing byte after an ECDSA signature, and base64url whose unused tail bits are
/// set; we refuse both, so each token has one spelling.
#[test]
fn trailing_signature_bytes_and_tail_bits_are_refused() {
    let key = p256_key(4);
    let tok = token("ES256", &key.sign);
    let doc = jwks(&[ec_jwk("P-256", "ES256", &key.x, &key.y)]);
    assert_eq!(verify(&doc, &tok), Ok(()));
    let sig = signature(&tok);
    for extra in [&[0u8][..], &[1], &[0, 0]] {
        let longer = [&sig[..], extra].concat();
        assert_eq!(
            verify(&doc, &with_signature(&tok, &longer)),
            Err(JwtError::VerificationFail),
            "{extra:?}"
        );
    }
    // 64 bytes are 86 characters whose last one carries 2 bits and 4 unused zero bits.
    let (input, sig_b64) = tok.rsplit_once('.').expect("three parts");
    assert_eq!(sig_b64.len(), 86);
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = ALPHABET.find(&sig_b64[85..]).expect("base64url");
    assert_eq!(last & 0xf, 0);
    // The payload (34 bytes, 46 characters) has 4 unused bits too.
    let (header, payload) = input.split_once('.').expect("header.payload");
    assert_eq!(payload.len(), 46);
    let payload_last = ALPHABET.find(&payload[45..]).expect("base64url");
    for unused in 1..16 {
        let spelled = &ALPHABET[last | unused..=(last | unused)];
        let other = format!("{input}.{}{spelled}", &sig_b64[..85]);
        assert_eq!(
            Jwt::parse(&other).err(),
            Some(JwtError::SignatureBadBase64),
            "{other}"
        );
        let spelled = &ALPHABET[payload_last | unused..=(payload_last | unused)];
        let other = format!("{header}.{}{spelled}.{sig_b64}", &payload[..45]);
        assert_eq!(
            Jwt::parse(&other).err(),
            Some(JwtError::PayloadBadBase64),
            "{other}"
        );
    }
}
