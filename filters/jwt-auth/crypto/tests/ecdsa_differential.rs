//! Differential tests for ES256 and ES384: every verification goes through this crate's provider
//! and jsonwebtoken's rust_crypto one, which must agree, on valid signatures in every key form
//! and on many ways of breaking them. Where rust_crypto's behaviour is worth knowing (high S is
//! accepted, DER is not, ...) the expected verdict is asserted as well.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::OnceLock;

use common::*;
use jsonwebtoken::{Algorithm, DecodingKey};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rsa::BigUint;

const MESSAGES: [&[u8]; 3] = [
    b"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ",
    b"",
    &[0x5a; 300],
];

struct Fixture {
    keys: Vec<EcTestKey>,
    /// (key index, message index, signature) for every key and message.
    sigs: Vec<(usize, usize, Vec<u8>)>,
}

/// Keys and signatures, made once per test binary: per curve the checked-in openssl key, keys
/// with private scalar 1 (Q = G, so both tables hold the same points), 2 and n - 1 (Q = -G), and
/// random ones.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(31);
        let mut keys = EcTestKey::openssl_fixtures();
        for alg in EC_ALGS {
            let len = ec_len(alg);
            let n = ec_order(alg);
            for (name, d) in [
                ("d=1", BigUint::from(1u8)),
                ("d=2", BigUint::from(2u8)),
                ("d=n-1", &n - 1u8),
            ] {
                keys.push(EcTestKey::from_scalar(
                    format!("{alg:?} {name}"),
                    alg,
                    &be_bytes(&d, len),
                ));
            }
            let count = if alg == Algorithm::ES256 { 4 } else { 2 };
            for i in 0..count {
                keys.push(EcTestKey::random(
                    format!("{alg:?} random {i}"),
                    alg,
                    &mut rng,
                ));
            }
        }
        let mut sigs = Vec::new();
        for (ki, key) in keys.iter().enumerate() {
            for (mi, msg) in MESSAGES.iter().enumerate() {
                sigs.push((ki, mi, key.sign(msg)));
            }
        }
        Fixture { keys, sigs }
    })
}

/// The signature with s replaced by n - s.
fn high_s(alg: Algorithm, sig: &[u8]) -> Vec<u8> {
    let len = ec_len(alg);
    let s = BigUint::from_bytes_be(&sig[len..]);
    [&sig[..len], &be_bytes(&(ec_order(alg) - s), len)].concat()
}

#[test]
fn valid_signatures_in_every_key_form() {
    let f = fixture();
    let mut compact = 0;
    for (ki, mi, sig) in &f.sigs {
        let key = &f.keys[*ki];
        for (form, dk) in &key.decoding {
            let what = format!("{} {form} valid", key.name);
            assert!(agree(key.alg, dk, MESSAGES[*mi], sig, &what), "{what}");
            compact += usize::from(*form == "compact");
        }
        // rust_crypto does not insist on low S: (r, n - s) verifies as well.
        let what = format!("{} high S", key.name);
        assert!(agree(
            key.alg,
            key.jwk(),
            MESSAGES[*mi],
            &high_s(key.alg, sig),
            &what
        ));
    }
    assert!(compact > 0, "some key has a compact encoding");
}

#[test]
fn mutated_signatures_and_messages() {
    let f = fixture();
    for (ki, mi, sig) in &f.sigs {
        let key = &f.keys[*ki];
        let alg = key.alg;
        let (form, dk) = &key.decoding[(ki + mi) % key.decoding.len()];
        let msg = MESSAGES[*mi];
        let what = |m: &str| format!("{} {form} msg {mi}: {m}", key.name);
        let k = sig.len();
        let len = k / 2;
        // Bit flips at both ends of r and of s.
        for pos in [0, len - 1, len, k - 1] {
            for bit in [0, 7] {
                let mut s = sig.clone();
                s[pos] ^= 1 << bit;
                let w = what(&format!("sig bit {pos}/{bit}"));
                assert!(!agree(alg, dk, msg, &s, &w), "{w}");
            }
        }
        if !msg.is_empty() {
            for pos in [0, msg.len() / 2, msg.len() - 1] {
                let mut m = msg.to_vec();
                m[pos] ^= 0x01;
                assert!(!agree(alg, dk, &m, sig, &what(&format!("msg byte {pos}"))));
            }
            assert!(!agree(alg, dk, &msg[1..], sig, &what("msg shortened")));
        }
        let mut longer = msg.to_vec();
        longer.push(b'.');
        assert!(!agree(alg, dk, &longer, sig, &what("msg extended")));
        // r and s swapped.
        let swapped = [&sig[len..], &sig[..len]].concat();
        assert!(!agree(alg, dk, msg, &swapped, &what("r and s swapped")));
        // Lengths: only exactly 2 * field length is read.
        for cut in [1, len, k] {
            assert!(!agree(alg, dk, msg, &sig[..k - cut], &what("truncated")));
            assert!(!agree(alg, dk, msg, &sig[cut..], &what("front cut")));
        }
        for extra in [&[0u8][..], &[0, 0], &sig[..len]] {
            let ext = [&sig[..], extra].concat();
            assert!(!agree(alg, dk, msg, &ext, &what("extended")));
            let pre = [extra, &sig[..]].concat();
            assert!(!agree(alg, dk, msg, &pre, &what("prefixed")));
        }
        // r and s each padded to one more byte (a common encoding mistake).
        let padded = [&[0u8][..], &sig[..len], &[0], &sig[len..]].concat();
        assert!(!agree(alg, dk, msg, &padded, &what("padded scalars")));
        // The DER encoding of the same signature is refused: JOSE wants raw r || s.
        let der = with_ref!(alg, |m| m::sign_der(&key.d, msg));
        assert!(!agree(alg, dk, msg, &der, &what("DER")));
        // The signature of the other curve's length.
        let other_len = if alg == Algorithm::ES256 { 96 } else { 64 };
        let mut other = sig.clone();
        other.resize(other_len, 0x11);
        assert!(!agree(alg, dk, msg, &other, &what("other curve's length")));
    }
}

/// r or s set to 0, 1, n - 1, n, n + 1, 2^(8 len) - 1 and the like, next to a valid other half.
#[test]
fn special_scalar_values() {
    let f = fixture();
    for (ki, mi, sig) in f.sigs.iter().filter(|s| s.1 == 0) {
        let key = &f.keys[*ki];
        let (alg, len) = (key.alg, ec_len(key.alg));
        let n = ec_order(alg);
        let p = ec_prime(alg);
        let all_ones = (BigUint::from(1u8) << (8 * len)) - 1u8;
        let r = BigUint::from_bytes_be(&sig[..len]);
        let s = BigUint::from_bytes_be(&sig[len..]);
        let values: Vec<(&str, BigUint)> = vec![
            ("0", BigUint::from(0u8)),
            ("1", BigUint::from(1u8)),
            ("n-1", &n - 1u8),
            ("n", n.clone()),
            ("n+1", &n + 1u8),
            ("p-1", &p - 1u8),
            ("p", p.clone()),
            ("2^8len-1", all_ones.clone()),
            ("r+n", &r + &n),
            ("s+n", &s + &n),
        ];
        for (name, v) in &values {
            if v > &all_ones {
                continue;
            }
            let v = be_bytes(v, len);
            let with_r = [&v[..], &sig[len..]].concat();
            let with_s = [&sig[..len], &v[..]].concat();
            let both = [&v[..], &v[..]].concat();
            for (which, bad) in [("r", with_r), ("s", with_s), ("r and s", both)] {
                for dk in [key.jwk(), &key.decoding[2].1] {
                    let what = format!("{} msg {mi}: {which} = {name}", key.name);
                    assert!(!agree(alg, dk, MESSAGES[*mi], &bad, &what), "{what}");
                }
            }
        }
    }
}

#[test]
fn signatures_under_other_keys_and_algorithms() {
    let f = fixture();
    for (ki, mi, sig) in f.sigs.iter().filter(|s| s.1 != 1) {
        let key = &f.keys[*ki];
        for (oi, other) in f.keys.iter().enumerate() {
            if oi == *ki {
                continue;
            }
            // Same curve: a valid key that does not match. Other curve: both providers refuse
            // the key in the factory (the lengths of the two curves' encodings never match),
            // with the same error kind.
            let dk = &other.decoding[oi % other.decoding.len()].1;
            let what = format!("{} sig under {}", key.name, other.name);
            assert!(!agree(key.alg, dk, MESSAGES[*mi], sig, &what), "{what}");
            assert!(!agree(other.alg, dk, MESSAGES[*mi], sig, &what), "{what}");
            let ours = (jwt_crypto::PROVIDER.verifier_factory)(&key.alg, dk).err();
            let theirs = (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.verifier_factory)(
                &key.alg, dk,
            )
            .err();
            assert_eq!(
                ours.map(|e| format!("{:?}", e.kind())),
                theirs.map(|e| format!("{:?}", e.kind())),
                "{what}"
            );
        }
        // The signature verified as another algorithm family with the same key bytes.
        for alg in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::HS256,
            Algorithm::EdDSA,
        ] {
            let what = format!("{} sig verified as {alg:?}", key.name);
            assert!(!agree(alg, key.jwk(), MESSAGES[*mi], sig, &what), "{what}");
        }
    }
}

/// A valid signature whose point R has an x coordinate of at least n, so that r = x - n:
/// verification must reduce x mod n (and must not accept the unreduced x as r). Found by
/// choosing R first and then the key: Q = (R - u1 G) / u2.
#[test]
fn x_coordinate_above_the_order() {
    let mut rng = StdRng::seed_from_u64(32);
    for alg in EC_ALGS {
        let (len, n) = (ec_len(alg), ec_order(alg));
        let msg = MESSAGES[0];
        let z = with_ref!(alg, |m| m::digest_scalar(msg));
        let mut found = 0;
        for t in 0u32..64 {
            let x = &n + t;
            let Some((rx, ry)) = with_ref!(alg, |m| m::lift_x(&be_bytes(&x, len))) else {
                continue;
            };
            let r = be_bytes(&BigUint::from(t), len);
            if t == 0 {
                // r = 0 is never a valid signature.
                continue;
            }
            let s = with_ref!(alg, |m| m::random_scalar(&mut rng));
            let (qx, qy) = with_ref!(alg, |m| m::key_for(&rx, &ry, &z, &r, &s));
            let key = DecodingKey::from_ec_der(&sec1_uncompressed(&qx, &qy));
            let sig = [r.clone(), s.clone()].concat();
            let what = format!("{alg:?} x = n + {t}");
            assert!(agree(alg, &key, msg, &sig, &what), "{what}");
            // The unreduced x is not below n, so it is no valid r.
            let unreduced = [be_bytes(&x, len), s.clone()].concat();
            assert!(!agree(alg, &key, msg, &unreduced, &what));
            // Same key, another message: refused.
            assert!(!agree(alg, &key, b"other", &sig, &what));
            found += 1;
            if found == 3 {
                break;
            }
        }
        assert!(found > 0, "{alg:?}: some x in [n, n + 64) is on the curve");
    }
}

/// u1 G + u2 Q is the point at infinity: rejected by both (rust_crypto compares r with the
/// identity's x, which it represents as 0).
#[test]
fn sum_at_infinity() {
    let mut rng = StdRng::seed_from_u64(33);
    for alg in EC_ALGS {
        for msg in MESSAGES {
            let z = with_ref!(alg, |m| m::digest_scalar(msg));
            let r = with_ref!(alg, |m| m::random_scalar(&mut rng));
            let s = with_ref!(alg, |m| m::random_scalar(&mut rng));
            let (qx, qy) = with_ref!(alg, |m| m::key_summing_to_identity(&z, &r));
            let key = DecodingKey::from_ec_der(&sec1_uncompressed(&qx, &qy));
            let sig = [r, s].concat();
            assert!(!agree(alg, &key, msg, &sig, &format!("{alg:?} identity")));
        }
    }
}

/// Signatures made with chosen nonces, including k = 1 (R = G) and k = n - 1 (R = -G), and keys
/// d = 1, so that the generator's and the key's multiples meet during the multiplication.
#[test]
fn chosen_nonces() {
    let f = fixture();
    let mut rng = StdRng::seed_from_u64(34);
    for key in &f.keys {
        let (alg, len, n) = (key.alg, ec_len(key.alg), ec_order(key.alg));
        let mut nonces = vec![
            be_bytes(&BigUint::from(1u8), len),
            be_bytes(&BigUint::from(2u8), len),
            be_bytes(&(&n - 1u8), len),
            key.d.clone(),
        ];
        nonces.push(with_ref!(alg, |m| m::random_scalar(&mut rng)));
        for (i, k) in nonces.iter().enumerate() {
            let msg = MESSAGES[i % MESSAGES.len()];
            let z = with_ref!(alg, |m| m::digest_scalar(msg));
            let sig = with_ref!(alg, |m| m::sign_with_nonce(&key.d, k, &z));
            if sig[len..].iter().all(|&b| b == 0) {
                continue;
            }
            let what = format!("{} nonce {i}", key.name);
            assert!(agree(alg, key.jwk(), msg, &sig, &what), "{what}");
            assert!(
                agree(alg, key.jwk(), msg, &high_s(alg, &sig), &what),
                "{what}"
            );
        }
    }
}
