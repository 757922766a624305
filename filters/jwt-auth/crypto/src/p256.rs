//! NIST P-256 (secp256r1, FIPS 186-4 D.1.2.3): constants and field multiplication for
//! [`Curve`].

use std::sync::OnceLock;

use super::ecc::{limbs_from_hex, lt, mul_wide, sqr_wide, sub_limbs, unroll, unrolled_add_sub};
use super::ecc::{Affine, Curve, Limbs, Table};

/// The curve P-256.
#[derive(Clone, Copy, Debug)]
pub struct P256;

/// The field prime `p = 2^256 - 2^224 + 2^192 + 2^96 - 1`.
const P: Limbs<8> =
    limbs_from_hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");

impl Curve<8> for P256 {
    const P: Limbs<8> = P;
    const ORDER: Limbs<8> =
        limbs_from_hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    const B: Limbs<8> =
        limbs_from_hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
    const G: Affine<8> = Affine {
        x: limbs_from_hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
        y: limbs_from_hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    };
    // Eight chunks of 32 bits: 32 doublings per verification. NAF widths 8 for the generator
    // (8 * 64 points, 32 KiB, built once per process) and 6 for a key (8 * 16 points, 8 KiB per
    // cached key); from measurements in V8 of 4 or 8 chunks and widths 5 to 8 (see
    // examples/verify_bench.rs).
    const CHUNKS: usize = 8;
    const G_WINDOW: u32 = 8;
    const KEY_WINDOW: u32 = 6;

    #[inline]
    fn fe_mul(a: &Limbs<8>, b: &Limbs<8>) -> Limbs<8> {
        reduce(mul_wide!(a, b, 16, [0 1 2 3 4 5 6 7]))
    }

    #[inline]
    fn fe_sqr(a: &Limbs<8>) -> Limbs<8> {
        reduce(sqr_wide!(a, 16, [0 1 2 3 4 5 6 7]))
    }

    unrolled_add_sub!(8, [0 1 2 3 4 5 6 7]);

    fn g_table() -> Option<&'static Table<8>> {
        static TABLE: OnceLock<Option<Table<8>>> = OnceLock::new();
        TABLE
            .get_or_init(|| Self::build_table(&Self::G, Self::G_WINDOW))
            .as_ref()
    }
}

/// Reduces 16 unreduced columns (each below 2^38) mod p.
///
/// `2^256 ≡ 2^224 - 2^192 - 2^96 + 1 (mod p)`, so column `k >= 8` moves to columns `k - 1`,
/// `k - 2` (negated), `k - 5` (negated) and `k - 8`. Folding from the top also folds what lands
/// in columns 8 and up again; the signed columns stay below 2^48 in magnitude.
#[inline(always)]
fn reduce(wide: [u64; 16]) -> Limbs<8> {
    let mut t = [0i64; 16];
    unroll!([0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15], |i| {
        t[i] = wide[i] as i64;
    });
    unroll!([15 14 13 12 11 10 9 8], |k| {
        let v = t[k];
        t[k - 1] += v;
        t[k - 2] -= v;
        t[k - 5] -= v;
        t[k - 8] += v;
    });
    let mut out = [0u32; 8];
    let mut carry = 0i64;
    unroll!([0 1 2 3 4 5 6 7], |i| {
        let v = t[i] + carry;
        out[i] = v as u32;
        carry = v >> 32;
    });
    // out + carry 2^256 with |carry| < 2^17. One fold leaves a carry of at most ±1 (it adds
    // less than 2^241 in magnitude); with +1 the value left is below 2^241 and with -1 above
    // 2^256 - 2^241, so the next fold (about ±2^224) cannot carry again.
    while carry != 0 {
        let c = carry;
        carry = 0;
        unroll!([0 1 2 3 4 5 6 7], |i| {
            let mut v = i64::from(out[i]) + carry;
            if i == 0 || i == 7 {
                v += c;
            }
            if i == 3 || i == 6 {
                v -= c;
            }
            out[i] = v as u32;
            carry = v >> 32;
        });
    }
    // Now out < 2^256 < 2p.
    if !lt(&out, &P) {
        out = sub_limbs(&out, &P).0;
    }
    out
}
