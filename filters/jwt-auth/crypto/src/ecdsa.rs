//! ECDSA public keys prepared for fast verification of ES256 (P-256 with SHA-256) and ES384
//! (P-384 with SHA-384).
//!
//! The accept/reject behaviour mirrors jsonwebtoken's `rust_crypto` backend (p256 0.13, p384
//! 0.13, ecdsa 0.16: `VerifyingKey::from_sec1_bytes`, `Signature::from_slice`, `verify`):
//!
//! - Keys are SEC1 point encodings, which is what both `DecodingKey::from_ec_components` (it
//!   builds `04 || x || y` from the JWK's coordinates, whatever their lengths) and
//!   `DecodingKey::from_ec_der` hold; despite its name the latter must be given the SEC1 point,
//!   not a DER `SubjectPublicKeyInfo`. Accepted: uncompressed (`04`), compressed (`02`/`03`)
//!   and the sec1 crate's non-standard "compact" form (`05 || x`: the root y with
//!   `y <= p - y`). Refused, when the verifier is made: any other tag or length, coordinates not
//!   below p, points off the curve, and the identity (`00`).
//! - Signatures are exactly `r || s`, each as long as a field element (the JOSE form), with
//!   `0 < r, s < n`. DER signatures are refused for their length (one of exactly that length
//!   would be read as raw `r || s`, as rust_crypto does). High S is accepted.
//! - The message is hashed with the curve's hash; the digest (a prehash for
//!   [`verify_prehash`](EcdsaPublicKey::verify_prehash)) is padded or truncated to the field size
//!   (`bits2field`: at least half of it is required), read as an integer and reduced mod n once.

use std::fmt;

use sha2::{Digest, Sha256, Sha384};

use super::ecc::{is_zero, limbs_from_be, limbs_to_be, lt, sub_limbs, Affine, Curve, Limbs, Table};
use super::p256::P256;
use super::p384::P384;

/// The curves of the JWT ECDSA algorithms this module verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcdsaCurve {
    /// P-256 (secp256r1) with SHA-256: ES256.
    P256,
    /// P-384 (secp384r1) with SHA-384: ES384.
    P384,
}

impl EcdsaCurve {
    /// The curve of an ECDSA JWT algorithm, `None` for other algorithms.
    pub fn from_algorithm(alg: jsonwebtoken::Algorithm) -> Option<Self> {
        match alg {
            jsonwebtoken::Algorithm::ES256 => Some(EcdsaCurve::P256),
            jsonwebtoken::Algorithm::ES384 => Some(EcdsaCurve::P384),
            _ => None,
        }
    }

    /// Length of a field element (and of r and s) in bytes.
    pub fn field_len(self) -> usize {
        match self {
            EcdsaCurve::P256 => 32,
            EcdsaCurve::P384 => 48,
        }
    }

    /// Length of a signature, `r || s`, in bytes.
    pub fn signature_len(self) -> usize {
        2 * self.field_len()
    }
}

/// Why a public key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcKeyError {
    /// The `DecodingKey` is not an EC key held as bytes.
    NotEc,
    /// Not a SEC1 encoding for the curve: unknown tag, or a length that does not fit the tag.
    MalformedEncoding,
    /// The encoding of the point at infinity, which is no public key.
    Identity,
    /// A coordinate is not below the field prime.
    CoordinateOutOfRange,
    /// The coordinates are not a point of the curve (or no y exists for a compressed x).
    NotOnCurve,
    /// The key's precomputed table could not be built (impossible for a valid point).
    Table,
}

impl fmt::Display for EcKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            EcKeyError::NotEc => "not an EC key",
            EcKeyError::MalformedEncoding => "malformed SEC1 point encoding",
            EcKeyError::Identity => "EC public key is the point at infinity",
            EcKeyError::CoordinateOutOfRange => "EC coordinate not below the field prime",
            EcKeyError::NotOnCurve => "EC public key is not on the curve",
            EcKeyError::Table => "EC public key table could not be built",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for EcKeyError {}

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcVerifyError {
    /// The signature is not exactly twice the field length.
    SignatureLength,
    /// r or s is zero or not below the group order.
    ScalarOutOfRange,
    /// The prehash is shorter than half the field length.
    PrehashTooShort,
    /// The signature does not match.
    Mismatch,
}

impl fmt::Display for EcVerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            EcVerifyError::SignatureLength => "ECDSA signature has the wrong length",
            EcVerifyError::ScalarOutOfRange => "ECDSA signature scalar out of range",
            EcVerifyError::PrehashTooShort => "ECDSA prehash too short",
            EcVerifyError::Mismatch => "ECDSA signature does not match",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for EcVerifyError {}

/// A validated public point with its table of precomputed multiples.
#[derive(Clone)]
struct Prepared<const N: usize> {
    point: Affine<N>,
    table: Table<N>,
}

impl<const N: usize> fmt::Debug for Prepared<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The table is kilobytes of derived data.
        f.debug_struct("Prepared")
            .field("point", &self.point)
            .field("table_len", &self.table.len())
            .finish()
    }
}

#[derive(Clone, Debug)]
enum Inner {
    P256(Prepared<8>),
    P384(Prepared<12>),
}

/// An ECDSA public key with its precomputed table, ready for fast verification.
#[derive(Clone, Debug)]
pub struct EcdsaPublicKey {
    inner: Inner,
}

impl EcdsaPublicKey {
    /// Parses a SEC1-encoded point of `curve` and precomputes its table, accepting exactly what
    /// `VerifyingKey::from_sec1_bytes` of the p256/p384 crates accepts.
    pub fn from_sec1(curve: EcdsaCurve, bytes: &[u8]) -> Result<Self, EcKeyError> {
        let inner = match curve {
            EcdsaCurve::P256 => Inner::P256(prepare::<8, P256>(bytes)?),
            EcdsaCurve::P384 => Inner::P384(prepare::<12, P384>(bytes)?),
        };
        Ok(EcdsaPublicKey { inner })
    }

    /// The key's curve.
    pub fn curve(&self) -> EcdsaCurve {
        match self.inner {
            Inner::P256(_) => EcdsaCurve::P256,
            Inner::P384(_) => EcdsaCurve::P384,
        }
    }

    /// The point as an uncompressed SEC1 encoding, `04 || x || y`.
    pub fn to_uncompressed(&self) -> Vec<u8> {
        fn encode<const N: usize>(p: &Affine<N>) -> Vec<u8> {
            let mut out = vec![4u8];
            out.extend_from_slice(&limbs_to_be(&p.x));
            out.extend_from_slice(&limbs_to_be(&p.y));
            out
        }
        match &self.inner {
            Inner::P256(k) => encode(&k.point),
            Inner::P384(k) => encode(&k.point),
        }
    }

    /// Number of points in the key's precomputed table.
    pub fn table_len(&self) -> usize {
        match &self.inner {
            Inner::P256(k) => k.table.len(),
            Inner::P384(k) => k.table.len(),
        }
    }

    /// Hashes `msg` with the curve's hash (SHA-256 for P-256, SHA-384 for P-384) and verifies
    /// the raw `r || s` signature `sig` over it, as the `Verifier` of the p256/p384 crates.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), EcVerifyError> {
        // Parse the signature before hashing: a malformed one costs nothing.
        match &self.inner {
            Inner::P256(k) => {
                let (r, s) = parse_signature::<8, P256>(sig)?;
                check::<8, P256>(k, &Sha256::digest(msg), &r, &s)
            }
            Inner::P384(k) => {
                let (r, s) = parse_signature::<12, P384>(sig)?;
                check::<12, P384>(k, &Sha384::digest(msg), &r, &s)
            }
        }
    }

    /// Verifies `sig` over a precomputed digest of any length, as the `PrehashVerifier` of the
    /// p256/p384 crates: the prehash must be at least half the field length; a longer one is
    /// truncated to its leading bytes, a shorter one taken as a smaller number.
    pub fn verify_prehash(&self, prehash: &[u8], sig: &[u8]) -> Result<(), EcVerifyError> {
        match &self.inner {
            Inner::P256(k) => {
                let (r, s) = parse_signature::<8, P256>(sig)?;
                check::<8, P256>(k, prehash, &r, &s)
            }
            Inner::P384(k) => {
                let (r, s) = parse_signature::<12, P384>(sig)?;
                check::<12, P384>(k, prehash, &r, &s)
            }
        }
    }
}

/// Parses and validates a SEC1 point and builds its table.
fn prepare<const N: usize, C: Curve<N>>(bytes: &[u8]) -> Result<Prepared<N>, EcKeyError> {
    let point = parse_sec1::<N, C>(bytes)?;
    let table = C::build_table(&point, C::KEY_WINDOW).ok_or(EcKeyError::Table)?;
    // Also build the generator's table (once per process), so that preparing keys when a JWKS
    // is loaded leaves no one-off cost to the first token.
    let _ = C::g_table();
    Ok(Prepared { point, table })
}

/// A coordinate: exactly `4N` bytes, below p.
fn field_element<const N: usize, C: Curve<N>>(bytes: &[u8]) -> Result<Limbs<N>, EcKeyError> {
    let v = limbs_from_be::<N>(bytes).ok_or(EcKeyError::MalformedEncoding)?;
    if lt(&v, &C::P) {
        Ok(v)
    } else {
        Err(EcKeyError::CoordinateOutOfRange)
    }
}

/// SEC1 `Elliptic-Curve-Point-to-Octet-String` decoding with the rules of sec1 0.7 and
/// primeorder 0.13, as `PublicKey::from_sec1_bytes` applies them.
fn parse_sec1<const N: usize, C: Curve<N>>(bytes: &[u8]) -> Result<Affine<N>, EcKeyError> {
    let len = 4 * N;
    let (&tag, rest) = bytes.split_first().ok_or(EcKeyError::MalformedEncoding)?;
    let expected = match tag {
        0x00 => 0,
        0x02 | 0x03 | 0x05 => len,
        0x04 => 2 * len,
        _ => return Err(EcKeyError::MalformedEncoding),
    };
    if rest.len() != expected {
        return Err(EcKeyError::MalformedEncoding);
    }
    match tag {
        0x00 => Err(EcKeyError::Identity),
        0x04 => {
            let x = field_element::<N, C>(&rest[..len])?;
            let y = field_element::<N, C>(&rest[len..])?;
            let point = Affine { x, y };
            if C::is_on_curve(&point) {
                Ok(point)
            } else {
                Err(EcKeyError::NotOnCurve)
            }
        }
        _ => {
            let x = field_element::<N, C>(rest)?;
            let root = C::fe_sqrt(&C::curve_rhs(&x)).ok_or(EcKeyError::NotOnCurve)?;
            let neg = C::fe_neg(&root);
            let y = match tag {
                // Compressed: the root whose parity the tag gives.
                0x02 | 0x03 => {
                    if root[0] & 1 == u32::from(tag & 1) {
                        root
                    } else {
                        neg
                    }
                }
                // Compact (sec1's `Tag::Compact`): the smaller of the two roots.
                _ => {
                    if lt(&neg, &root) {
                        neg
                    } else {
                        root
                    }
                }
            };
            Ok(Affine { x, y })
        }
    }
}

/// `r` and `s` from a raw `r || s` signature, each in `[1, n)`, as `Signature::from_slice`.
fn parse_signature<const N: usize, C: Curve<N>>(
    sig: &[u8],
) -> Result<(Limbs<N>, Limbs<N>), EcVerifyError> {
    if sig.len() != 8 * N {
        return Err(EcVerifyError::SignatureLength);
    }
    let (r, s) = sig.split_at(4 * N);
    let scalar = |bytes: &[u8]| {
        let v = limbs_from_be::<N>(bytes).ok_or(EcVerifyError::SignatureLength)?;
        if is_zero(&v) || !lt(&v, &C::ORDER) {
            return Err(EcVerifyError::ScalarOutOfRange);
        }
        Ok(v)
    };
    Ok((scalar(r)?, scalar(s)?))
}

/// `bits2field` followed by one conditional subtraction of n (`Reduce::reduce_bytes`), as the
/// ecdsa crate turns a digest into the scalar z.
fn digest_scalar<const N: usize, C: Curve<N>>(prehash: &[u8]) -> Result<Limbs<N>, EcVerifyError> {
    let len = 4 * N;
    if prehash.len() < len / 2 {
        return Err(EcVerifyError::PrehashTooShort);
    }
    let mut field = [0u8; 4 * super::ecc::MAX_LIMBS];
    let field = &mut field[..len];
    if prehash.len() >= len {
        field.copy_from_slice(&prehash[..len]);
    } else {
        field[len - prehash.len()..].copy_from_slice(prehash);
    }
    let z = limbs_from_be::<N>(field).ok_or(EcVerifyError::PrehashTooShort)?;
    // z < 2^(32N) < 2n, so one subtraction reduces it.
    Ok(if lt(&z, &C::ORDER) {
        z
    } else {
        sub_limbs(&z, &C::ORDER).0
    })
}

fn check<const N: usize, C: Curve<N>>(
    key: &Prepared<N>,
    prehash: &[u8],
    r: &Limbs<N>,
    s: &Limbs<N>,
) -> Result<(), EcVerifyError> {
    let z = digest_scalar::<N, C>(prehash)?;
    if C::verify_scalars(&key.table, &z, r, s) {
        Ok(())
    } else {
        Err(EcVerifyError::Mismatch)
    }
}
