//! Wycheproof's vectors for the algorithms JWT uses, through the verifiers the filter calls:
//! ECDSA in P1363 form (`r || s`, as in JWS) on P-256/SHA-256, P-384/SHA-384 and P-521/SHA-512;
//! RSASSA-PKCS1-v1_5 with SHA-256/384/512 at 2,048 to 8,192 bits; RSASSA-PSS where the MGF1 hash
//! is the message hash and the salt is as long as the hash (what PS256/384/512 mean).
//!
//! Every vector must give its expected result. "Acceptable" vectors are ones a verifier may
//! accept or refuse; ours refuses them, as explained at [`ACCEPTABLE`].

use jsonwebtoken::{Algorithm, DecodingKey};
use jwt_crypto::new_verifier;
use jwt_crypto::p521::P521PublicKey;
use wycheproof::{ecdsa, rsa_pkcs1_verify as pkcs1, rsa_pss_verify as pss};
use wycheproof::{HashFunction, Mgf, TestResult};

/// How many "acceptable" vectors each family has; the verifier refuses all of them.
///
/// - ECDSA P1363: none.
/// - RSA PKCS#1 v1.5: one per key size and hash, a DigestInfo without the NULL parameters of the
///   hash's AlgorithmIdentifier. RFC 8017 encodes the NULL and compares the whole encoding, as the
///   `rsa` crate and BoringSSL (Envoy) do, so it is refused.
/// - RSA-PSS (hash-long salt, MGF1 on the same hash): none.
///
/// [`Tally::finish`] asserts these counts, so a crate version that adds acceptable vectors fails
/// the test until the choice for them is made and written down here.
const ACCEPTABLE: [(&str, usize); 3] = [("ecdsa", 0), ("pkcs1", 12), ("pss", 0)];

/// Counts of vectors run, per expected result.
#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, what: String, expected: &TestResult, accepted: bool) {
        let ok = match expected {
            TestResult::Valid => {
                self.valid += 1;
                accepted
            }
            TestResult::Invalid => {
                self.invalid += 1;
                !accepted
            }
            TestResult::Acceptable => {
                self.acceptable += 1;
                !accepted
            }
        };
        if !ok {
            self.failures.push(format!(
                "{what}: expected {expected:?}, accepted {accepted}"
            ));
        }
    }

    fn finish(self, family: &str, minimum: usize) {
        let total = self.valid + self.invalid + self.acceptable;
        println!(
            "wycheproof {family} ({}): {total} vectors ({} valid, {} invalid, {} acceptable)",
            std::env::consts::ARCH,
            self.valid,
            self.invalid,
            self.acceptable
        );
        assert!(self.failures.is_empty(), "{family}: {:#?}", self.failures);
        let expected_acceptable = ACCEPTABLE
            .iter()
            .find(|(f, _)| family.starts_with(f))
            .map_or(0, |(_, n)| *n);
        assert_eq!(self.acceptable, expected_acceptable, "{family}");
        // Guards against a filter that silently selects nothing.
        assert!(total >= minimum, "{family}: only {total} vectors");
        assert!(self.valid > 0 && self.invalid > 0, "{family}");
    }
}

fn verify(alg: Algorithm, key: &DecodingKey, msg: &[u8], sig: &[u8]) -> bool {
    new_verifier(&alg, key).is_ok_and(|v| v.verify(msg, &sig.to_vec()).is_ok())
}

fn ecdsa_family(name: ecdsa::TestName, alg: Option<Algorithm>, label: &str, minimum: usize) {
    let set = ecdsa::TestSet::load(name).expect("embedded vectors");
    let mut tally = Tally::default();
    for group in set.test_groups {
        let point: &[u8] = &group.key.key;
        let p521 = P521PublicKey::from_uncompressed(point);
        let key = DecodingKey::from_ec_der(point);
        for test in &group.tests {
            let accepted = match alg {
                Some(alg) => verify(alg, &key, &test.msg, &test.sig),
                None => p521
                    .as_ref()
                    .is_ok_and(|k| k.verify(&test.msg, &test.sig).is_ok()),
            };
            let what = format!("{label} #{} {}", test.tc_id, test.comment);
            tally.record(what, &test.result, accepted);
        }
    }
    tally.finish(label, minimum);
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    ecdsa_family(
        ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
        Some(Algorithm::ES256),
        "ecdsa P-256",
        250,
    );
}

#[test]
fn wycheproof_ecdsa_p384_sha384_p1363() {
    ecdsa_family(
        ecdsa::TestName::EcdsaSecp384r1Sha384P1363,
        Some(Algorithm::ES384),
        "ecdsa P-384",
        250,
    );
}

#[test]
fn wycheproof_ecdsa_p521_sha512_p1363() {
    ecdsa_family(
        ecdsa::TestName::EcdsaSecp521r1Sha512P1363,
        None,
        "ecdsa P-521",
        250,
    );
}

/// The JWT algorithm for an RSA padding and a Wycheproof hash; `None` for hashes JWT lacks.
fn rsa_alg(pss: bool, hash: &HashFunction) -> Option<Algorithm> {
    Some(match (pss, hash) {
        (false, HashFunction::Sha2_256) => Algorithm::RS256,
        (false, HashFunction::Sha2_384) => Algorithm::RS384,
        (false, HashFunction::Sha2_512) => Algorithm::RS512,
        (true, HashFunction::Sha2_256) => Algorithm::PS256,
        (true, HashFunction::Sha2_384) => Algorithm::PS384,
        (true, HashFunction::Sha2_512) => Algorithm::PS512,
        _ => return None,
    })
}

fn hash_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::PS256 => 32,
        Algorithm::PS384 => 48,
        _ => 64,
    }
}

#[test]
fn wycheproof_rsa_pkcs1v15() {
    let mut tally = Tally::default();
    let mut sizes = std::collections::BTreeMap::<usize, usize>::new();
    for name in pkcs1::TestName::all() {
        let set = pkcs1::TestSet::load(name).expect("embedded vectors");
        for group in set.test_groups {
            let Some(alg) = rsa_alg(false, &group.hash) else {
                continue;
            };
            if !(2048..=8192).contains(&group.key_size) {
                continue;
            }
            let key = DecodingKey::from_rsa_raw_components(&group.key.n, &group.key.e);
            *sizes.entry(group.key_size).or_default() += group.tests.len();
            for test in &group.tests {
                let accepted = verify(alg, &key, &test.msg, &test.sig);
                let what = format!(
                    "{name:?} {alg:?} #{} {} {:?}",
                    test.tc_id, test.comment, test.flags
                );
                tally.record(what, &test.result, accepted);
            }
        }
    }
    println!("wycheproof pkcs1 vectors per key size: {sizes:?}");
    assert!(sizes.contains_key(&8192), "{sizes:?}");
    tally.finish("pkcs1 RS256/384/512", 1000);
}

#[test]
fn wycheproof_rsa_pss() {
    let mut tally = Tally::default();
    for name in pss::TestName::all() {
        let set = pss::TestSet::load(name).expect("embedded vectors");
        for group in set.test_groups {
            // The `_params` files repeat the same vectors with the key's PSS parameters in its
            // SubjectPublicKeyInfo, which a JWK does not carry.
            if group.test_type != pss::TestGroupTypeId::RsaPssVerify {
                continue;
            }
            let Some(alg) = rsa_alg(true, &group.hash) else {
                continue;
            };
            let matching = group.mgf == Mgf::Mgf1
                && group.mgf_hash.as_ref() == Some(&group.hash)
                && group.salt_size == hash_len(alg);
            if !matching {
                continue;
            }
            let key = DecodingKey::from_rsa_raw_components(&group.key.n, &group.key.e);
            for test in &group.tests {
                let accepted = verify(alg, &key, &test.msg, &test.sig);
                let what = format!(
                    "{name:?} {alg:?} #{} {} {:?}",
                    test.tc_id, test.comment, test.flags
                );
                tally.record(what, &test.result, accepted);
            }
        }
    }
    tally.finish("pss PS256/384/512", 700);
}
