//! RSA public keys prepared for fast verification, and RSASSA-PKCS1-v1_5 / RSASSA-PSS checks.
//!
//! The accept/reject behaviour mirrors `rsa` 0.9 as jsonwebtoken's `rust_crypto` backend uses it
//! (`RsaPublicKey::new`, `from_pkcs1_der`, `Pkcs1v15Sign::new::<H>()`, `Pss::new::<H>()`),
//! including its quirks (see the comments at each check), with two departures that match
//! Envoy's jwt_authn instead: moduli up to 8,192 bits (rsa stops at 4,096), and a PSS signature
//! must be below the modulus (rsa reduces it, so `s + n` also verified).

use std::fmt;

use sha2::{Digest, Sha256, Sha384, Sha512};

use super::bignum::{self, be_to_limbs, limbs_to_be, strip_leading_zeros, Modulus};

/// Largest modulus accepted, in bits: what Envoy's jwt_authn accepts. Twice `rsa`'s
/// `RsaPublicKey::MAX_SIZE`; a verification at this size costs about 16 times one at 2,048 bits.
pub const MAX_MODULUS_BITS: usize = 8192;
/// Smallest public exponent accepted (`rsa::RsaPublicKey::MIN_PUB_EXPONENT`); as `e` must also be
/// odd, the smallest usable one is 3.
pub const MIN_PUBLIC_EXPONENT: u64 = 2;
/// Largest public exponent accepted (`rsa::RsaPublicKey::MAX_PUB_EXPONENT`).
pub const MAX_PUBLIC_EXPONENT: u64 = (1 << 33) - 1;
/// Longest input `der` 0.7 will read (`der::Length::MAX`).
const DER_MAX_LEN: usize = 0x0fff_ffff;

/// Why a public key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The `DecodingKey` is not an RSA key.
    NotRsa,
    /// The DER is not a canonical PKCS#1 `RSAPublicKey`.
    MalformedDer,
    /// The modulus is longer than [`MAX_MODULUS_BITS`].
    ModulusTooLarge,
    /// The modulus is even, zero, or not larger than the exponent.
    InvalidModulus,
    /// The exponent is even.
    InvalidExponent,
    /// The exponent is below [`MIN_PUBLIC_EXPONENT`].
    ExponentTooSmall,
    /// The exponent is above [`MAX_PUBLIC_EXPONENT`].
    ExponentTooLarge,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            KeyError::NotRsa => "not an RSA key",
            KeyError::MalformedDer => "malformed PKCS#1 RSA public key",
            KeyError::ModulusTooLarge => "RSA modulus too large",
            KeyError::InvalidModulus => "invalid RSA modulus",
            KeyError::InvalidExponent => "invalid RSA public exponent",
            KeyError::ExponentTooSmall => "RSA public exponent too small",
            KeyError::ExponentTooLarge => "RSA public exponent too large",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for KeyError {}

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// The key could not be prepared.
    Key(KeyError),
    /// The signature is not exactly as long as the modulus.
    SignatureLength,
    /// The signature, read as an integer, is not below the modulus.
    SignatureOutOfRange,
    /// The modulus is too short for the encoding.
    KeyTooShort,
    /// The recovered encoding does not match the hash.
    Mismatch,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Key(e) => write!(f, "{e}"),
            VerifyError::SignatureLength => f.write_str("signature length differs from modulus"),
            VerifyError::SignatureOutOfRange => f.write_str("signature not below modulus"),
            VerifyError::KeyTooShort => f.write_str("modulus too short for the encoding"),
            VerifyError::Mismatch => f.write_str("signature does not match"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// The hash functions JWT uses with RSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// A hash output (up to SHA-512's 64 bytes) without heap allocation.
#[derive(Clone, Copy)]
pub struct Hashed {
    buf: [u8; 64],
    len: usize,
}

impl Hashed {
    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl HashAlg {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hashes the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Hashed {
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8; 64]) -> usize {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            let d = h.finalize();
            out[..d.len()].copy_from_slice(&d);
            d.len()
        }
        let mut buf = [0u8; 64];
        let len = match self {
            HashAlg::Sha256 => run::<Sha256>(parts, &mut buf),
            HashAlg::Sha384 => run::<Sha384>(parts, &mut buf),
            HashAlg::Sha512 => run::<Sha512>(parts, &mut buf),
        };
        Hashed { buf, len }
    }

    /// DER `DigestInfo` header that precedes the hash in PKCS#1 v1.5, exactly as
    /// `rsa::pkcs1v15` generates it (AlgorithmIdentifier with explicit NULL parameters).
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// The RSA signature encodings JWT uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// RSASSA-PKCS1-v1_5 (RS256/384/512).
    Pkcs1v15,
    /// RSASSA-PSS with MGF1 on the same hash and a salt as long as the hash (PS256/384/512).
    Pss,
}

/// An RSA public key with its Montgomery constants precomputed.
#[derive(Clone, Debug)]
pub struct RsaPublicKey {
    modulus: Modulus,
    e: u64,
}

impl RsaPublicKey {
    /// Builds a key from big-endian modulus and exponent bytes (a JWK's decoded `n` and `e`),
    /// accepting exactly what `rsa::RsaPublicKey::new` accepts.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        Self::from_components_with_max_bits(n, e, MAX_MODULUS_BITS)
    }

    /// Like [`from_components`](Self::from_components) with another modulus limit, as
    /// `rsa::RsaPublicKey::new_with_max_size` (at most [`bignum::MAX_MODULUS_BITS`]). jsonwebtoken's
    /// rust_crypto always applies [`MAX_MODULUS_BITS`], so larger keys disagree with it.
    pub fn from_components_with_max_bits(
        n: &[u8],
        e: &[u8],
        max_bits: usize,
    ) -> Result<Self, KeyError> {
        let max_bits = max_bits.min(bignum::MAX_MODULUS_BITS);
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        // Same checks, in the same order, as rsa's check_public_with_max_size.
        let n_bits = match n.first() {
            Some(&top) => 8 * n.len() - top.leading_zeros() as usize,
            None => 0,
        };
        if n_bits > max_bits {
            return Err(KeyError::ModulusTooLarge);
        }
        if e.len() > 8 {
            return Err(KeyError::ExponentTooLarge);
        }
        let e = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let n_is_odd = n.last().is_some_and(|b| b & 1 == 1);
        let n_le_e = n.len() <= 8 && n.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)) <= e;
        if n_le_e || !n_is_odd {
            return Err(KeyError::InvalidModulus);
        }
        if e & 1 == 0 {
            return Err(KeyError::InvalidExponent);
        }
        if e < MIN_PUBLIC_EXPONENT {
            return Err(KeyError::ExponentTooSmall);
        }
        if e > MAX_PUBLIC_EXPONENT {
            return Err(KeyError::ExponentTooLarge);
        }
        // n is odd and n > e >= 3, which is all Modulus needs.
        let modulus = Modulus::from_be_bytes(n).ok_or(KeyError::InvalidModulus)?;
        Ok(RsaPublicKey { modulus, e })
    }

    /// Builds a key from a DER PKCS#1 `RSAPublicKey` (what `DecodingKey::from_rsa_der` and
    /// `from_rsa_pem` hold), accepting exactly what `rsa::RsaPublicKey::from_pkcs1_der` accepts.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let (n, e) = parse_pkcs1_public_key(der).ok_or(KeyError::MalformedDer)?;
        Self::from_components(n, e)
    }

    /// Modulus length in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus.bits()
    }

    /// Modulus length in bytes, which every signature must have.
    pub fn size(&self) -> usize {
        self.modulus.byte_len()
    }

    /// Public exponent.
    pub fn exponent(&self) -> u64 {
        self.e
    }

    /// Modulus as big-endian bytes without leading zeros.
    pub fn modulus(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.size()];
        // byte_len() bytes hold n by definition, so this cannot fail.
        let _ = limbs_to_be(self.modulus.as_limbs(), &mut out);
        out
    }

    /// Hashes `msg` and verifies `sig` over it.
    pub fn verify(
        &self,
        padding: Padding,
        hash: HashAlg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<(), VerifyError> {
        let hashed = hash.digest(&[msg]);
        match padding {
            Padding::Pkcs1v15 => self.verify_pkcs1v15(hash, hashed.as_bytes(), sig),
            Padding::Pss => self.verify_pss(hash, hashed.as_bytes(), sig),
        }
    }

    /// RSASSA-PKCS1-v1_5 verification of a precomputed hash, as `rsa::Pkcs1v15Sign::verify`.
    pub fn verify_pkcs1v15(
        &self,
        hash: HashAlg,
        hashed: &[u8],
        sig: &[u8],
    ) -> Result<(), VerifyError> {
        let h_len = hash.output_len();
        if hashed.len() != h_len {
            return Err(VerifyError::Mismatch);
        }
        let k = self.size();
        if sig.len() != k {
            return Err(VerifyError::SignatureLength);
        }
        let prefix = hash.digest_info_prefix();
        let t_len = prefix.len() + h_len;
        // rsa checks this after the exponentiation; doing it first only saves work.
        if k < t_len + 11 {
            return Err(VerifyError::KeyTooShort);
        }
        let s = self.signature_limbs(sig)?;
        if self.modulus.cmp_limbs(&s) != std::cmp::Ordering::Less {
            return Err(VerifyError::SignatureOutOfRange);
        }
        let em = self.public_op(&s, k)?;
        // EM = 0x00 || 0x01 || PS (0xff, k - t_len - 3 >= 8 bytes) || 0x00 || DigestInfo || H
        let ps_end = k - t_len - 1;
        let ok = em[0] == 0
            && em[1] == 1
            && em[2..ps_end].iter().all(|&b| b == 0xff)
            && em[ps_end] == 0
            && &em[ps_end + 1..k - h_len] == prefix
            && &em[k - h_len..] == hashed;
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }

    /// RSASSA-PSS verification of a precomputed hash with MGF1 on the same hash and a salt of
    /// exactly the hash length, as `rsa::Pss::new::<H>()` verifies.
    ///
    /// A signature integer `>= n` is refused, as RFC 8017 says (rsa 0.9's `Pss` reduces it mod n,
    /// which lets `s + n` verify too). When `bits(n) % 8 == 1` the recovered block is one byte
    /// shorter than `n`, and the byte in front of it must be zero (rsa 0.9 drops it unchecked).
    pub fn verify_pss(&self, hash: HashAlg, hashed: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
        let h_len = hash.output_len();
        let s_len = h_len;
        let k = self.size();
        if sig.len() != k {
            return Err(VerifyError::SignatureLength);
        }
        if hashed.len() != h_len {
            return Err(VerifyError::Mismatch);
        }
        let em_bits = self.modulus_bits() - 1;
        let em_len = em_bits.div_ceil(8);
        // rsa checks this after the exponentiation; doing it first only saves work.
        if em_len < h_len + s_len + 2 {
            return Err(VerifyError::KeyTooShort);
        }
        let s = self.signature_limbs(sig)?;
        if self.modulus.cmp_limbs(&s) != std::cmp::Ordering::Less {
            return Err(VerifyError::SignatureOutOfRange);
        }
        let mut em_full = self.public_op(&s, k)?;
        let (front, em) = em_full.split_at_mut(k - em_len);
        if front.iter().any(|&b| b != 0) {
            return Err(VerifyError::Mismatch);
        }
        if em[em_len - 1] != 0xbc {
            return Err(VerifyError::Mismatch);
        }
        let (db, rest) = em.split_at_mut(em_len - h_len - 1);
        let h = &rest[..h_len];
        // The 8 * em_len - em_bits leftmost bits of maskedDB must be zero.
        let unused_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8.checked_shl(8 - unused_bits as u32).unwrap_or(0);
        if db[0] & top_mask != 0 {
            return Err(VerifyError::Mismatch);
        }
        mgf1_xor(hash, h, db);
        db[0] &= 0xff >> unused_bits;
        // DB = PS (zeros) || 0x01 || salt
        let ps_len = em_len - h_len - s_len - 2;
        if db[..ps_len].iter().any(|&b| b != 0) || db[ps_len] != 0x01 {
            return Err(VerifyError::Mismatch);
        }
        let salt = &db[db.len() - s_len..];
        let h2 = hash.digest(&[&[0u8; 8], hashed, salt]);
        if h2.as_bytes() == h {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }

    /// The signature as limbs; it is `size()` bytes, so it always fits below `R`.
    fn signature_limbs(&self, sig: &[u8]) -> Result<Vec<u32>, VerifyError> {
        be_to_limbs(sig, self.modulus.limbs()).ok_or(VerifyError::SignatureLength)
    }

    /// `s^e mod n` as `k` big-endian bytes.
    fn public_op(&self, s: &[u32], k: usize) -> Result<Vec<u8>, VerifyError> {
        let mut m = vec![0u32; self.modulus.limbs()];
        self.modulus
            .pow_mod(s, self.e, &mut m)
            .ok_or(VerifyError::SignatureLength)?;
        let mut em = vec![0u8; k];
        // m < n < 2^(8k), so it fits.
        limbs_to_be(&m, &mut em).ok_or(VerifyError::SignatureOutOfRange)?;
        Ok(em)
    }
}

/// MGF1 (RFC 8017 B.2.1) on `hash`, XORed into `out`.
fn mgf1_xor(hash: HashAlg, seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in out.chunks_mut(hash.output_len()).enumerate() {
        // out is shorter than an 8192-bit modulus, so the counter stays far below 2^32.
        let c = (counter as u32).to_be_bytes();
        let mask = hash.digest(&[seed, &c]);
        for (o, m) in chunk.iter_mut().zip(mask.as_bytes()) {
            *o ^= m;
        }
    }
}

/// Parses DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` with the
/// rules of `der` 0.7 (`pkcs1::RsaPublicKey::from_der`): definite minimal lengths of at most four
/// bytes, canonical non-negative integers, nothing trailing. Returns the integers' magnitudes.
fn parse_pkcs1_public_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
    if der.len() > DER_MAX_LEN {
        return None;
    }
    let (body, rest) = read_tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (n, rest) = read_tlv(body, 0x02)?;
    let (e, rest) = read_tlv(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    Some((uint_value(n)?, uint_value(e)?))
}

/// Reads one tag-length-value with the given tag; returns the value and what follows.
fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = match first {
        0x00..=0x7f => usize::from(first),
        0x81..=0x84 => {
            let mut len = 0usize;
            for _ in 0..(first - 0x80) {
                let (&b, r) = rest.split_first()?;
                len = (len << 8) | usize::from(b);
                rest = r;
            }
            // Long form only when needed, and with no more bytes than needed.
            let min = match first {
                0x81 => 0x80,
                0x82 => 0x100,
                0x83 => 0x1_0000,
                _ => 0x100_0000,
            };
            if len < min || len > DER_MAX_LEN {
                return None;
            }
            len
        }
        // 0x80 is the indefinite form (not DER); longer length fields are refused by der 0.7.
        _ => return None,
    };
    if len > rest.len() {
        return None;
    }
    Some(rest.split_at(len))
}

/// Magnitude of a DER INTEGER that must be non-negative and minimally encoded.
fn uint_value(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [] => None,
        [0] => Some(bytes),
        [0, b, ..] if *b < 0x80 => None,
        [0, rest @ ..] => Some(rest),
        [b, ..] if *b >= 0x80 => None,
        _ => Some(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_prefixes_match_rsa_crate() {
        // rsa builds them from the OID: 30 (oid+8+hlen) 30 (oid+4) 06 oid_len oid 05 00 04 hlen.
        for (alg, last) in [
            (HashAlg::Sha256, 1u8),
            (HashAlg::Sha384, 2),
            (HashAlg::Sha512, 3),
        ] {
            let h = alg.output_len() as u8;
            let oid = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, last];
            let mut want = vec![0x30, 9 + 8 + h, 0x30, 9 + 4, 0x06, 9];
            want.extend_from_slice(&oid);
            want.extend_from_slice(&[0x05, 0x00, 0x04, h]);
            assert_eq!(alg.digest_info_prefix(), &want[..]);
            assert_eq!(alg.digest(&[b"abc"]).as_bytes().len(), alg.output_len());
        }
    }

    #[test]
    fn component_checks() {
        let n = [0xc5u8; 256]; // odd, 2048 bits
        assert!(RsaPublicKey::from_components(&n, &[1, 0, 1]).is_ok());
        assert!(RsaPublicKey::from_components(&n, &[0, 0, 1, 0, 1]).is_ok());
        assert_eq!(
            RsaPublicKey::from_components(&n, &[1]).unwrap_err(),
            KeyError::ExponentTooSmall
        );
        assert_eq!(
            RsaPublicKey::from_components(&n, &[2]).unwrap_err(),
            KeyError::InvalidExponent
        );
        assert_eq!(
            RsaPublicKey::from_components(&n, &[]).unwrap_err(),
            KeyError::InvalidExponent
        );
        assert_eq!(
            RsaPublicKey::from_components(&n, &[2, 0, 0, 0, 1]).unwrap_err(),
            KeyError::ExponentTooLarge
        );
        assert!(RsaPublicKey::from_components(&n, &[1, 0xff, 0xff, 0xff, 0xff]).is_ok());
        assert_eq!(
            RsaPublicKey::from_components(&n, &[1; 9]).unwrap_err(),
            KeyError::ExponentTooLarge
        );
        let even = [0xc4u8; 256];
        assert_eq!(
            RsaPublicKey::from_components(&even, &[3]).unwrap_err(),
            KeyError::InvalidModulus
        );
        assert_eq!(
            RsaPublicKey::from_components(&[], &[3]).unwrap_err(),
            KeyError::InvalidModulus
        );
        assert_eq!(
            RsaPublicKey::from_components(&[3], &[3]).unwrap_err(),
            KeyError::InvalidModulus
        );
        assert!(RsaPublicKey::from_components(&[5], &[3]).is_ok());
        let big = [0xffu8; 1025];
        assert_eq!(
            RsaPublicKey::from_components(&big, &[3]).unwrap_err(),
            KeyError::ModulusTooLarge
        );
        let mut max = vec![0u8; 3];
        max.extend_from_slice(&[0xffu8; 1024]);
        assert!(RsaPublicKey::from_components(&max, &[3]).is_ok());
        assert!(RsaPublicKey::from_components(&max[..515], &[3]).is_ok());
        assert!(RsaPublicKey::from_components_with_max_bits(&big, &[3], 16384).is_ok());
        assert_eq!(
            RsaPublicKey::from_components_with_max_bits(&max, &[3], 8191).unwrap_err(),
            KeyError::ModulusTooLarge
        );
        // The arithmetic's own limit caps any requested one.
        let huge = [0xffu8; 2049];
        assert_eq!(
            RsaPublicKey::from_components_with_max_bits(&huge, &[3], usize::MAX).unwrap_err(),
            KeyError::ModulusTooLarge
        );
    }

    #[test]
    fn der_lengths() {
        // SEQUENCE { INTEGER 0x00c5.., INTEGER 3 } with the sequence length in long form.
        let der = |len_bytes: &[u8]| {
            let mut v = vec![0x30];
            v.extend_from_slice(len_bytes);
            v.extend_from_slice(&[0x02, 0x02, 0x00, 0xc5, 0x02, 0x01, 0x03]);
            v
        };
        assert!(RsaPublicKey::from_pkcs1_der(&der(&[7])).is_ok());
        assert_eq!(
            RsaPublicKey::from_pkcs1_der(&der(&[0x81, 7])).unwrap_err(),
            KeyError::MalformedDer
        );
        assert!(RsaPublicKey::from_pkcs1_der(&der(&[0x80])).is_err());
        assert!(RsaPublicKey::from_pkcs1_der(&der(&[8])).is_err());
        assert!(RsaPublicKey::from_pkcs1_der(&der(&[6])).is_err());
        let mut trailing = der(&[7]);
        trailing.push(0);
        assert!(RsaPublicKey::from_pkcs1_der(&trailing).is_err());
        assert_eq!(uint_value(&[0, 0x7f]), None);
        assert_eq!(uint_value(&[0x80]), None);
        assert_eq!(uint_value(&[0, 0x80]), Some(&[0x80][..]));
        assert_eq!(uint_value(&[0]), Some(&[0][..]));
        assert_eq!(uint_value(&[]), None);
    }
}
