//! Helpers shared by the integration tests: key material, signing, hand-made encodings, and
//! running one verification through both providers.
#![allow(dead_code)]

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use jwt_crypto::PROVIDER;
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

// ---------------------------------------------------------------------------------------------
// ECDSA (ES256, ES384): keys and crafted signatures made with the p256 / p384 crates.

/// The two ECDSA JWT algorithms.
pub const EC_ALGS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::ES384];

/// Curve arithmetic of the reference crates, the same functions for both curves; scalars and
/// coordinates are fixed-length big-endian bytes.
macro_rules! ec_reference {
    ($module:ident, $krate:ident, $curve:ident, $hash:ty) => {
        pub mod $module {
            use super::Digest;
            use $krate::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
            use $krate::ecdsa::signature::Signer;
            use $krate::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $krate::elliptic_curve::bigint::ArrayEncoding;
            use $krate::elliptic_curve::ops::Reduce;
            use $krate::elliptic_curve::point::{AffineCoordinates, DecompressPoint};
            use $krate::elliptic_curve::sec1::ToEncodedPoint;
            use $krate::elliptic_curve::{Curve, Field, PrimeField};
            use $krate::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};

            /// Length of a field element and of a scalar.
            pub const LEN: usize = std::mem::size_of::<FieldBytes>();

            fn scalar(bytes: &[u8]) -> Scalar {
                Option::from(Scalar::from_repr(FieldBytes::clone_from_slice(bytes)))
                    .expect("scalar below n")
            }

            fn affine(x: &[u8], y: &[u8]) -> AffinePoint {
                let mut sec1 = vec![4u8];
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                *VerifyingKey::from_sec1_bytes(&sec1)
                    .expect("valid point")
                    .as_affine()
            }

            fn coordinates(p: &ProjectivePoint) -> Option<(Vec<u8>, Vec<u8>)> {
                let enc = p.to_affine().to_encoded_point(false);
                Some((enc.x()?.to_vec(), enc.y()?.to_vec()))
            }

            /// The group order n.
            pub fn order() -> Vec<u8> {
                <$krate::$curve as Curve>::ORDER.to_be_byte_array().to_vec()
            }

            /// The public point `d G`.
            pub fn public(d: &[u8]) -> (Vec<u8>, Vec<u8>) {
                coordinates(&(ProjectivePoint::GENERATOR * scalar(d))).expect("d is not zero")
            }

            /// Raw `r || s` over `msg` with the curve's hash (RFC 6979, as rust_crypto signs).
            pub fn sign(d: &[u8], msg: &[u8]) -> Vec<u8> {
                let key = SigningKey::from_slice(d).expect("valid scalar");
                let sig: Signature = key.sign(msg);
                sig.to_bytes().to_vec()
            }

            /// The same signature in ASN.1 DER.
            pub fn sign_der(d: &[u8], msg: &[u8]) -> Vec<u8> {
                let key = SigningKey::from_slice(d).expect("valid scalar");
                let sig: Signature = key.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }

            /// Raw `r || s` over a prehash of any allowed length.
            pub fn sign_prehash(d: &[u8], prehash: &[u8]) -> Vec<u8> {
                let key = SigningKey::from_slice(d).expect("valid scalar");
                let sig: Signature = key.sign_prehash(prehash).expect("prehash accepted");
                sig.to_bytes().to_vec()
            }

            /// `PrehashVerifier` of the reference crate for an uncompressed point.
            pub fn verify_prehash(sec1: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
                let Ok(key) = VerifyingKey::from_sec1_bytes(sec1) else {
                    return false;
                };
                let Ok(sig) = Signature::from_slice(sig) else {
                    return false;
                };
                key.verify_prehash(prehash, &sig).is_ok()
            }

            /// The curve's hash reduced to a scalar, as ECDSA uses it.
            pub fn digest_scalar(msg: &[u8]) -> Vec<u8> {
                let h = <$hash>::digest(msg);
                let z = <Scalar as Reduce<_>>::reduce_bytes(&FieldBytes::clone_from_slice(&h));
                z.to_repr().to_vec()
            }

            /// `(r, s)` with the given nonce `k`: `r = x(kG) mod n`, `s = (z + r d) / k`.
            pub fn sign_with_nonce(d: &[u8], k: &[u8], z: &[u8]) -> Vec<u8> {
                let big_r = (ProjectivePoint::GENERATOR * scalar(k)).to_affine();
                let r = <Scalar as Reduce<_>>::reduce_bytes(&big_r.x());
                let s = (scalar(z) + r * scalar(d)) * scalar(k).invert().unwrap();
                [r.to_repr().to_vec(), s.to_repr().to_vec()].concat()
            }

            /// A point with the given x coordinate, if x is on the curve.
            pub fn lift_x(x: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
                let p: Option<AffinePoint> =
                    AffinePoint::decompress(&FieldBytes::clone_from_slice(x), 0.into()).into();
                coordinates(&ProjectivePoint::from(p?))
            }

            /// The key Q for which `(r, s)` over the scalar `z` makes `u1 G + u2 Q` the point
            /// `(rx, ry)` (r must be its x reduced mod n for the signature to be valid):
            /// `Q = (R - u1 G) / u2`.
            pub fn key_for(
                rx: &[u8],
                ry: &[u8],
                z: &[u8],
                r: &[u8],
                s: &[u8],
            ) -> (Vec<u8>, Vec<u8>) {
                let w = scalar(s).invert().unwrap();
                let (u1, u2) = (scalar(z) * w, scalar(r) * w);
                let big_r = ProjectivePoint::from(affine(rx, ry));
                let q = (big_r - ProjectivePoint::GENERATOR * u1) * u2.invert().unwrap();
                coordinates(&q).expect("not the identity")
            }

            /// `u1 G + u2 Q` is the identity for this key: `Q = -(z / r) G`.
            pub fn key_summing_to_identity(z: &[u8], r: &[u8]) -> (Vec<u8>, Vec<u8>) {
                let d = -(scalar(z) * scalar(r).invert().unwrap());
                coordinates(&(ProjectivePoint::GENERATOR * d)).expect("z is not zero")
            }

            /// A uniformly random non-zero scalar.
            pub fn random_scalar(rng: &mut super::StdRng) -> Vec<u8> {
                Scalar::random(rng).to_repr().to_vec()
            }

            /// The uncompressed encoding of the public key the reference reads from SEC1 bytes.
            pub fn canonical_sec1(bytes: &[u8]) -> Option<Vec<u8>> {
                let key = VerifyingKey::from_sec1_bytes(bytes).ok()?;
                Some(key.to_encoded_point(false).as_bytes().to_vec())
            }
        }
    };
}

ec_reference!(ref_p256, p256, NistP256, sha2::Sha256);
ec_reference!(ref_p384, p384, NistP384, sha2::Sha384);

/// Dispatches to the reference module of an ECDSA algorithm's curve.
macro_rules! with_ref {
    ($alg:expr, |$m:ident| $body:expr) => {
        match $alg {
            Algorithm::ES256 => {
                use $crate::common::ref_p256 as $m;
                $body
            }
            _ => {
                use $crate::common::ref_p384 as $m;
                $body
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use with_ref;

/// Field (and scalar) length in bytes of an ECDSA algorithm's curve.
pub fn ec_len(alg: Algorithm) -> usize {
    with_ref!(alg, |m| m::LEN)
}

/// The field prime of an ECDSA algorithm's curve.
pub fn ec_prime(alg: Algorithm) -> BigUint {
    let one = BigUint::from(1u8);
    match alg {
        Algorithm::ES256 => (&one << 256) - (&one << 224) + (&one << 192) + (&one << 96) - 1u8,
        _ => (&one << 384) - (&one << 128) - (&one << 96) + (&one << 32) - 1u8,
    }
}

/// The group order of an ECDSA algorithm's curve.
pub fn ec_order(alg: Algorithm) -> BigUint {
    BigUint::from_bytes_be(&with_ref!(alg, |m| m::order()))
}

/// Base64url without padding.
pub fn b64url_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// An ECDSA key pair with its jsonwebtoken forms.
pub struct EcTestKey {
    pub name: String,
    pub alg: Algorithm,
    /// The private scalar, big-endian, field length.
    pub d: Vec<u8>,
    pub x: Vec<u8>,
    pub y: Vec<u8>,
    /// The same public key as a JWK, as JWK components, and as SEC1 points (uncompressed,
    /// compressed, and the sec1 crate's compact form where it denotes this point).
    pub decoding: Vec<(&'static str, DecodingKey)>,
}

impl EcTestKey {
    /// The key with private scalar `d` (big-endian, field length, in `[1, n)`).
    pub fn from_scalar(name: impl Into<String>, alg: Algorithm, d: &[u8]) -> Self {
        let (x, y) = with_ref!(alg, |m| m::public(d));
        let crv = if alg == Algorithm::ES256 {
            "P-256"
        } else {
            "P-384"
        };
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": crv, "x": b64url_encode(&x), "y": b64url_encode(&y)
        }))
        .expect("valid JWK");
        let mut decoding = vec![
            ("jwk", DecodingKey::from_jwk(&jwk).expect("EC JWK")),
            (
                "components",
                DecodingKey::from_ec_components(&b64url_encode(&x), &b64url_encode(&y))
                    .expect("base64"),
            ),
            ("sec1", DecodingKey::from_ec_der(&sec1_uncompressed(&x, &y))),
            (
                "compressed",
                DecodingKey::from_ec_der(&sec1_compressed(&x, &y)),
            ),
        ];
        let y_big = BigUint::from_bytes_be(&y);
        if y_big <= ec_prime(alg) - &y_big {
            let mut compact = vec![5u8];
            compact.extend_from_slice(&x);
            decoding.push(("compact", DecodingKey::from_ec_der(&compact)));
        }
        EcTestKey {
            name: name.into(),
            alg,
            d: d.to_vec(),
            x,
            y,
            decoding,
        }
    }

    /// The checked-in OpenSSL keys (`data/p256.der`, `data/p384.der`).
    pub fn openssl_fixtures() -> Vec<Self> {
        vec![
            EcTestKey::from_pkcs8(
                "openssl-p256",
                Algorithm::ES256,
                include_bytes!("../data/p256.der"),
            ),
            EcTestKey::from_pkcs8(
                "openssl-p384",
                Algorithm::ES384,
                include_bytes!("../data/p384.der"),
            ),
        ]
    }

    /// The key in a PKCS#8 DER private key (the checked-in fixtures).
    pub fn from_pkcs8(name: impl Into<String>, alg: Algorithm, der: &[u8]) -> Self {
        let d = match alg {
            Algorithm::ES256 => {
                use p256::pkcs8::DecodePrivateKey;
                p256::SecretKey::from_pkcs8_der(der)
                    .expect("P-256 key")
                    .to_bytes()
                    .to_vec()
            }
            _ => {
                use p384::pkcs8::DecodePrivateKey;
                p384::SecretKey::from_pkcs8_der(der)
                    .expect("P-384 key")
                    .to_bytes()
                    .to_vec()
            }
        };
        Self::from_scalar(name, alg, &d)
    }

    /// A random key.
    pub fn random(name: impl Into<String>, alg: Algorithm, rng: &mut StdRng) -> Self {
        let d = with_ref!(alg, |m| m::random_scalar(rng));
        Self::from_scalar(name, alg, &d)
    }

    /// The JWK-components decoding key.
    pub fn jwk(&self) -> &DecodingKey {
        &self.decoding[0].1
    }

    /// `04 || x || y`.
    pub fn sec1(&self) -> Vec<u8> {
        sec1_uncompressed(&self.x, &self.y)
    }

    /// Raw `r || s` over `msg`, as rust_crypto signs.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        with_ref!(self.alg, |m| m::sign(&self.d, msg))
    }
}

/// `04 || x || y`.
pub fn sec1_uncompressed(x: &[u8], y: &[u8]) -> Vec<u8> {
    [&[4u8][..], x, y].concat()
}

/// `02 || x` or `03 || x` after y's parity.
pub fn sec1_compressed(x: &[u8], y: &[u8]) -> Vec<u8> {
    let tag = 2 + (y.last().copied().unwrap_or(0) & 1);
    [&[tag][..], x].concat()
}

/// A big-endian number as exactly `len` bytes.
pub fn be_bytes(v: &BigUint, len: usize) -> Vec<u8> {
    left_pad(&v.to_bytes_be(), len)
}

pub fn ec_p256() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("../data/p256.der"))
}

pub fn ec_p384() -> EncodingKey {
    EncodingKey::from_ec_der(include_bytes!("../data/p384.der"))
}

pub fn ed25519() -> EncodingKey {
    EncodingKey::from_ed_der(include_bytes!("../data/ed25519.der"))
}

/// Encoding key and matching decoding key for each non-RSA algorithm.
pub fn other_keys() -> Vec<(Algorithm, EncodingKey, DecodingKey)> {
    let mut out = Vec::new();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        out.push((
            alg,
            EncodingKey::from_secret(b"secret"),
            DecodingKey::from_secret(b"secret"),
        ));
    }
    for (alg, enc) in [
        (Algorithm::ES256, ec_p256()),
        (Algorithm::ES384, ec_p384()),
        (Algorithm::EdDSA, ed25519()),
    ] {
        let jwk = Jwk::from_encoding_key(&enc, alg).expect("public JWK");
        out.push((alg, enc, DecodingKey::from_jwk(&jwk).expect("decoding key")));
    }
    out
}
