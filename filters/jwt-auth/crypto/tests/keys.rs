//! Key acceptance must match the `rsa` crate exactly, for JWK components and for PKCS#1 DER:
//! the same keys are refused, and accepted keys have the same modulus and exponent. The modulus
//! limit is Envoy's 8,192 bits, which rsa applies with `new_with_max_size` (its default is 4,096).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use jwt_crypto::rsa::{RsaPublicKey, MAX_MODULUS_BITS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsa::pkcs1::der::Decode;
use rsa::traits::PublicKeyParts;
use rsa::BigUint;

fn theirs_components(n: &[u8], e: &[u8]) -> Option<(Vec<u8>, u64)> {
    let key = rsa::RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(n),
        BigUint::from_bytes_be(e),
        MAX_MODULUS_BITS,
    )
    .ok()?;
    Some((key.n().to_bytes_be(), e_u64(&key)))
}

/// `rsa::RsaPublicKey::from_pkcs1_der` with the 8,192-bit limit: the same DER parser, then the
/// same key checks.
fn theirs_der(der: &[u8]) -> Option<(Vec<u8>, u64)> {
    let parsed = rsa::pkcs1::RsaPublicKey::from_der(der).ok()?;
    theirs_components(parsed.modulus.as_bytes(), parsed.public_exponent.as_bytes())
}

fn e_u64(key: &rsa::RsaPublicKey) -> u64 {
    let bytes = key.e().to_bytes_be();
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

fn ours(key: Result<RsaPublicKey, jwt_crypto::rsa::KeyError>) -> Option<(Vec<u8>, u64)> {
    key.ok().map(|k| (k.modulus(), k.exponent()))
}

#[track_caller]
fn check_components(n: &[u8], e: &[u8]) -> bool {
    let a = ours(RsaPublicKey::from_components(n, e));
    let b = theirs_components(n, e);
    assert_eq!(a, b, "n {n:02x?} e {e:02x?}");
    a.is_some()
}

#[track_caller]
fn check_der(der: &[u8], what: &str) -> bool {
    let a = ours(RsaPublicKey::from_pkcs1_der(der));
    let b = theirs_der(der);
    assert_eq!(a, b, "{what}: {der:02x?}");
    a.is_some()
}

fn be(v: &BigUint) -> Vec<u8> {
    v.to_bytes_be()
}

#[test]
fn component_grid() {
    let two = BigUint::from(2u8);
    let big_odd = |bits: usize| be(&((BigUint::from(1u8) << (bits - 1)) + 12345u32));
    let mut ns: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0, 0],
        vec![1],
        vec![2],
        vec![3],
        vec![5],
        vec![7],
        vec![0, 9],
        vec![0x01, 0x00, 0x01],
        vec![0x01, 0x00, 0x03],
        vec![0xff; 8],
        vec![0xff; 9],
        big_odd(64),
        big_odd(65),
        big_odd(1024),
        big_odd(4095),
        big_odd(4096),
        big_odd(4097),
        big_odd(8192),
        big_odd(8193),
        be(&((BigUint::from(1u8) << 4096) - 1u8)),
        be(&((BigUint::from(1u8) << 4096) - 2u8)),
        be(&(BigUint::from(1u8) << 4096)),
    ];
    let mut padded = vec![0u8; 10];
    padded.extend_from_slice(&big_odd(4096));
    ns.push(padded);
    let es: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![1],
        vec![2],
        vec![3],
        vec![4],
        vec![5],
        vec![0, 0, 3],
        vec![1, 0, 1],
        be(&((two.clone() << 32) - 1u8)),
        be(&((two.clone() << 32) + 1u8)),
        be(&(two.clone() << 32)),
        be(&((two.clone() << 33) - 1u8)),
        vec![0xff; 8],
        vec![0x01, 0, 0, 0, 0, 0, 0, 0, 1],
        vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11],
    ];
    let mut accepted = 0;
    for n in &ns {
        for e in &es {
            accepted += usize::from(check_components(n, e));
            // The same with a raised limit, against rsa's new_with_max_size.
            let ours = RsaPublicKey::from_components_with_max_bits(n, e, 8192).is_ok();
            let theirs = rsa::RsaPublicKey::new_with_max_size(
                BigUint::from_bytes_be(n),
                BigUint::from_bytes_be(e),
                8192,
            )
            .is_ok();
            assert_eq!(ours, theirs, "8192 limit: n {n:02x?} e {e:02x?}");
        }
        // e = n, e = n - 2 and e = n + 2 for small n.
        if n.len() <= 8 && !n.is_empty() {
            let v = BigUint::from_bytes_be(n);
            check_components(n, n);
            if v > two {
                check_components(n, &be(&(&v - 2u8)));
            }
            check_components(n, &be(&(v + 2u8)));
        }
    }
    assert!(accepted > 20, "the grid accepts some keys ({accepted})");
}

#[test]
fn random_small_components() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let n: Vec<u8> = (0..rng.gen_range(0..12)).map(|_| rng.gen()).collect();
        let e: Vec<u8> = (0..rng.gen_range(0..10)).map(|_| rng.gen()).collect();
        accepted += usize::from(check_components(&n, &e));
        // Biased towards valid shapes: odd modulus, small odd exponent.
        let mut n2 = n.clone();
        if let Some(last) = n2.last_mut() {
            *last |= 1;
        }
        let e2 = [rng.gen_range(0..8u8) | 1];
        accepted += usize::from(check_components(&n2, &e2));
    }
    assert!(accepted > 1000, "{accepted}");
}

/// PKCS#1 `RSAPublicKey` DER for the given integer contents (already in INTEGER form).
fn der_of(n_int: &[u8], e_int: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        let len = body.len();
        if len < 0x80 {
            v.push(len as u8);
        } else if len < 0x100 {
            v.extend_from_slice(&[0x81, len as u8]);
        } else {
            v.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
        }
        v.extend_from_slice(body);
        v
    }
    let mut body = tlv(0x02, n_int);
    body.extend_from_slice(&tlv(0x02, e_int));
    tlv(0x30, &body)
}

fn base_ders() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("data/rsa2048_pub.der").to_vec(),
        include_bytes!("data/rsa2049_pub.der").to_vec(),
        include_bytes!("data/rsa4096_pub.der").to_vec(),
        der_of(&[0x00, 0xc5], &[0x03]),
        der_of(&[0x65], &[0x03]),
        der_of(
            &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x03],
        ),
    ]
}

#[test]
fn der_valid_and_hand_made() {
    for der in base_ders() {
        assert!(check_der(&der, "base"));
    }
    let n = &include_bytes!("data/rsa2048_pub.der")[9..9 + 256]; // the modulus magnitude
    let mut n_int = vec![0u8];
    n_int.extend_from_slice(n);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("empty sequence", vec![0x30, 0x00]),
        ("one integer", vec![0x30, 0x03, 0x02, 0x01, 0x03]),
        ("negative modulus", der_of(n, &[0x03])),
        (
            "modulus with extra zero",
            der_of(&[&[0u8, 0][..], n].concat(), &[0x03]),
        ),
        ("exponent with leading zero", der_of(&n_int, &[0x00, 0x03])),
        ("negative exponent", der_of(&n_int, &[0x81])),
        ("exponent 0x80 padded", der_of(&n_int, &[0x00, 0x81])),
        ("empty exponent", der_of(&n_int, &[])),
        ("zero exponent", der_of(&n_int, &[0x00])),
        ("zero modulus", der_of(&[0x00], &[0x03])),
        ("three integers", {
            let mut d = der_of(&n_int, &[0x03]);
            d.extend_from_slice(&[0x02, 0x01, 0x01]);
            let len = d.len() - 4;
            d[2] = (len >> 8) as u8;
            d[3] = len as u8;
            d
        }),
        ("trailing byte", [der_of(&n_int, &[0x03]), vec![0]].concat()),
        ("indefinite length", {
            let mut d = vec![0x30, 0x80];
            d.extend_from_slice(&der_of(&n_int, &[0x03])[4..]);
            d.extend_from_slice(&[0, 0]);
            d
        }),
        ("long form with leading zero", {
            let d = der_of(&n_int, &[0x03]);
            let mut v = vec![0x30, 0x83, 0x00, d[2], d[3]];
            v.extend_from_slice(&d[4..]);
            v
        }),
        ("short length in long form", {
            let d = der_of(&[0x65], &[0x03]);
            let mut v = vec![0x30, 0x81, d[1]];
            v.extend_from_slice(&d[2..]);
            v
        }),
        ("five-byte length", {
            let d = der_of(&n_int, &[0x03]);
            let mut v = vec![0x30, 0x85, 0, 0, 0, d[2], d[3]];
            v.extend_from_slice(&d[4..]);
            v
        }),
        ("set instead of sequence", {
            let mut d = der_of(&n_int, &[0x03]);
            d[0] = 0x31;
            d
        }),
        ("primitive sequence tag", {
            let mut d = der_of(&n_int, &[0x03]);
            d[0] = 0x10;
            d
        }),
        ("enumerated instead of integer", {
            let mut d = der_of(&n_int, &[0x03]);
            d[4] = 0x0a;
            d
        }),
    ];
    for (name, der) in &cases {
        check_der(der, name);
    }
    // An SPKI (PKCS#8 public key) is not PKCS#1: both refuse it.
    let spki = [
        &[0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09][..],
        &[
            0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ],
        &[0x03, 0x82, 0x01, 0x0f, 0x00],
        include_bytes!("data/rsa2048_pub.der"),
    ]
    .concat();
    assert!(!check_der(&spki, "SPKI"));
}

#[test]
fn der_mutations() {
    let values = [
        0x00u8, 0x01, 0x02, 0x03, 0x30, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xfe, 0xff,
    ];
    let mut accepted = 0;
    for der in base_ders() {
        let len = der.len();
        // Every header byte and every trailing exponent byte, set to interesting values and
        // changed by +-1.
        let positions: Vec<usize> = (0..len.min(14)).chain(len.saturating_sub(8)..len).collect();
        for &pos in &positions {
            let orig = der[pos];
            for v in values
                .iter()
                .copied()
                .chain([orig.wrapping_add(1), orig.wrapping_sub(1)])
            {
                let mut d = der.clone();
                d[pos] = v;
                accepted += usize::from(check_der(&d, &format!("byte {pos} = {v:02x}")));
            }
            // Insert and remove a byte.
            let mut d = der.clone();
            d.insert(pos, 0);
            check_der(&d, &format!("insert at {pos}"));
            let mut d = der.clone();
            d.remove(pos);
            check_der(&d, &format!("remove at {pos}"));
        }
        for cut in 0..len {
            assert!(!check_der(&der[..cut], &format!("truncated to {cut}")));
        }
        for extra in [&[0u8][..], &[0, 0], &[0x02, 0x01, 0x03]] {
            assert!(!check_der(&[&der[..], extra].concat(), "extended"));
        }
    }
    assert!(accepted > 0);
}

#[test]
fn der_random() {
    let mut rng = StdRng::seed_from_u64(12);
    let mut accepted = 0;
    for _ in 0..20_000 {
        // Random TLV soup, mostly with the right tags and sometimes-right lengths.
        let n_len = rng.gen_range(0..20usize);
        let e_len = rng.gen_range(0..6usize);
        let mut n: Vec<u8> = (0..n_len).map(|_| rng.gen()).collect();
        let e: Vec<u8> = (0..e_len).map(|_| rng.gen()).collect();
        if rng.gen_bool(0.5) {
            if let Some(last) = n.last_mut() {
                *last |= 1;
            }
        }
        let mut d = der_of(&n, &e);
        for _ in 0..rng.gen_range(0..3) {
            if d.is_empty() {
                break;
            }
            let pos = rng.gen_range(0..d.len());
            d[pos] = rng.gen();
        }
        accepted += usize::from(check_der(&d, "random"));
        let junk: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect();
        check_der(&junk, "junk");
    }
    assert!(accepted > 100, "{accepted}");
}
