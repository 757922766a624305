//! A jsonwebtoken [`CryptoProvider`] that verifies RS*/PS* with [`RsaPublicKey`] and ES256/ES384
//! with [`EcdsaPublicKey`], HS* and EdDSA with the RustCrypto crates rust_crypto uses, and
//! delegates signing and the JWK key utilities to jsonwebtoken's `rust_crypto` backend.
//!
//! The filter calls [`new_verifier`] directly and never the signing half, so its wasm module
//! links none of rust_crypto's factories: each of them matches over every algorithm and would pull
//! in RSA and P-256/P-384 arithmetic (and its key parsing) that the verifiers here replace.
//!
//! jsonwebtoken calls the verifier factory with a `&DecodingKey` for every token, so prepared
//! keys are kept in small process-wide caches (one for RSA, one for EC) keyed by the key bytes.

use std::sync::{Arc, Mutex};

use ed25519_dalek::VerifyingKey as Ed25519PublicKey;
use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use sha2::{Sha256, Sha384, Sha512};

use super::ecdsa::{EcKeyError, EcdsaCurve, EcdsaPublicKey};
use super::rsa::{HashAlg, KeyError, Padding, RsaPublicKey};

/// How many prepared keys each cache (RSA, EC) holds before evicting the least recently used
/// one. A prepared EC key with its table takes 8 KiB (P-256) or 12 KiB (P-384), an RSA-4096 one
/// about 1 KiB.
pub const CACHE_CAPACITY: usize = 64;

/// The provider to install with `PROVIDER.install_default()`: [`new_verifier`] for verification,
/// signing and key utilities from jsonwebtoken's `rust_crypto` backend.
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

/// The verifier factory of [`PROVIDER`]: same keys accepted, same errors and same verdicts as
/// rust_crypto's for every algorithm, except that RSA moduli of up to 8,192 bits are accepted
/// (rust_crypto stops at 4,096) and a PS* signature must be below the modulus, as in Envoy.
pub fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match *alg {
        Algorithm::HS256 => new_hmac_verifier::<Hmac<Sha256>>(*alg, key),
        Algorithm::HS384 => new_hmac_verifier::<Hmac<Sha384>>(*alg, key),
        Algorithm::HS512 => new_hmac_verifier::<Hmac<Sha512>>(*alg, key),
        Algorithm::EdDSA => new_eddsa_verifier(key),
        Algorithm::ES256 => new_ecdsa_verifier(*alg, EcdsaCurve::P256, key),
        Algorithm::ES384 => new_ecdsa_verifier(*alg, EcdsaCurve::P384, key),
        Algorithm::RS256 => new_rsa_verifier(*alg, Padding::Pkcs1v15, HashAlg::Sha256, key),
        Algorithm::RS384 => new_rsa_verifier(*alg, Padding::Pkcs1v15, HashAlg::Sha384, key),
        Algorithm::RS512 => new_rsa_verifier(*alg, Padding::Pkcs1v15, HashAlg::Sha512, key),
        Algorithm::PS256 => new_rsa_verifier(*alg, Padding::Pss, HashAlg::Sha256, key),
        Algorithm::PS384 => new_rsa_verifier(*alg, Padding::Pss, HashAlg::Sha384, key),
        Algorithm::PS512 => new_rsa_verifier(*alg, Padding::Pss, HashAlg::Sha512, key),
        // `Algorithm` is non-exhaustive; jsonwebtoken 11.1 has no other algorithm.
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn new_rsa_verifier(
    alg: Algorithm,
    padding: Padding,
    hash: HashAlg,
    key: &DecodingKey,
) -> Result<Box<dyn JwtVerifier>> {
    // rust_crypto refuses a key of another family here, but only looks at the key bytes when
    // verifying; a bad RSA key therefore still yields a verifier, one that rejects everything.
    if key.family() != AlgorithmFamily::Rsa {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RsaVerifier {
        alg,
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

/// Same checks, errors and order as rust_crypto's `Es256Verifier::new`: a key of another family
/// (or not held as bytes) is `InvalidKeyFormat`, and bytes that are not a valid point of the
/// curve are `InvalidEcdsaKey`, here in the factory (unlike RSA keys, which fail at `verify`).
fn new_ecdsa_verifier(
    alg: Algorithm,
    curve: EcdsaCurve,
    key: &DecodingKey,
) -> Result<Box<dyn JwtVerifier>> {
    let key = prepare_ec_key(curve, key).map_err(|e| match e {
        EcKeyError::NotEc => ErrorKind::InvalidKeyFormat,
        _ => ErrorKind::InvalidEcdsaKey,
    })?;
    Ok(Box::new(EcdsaVerifier { alg, key }))
}

/// A verifier for ES256 or ES384 and one prepared key.
struct EcdsaVerifier {
    alg: Algorithm,
    key: Arc<EcdsaPublicKey>,
}

impl Verifier<Vec<u8>> for EcdsaVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.key
            .verify(msg, sig)
            .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for EcdsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// Same checks and errors as rust_crypto's `Hs256Verifier::new`: a key of another family (or not
/// held as bytes) is `InvalidKeyFormat`; HMAC takes a key of any length.
fn new_hmac_verifier<M: Mac + Clone + hmac::digest::KeyInit + 'static>(
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let mac = <M as Mac>::new_from_slice(key.try_get_as_bytes()?)
        .map_err(|_| ErrorKind::InvalidKeyFormat)?;
    Ok(Box::new(HmacVerifier { alg, mac }))
}

/// A verifier for one HMAC algorithm and one key: the keyed MAC, cloned for each message.
struct HmacVerifier<M> {
    alg: Algorithm,
    mac: M,
}

impl<M: Mac + Clone> Verifier<Vec<u8>> for HmacVerifier<M> {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let mut mac = self.mac.clone();
        mac.update(msg);
        // Constant time, and a tag of another length fails.
        mac.verify_slice(sig).map_err(signature::Error::from_source)
    }
}

impl<M: Mac + Clone> JwtVerifier for HmacVerifier<M> {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// Same checks and errors as rust_crypto's `EdDSAVerifier::new`: a key of another family (or not
/// held as bytes) is `InvalidKeyFormat`, and the first 32 bytes must be a point of the curve, else
/// `InvalidEddsaKey` (rust_crypto panics on fewer than 32 bytes; here they are `InvalidEddsaKey`).
fn new_eddsa_verifier(key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != AlgorithmFamily::Ed {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let bytes: &[u8; 32] = key
        .try_get_as_bytes()?
        .get(..32)
        .and_then(|first| first.try_into().ok())
        .ok_or(ErrorKind::InvalidEddsaKey)?;
    let key = Ed25519PublicKey::from_bytes(bytes).map_err(|_| ErrorKind::InvalidEddsaKey)?;
    Ok(Box::new(EdDsaVerifier(key)))
}

/// An Ed25519 verifier for one key (ed25519-dalek's verification, not its strict variant, as in
/// rust_crypto).
struct EdDsaVerifier(Ed25519PublicKey);

impl Verifier<Vec<u8>> for EdDsaVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.0
            .verify(msg, &ed25519_dalek::Signature::from_slice(sig)?)
    }
}

impl JwtVerifier for EdDsaVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

/// Returns the prepared form of an RSA `DecodingKey`, from the cache or by preparing and caching
/// it. Call it when loading a JWKS so that the first token does not pay for the preparation.
pub fn prepare_key(key: &DecodingKey) -> std::result::Result<Arc<RsaPublicKey>, KeyError> {
    if key.family() != AlgorithmFamily::Rsa {
        return Err(KeyError::NotRsa);
    }
    let matches = |s: &KeySource| s.matches(key.kind());
    if let Some(found) = lock(&RSA_CACHE).get(matches) {
        return Ok(found);
    }
    // Prepare without holding the lock; a concurrent duplicate is harmless.
    let prepared = Arc::new(match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => RsaPublicKey::from_pkcs1_der(der)?,
        DecodingKeyKind::RsaModulusExponent { n, e } => RsaPublicKey::from_components(n, e)?,
    });
    lock(&RSA_CACHE).insert(matches, || KeySource::new(key.kind()), &prepared);
    Ok(prepared)
}

/// Returns the prepared form (point and precomputed table) of an EC `DecodingKey` for `curve`,
/// from the cache or by preparing and caching it. Call it when loading a JWKS (with the curve of
/// the JWK's `crv`, or [`EcdsaCurve::from_algorithm`] of its `alg`) so that the first token does
/// not pay for the preparation; it also builds the curve's generator table on first use.
pub fn prepare_ec_key(
    curve: EcdsaCurve,
    key: &DecodingKey,
) -> std::result::Result<Arc<EcdsaPublicKey>, EcKeyError> {
    // rust_crypto reads the key with `try_get_as_bytes`, which refuses RSA components.
    let (AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(bytes)) = (key.family(), key.kind())
    else {
        return Err(EcKeyError::NotEc);
    };
    let matches = |s: &(EcdsaCurve, Vec<u8>)| s.0 == curve && s.1 == *bytes;
    if let Some(found) = lock(&EC_CACHE).get(matches) {
        return Ok(found);
    }
    let prepared = Arc::new(EcdsaPublicKey::from_sec1(curve, bytes)?);
    lock(&EC_CACHE).insert(matches, || (curve, bytes.clone()), &prepared);
    Ok(prepared)
}

/// Number of prepared RSA keys currently cached.
pub fn cached_keys() -> usize {
    lock(&RSA_CACHE).entries.len()
}

/// Number of prepared EC keys currently cached.
pub fn cached_ec_keys() -> usize {
    lock(&EC_CACHE).entries.len()
}

/// Drops every cached key, RSA and EC (for example after a JWKS rotation).
pub fn clear_cache() {
    lock(&RSA_CACHE).entries.clear();
    lock(&EC_CACHE).entries.clear();
}

static RSA_CACHE: Mutex<KeyCache<KeySource, RsaPublicKey>> = Mutex::new(KeyCache::new());
static EC_CACHE: Mutex<KeyCache<(EcdsaCurve, Vec<u8>), EcdsaPublicKey>> =
    Mutex::new(KeyCache::new());

fn lock<T>(cache: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    // The caches hold no invariant a panicking holder could break, so poisoning is ignored.
    cache
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

struct CacheEntry<S, T> {
    source: S,
    key: Arc<T>,
    last_used: u64,
}

/// A small least-recently-used cache of prepared keys `T`, each with the key bytes `S` it was
/// prepared from; linear scans are cheaper than hashing at this size.
struct KeyCache<S, T> {
    entries: Vec<CacheEntry<S, T>>,
    clock: u64,
}

impl<S, T> KeyCache<S, T> {
    const fn new() -> Self {
        KeyCache {
            entries: Vec::new(),
            clock: 0,
        }
    }

    fn get(&mut self, matches: impl Fn(&S) -> bool) -> Option<Arc<T>> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.iter_mut().find(|e| matches(&e.source))?;
        entry.last_used = clock;
        Some(Arc::clone(&entry.key))
    }

    fn insert(&mut self, matches: impl Fn(&S) -> bool, source: impl FnOnce() -> S, key: &Arc<T>) {
        self.clock += 1;
        if let Some(existing) = self.entries.iter_mut().find(|e| matches(&e.source)) {
            existing.last_used = self.clock;
            return;
        }
        let entry = CacheEntry {
            source: source(),
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
