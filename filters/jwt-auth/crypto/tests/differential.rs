//! Differential tests: every verification goes through this crate's provider and jsonwebtoken's
//! rust_crypto one, and the two must agree, on valid tokens and on many ways of breaking them,
//! except where ours is stricter on purpose (a PSS signature not below the modulus), which is
//! asserted as such.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::OnceLock;

use common::*;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::Algorithm;
use jwt_crypto::PROVIDER;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsa::BigUint;

const MESSAGES: [&[u8]; 3] = [
    b"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ",
    b"",
    &[0xa5; 300],
];

struct Fixture {
    keys: Vec<TestKey>,
    /// (key index, algorithm, message index, signature) for every combination rust_crypto can
    /// sign; combinations whose key is too short for the algorithm are absent.
    sigs: Vec<(usize, Algorithm, usize, Vec<u8>)>,
}

/// Keys and signatures, made once per test binary and shared by the tests (which run in
/// parallel).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = test_keys();
        let mut sigs = Vec::new();
        for (ki, key) in keys.iter().enumerate() {
            for alg in RSA_ALGS {
                for (mi, msg) in MESSAGES.iter().enumerate() {
                    if let Some(sig) = key.sign(alg, msg) {
                        sigs.push((ki, alg, mi, sig));
                    }
                }
            }
        }
        Fixture { keys, sigs }
    })
}

fn is_pss(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512)
}

fn h_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => 32,
        Algorithm::RS384 | Algorithm::PS384 => 48,
        _ => 64,
    }
}

#[test]
fn valid_signatures_in_every_key_form() {
    let f = fixture();
    // Every key must sign RS256 and PS256; the short keys cannot do the larger hashes.
    assert!(f.sigs.len() >= f.keys.len() * 2 * MESSAGES.len());
    for (ki, alg, mi, sig) in &f.sigs {
        let key = &f.keys[*ki];
        for (form, dk) in &key.decoding {
            let what = format!("{} {form} valid", key.name);
            assert!(agree(*alg, dk, MESSAGES[*mi], sig, &what), "{what}");
        }
    }
}

#[test]
fn mutated_signatures_and_messages() {
    let f = fixture();
    for (ki, alg, mi, sig) in &f.sigs {
        let key = &f.keys[*ki];
        // Alternate the key form to cover both without doubling the run time.
        let (form, dk) = &key.decoding[(ki + mi) % 2];
        let msg = MESSAGES[*mi];
        let what = |m: &str| format!("{} {form} {alg:?} msg {mi}: {m}", key.name);
        let k = sig.len();
        for (pos, bit) in [(0, 0), (0, 7), (1, 3), (k / 2, 5), (k - 1, 0), (k - 1, 7)] {
            let mut s = sig.clone();
            s[pos] ^= 1 << bit;
            assert!(!agree(
                *alg,
                dk,
                msg,
                &s,
                &what(&format!("sig bit {pos}/{bit}"))
            ));
        }
        if !msg.is_empty() {
            for pos in [0, msg.len() / 2, msg.len() - 1] {
                let mut m = msg.to_vec();
                m[pos] ^= 0x20;
                assert!(!agree(*alg, dk, &m, sig, &what(&format!("msg byte {pos}"))));
            }
            assert!(!agree(*alg, dk, &msg[1..], sig, &what("msg shortened")));
        }
        let mut longer = msg.to_vec();
        longer.push(b'.');
        assert!(!agree(*alg, dk, &longer, sig, &what("msg extended")));
        // Wrong lengths: rejected before any arithmetic, by both.
        assert!(!agree(*alg, dk, msg, &sig[..k - 1], &what("sig truncated")));
        assert!(!agree(
            *alg,
            dk,
            msg,
            &sig[1..],
            &what("sig without first byte")
        ));
        let mut ext = sig.clone();
        ext.push(0);
        assert!(!agree(*alg, dk, msg, &ext, &what("sig extended")));
        let mut pre = vec![0u8];
        pre.extend_from_slice(sig);
        assert!(!agree(*alg, dk, msg, &pre, &what("sig with leading zero")));
        assert!(!agree(*alg, dk, msg, &[], &what("empty sig")));
    }
}

#[test]
fn special_signature_values() {
    let f = fixture();
    let mut malleated_pss = 0;
    for (ki, key) in f.keys.iter().enumerate() {
        let k = key.size();
        let n = key.n();
        let values: Vec<(String, BigUint)> = vec![
            ("0".into(), BigUint::from(0u8)),
            ("1".into(), BigUint::from(1u8)),
            ("2".into(), BigUint::from(2u8)),
            ("n-1".into(), n - 1u8),
            ("n".into(), n.clone()),
            ("n+1".into(), n + 1u8),
            ("2^8k-1".into(), (BigUint::from(1u8) << (8 * k)) - 1u8),
        ];
        let limit = BigUint::from(1u8) << (8 * k);
        for alg in RSA_ALGS {
            let Some((_, _, _, sig)) = f.sigs.iter().find(|s| s.0 == ki && s.1 == alg && s.2 == 0)
            else {
                continue;
            };
            // A valid signature plus multiples of n, where they still fit in k bytes.
            let s = BigUint::from_bytes_be(sig);
            let mut plus = s + n;
            let mut multiple = 1;
            while plus < limit && multiple <= 3 {
                let bytes = left_pad(&plus.to_bytes_be(), k);
                for (form, dk) in &key.decoding[..2] {
                    let what = format!("{} {form} {alg:?} sig + {multiple}n", key.name);
                    // rsa 0.9's Pss scheme skips the "s < n" check that PKCS#1 v1.5 has, so
                    // rust_crypto lets PS* signatures be malleated; ours (and Envoy) refuse.
                    let ours = verify_with(&PROVIDER, alg, dk, MESSAGES[0], &bytes);
                    let theirs = verify_with(&RUST_CRYPTO, alg, dk, MESSAGES[0], &bytes);
                    assert_eq!((ours, theirs), (false, is_pss(alg)), "{what}");
                    malleated_pss += usize::from(is_pss(alg));
                    // The unmodified signature still verifies with both.
                    assert!(agree(alg, dk, MESSAGES[0], sig, &what));
                }
                plus += n;
                multiple += 1;
            }
            for (name, v) in &values {
                if v >= &limit {
                    continue;
                }
                let bytes = left_pad(&v.to_bytes_be(), k);
                let what = format!("{} {alg:?} sig = {name}", key.name);
                assert!(!agree(alg, key.jwk(), MESSAGES[0], &bytes, &what));
            }
        }
    }
    // PS256/384/512 on the keys whose top byte leaves room for s + n (2049 bits, ...).
    assert!(malleated_pss >= 6, "{malleated_pss}");
}

#[test]
fn signatures_under_other_algorithms_and_keys() {
    let f = fixture();
    for (ki, alg, mi, sig) in f.sigs.iter().filter(|s| s.2 == 0) {
        let key = &f.keys[*ki];
        // PKCS#1 v1.5 vs PSS and the other hashes.
        for other in RSA_ALGS {
            let what = format!("{} signed {alg:?} verified {other:?}", key.name);
            let accepted = agree(other, key.jwk(), MESSAGES[*mi], sig, &what);
            assert_eq!(accepted, other == *alg, "{what}");
        }
        // Every other key, in both forms.
        for (oi, other_key) in f.keys.iter().enumerate() {
            if oi != *ki {
                let dk = &other_key.decoding[oi % 2].1;
                let what = format!("{} sig under {}", key.name, other_key.name);
                assert!(!agree(*alg, dk, MESSAGES[*mi], sig, &what));
            }
        }
    }
}

/// Hand-made PKCS#1 v1.5 blocks signed with the raw private operation.
#[test]
fn crafted_pkcs1_encodings() {
    let f = fixture();
    let msg = MESSAGES[0];
    for key in &f.keys {
        let k = key.size();
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
            let t_len = digest_info(alg).len() + h_len(alg);
            if k < t_len + 11 {
                // Too short for this hash: any block is rejected by both.
                let em = left_pad(&[1, 2, 3], k);
                let sig = key.raw_sign(&em);
                assert!(!agree(alg, key.jwk(), msg, &sig, "short key"));
                continue;
            }
            let good = pkcs1_block(alg, msg, k);
            let what = |m: &str| format!("{} {alg:?}: {m}", key.name);
            assert!(agree(
                alg,
                key.jwk(),
                msg,
                &key.raw_sign(&good),
                &what("raw good")
            ));
            let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
            let mut em = good.clone();
            em[1] = 0x02;
            cases.push(("block type 2", em));
            let mut em = good.clone();
            em[1] = 0x00;
            cases.push(("block type 0", em));
            let mut em = good.clone();
            em[5] = 0xfe;
            cases.push(("PS byte not ff", em));
            let mut em = good.clone();
            em[2] = 0x00;
            cases.push(("PS starts with 00", em));
            let sep = k - t_len - 1;
            let mut em = good.clone();
            em[sep] = 0x01;
            cases.push(("separator 01", em));
            let mut em = good.clone();
            em[sep - 1] = 0x00;
            cases.push(("separator one byte early", em));
            // DigestInfo of another hash, the right hash value.
            let other = if alg == Algorithm::RS256 {
                Algorithm::RS384
            } else {
                Algorithm::RS256
            };
            let mut em = good.clone();
            let di = digest_info(other);
            let start = k - t_len;
            em[start + 2..start + 15].copy_from_slice(&di[2..15]);
            cases.push(("other hash OID", em));
            // DigestInfo without the NULL parameters, with a longer PS to keep the length.
            let mut no_null = vec![0x30, (0x11 + h_len(alg) - 2) as u8, 0x30, 0x0b];
            no_null.extend_from_slice(&digest_info(alg)[4..15]);
            no_null.extend_from_slice(&[0x04, h_len(alg) as u8]);
            no_null.extend_from_slice(&hash(alg, &[msg]));
            let mut em = vec![0x00, 0x01];
            em.extend(std::iter::repeat_n(0xff, k - no_null.len() - 3));
            em.push(0);
            em.extend_from_slice(&no_null);
            cases.push(("DigestInfo without NULL", em));
            // Bare hash without DigestInfo.
            let mut em = vec![0x00, 0x01];
            em.extend(std::iter::repeat_n(0xff, k - h_len(alg) - 3));
            em.push(0);
            em.extend_from_slice(&hash(alg, &[msg]));
            cases.push(("bare hash", em));
            // Hash of another message.
            cases.push(("other message", pkcs1_block(alg, b"other", k)));
            // Trailing garbage after a shifted block.
            let mut em = good[1..].to_vec();
            em.push(0x00);
            cases.push(("shifted", em));
            for (name, em) in cases {
                if BigUint::from_bytes_be(&em) >= *key.n() {
                    continue;
                }
                let sig = key.raw_sign(&em);
                assert!(
                    !agree(alg, key.jwk(), msg, &sig, &what(name)),
                    "{}",
                    what(name)
                );
            }
        }
    }
}

/// Hand-made PSS blocks signed with the raw private operation.
#[test]
fn crafted_pss_encodings() {
    let f = fixture();
    let msg = MESSAGES[0];
    let mut rng = StdRng::seed_from_u64(7);
    for key in &f.keys {
        let k = key.size();
        let bits = key.n().bits();
        let em_len = (bits - 1).div_ceil(8);
        for alg in [Algorithm::PS256, Algorithm::PS384, Algorithm::PS512] {
            let h = h_len(alg);
            let what = |m: &str| format!("{} ({bits} bits) {alg:?}: {m}", key.name);
            if em_len < 2 * h + 2 {
                let sig = key.raw_sign(&left_pad(&[0xbc], k));
                assert!(!agree(alg, key.jwk(), msg, &sig, &what("short key")));
                continue;
            }
            let salt: Vec<u8> = (0..em_len).map(|_| rng.gen()).collect();
            let good = pss_block(alg, msg, &salt[..h], bits);
            assert!(agree(
                alg,
                key.jwk(),
                msg,
                &key.raw_sign(&good),
                &what("raw good")
            ));
            // Only a salt as long as the hash is accepted (no salt-length detection).
            for s_len in [0, 1, h - 1, h + 1, em_len - h - 2] {
                let em = pss_block(alg, msg, &salt[..s_len], bits);
                let sig = key.raw_sign(&em);
                let name = format!("salt length {s_len}");
                assert!(!agree(alg, key.jwk(), msg, &sig, &what(&name)), "{name}");
            }
            let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
            let mut em = good.clone();
            em[k - 1] = 0xbd;
            cases.push(("trailer bd", em));
            let mut em = good.clone();
            em[k - 2] ^= 1;
            cases.push(("H changed", em));
            let mut em = good.clone();
            em[k - em_len + 3] ^= 0x10;
            cases.push(("maskedDB changed", em));
            // The unused top bits of maskedDB set (when there are any).
            let unused = 8 * em_len - (bits - 1);
            if unused > 0 {
                let mut em = good.clone();
                em[k - em_len] |= 0x80;
                cases.push(("top unused bit set", em));
            }
            // MGF1 over a different hash.
            let mgf_other = if alg == Algorithm::PS256 {
                Algorithm::PS384
            } else {
                Algorithm::PS256
            };
            let mut em = good.clone();
            let hh = em[k - 1 - h..k - 1].to_vec();
            let start = k - em_len;
            let db_len = em_len - h - 1;
            let m1 = mgf1(alg, &hh, db_len);
            let m2 = mgf1(mgf_other, &hh, db_len);
            for i in 0..db_len {
                em[start + i] ^= m1[i] ^ m2[i];
            }
            em[start] &= 0xff >> unused;
            cases.push(("MGF1 with another hash", em));
            cases.push(("other message", pss_block(alg, b"other", &salt[..h], bits)));
            for (name, em) in cases {
                if BigUint::from_bytes_be(&em) >= *key.n() {
                    continue;
                }
                let sig = key.raw_sign(&em);
                assert!(
                    !agree(alg, key.jwk(), msg, &sig, &what(name)),
                    "{}",
                    what(name)
                );
            }
            // When bits(n) % 8 == 1 the block is one byte shorter than the modulus, and rsa 0.9
            // drops the leading byte of the recovered value without checking it; RFC 8017 (and
            // so ours, as Envoy) rejects it when it is not zero. Such a value is below n when n's
            // top byte is 1 and the rest is small enough: search for a salt that gives one.
            if unused == 0 && em_len < k {
                let mut found = false;
                for _ in 0..64 {
                    let salt: Vec<u8> = (0..h).map(|_| rng.gen()).collect();
                    let mut em = pss_block(alg, msg, &salt, bits);
                    em[0] = 1;
                    if BigUint::from_bytes_be(&em) < *key.n() {
                        let sig = key.raw_sign(&em);
                        let what = what("leading byte 1");
                        let ours = verify_with(&PROVIDER, alg, key.jwk(), msg, &sig);
                        let theirs = verify_with(&RUST_CRYPTO, alg, key.jwk(), msg, &sig);
                        assert_eq!((ours, theirs), (false, true), "{what}");
                        found = true;
                        break;
                    }
                }
                assert!(found, "{}", what("no salt found"));
            }
        }
    }
}

/// Where rust_crypto cannot sign (key too short for the hash), random signatures of the right
/// length are rejected by both.
#[test]
fn short_keys_reject_everything() {
    let f = fixture();
    let mut rng = StdRng::seed_from_u64(9);
    let mut checked = 0;
    for (ki, key) in f.keys.iter().enumerate() {
        for alg in RSA_ALGS {
            if f.sigs.iter().any(|s| s.0 == ki && s.1 == alg) {
                continue;
            }
            for _ in 0..4 {
                let mut sig = vec![0u8; key.size()];
                rng.fill(&mut sig[..]);
                sig[0] = 0;
                assert!(!agree(alg, key.jwk(), MESSAGES[0], &sig, &key.name));
                checked += 1;
            }
        }
    }
    assert!(
        checked > 0,
        "the fixture has keys too short for some algorithms"
    );
}
