//! A bounded differential fuzz of the verifier's arithmetic: `Modulus::pow_mod` on both limb
//! widths (28 bits up to 6,976-bit moduli, 26 bits above) against num-bigint, and the P-256 and
//! P-384 field and scalar operations against the p256/p384 crates.
//!
//! Each operation runs for `JWT_FUZZ_MILLIS` milliseconds (default 1,500) from the seed
//! `JWT_FUZZ_SEED` (default fixed); `make fuzz-crypto` sets both, with a random seed it prints
//! first so that a failure can be replayed. Every case failing names the seed and the inputs.

use std::time::{Duration, Instant};

use jwt_crypto::bignum::{be_to_limbs, limbs_to_be, Modulus, COLUMN_SUMS};
use jwt_crypto::ecc::{inv_mod_vartime, limbs_from_be, limbs_to_be as ec_to_be, lt};
use jwt_crypto::ecc::{sub_limbs, Curve, Limbs};
use jwt_crypto::p256::P256;
use jwt_crypto::p384::P384;
use num_bigint::BigUint;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seed used when `JWT_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x6a77_745f_6675_7a7a;

/// Which code the arithmetic runs: the bignum's column sums use SIMD128 in wasm only.
const PATH: &str = COLUMN_SUMS;

/// Largest modulus on 28-bit limbs; larger ones take 26-bit limbs.
const MAX_BITS_28: usize = 6976;
/// Largest RSA modulus the verifier accepts.
const MAX_RSA_BITS: usize = 8192;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => panic!("{name}={value} is not an unsigned integer"),
    }
}

/// The seed and time budget of one operation's run; each operation derives its own stream from
/// the seed so that one can be replayed alone.
fn budget(operation: &str) -> (u64, StdRng, Duration) {
    let seed = env_u64("JWT_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let millis = env_u64("JWT_FUZZ_MILLIS").unwrap_or(1500);
    let salt = operation
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    (
        seed,
        StdRng::seed_from_u64(seed ^ salt),
        Duration::from_millis(millis),
    )
}

/// Runs `case` repeatedly until the budget is spent; returns the number of iterations.
fn run(operation: &str, mut case: impl FnMut(&mut StdRng, u64)) -> u64 {
    let (seed, mut rng, limit) = budget(operation);
    let start = Instant::now();
    let mut iterations = 0u64;
    while start.elapsed() < limit {
        case(&mut rng, seed);
        iterations += 1;
    }
    println!(
        "fuzz {operation} ({PATH}): {iterations} iterations in {:?}, seed {seed}",
        start.elapsed()
    );
    assert!(iterations > 0);
    iterations
}

/// Random bytes with runs of 0x00 and 0xff mixed in, which exercise the carry paths.
fn patterned_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut i = 0;
    while i < len {
        let run = rng.gen_range(1..=16).min(len - i);
        let fill = match rng.gen_range(0..4) {
            0 => Some(0x00),
            1 => Some(0xff),
            _ => None,
        };
        for b in &mut out[i..i + run] {
            *b = fill.unwrap_or_else(|| rng.gen());
        }
        i += run;
    }
    out
}

fn random_odd_modulus(rng: &mut StdRng, bits: usize) -> Vec<u8> {
    let mut n = patterned_bytes(rng, bits.div_ceil(8));
    let excess = n.len() * 8 - bits;
    n[0] &= 0xff >> excess;
    n[0] |= 0x80 >> excess;
    *n.last_mut().expect("non-empty") |= 1;
    n
}

fn pow_case(rng: &mut StdRng, seed: u64, bits: usize) {
    let n = random_odd_modulus(rng, bits);
    let m = Modulus::from_be_bytes(&n).expect("odd modulus of an accepted size");
    // Any base of the modulus' limb count, so also values at or above n.
    let base = match rng.gen_range(0..8) {
        0 => n.clone(),
        1 => vec![0u8],
        _ => patterned_bytes(rng, 4 * m.limbs()),
    };
    let e: u64 = match rng.gen_range(0..6) {
        0 => 3,
        1 | 2 => 65537,
        3 => rng.gen_range(0..1 << 33),
        4 => rng.gen_range(0..64),
        _ => rng.gen(),
    };
    let limbs = be_to_limbs(&base, m.limbs()).expect("base fits");
    let mut out = vec![0u32; m.limbs()];
    m.pow_mod(&limbs, e, &mut out).expect("lengths match");
    let mut got = vec![0u8; 4 * m.limbs()];
    limbs_to_be(&out, &mut got).expect("fits");
    let want = BigUint::from_bytes_be(&base).modpow(&BigUint::from(e), &BigUint::from_bytes_be(&n));
    assert_eq!(
        BigUint::from_bytes_be(&got),
        want,
        "seed {seed}: {bits}-bit n {n:02x?}, base {base:02x?}, e {e}"
    );
}

#[test]
fn fuzz_pow_mod_28_bit_limbs() {
    run("pow_mod 28-bit limbs", |rng, seed| {
        // Mostly RSA sizes, with small and odd ones in between.
        let bits = match rng.gen_range(0..4) {
            0 => [1024, 2048, 3072, 4096][rng.gen_range(0..4)] + rng.gen_range(0..2),
            1 => rng.gen_range(2..=256),
            _ => rng.gen_range(2..=MAX_BITS_28),
        };
        pow_case(rng, seed, bits);
    });
}

#[test]
fn fuzz_pow_mod_26_bit_limbs() {
    run("pow_mod 26-bit limbs", |rng, seed| {
        let bits = match rng.gen_range(0..4) {
            0 => MAX_RSA_BITS,
            1 => MAX_BITS_28 + 1,
            _ => rng.gen_range(MAX_BITS_28 + 1..=MAX_RSA_BITS),
        };
        pow_case(rng, seed, bits);
    });
}

/// A value below `m`: random with runs of zeros and ones, or one next to 0, m, or a power of 2.
fn below<const N: usize>(rng: &mut StdRng, m: &Limbs<N>) -> Limbs<N> {
    let mut v: Limbs<N> = limbs_from_be(&patterned_bytes(rng, 4 * N)).expect("4N bytes");
    match rng.gen_range(0..8) {
        0 => {
            v = [0; N];
            v[0] = rng.gen_range(0..4);
        }
        1 => {
            let mut k = [0u32; N];
            k[0] = rng.gen_range(1..4);
            v = sub_limbs(m, &k).0;
        }
        2 => {
            v = [0; N];
            let bit = rng.gen_range(0..32 * N);
            v[bit / 32] = 1 << (bit % 32);
            if rng.gen() {
                let mut one = [0u32; N];
                one[0] = 1;
                v = sub_limbs(&v, &one).0;
            }
        }
        _ => {}
    }
    // m > 2^(32N - 1), so one subtraction brings any value below m.
    if !lt(&v, m) {
        v = sub_limbs(&v, m).0;
    }
    v
}

/// Field and scalar operations of one curve against its RustCrypto crate.
macro_rules! curve_fuzz {
    ($field_test:ident, $scalar_test:ident, $n:literal, $ours:ty, $theirs:ident) => {
        #[test]
        fn $field_test() {
            use $theirs::{FieldBytes, FieldElement};
            let fe = |v: &Limbs<$n>| -> FieldElement {
                Option::from(FieldElement::from_bytes(FieldBytes::from_slice(&ec_to_be(
                    v,
                ))))
                .expect("below p")
            };
            let bytes = |f: &FieldElement| f.to_bytes().to_vec();
            run(concat!(stringify!($theirs), " field"), |rng, seed| {
                let a = below(rng, &<$ours>::P);
                let b = below(rng, &<$ours>::P);
                let (fa, fb) = (fe(&a), fe(&b));
                let what = format!("seed {seed}: a {a:08x?}, b {b:08x?}");
                assert_eq!(
                    ec_to_be(&<$ours>::fe_mul(&a, &b)),
                    bytes(&(fa * fb)),
                    "mul {what}"
                );
                assert_eq!(
                    ec_to_be(&<$ours>::fe_sqr(&a)),
                    bytes(&fa.square()),
                    "sqr {what}"
                );
                assert_eq!(
                    ec_to_be(&<$ours>::fe_add(&a, &b)),
                    bytes(&(fa + fb)),
                    "add {what}"
                );
                assert_eq!(
                    ec_to_be(&<$ours>::fe_sub(&a, &b)),
                    bytes(&(fa - fb)),
                    "sub {what}"
                );
                assert_eq!(ec_to_be(&<$ours>::fe_neg(&a)), bytes(&(-fa)), "neg {what}");
                let inverse: Option<FieldElement> = fa.invert().into();
                assert_eq!(
                    inv_mod_vartime(&a, &<$ours>::P).map(|v| ec_to_be(&v)),
                    inverse.map(|v| bytes(&v)),
                    "inv {what}"
                );
                // A square root is defined up to its sign.
                let root: Option<FieldElement> = fa.sqrt().into();
                match (<$ours>::fe_sqrt(&a), root) {
                    (None, None) => {}
                    (Some(ours), Some(theirs)) => {
                        let ours = ec_to_be(&ours);
                        assert!(
                            ours == bytes(&theirs) || ours == bytes(&-theirs),
                            "sqrt {what}"
                        );
                    }
                    (ours, theirs) => panic!("sqrt {what}: {ours:?} vs {theirs:?}"),
                }
            });
        }

        #[test]
        fn $scalar_test() {
            use $theirs::elliptic_curve::ff::PrimeField as _;
            use $theirs::{FieldBytes, Scalar};
            let scalar = |v: &Limbs<$n>| -> Scalar {
                Option::from(Scalar::from_repr(FieldBytes::clone_from_slice(&ec_to_be(
                    v,
                ))))
                .expect("below n")
            };
            let bytes = |s: &Scalar| s.to_repr().to_vec();
            let mut one = [0u32; $n];
            one[0] = 1;
            run(concat!(stringify!($theirs), " scalar"), |rng, seed| {
                let a = below(rng, &<$ours>::ORDER);
                let b = below(rng, &<$ours>::ORDER);
                let what = format!("seed {seed}: a {a:08x?}, b {b:08x?}");
                // Montgomery: (a b R^-1) R^2 R^-1 = a b.
                let ab =
                    <$ours>::scalar_mont_mul(&<$ours>::scalar_mont_mul(&a, &b), &<$ours>::ORDER_RR);
                assert_eq!(
                    ec_to_be(&ab),
                    bytes(&(scalar(&a) * scalar(&b))),
                    "mul {what}"
                );
                let inverse: Option<Scalar> = scalar(&a).invert().into();
                let ours = <$ours>::scalar_inv_mont(&a)
                    .map(|v| ec_to_be(&<$ours>::scalar_mont_mul(&v, &one)));
                assert_eq!(ours, inverse.map(|v| bytes(&v)), "inv {what}");
            });
        }
    };
}

curve_fuzz!(fuzz_p256_field, fuzz_p256_scalar, 8, P256, p256);
curve_fuzz!(fuzz_p384_field, fuzz_p384_scalar, 12, P384, p384);

/// The wasm build of this test runs in V8 for the SIMD path; a build that lost it would silently
/// test the scalar one twice.
#[test]
fn fuzz_runs_the_simd_path_in_wasm() {
    assert_eq!(cfg!(target_arch = "wasm32"), PATH == "wasm32 SIMD128");
}
