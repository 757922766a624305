//! Random and adversarial inputs: nothing may panic (the tests run with overflow checks on), and
//! both providers must still agree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{agree, RSA_ALGS};
use jsonwebtoken::DecodingKey;
use jwt_crypto::bignum::Modulus;
use jwt_crypto::rsa::{HashAlg, RsaPublicKey};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.gen()).collect()
}

/// Random bytes of a random length below `max`.
fn random_len_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.gen_range(0..max);
    random_bytes(rng, len)
}

fn der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let mut body = v.to_vec();
        if body.first().is_some_and(|&b| b >= 0x80) {
            body.insert(0, 0);
        }
        let mut out = vec![0x02];
        push_len(&mut out, body.len());
        out.extend_from_slice(&body);
        out
    };
    let body = [int(n), int(e)].concat();
    let mut out = vec![0x30];
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

#[test]
fn random_keys_signatures_and_messages() {
    let mut rng = StdRng::seed_from_u64(21);
    let n_lens = [
        0usize, 1, 2, 3, 8, 9, 16, 33, 64, 65, 96, 127, 128, 129, 256, 257, 384, 512, 513,
    ];
    let exponents: [&[u8]; 8] = [
        &[],
        &[0],
        &[1],
        &[2],
        &[3],
        &[1, 0, 1],
        &[0, 0, 0, 3],
        &[0xff; 9],
    ];
    let mut accepted_keys = 0;
    for i in 0..2000 {
        let n_len = if i % 4 == 0 {
            rng.gen_range(0..530)
        } else {
            *n_lens.choose(&mut rng).expect("non-empty")
        };
        let mut n = random_bytes(&mut rng, n_len);
        if rng.gen_bool(0.8) {
            if let Some(last) = n.last_mut() {
                *last |= 1;
            }
        }
        if rng.gen_bool(0.1) {
            n.insert(0, 0);
        }
        let e: Vec<u8> = if rng.gen_bool(0.8) {
            exponents.choose(&mut rng).expect("non-empty").to_vec()
        } else {
            random_len_bytes(&mut rng, 10)
        };
        let key = match rng.gen_range(0..10) {
            0..=5 => DecodingKey::from_rsa_raw_components(&n, &e),
            6..=8 => DecodingKey::from_rsa_der(&der(&n, &e)),
            _ => DecodingKey::from_rsa_der(&random_bytes(&mut rng, n_len)),
        };
        let valid = RsaPublicKey::from_components(&n, &e).ok();
        accepted_keys += usize::from(valid.is_some());
        let k = valid.as_ref().map_or(n_len, RsaPublicKey::size);
        let alg = *RSA_ALGS.choose(&mut rng).expect("non-empty");
        let msg = random_len_bytes(&mut rng, 100);
        for _ in 0..2 {
            let sig_len = match rng.gen_range(0..8) {
                0 => 0,
                1 => k.saturating_sub(1),
                2 => k + 1,
                3 => rng.gen_range(0..600),
                _ => k,
            };
            let sig = match rng.gen_range(0..6) {
                0 => vec![0u8; sig_len],
                1 => vec![0xffu8; sig_len],
                _ => random_bytes(&mut rng, sig_len),
            };
            assert!(!agree(alg, &key, &msg, &sig, &format!("fuzz {i}")));
        }
    }
    assert!(accepted_keys > 400, "{accepted_keys}");
}

#[test]
fn direct_api_with_bad_arguments() {
    let mut rng = StdRng::seed_from_u64(22);
    let key = RsaPublicKey::from_components(&[0xc5; 256], &[1, 0, 1]).expect("valid");
    for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        for hashed_len in [0, 1, 31, 32, 33, 48, 64, 65, 1000] {
            let hashed = random_bytes(&mut rng, hashed_len);
            for sig_len in [0, 1, 255, 256, 257] {
                let sig = random_bytes(&mut rng, sig_len);
                assert!(key.verify_pkcs1v15(hash, &hashed, &sig).is_err());
                assert!(key.verify_pss(hash, &hashed, &sig).is_err());
            }
        }
    }
    for _ in 0..2000 {
        let bytes = random_len_bytes(&mut rng, 40);
        let _ = RsaPublicKey::from_pkcs1_der(&bytes);
        if let Some(m) = Modulus::from_be_bytes(&bytes) {
            let l = m.limbs();
            let base: Vec<u32> = (0..l).map(|_| rng.gen()).collect();
            let mut out = vec![0u32; l];
            assert!(m.pow_mod(&base, rng.gen(), &mut out).is_some());
            assert!(m.cmp_limbs(&out).is_lt());
            assert!(m.pow_mod(&base[1..], 3, &mut out).is_none());
            assert!(m.pow_mod(&base, 3, &mut out[1..]).is_none());
        }
    }
}
