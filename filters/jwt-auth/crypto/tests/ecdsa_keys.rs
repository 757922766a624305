//! EC public key acceptance must match rust_crypto (`VerifyingKey::from_sec1_bytes` of p256 and
//! p384 0.13) exactly: the same bytes are refused, with the same error kind and in the factory,
//! and accepted bytes denote the same point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::*;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey};
use jwt_crypto::ecdsa::{EcKeyError, EcdsaCurve, EcdsaPublicKey};
use jwt_crypto::{prepare_ec_key, PROVIDER};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rsa::BigUint;

fn curve(alg: Algorithm) -> EcdsaCurve {
    EcdsaCurve::from_algorithm(alg).expect("ECDSA algorithm")
}

/// The factory's verdict as comparable text: the error kind, or "ok".
fn factory(
    provider: &jsonwebtoken::crypto::CryptoProvider,
    alg: Algorithm,
    key: &DecodingKey,
) -> String {
    match (provider.verifier_factory)(&alg, key) {
        Ok(v) => {
            assert_eq!(v.algorithm(), alg);
            "ok".into()
        }
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// Both providers treat `bytes` (as `from_ec_der` holds them) alike under `alg`: the same
/// factory verdict, the same point when accepted (compared through the reference's canonical
/// encoding), and the same verdict on `sig` over `msg`. Returns whether the key was accepted.
#[track_caller]
fn check_key(alg: Algorithm, bytes: &[u8], msg: &[u8], sig: &[u8], what: &str) -> bool {
    let key = DecodingKey::from_ec_der(bytes);
    let ours = factory(&PROVIDER, alg, &key);
    let theirs = factory(&RUST_CRYPTO, alg, &key);
    assert_eq!(
        ours,
        theirs,
        "{what}: factory ({alg:?}, {} bytes)",
        bytes.len()
    );
    let direct = EcdsaPublicKey::from_sec1(curve(alg), bytes);
    let reference = with_ref!(alg, |m| m::canonical_sec1(bytes));
    assert_eq!(
        direct.as_ref().ok().map(|k| k.to_uncompressed()),
        reference,
        "{what}: point"
    );
    assert_eq!(direct.is_ok(), ours == "ok");
    if ours == "ok" {
        agree(alg, &key, msg, sig, what);
    } else {
        assert_eq!(ours, "InvalidEcdsaKey", "{what}");
    }
    ours == "ok"
}

fn keys() -> Vec<EcTestKey> {
    let mut rng = StdRng::seed_from_u64(41);
    let mut keys = EcTestKey::openssl_fixtures();
    for alg in EC_ALGS {
        keys.push(EcTestKey::from_scalar(
            format!("{alg:?} d=1"),
            alg,
            &be_bytes(&BigUint::from(1u8), ec_len(alg)),
        ));
        for i in 0..3 {
            keys.push(EcTestKey::random(
                format!("{alg:?} random {i}"),
                alg,
                &mut rng,
            ));
        }
    }
    keys
}

#[test]
fn sec1_encodings() {
    let msg = b"header.payload";
    for key in keys() {
        let (alg, len) = (key.alg, ec_len(key.alg));
        let sig = key.sign(msg);
        let what = |m: &str| format!("{}: {m}", key.name);
        let full = key.sec1();
        let compressed = sec1_compressed(&key.x, &key.y);
        assert!(check_key(alg, &full, msg, &sig, &what("uncompressed")));
        assert!(check_key(alg, &compressed, msg, &sig, &what("compressed")));
        // The other parity is -Q: a valid key, under which the signature fails.
        let mut flipped = compressed.clone();
        flipped[0] ^= 1;
        assert!(check_key(alg, &flipped, msg, &sig, &what("other parity")));
        assert!(!agree(
            alg,
            &DecodingKey::from_ec_der(&flipped),
            msg,
            &sig,
            "other parity"
        ));
        // Compact (tag 05): the root y <= p - y, which is Q or -Q.
        let compact = [&[5u8][..], &key.x].concat();
        assert!(check_key(alg, &compact, msg, &sig, &what("compact")));
        // Hybrid (06/07, X9.62) and other tags are refused.
        for tag in [0x01u8, 0x06, 0x07, 0x08, 0x30, 0x44, 0xff] {
            let mut b = full.clone();
            b[0] = tag;
            assert!(!check_key(
                alg,
                &b,
                msg,
                &sig,
                &what(&format!("tag {tag:02x}"))
            ));
            let mut b = compressed.clone();
            b[0] = tag;
            assert!(!check_key(
                alg,
                &b,
                msg,
                &sig,
                &what(&format!("short tag {tag:02x}"))
            ));
        }
        // Lengths that do not fit the tag.
        for (name, b) in [
            (
                "uncompressed without last byte",
                full[..full.len() - 1].to_vec(),
            ),
            ("uncompressed plus a byte", [&full[..], &[0]].concat()),
            ("compressed without last byte", compressed[..len].to_vec()),
            ("compressed plus a byte", [&compressed[..], &[0]].concat()),
            (
                "compressed tag on x || y",
                [&[2u8][..], &full[1..]].concat(),
            ),
            ("uncompressed tag on x", [&[4u8][..], &key.x].concat()),
            ("x || y without tag", full[1..].to_vec()),
            ("x without tag", key.x.clone()),
            ("tag only", vec![4u8]),
            ("empty", vec![]),
        ] {
            assert!(!check_key(alg, &b, msg, &sig, &what(name)));
        }
        // The identity, alone and with coordinates.
        assert!(!check_key(alg, &[0], msg, &sig, &what("identity")));
        assert!(!check_key(
            alg,
            &[&[0u8][..], &key.x].concat(),
            msg,
            &sig,
            &what("00 || x")
        ));
        // Off the curve.
        let mut off = full.clone();
        *off.last_mut().expect("non-empty") ^= 1;
        assert!(!check_key(alg, &off, msg, &sig, &what("y changed")));
        let mut off = full.clone();
        off[1 + len / 2] ^= 0x80;
        assert!(!check_key(alg, &off, msg, &sig, &what("x changed")));
        // The other curve's algorithm.
        let other = if alg == Algorithm::ES256 {
            Algorithm::ES384
        } else {
            Algorithm::ES256
        };
        for b in [&full, &compressed, &compact] {
            assert!(!check_key(other, b, msg, &sig, &what("other curve")));
        }
    }
}

#[test]
fn coordinates_out_of_range_and_x_without_a_point() {
    let msg = b"m";
    for alg in EC_ALGS {
        let len = ec_len(alg);
        let p = ec_prime(alg);
        let limit = BigUint::from(1u8) << (8 * len);
        let sig = vec![1u8; 2 * len];
        let mut on_curve = 0;
        let mut off_curve = 0;
        // Small x: some are on the curve (then x + p still fits in len bytes), some have no y.
        for x in 0u32..40 {
            let xb = be_bytes(&BigUint::from(x), len);
            let compressed = [&[2u8][..], &xb].concat();
            let what = format!("{alg:?} x = {x}");
            match with_ref!(alg, |m| m::lift_x(&xb)) {
                Some((_, y)) => {
                    on_curve += 1;
                    assert!(check_key(alg, &compressed, msg, &sig, &what));
                    assert!(check_key(
                        alg,
                        &sec1_uncompressed(&xb, &y),
                        msg,
                        &sig,
                        &what
                    ));
                    let x_plus_p = &p + x;
                    assert!(x_plus_p < limit);
                    let xp = be_bytes(&x_plus_p, len);
                    assert!(!check_key(
                        alg,
                        &sec1_uncompressed(&xp, &y),
                        msg,
                        &sig,
                        &what
                    ));
                    assert!(!check_key(
                        alg,
                        &[&[3u8][..], &xp].concat(),
                        msg,
                        &sig,
                        &what
                    ));
                    // y + p, when it fits.
                    let y_plus_p = BigUint::from_bytes_be(&y) + &p;
                    if y_plus_p < limit {
                        let yp = be_bytes(&y_plus_p, len);
                        assert!(!check_key(
                            alg,
                            &sec1_uncompressed(&xb, &yp),
                            msg,
                            &sig,
                            &what
                        ));
                    }
                    // The two compact roots' choice.
                    assert!(check_key(
                        alg,
                        &[&[5u8][..], &xb].concat(),
                        msg,
                        &sig,
                        &what
                    ));
                }
                None => {
                    off_curve += 1;
                    assert!(!check_key(alg, &compressed, msg, &sig, &what));
                    assert!(!check_key(
                        alg,
                        &[&[5u8][..], &xb].concat(),
                        msg,
                        &sig,
                        &what
                    ));
                }
            }
        }
        assert!(
            on_curve > 0 && off_curve > 0,
            "{alg:?} {on_curve} {off_curve}"
        );
        for (name, v) in [
            ("p", p.clone()),
            ("p+1", &p + 1u8),
            ("2^8len-1", &limit - 1u8),
        ] {
            let b = be_bytes(&v, len);
            for enc in [
                [&[2u8][..], &b].concat(),
                [&[5u8][..], &b].concat(),
                sec1_uncompressed(&b, &b),
            ] {
                assert!(!check_key(alg, &enc, msg, &sig, &format!("{alg:?} {name}")));
            }
        }
    }
}

/// `from_ec_components` concatenates the JWK's coordinates whatever their lengths, so a
/// coordinate with a leading zero stripped or added changes the encoding's length (refused), and
/// a stripped one next to a padded one shifts bytes from x into y (some other, off-curve, point).
#[test]
fn jwk_coordinate_lengths() {
    let msg = b"m";
    for key in keys() {
        let alg = key.alg;
        let sig = key.sign(msg);
        let padded = |v: &[u8]| [&[0u8][..], v].concat();
        let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
            ("x stripped", key.x[1..].to_vec(), key.y.clone()),
            ("y stripped", key.x.clone(), key.y[1..].to_vec()),
            ("x padded", padded(&key.x), key.y.clone()),
            ("both padded", padded(&key.x), padded(&key.y)),
            ("x padded, y stripped", padded(&key.x), key.y[1..].to_vec()),
            ("x stripped, y padded", key.x[1..].to_vec(), padded(&key.y)),
            ("y empty", key.x.clone(), vec![]),
            ("x and y empty", vec![], vec![]),
        ];
        for (name, x, y) in cases {
            let dk = DecodingKey::from_ec_components(&b64url_encode(&x), &b64url_encode(&y))
                .expect("base64");
            let what = format!("{}: {name}", key.name);
            let ours = factory(&PROVIDER, alg, &dk);
            assert_eq!(ours, factory(&RUST_CRYPTO, alg, &dk), "{what}");
            assert_eq!(ours, "InvalidEcdsaKey", "{what}");
            assert!(!agree(alg, &dk, msg, &sig, &what));
        }
    }
}

/// Despite its name, `DecodingKey::from_ec_der` wants the SEC1 point: a DER
/// SubjectPublicKeyInfo (what `openssl ec -pubout -outform DER` writes) or a PKCS#8 private key
/// is refused by rust_crypto, in the factory; so by us too.
#[test]
fn der_structures_are_not_keys() {
    let msg = b"m";
    for key in keys().into_iter().take(2) {
        let alg = key.alg;
        let prefix: &[u8] = if alg == Algorithm::ES256 {
            &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ]
        } else {
            &[
                0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
            ]
        };
        let spki = [prefix, &key.sec1()].concat();
        let pkcs8: &[u8] = if alg == Algorithm::ES256 {
            include_bytes!("data/p256.der")
        } else {
            include_bytes!("data/p384.der")
        };
        let sig = key.sign(msg);
        assert!(!check_key(alg, &spki, msg, &sig, "SubjectPublicKeyInfo"));
        assert!(!check_key(alg, pkcs8, msg, &sig, "PKCS#8 private key"));
    }
}

#[test]
fn keys_of_other_families() {
    let key = &keys()[0];
    let sec1 = key.sec1();
    let others = [
        DecodingKey::from_secret(&sec1),
        DecodingKey::from_ed_der(&sec1),
        DecodingKey::from_rsa_der(&sec1),
        DecodingKey::from_rsa_raw_components(&key.x, &key.y),
    ];
    for dk in &others {
        for alg in EC_ALGS {
            let ours = factory(&PROVIDER, alg, dk);
            assert_eq!(ours, factory(&RUST_CRYPTO, alg, dk));
            assert_eq!(ours, format!("{:?}", ErrorKind::InvalidKeyFormat));
            assert_eq!(
                prepare_ec_key(curve(alg), dk).unwrap_err(),
                EcKeyError::NotEc
            );
        }
    }
}

#[test]
fn prepare_ec_key_caches_and_reports_errors() {
    for key in keys().into_iter().take(2) {
        let c = curve(key.alg);
        let a = prepare_ec_key(c, key.jwk()).expect("valid key");
        let b = prepare_ec_key(c, key.jwk()).expect("valid key");
        assert!(Arc::ptr_eq(&a, &b), "the second call hits the cache");
        assert_eq!(a.curve(), c);
        assert_eq!(a.to_uncompressed(), key.sec1());
        assert!(a.table_len() > 0);
        // Another form of the same point is another cache entry with the same point.
        let compressed = DecodingKey::from_ec_der(&sec1_compressed(&key.x, &key.y));
        let d = prepare_ec_key(c, &compressed).expect("valid key");
        assert_eq!(d.to_uncompressed(), key.sec1());
        let msg = b"payload";
        let sig = key.sign(msg);
        assert!(a.verify(msg, &sig).is_ok());
        assert!(d.verify(msg, &sig).is_ok());
    }
    let p256 = EcdsaCurve::P256;
    let err = |bytes: &[u8]| prepare_ec_key(p256, &DecodingKey::from_ec_der(bytes)).unwrap_err();
    assert_eq!(err(&[]), EcKeyError::MalformedEncoding);
    assert_eq!(err(&[0]), EcKeyError::Identity);
    assert_eq!(err(&[4; 65]), EcKeyError::NotOnCurve);
    assert_eq!(
        err(&[&[4u8][..], &[0xff; 64]].concat()),
        EcKeyError::CoordinateOutOfRange
    );
}
