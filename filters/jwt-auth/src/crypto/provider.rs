//! A jsonwebtoken [`CryptoProvider`] that verifies RS*/PS* with [`RsaPublicKey`] and delegates
//! everything else to jsonwebtoken's `rust_crypto` backend.
//!
//! jsonwebtoken calls the verifier factory with a `&DecodingKey` for every token, so prepared
//! keys are kept in a small process-wide cache keyed by the key bytes.

use std::sync::{Arc, Mutex};

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};

use super::rsa::{HashAlg, KeyError, Padding, RsaPublicKey};

/// How many prepared keys the cache holds before evicting the least recently used one.
pub const CACHE_CAPACITY: usize = 64;

/// The provider to install with `PROVIDER.install_default()`: fast RSA verification, everything
/// else from jsonwebtoken's `rust_crypto` backend.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key,
        ed_pub_components_from_private_key,
        compute_digest,
    },
};

// A static cannot copy fields out of another static, hence these one-line forwarders.

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    (RUST_CRYPTO.signer_factory)(alg, key)
}

fn rsa_pub_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    (RUST_CRYPTO.key_utils.rsa_pub_components_from_private_key)(der)
}

fn rsa_pub_components_from_public_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    (RUST_CRYPTO.key_utils.rsa_pub_components_from_public_key)(der)
}

fn ec_pub_components_from_private_key(
    der: &[u8],
    alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    (RUST_CRYPTO.key_utils.ec_pub_components_from_private_key)(der, alg)
}

fn ed_pub_components_from_private_key(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    (RUST_CRYPTO.key_utils.ed_pub_components_from_private_key)(der, curve)
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    (RUST_CRYPTO.key_utils.compute_digest)(data, hash)
}

/// The padding and hash of an RSA JWT algorithm, `None` for the other families.
fn rsa_scheme(alg: Algorithm) -> Option<(Padding, HashAlg)> {
    Some(match alg {
        Algorithm::RS256 => (Padding::Pkcs1v15, HashAlg::Sha256),
        Algorithm::RS384 => (Padding::Pkcs1v15, HashAlg::Sha384),
        Algorithm::RS512 => (Padding::Pkcs1v15, HashAlg::Sha512),
        Algorithm::PS256 => (Padding::Pss, HashAlg::Sha256),
        Algorithm::PS384 => (Padding::Pss, HashAlg::Sha384),
        Algorithm::PS512 => (Padding::Pss, HashAlg::Sha512),
        _ => return None,
    })
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let Some((padding, hash)) = rsa_scheme(*alg) else {
        return (RUST_CRYPTO.verifier_factory)(alg, key);
    };
    // rust_crypto refuses a key of another family here, but only looks at the key bytes when
    // verifying; a bad RSA key therefore still yields a verifier, one that rejects everything.
    if key.family() != AlgorithmFamily::Rsa {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RsaVerifier {
        alg: *alg,
        padding,
        hash,
        key: prepare_key(key),
    }))
}

/// A verifier for one RSA algorithm and one prepared key.
struct RsaVerifier {
    alg: Algorithm,
    padding: Padding,
    hash: HashAlg,
    key: std::result::Result<Arc<RsaPublicKey>, KeyError>,
}

impl Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let key = self
            .key
            .as_ref()
            .map_err(|e| signature::Error::from_source(*e))?;
        key.verify(self.padding, self.hash, msg, sig)
            .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// Returns the prepared form of an RSA `DecodingKey`, from the cache or by preparing and caching
/// it. Call it when loading a JWKS so that the first token does not pay for the preparation.
pub fn prepare_key(key: &DecodingKey) -> std::result::Result<Arc<RsaPublicKey>, KeyError> {
    if key.family() != AlgorithmFamily::Rsa {
        return Err(KeyError::NotRsa);
    }
    if let Some(found) = lock_cache().get(key.kind()) {
        return Ok(found);
    }
    // Prepare without holding the lock; a concurrent duplicate is harmless.
    let prepared = Arc::new(match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => RsaPublicKey::from_pkcs1_der(der)?,
        DecodingKeyKind::RsaModulusExponent { n, e } => RsaPublicKey::from_components(n, e)?,
    });
    lock_cache().insert(key.kind(), &prepared);
    Ok(prepared)
}

/// Number of prepared keys currently cached.
pub fn cached_keys() -> usize {
    lock_cache().entries.len()
}

/// Drops every cached key (for example after a JWKS rotation).
pub fn clear_cache() {
    lock_cache().entries.clear();
}

static CACHE: Mutex<KeyCache> = Mutex::new(KeyCache {
    entries: Vec::new(),
    clock: 0,
});

fn lock_cache() -> std::sync::MutexGuard<'static, KeyCache> {
    // The cache holds no invariant a panicking holder could break, so poisoning is ignored.
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The key bytes a cache entry was prepared from.
enum KeySource {
    Der(Vec<u8>),
    Components { n: Vec<u8>, e: Vec<u8> },
}

impl KeySource {
    fn new(kind: &DecodingKeyKind) -> Self {
        match kind {
            DecodingKeyKind::SecretOrDer(der) => KeySource::Der(der.clone()),
            DecodingKeyKind::RsaModulusExponent { n, e } => KeySource::Components {
                n: n.clone(),
                e: e.clone(),
            },
        }
    }

    fn matches(&self, kind: &DecodingKeyKind) -> bool {
        match (self, kind) {
            (KeySource::Der(a), DecodingKeyKind::SecretOrDer(b)) => a == b,
            (
                KeySource::Components { n, e },
                DecodingKeyKind::RsaModulusExponent { n: n2, e: e2 },
            ) => n == n2 && e == e2,
            _ => false,
        }
    }
}

struct CacheEntry {
    source: KeySource,
    key: Arc<RsaPublicKey>,
    last_used: u64,
}

/// A small least-recently-used cache; linear scans are cheaper than hashing at this size.
struct KeyCache {
    entries: Vec<CacheEntry>,
    clock: u64,
}

impl KeyCache {
    fn get(&mut self, kind: &DecodingKeyKind) -> Option<Arc<RsaPublicKey>> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.iter_mut().find(|e| e.source.matches(kind))?;
        entry.last_used = clock;
        Some(Arc::clone(&entry.key))
    }

    fn insert(&mut self, kind: &DecodingKeyKind, key: &Arc<RsaPublicKey>) {
        self.clock += 1;
        if let Some(existing) = self.entries.iter_mut().find(|e| e.source.matches(kind)) {
            existing.last_used = self.clock;
            return;
        }
        let entry = CacheEntry {
            source: KeySource::new(kind),
            key: Arc::clone(key),
            last_used: self.clock,
        };
        if self.entries.len() < CACHE_CAPACITY {
            self.entries.push(entry);
        } else if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.last_used) {
            *oldest = entry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test owns the process-wide cache so that parallel tests cannot disturb its counts.
    #[test]
    fn cache_is_bounded_and_reused() {
        clear_cache();
        let e = [1u8, 0, 1];
        let key_for = |i: u32| {
            let mut n = vec![0xc0u8; 128];
            n[124..].copy_from_slice(&(2 * i + 1).to_be_bytes());
            DecodingKey::from_rsa_raw_components(&n, &e)
        };
        let first = prepare_key(&key_for(0)).expect("valid key");
        assert!(Arc::ptr_eq(
            &first,
            &prepare_key(&key_for(0)).expect("valid key")
        ));
        assert_eq!(cached_keys(), 1);
        let second = prepare_key(&key_for(1)).expect("valid key");
        for i in 1..(CACHE_CAPACITY as u32 + 10) {
            let k = prepare_key(&key_for(i)).expect("valid key");
            assert!(!Arc::ptr_eq(&k, &first));
            // Keep key 0 recently used so that it survives eviction.
            prepare_key(&key_for(0)).expect("valid key");
        }
        assert_eq!(cached_keys(), CACHE_CAPACITY);
        assert!(Arc::ptr_eq(
            &first,
            &prepare_key(&key_for(0)).expect("valid key")
        ));
        // Key 1 was the least recently used and has been evicted: a new preparation.
        let again = prepare_key(&key_for(1)).expect("valid key");
        assert!(!Arc::ptr_eq(&second, &again));
        assert_eq!(again.modulus(), second.modulus());
        assert_eq!(cached_keys(), CACHE_CAPACITY);
        // Invalid keys are refused and not cached.
        assert!(prepare_key(&DecodingKey::from_rsa_raw_components(&[4], &e)).is_err());
        assert!(prepare_key(&DecodingKey::from_rsa_der(&[0x30, 0])).is_err());
        assert_eq!(
            prepare_key(&DecodingKey::from_secret(b"k")).unwrap_err(),
            KeyError::NotRsa
        );
        assert_eq!(cached_keys(), CACHE_CAPACITY);
        clear_cache();
        assert_eq!(cached_keys(), 0);
    }
}
