//! Helpers shared by the integration tests: key material, signing, hand-made encodings, and
//! running one verification through both providers.
#![allow(dead_code)]

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use jwt_auth::crypto::PROVIDER;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The six RSA JWT algorithms.
pub const RSA_ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Whether `provider` accepts `sig` over `msg`: the factory, then `verify`, as
/// `jsonwebtoken::decode` does.
pub fn verify_with(
    provider: &CryptoProvider,
    alg: Algorithm,
    key: &DecodingKey,
    msg: &[u8],
    sig: &[u8],
) -> bool {
    match (provider.verifier_factory)(&alg, key) {
        Ok(v) => v.verify(msg, &sig.to_vec()).is_ok(),
        Err(_) => false,
    }
}

/// Verifies with both providers, asserts they agree, and returns the common verdict.
#[track_caller]
pub fn agree(alg: Algorithm, key: &DecodingKey, msg: &[u8], sig: &[u8], what: &str) -> bool {
    let ours = verify_with(&PROVIDER, alg, key, msg, sig);
    let theirs = verify_with(&RUST_CRYPTO, alg, key, msg, sig);
    assert_eq!(
        ours,
        theirs,
        "{what}: ours {ours}, rust_crypto {theirs} ({alg:?}, sig len {})",
        sig.len()
    );
    ours
}

/// An RSA key pair with its jsonwebtoken forms.
pub struct TestKey {
    pub name: String,
    pub private: RsaPrivateKey,
    pub encoding: EncodingKey,
    /// The same public key as JWK components, as DER, and as components with leading zeros.
    pub decoding: Vec<(&'static str, DecodingKey)>,
}

impl TestKey {
    pub fn new(name: impl Into<String>, private: RsaPrivateKey) -> Self {
        let der = private.to_pkcs1_der().expect("encodable key");
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let public = private.to_public_key();
        let (n, e) = (public.n().to_bytes_be(), public.e().to_bytes_be());
        let pub_der = public.to_pkcs1_der().expect("encodable key");
        let mut n0 = vec![0u8; 3];
        n0.extend_from_slice(&n);
        let mut e0 = vec![0u8; 5];
        e0.extend_from_slice(&e);
        let decoding = vec![
            ("jwk", DecodingKey::from_rsa_raw_components(&n, &e)),
            ("der", DecodingKey::from_rsa_der(pub_der.as_bytes())),
            ("jwk-zeros", DecodingKey::from_rsa_raw_components(&n0, &e0)),
        ];
        TestKey {
            name: name.into(),
            private,
            encoding,
            decoding,
        }
    }

    /// Modulus length in bytes.
    pub fn size(&self) -> usize {
        self.private.size()
    }

    pub fn n(&self) -> &BigUint {
        self.private.n()
    }

    /// The JWK-components decoding key.
    pub fn jwk(&self) -> &DecodingKey {
        &self.decoding[0].1
    }

    /// Signs with jsonwebtoken's rust_crypto signer; `None` where the key is too short for the
    /// algorithm.
    pub fn sign(&self, alg: Algorithm, msg: &[u8]) -> Option<Vec<u8>> {
        // rust_crypto's PSS signer panics (instead of failing) when the key is too short.
        let h = hash(alg, &[]).len();
        let fits = match alg {
            Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
                (self.n().bits() - 1).div_ceil(8) >= 2 * h + 2
            }
            _ => self.size() >= digest_info(alg).len() + h + 11,
        };
        if !fits {
            return None;
        }
        (RUST_CRYPTO.signer_factory)(&alg, &self.encoding)
            .and_then(|s| Ok(s.try_sign(msg)?))
            .ok()
    }

    /// The raw private operation on a `size()`-byte block, which must be below n.
    pub fn raw_sign(&self, em: &[u8]) -> Vec<u8> {
        let m = BigUint::from_bytes_be(em);
        assert!(&m < self.n(), "block must be below n");
        let s = m.modpow(self.private.d(), self.n());
        left_pad(&s.to_bytes_be(), self.size())
    }
}

/// A deterministic key (seeded RNG) of `bits` bits with public exponent `e`.
pub fn generate(bits: usize, e: u64, seed: u64) -> RsaPrivateKey {
    let mut rng = StdRng::seed_from_u64(seed);
    RsaPrivateKey::new_with_exp(&mut rng, bits, &BigUint::from(e)).expect("key generation")
}

/// The openssl-made keys in tests/data.
pub fn data_key(bits: u32) -> TestKey {
    let der: &[u8] = match bits {
        2048 => include_bytes!("../data/rsa2048.der"),
        2049 => include_bytes!("../data/rsa2049.der"),
        4096 => include_bytes!("../data/rsa4096.der"),
        _ => panic!("no such key"),
    };
    TestKey::new(
        format!("openssl-{bits}"),
        RsaPrivateKey::from_pkcs1_der(der).expect("valid key"),
    )
}

/// The keys the differential tests run on: openssl-made 2048, 2049 and 4096-bit keys plus
/// seeded ones of other sizes and exponents, generated in parallel.
pub fn test_keys() -> Vec<TestKey> {
    let specs: [(usize, u64); 7] = [
        (1024, 65537),
        (3072, 65537),
        (2056, 65537),
        (1025, 65537),
        (1536, 3),
        (1032, (1 << 33) - 1),
        (600, 65537),
    ];
    let generated: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(i, &(bits, e))| s.spawn(move || (bits, e, generate(bits, e, 1000 + i as u64))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("keygen thread"))
            .collect()
    });
    let mut keys = vec![data_key(2048), data_key(2049), data_key(4096)];
    for (bits, e, k) in generated {
        assert_eq!(k.n().bits(), bits);
        keys.push(TestKey::new(format!("gen-{bits}-e{e}"), k));
    }
    keys
}

pub fn left_pad(bytes: &[u8], len: usize) -> Vec<u8> {
    assert!(bytes.len() <= len);
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(bytes);
    out
}

/// Hash of the concatenated parts with the algorithm's hash.
pub fn hash(alg: Algorithm, parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut h = D::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().to_vec()
    }
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => run::<Sha256>(parts),
        Algorithm::RS384 | Algorithm::PS384 => run::<Sha384>(parts),
        _ => run::<Sha512>(parts),
    }
}

/// DigestInfo prefix for the algorithm's hash (RFC 8017 section 9.2, note 1).
pub fn digest_info(alg: Algorithm) -> Vec<u8> {
    let (len, id) = match alg {
        Algorithm::RS256 | Algorithm::PS256 => (0x20u8, 1u8),
        Algorithm::RS384 | Algorithm::PS384 => (0x30, 2),
        _ => (0x40, 3),
    };
    let mut v = vec![0x30, 0x11 + len, 0x30, 0x0d, 0x06, 0x09];
    v.extend_from_slice(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, id]);
    v.extend_from_slice(&[0x05, 0x00, 0x04, len]);
    v
}

/// EMSA-PKCS1-v1_5 block of `k` bytes: 00 01 FF.. 00 DigestInfo H.
pub fn pkcs1_block(alg: Algorithm, msg: &[u8], k: usize) -> Vec<u8> {
    let mut t = digest_info(alg);
    t.extend_from_slice(&hash(alg, &[msg]));
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(0xff, k - t.len() - 3));
    em.push(0);
    em.extend_from_slice(&t);
    em
}

/// MGF1 with the algorithm's hash.
pub fn mgf1(alg: Algorithm, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 0u32;
    while out.len() < len {
        out.extend_from_slice(&hash(alg, &[seed, &counter.to_be_bytes()]));
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS encoding (RFC 8017 section 9.1.1) of `msg` for a modulus of `mod_bits` bits, left
/// padded to the modulus byte length.
pub fn pss_block(alg: Algorithm, msg: &[u8], salt: &[u8], mod_bits: usize) -> Vec<u8> {
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let m_hash = hash(alg, &[msg]);
    let h = hash(alg, &[&[0u8; 8], &m_hash, salt]);
    let mut db = vec![0u8; em_len - salt.len() - h.len() - 2];
    db.push(0x01);
    db.extend_from_slice(salt);
    for (d, m) in db.iter_mut().zip(mgf1(alg, &h, em_len - h.len() - 1)) {
        *d ^= m;
    }
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let mut em = db;
    em.extend_from_slice(&h);
    em.push(0xbc);
    left_pad(&em, mod_bits.div_ceil(8))
}

/// Base64url without padding, as in JWTs.
pub fn b64url_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s.as_bytes() {
        acc = (acc << 6) | val(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
