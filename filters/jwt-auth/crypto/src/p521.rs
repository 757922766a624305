//! ES512 (ECDSA on P-521 with SHA-512) through RustCrypto's `p521` crate.
//!
//! jsonwebtoken 11 has no ES512, and P-521 tokens are rare, so this is the maintained crate's
//! constant-time code rather than the fast verifier of [`super::ecdsa`]: slower (see the README
//! for the measured cost), with the same rules. Keys are uncompressed SEC1 points on the curve,
//! signatures exactly `r || s` of 66 bytes each with `0 < r, s < n`; high S is accepted.

use p521::ecdsa::signature::Verifier;
use p521::ecdsa::{Signature, VerifyingKey};

use super::ecdsa::{EcKeyError, EcVerifyError};

/// Length of a P-521 field element (and of r and s) in bytes.
pub const FIELD_LEN: usize = 66;

/// A P-521 public key, checked to be a point of the curve.
#[derive(Clone)]
pub struct P521PublicKey(VerifyingKey);

impl std::fmt::Debug for P521PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let point = self.0.to_encoded_point(false);
        f.debug_tuple("P521PublicKey")
            .field(&point.as_bytes())
            .finish()
    }
}

impl P521PublicKey {
    /// Parses an uncompressed SEC1 point, `04 || x || y` with 66-byte coordinates.
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, EcKeyError> {
        if bytes.len() != 1 + 2 * FIELD_LEN || bytes[0] != 4 {
            return Err(EcKeyError::MalformedEncoding);
        }
        VerifyingKey::from_sec1_bytes(bytes)
            .map(P521PublicKey)
            .map_err(|_| EcKeyError::NotOnCurve)
    }

    /// Hashes `msg` with SHA-512 and verifies the raw `r || s` signature over it.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), EcVerifyError> {
        if sig.len() != 2 * FIELD_LEN {
            return Err(EcVerifyError::SignatureLength);
        }
        let sig = Signature::from_slice(sig).map_err(|_| EcVerifyError::ScalarOutOfRange)?;
        self.0
            .verify(msg, &sig)
            .map_err(|_| EcVerifyError::Mismatch)
    }
}
