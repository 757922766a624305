//! Known-answer tests: tokens signed by openssl 3.0 (independently of the `rsa` crate) over
//! keys in tests/data, including PSS salt lengths and DigestInfo variants that must be refused,
//! and an 8192-bit key that our limit accepts and rust_crypto's refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::str::FromStr;

use common::{agree, b64url_decode, hash, verify_with};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::{Algorithm, DecodingKey};
use jwt_crypto::rsa::{HashAlg, Padding, RsaPublicKey};
use jwt_crypto::PROVIDER;
use rsa::{BigUint, Pkcs1v15Sign, Pss};
use sha2::{Sha256, Sha384, Sha512};

fn public_der(bits: &str) -> &'static [u8] {
    match bits {
        "2048" => include_bytes!("data/rsa2048_pub.der"),
        "2049" => include_bytes!("data/rsa2049_pub.der"),
        "4096" => include_bytes!("data/rsa4096_pub.der"),
        "8192" => include_bytes!("data/rsa8192_pub.der"),
        _ => panic!("unknown key {bits}"),
    }
}

/// Our verifier and the rsa crate's, both with an 8192-bit modulus limit.
fn direct(alg: Algorithm, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (padding, h) = match alg {
        Algorithm::RS256 => (Padding::Pkcs1v15, HashAlg::Sha256),
        Algorithm::RS384 => (Padding::Pkcs1v15, HashAlg::Sha384),
        Algorithm::RS512 => (Padding::Pkcs1v15, HashAlg::Sha512),
        Algorithm::PS256 => (Padding::Pss, HashAlg::Sha256),
        Algorithm::PS384 => (Padding::Pss, HashAlg::Sha384),
        _ => (Padding::Pss, HashAlg::Sha512),
    };
    let ours = RsaPublicKey::from_components_with_max_bits(n, e, 8192)
        .is_ok_and(|k| k.verify(padding, h, msg, sig).is_ok());
    let key = rsa::RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(n),
        BigUint::from_bytes_be(e),
        8192,
    )
    .expect("valid key");
    let hashed = hash(alg, &[msg]);
    let theirs = match alg {
        Algorithm::RS256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, sig),
        Algorithm::RS384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &hashed, sig),
        Algorithm::RS512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &hashed, sig),
        Algorithm::PS256 => key.verify(Pss::new::<Sha256>(), &hashed, sig),
        Algorithm::PS384 => key.verify(Pss::new::<Sha384>(), &hashed, sig),
        _ => key.verify(Pss::new::<Sha512>(), &hashed, sig),
    }
    .is_ok();
    assert_eq!(ours, theirs, "direct verification with an 8192-bit limit");
    ours
}

#[test]
fn openssl_tokens() {
    let mut count = (0, 0);
    for line in include_str!("data/openssl_tokens.txt").lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let [bits, alg, expect, token] = fields[..] else {
            panic!("bad line {line}");
        };
        let alg = Algorithm::from_str(alg).expect("algorithm");
        let (msg, sig) = token.rsplit_once('.').expect("three parts");
        let sig = b64url_decode(sig);
        let der = public_der(bits);
        let (n, e) = (RUST_CRYPTO.key_utils.rsa_pub_components_from_public_key)(der)
            .or_else(|_| parse_pkcs1(der))
            .expect("key");
        let keys = [
            DecodingKey::from_rsa_der(der),
            DecodingKey::from_rsa_raw_components(&n, &e),
        ];
        // The 8192-bit tokens are genuine; rust_crypto's 4096-bit modulus limit refuses them,
        // ours (Envoy's 8192) does not.
        let direct_expect = expect == "accept" || bits == "8192";
        for key in &keys {
            if bits == "8192" {
                let ours = verify_with(&PROVIDER, alg, key, msg.as_bytes(), &sig);
                let theirs = verify_with(&RUST_CRYPTO, alg, key, msg.as_bytes(), &sig);
                assert_eq!((ours, theirs), (direct_expect, false), "{line}");
            } else {
                let accepted = agree(alg, key, msg.as_bytes(), &sig, line);
                assert_eq!(accepted, expect == "accept", "{line}");
            }
        }
        assert_eq!(
            direct(alg, &n, &e, msg.as_bytes(), &sig),
            direct_expect,
            "{line}"
        );
        if expect == "accept" {
            count.0 += 1;
        } else {
            count.1 += 1;
        }
    }
    assert_eq!(count, (19, 13));
}

/// rust_crypto refuses to parse keys above 4096 bits, so read the 8192-bit one by hand: a
/// SEQUENCE with a two-byte long-form length holding two INTEGERs.
fn parse_pkcs1(der: &[u8]) -> jsonwebtoken::errors::Result<(Vec<u8>, Vec<u8>)> {
    let int = |d: &[u8]| -> (Vec<u8>, usize) {
        assert_eq!(d[0], 0x02);
        let (len, hdr) = match d[1] {
            0x82 => ((usize::from(d[2]) << 8) | usize::from(d[3]), 4),
            0x81 => (usize::from(d[2]), 3),
            l => (usize::from(l), 2),
        };
        let v = d[hdr..hdr + len].to_vec();
        (v, hdr + len)
    };
    assert_eq!(&der[..2], &[0x30, 0x82]);
    let (n, used) = int(&der[4..]);
    let (e, _) = int(&der[4 + used..]);
    Ok((n, e))
}
