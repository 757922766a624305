//! Random and adversarial ES256/ES384 inputs: nothing may panic (the tests run with overflow
//! checks on) and both providers must agree. Also the direct API's prehash semantics
//! (`bits2field`: truncation, padding, minimum length) against the reference `PrehashVerifier`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use jsonwebtoken::{Algorithm, DecodingKey};
use jwt_crypto::ecdsa::{EcVerifyError, EcdsaCurve, EcdsaPublicKey};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rsa::BigUint;
use sha2::{Digest, Sha256, Sha384, Sha512};

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.gen()).collect()
}

fn curve(alg: Algorithm) -> EcdsaCurve {
    EcdsaCurve::from_algorithm(alg).expect("ECDSA algorithm")
}

/// A scalar-sized value near a boundary, or random.
fn scalar_like(rng: &mut StdRng, alg: Algorithm) -> Vec<u8> {
    let len = ec_len(alg);
    let n = ec_order(alg);
    let v = match rng.gen_range(0..8) {
        0 => BigUint::from(0u8),
        1 => BigUint::from(rng.gen_range(1u32..4)),
        2 => &n - rng.gen_range(1u32..4),
        3 => &n + rng.gen_range(0u32..4),
        4 => (BigUint::from(1u8) << (8 * len)) - 1u8,
        _ => return random_bytes(rng, len),
    };
    be_bytes(&v, len)
}

#[test]
fn random_keys_signatures_and_messages() {
    let mut rng = StdRng::seed_from_u64(51);
    let mut pool: Vec<EcTestKey> = Vec::new();
    for alg in EC_ALGS {
        for i in 0..3 {
            pool.push(EcTestKey::random(format!("{alg:?} {i}"), alg, &mut rng));
        }
    }
    // Signing is slow in the reference (tens of milliseconds for P-384): sign a few messages
    // up front.
    let messages: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(&mut rng, 20 * i)).collect();
    let signed: Vec<Vec<Vec<u8>>> = pool
        .iter()
        .map(|k| messages.iter().map(|m| k.sign(m)).collect())
        .collect();
    // rust_crypto's P-384 takes milliseconds per verification even optimised: keep the number
    // of full verifications (valid key, r and s in range) within a few seconds.
    let (mut full, mut accepted) = ([0usize; 2], 0);
    for i in 0..3000 {
        let alg = if rng.gen_bool(0.25) {
            Algorithm::ES384
        } else {
            Algorithm::ES256
        };
        let len = ec_len(alg);
        let ki = 3 * usize::from(alg == Algorithm::ES384) + rng.gen_range(0..3);
        let key = &pool[ki];
        let mi = rng.gen_range(0..messages.len());
        let mut msg = messages[mi].clone();
        if rng.gen_bool(0.1) {
            msg.push(b'x');
        }
        let key_bytes = match rng.gen_range(0..10) {
            0..=3 => key.sec1(),
            4 => sec1_compressed(&key.x, &key.y),
            5 => {
                let mut b = key.sec1();
                let pos = rng.gen_range(0..b.len());
                b[pos] ^= 1 << rng.gen_range(0..8);
                b
            }
            6 => {
                let tag = *[0u8, 2, 3, 4, 5].choose(&mut rng).expect("non-empty");
                let body = if tag == 4 {
                    2 * len
                } else if tag == 0 {
                    0
                } else {
                    len
                };
                [vec![tag], random_bytes(&mut rng, body)].concat()
            }
            7 => [vec![5u8], key.x.clone()].concat(),
            _ => {
                let l = rng.gen_range(0..2 * len + 4);
                random_bytes(&mut rng, l)
            }
        };
        let dk = DecodingKey::from_ec_der(&key_bytes);
        // (Asking the reference: our preparation builds the key's table, which is slow
        // unoptimised.)
        let valid_key = with_ref!(alg, |m| m::canonical_sec1(&key_bytes)).is_some();
        let sig = match rng.gen_range(0..10) {
            0 => {
                let l = rng.gen_range(0..3 * len);
                random_bytes(&mut rng, l)
            }
            1 | 2 => [scalar_like(&mut rng, alg), scalar_like(&mut rng, alg)].concat(),
            3 | 4 => {
                // A valid signature (unless the message was extended), maybe mutated.
                let mut s = signed[ki][mi].clone();
                if rng.gen_bool(0.5) {
                    let pos = rng.gen_range(0..s.len());
                    s[pos] ^= 1 << rng.gen_range(0..8);
                }
                s
            }
            _ => random_bytes(&mut rng, 2 * len),
        };
        let in_range = sig.len() == 2 * len && {
            let n = ec_order(alg);
            let r = BigUint::from_bytes_be(&sig[..len]);
            let s = BigUint::from_bytes_be(&sig[len..]);
            r > BigUint::from(0u8) && r < n && s > BigUint::from(0u8) && s < n
        };
        let idx = usize::from(alg == Algorithm::ES384);
        if valid_key && in_range {
            if full[idx] >= [400, 60][idx] {
                continue;
            }
            full[idx] += 1;
        }
        accepted += usize::from(agree(alg, &dk, &msg, &sig, &format!("fuzz {i}")));
    }
    assert!(full[0] >= 200 && full[1] >= 30, "{full:?}");
    assert!(accepted > 30, "{accepted}");
}

#[test]
fn direct_api_never_panics() {
    let mut rng = StdRng::seed_from_u64(52);
    let key = EcTestKey::random("p256", Algorithm::ES256, &mut rng);
    let prepared = EcdsaPublicKey::from_sec1(EcdsaCurve::P256, &key.sec1()).expect("valid");
    for _ in 0..3000 {
        let len = rng.gen_range(0..120);
        let mut bytes = random_bytes(&mut rng, len);
        if let Some(first) = bytes.first_mut() {
            *first = *[0u8, 2, 3, 4, 5, 6].choose(&mut rng).expect("non-empty");
        }
        for c in [EcdsaCurve::P256, EcdsaCurve::P384] {
            let _ = EcdsaPublicKey::from_sec1(c, &bytes);
        }
        let sig_len = rng.gen_range(0..140);
        let sig = random_bytes(&mut rng, sig_len);
        let _ = prepared.verify(&bytes, &sig);
        let _ = prepared.verify_prehash(&bytes, &sig);
    }
    // Lengths are checked before anything else.
    assert_eq!(
        prepared.verify(b"m", &[1; 63]),
        Err(EcVerifyError::SignatureLength)
    );
    assert_eq!(
        prepared.verify(b"m", &[0; 64]),
        Err(EcVerifyError::ScalarOutOfRange)
    );
    assert_eq!(
        prepared.verify(b"m", &[0xff; 64]),
        Err(EcVerifyError::ScalarOutOfRange)
    );
    assert_eq!(
        prepared.verify_prehash(&[1; 15], &[1; 64]),
        Err(EcVerifyError::PrehashTooShort)
    );
    assert_eq!(
        prepared.verify(b"m", &[1; 64]),
        Err(EcVerifyError::Mismatch)
    );
}

/// Our `verify_prehash` against the reference `PrehashVerifier` for one signature.
#[track_caller]
fn check_prehash(key: &EcTestKey, prehash: &[u8], sig: &[u8], what: &str) -> bool {
    let ours = EcdsaPublicKey::from_sec1(curve(key.alg), &key.sec1())
        .expect("valid key")
        .verify_prehash(prehash, sig)
        .is_ok();
    let theirs = with_ref!(key.alg, |m| m::verify_prehash(&key.sec1(), prehash, sig));
    assert_eq!(ours, theirs, "{what}: prehash of {} bytes", prehash.len());
    ours
}

#[test]
fn prehash_lengths_and_mismatched_hashes() {
    let mut rng = StdRng::seed_from_u64(53);
    for alg in EC_ALGS {
        let len = ec_len(alg);
        let key = EcTestKey::random(format!("{alg:?}"), alg, &mut rng);
        let lengths = [
            0,
            1,
            len / 2 - 1,
            len / 2,
            len / 2 + 1,
            len - 1,
            len,
            len + 1,
            2 * len,
        ];
        for l in lengths {
            let prehash = random_bytes(&mut rng, l);
            let random_sig = random_bytes(&mut rng, 2 * len);
            assert!(!check_prehash(&key, &prehash, &random_sig, "random sig"));
            if l < len / 2 {
                // Too short for bits2field: refused whatever the signature.
                continue;
            }
            let sig = with_ref!(alg, |m| m::sign_prehash(&key.d, &prehash));
            assert!(check_prehash(&key, &prehash, &sig, "valid"));
            // Only the leading field-length bytes count: a change past them keeps it valid.
            let mut changed = prehash.clone();
            changed[l - 1] ^= 1;
            let still_valid = check_prehash(&key, &changed, &sig, "last byte changed");
            assert_eq!(still_valid, l > len);
            // A shorter prehash is a smaller number, not a prefix: with a zero byte put in
            // front it is the same number.
            if l < len {
                let front = [&[0u8][..], &prehash].concat();
                assert!(check_prehash(&key, &front, &sig, "zero in front"));
            }
        }
        // The other hashes of a message, as a caller mixing up algorithms would pass them.
        let msg = b"header.payload";
        for digest in [
            Sha256::digest(msg).to_vec(),
            Sha384::digest(msg).to_vec(),
            Sha512::digest(msg).to_vec(),
        ] {
            let sig = with_ref!(alg, |m| m::sign_prehash(&key.d, &digest));
            assert!(check_prehash(&key, &digest, &sig, "other hash"));
            let right_hash = key.sign(msg);
            check_prehash(&key, &digest, &right_hash, "the curve's hash's signature");
        }
    }
}

/// With the key Q = G (private scalar 1) and z chosen equal to r, u1 = u2: the generator's and
/// the key's table points coincide during the multiplication (the doubling case of the
/// addition); with z = -r, u1 G + u2 Q is the point at infinity.
#[test]
fn prehash_scalars_that_meet() {
    let mut rng = StdRng::seed_from_u64(54);
    for alg in EC_ALGS {
        let len = ec_len(alg);
        let n = ec_order(alg);
        let one = be_bytes(&BigUint::from(1u8), len);
        let key = EcTestKey::from_scalar("d=1", alg, &one);
        for _ in 0..4 {
            let k = with_ref!(alg, |m| m::random_scalar(&mut rng));
            let r = with_ref!(alg, |m| m::sign_with_nonce(&one, &k, &one))[..len].to_vec();
            let sig = with_ref!(alg, |m| m::sign_with_nonce(&one, &k, &r));
            assert!(check_prehash(&key, &r, &sig, "z = r"));
            let neg_r = be_bytes(&(&n - BigUint::from_bytes_be(&r)), len);
            let sig = with_ref!(alg, |m| m::sign_with_nonce(&one, &k, &neg_r));
            assert!(!check_prehash(&key, &neg_r, &sig, "z = -r"));
            // z = r + n (as a prehash: reduced mod n once) is the same scalar as z = r.
            let r_plus_n = BigUint::from_bytes_be(&r) + &n;
            if r_plus_n < BigUint::from(1u8) << (8 * len) {
                let sig = with_ref!(alg, |m| m::sign_with_nonce(&one, &k, &r));
                assert!(check_prehash(
                    &key,
                    &be_bytes(&r_plus_n, len),
                    &sig,
                    "z = r + n"
                ));
            }
        }
    }
}
