//! NIST P-384 (secp384r1, FIPS 186-4 D.1.2.4): constants and field multiplication for
//! [`Curve`].

use std::sync::OnceLock;

use super::ecc::{limbs_from_hex, lt, mul_wide, sqr_wide, sub_limbs, unroll, unrolled_add_sub};
use super::ecc::{Affine, Curve, Limbs, Table};

/// The curve P-384.
#[derive(Clone, Copy, Debug)]
pub struct P384;

/// The field prime `p = 2^384 - 2^128 - 2^96 + 2^32 - 1`.
const P: Limbs<12> = limbs_from_hex(
    "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
);

impl Curve<12> for P384 {
    const P: Limbs<12> = P;
    const ORDER: Limbs<12> = limbs_from_hex(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    );
    const B: Limbs<12> = limbs_from_hex(
        "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    );
    const G: Affine<12> = Affine {
        x: limbs_from_hex(
            "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
        ),
        y: limbs_from_hex(
            "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
        ),
    };
    // Eight chunks of 48 bits: 48 doublings per verification. NAF widths 8 for the generator
    // (8 * 64 points, 48 KiB, built once per process) and 6 for a key (8 * 16 points, 12 KiB per
    // cached key); from measurements in V8 of 4 or 8 chunks and widths 5 to 8 (see
    // examples/verify_bench.rs).
    const CHUNKS: usize = 8;
    const G_WINDOW: u32 = 8;
    const KEY_WINDOW: u32 = 6;

    #[inline]
    fn fe_mul(a: &Limbs<12>, b: &Limbs<12>) -> Limbs<12> {
        reduce(mul_wide!(a, b, 24, [0 1 2 3 4 5 6 7 8 9 10 11]))
    }

    #[inline]
    fn fe_sqr(a: &Limbs<12>) -> Limbs<12> {
        reduce(sqr_wide!(a, 24, [0 1 2 3 4 5 6 7 8 9 10 11]))
    }

    unrolled_add_sub!(12, [0 1 2 3 4 5 6 7 8 9 10 11]);

    fn g_table() -> Option<&'static Table<12>> {
        static TABLE: OnceLock<Option<Table<12>>> = OnceLock::new();
        TABLE
            .get_or_init(|| Self::build_table(&Self::G, Self::G_WINDOW))
            .as_ref()
    }
}

/// Reduces 24 unreduced columns (each below 2^39) mod p.
///
/// `2^384 ≡ 2^128 + 2^96 - 2^32 + 1 (mod p)`, so column `k >= 12` moves to columns `k - 8`,
/// `k - 9`, `k - 11` (negated) and `k - 12`. Folding from the top also folds what lands in
/// columns 12 and up again; the signed columns stay below 2^45 in magnitude.
#[inline(always)]
fn reduce(wide: [u64; 24]) -> Limbs<12> {
    let mut t = [0i64; 24];
    unroll!([0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23], |i| {
        t[i] = wide[i] as i64;
    });
    unroll!([23 22 21 20 19 18 17 16 15 14 13 12], |k| {
        let v = t[k];
        t[k - 8] += v;
        t[k - 9] += v;
        t[k - 11] -= v;
        t[k - 12] += v;
    });
    let mut out = [0u32; 12];
    let mut carry = 0i64;
    unroll!([0 1 2 3 4 5 6 7 8 9 10 11], |i| {
        let v = t[i] + carry;
        out[i] = v as u32;
        carry = v >> 32;
    });
    // out + carry 2^384 with |carry| < 2^14. One fold leaves a carry of at most ±1 (it adds
    // less than 2^143 in magnitude); with +1 the value left is below 2^143 and with -1 above
    // 2^384 - 2^143, so the next fold (about ±2^128) cannot carry again.
    while carry != 0 {
        let c = carry;
        carry = 0;
        unroll!([0 1 2 3 4 5 6 7 8 9 10 11], |i| {
            let mut v = i64::from(out[i]) + carry;
            if i == 0 || i == 3 || i == 4 {
                v += c;
            }
            if i == 1 {
                v -= c;
            }
            out[i] = v as u32;
            carry = v >> 32;
        });
    }
    // Now out < 2^384 < 2p.
    if !lt(&out, &P) {
        out = sub_limbs(&out, &P).0;
    }
    out
}
