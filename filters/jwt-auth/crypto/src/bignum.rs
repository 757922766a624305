//! Variable-time Montgomery arithmetic for RSA public-key operations.
//!
//! Numbers are held in limbs of `w` = 28 bits (26 for moduli over 6,976 bits), one per `u32`, so
//! that a product of two limbs fits in 56 bits and a whole column of products can be summed in a
//! `u64` with no carry handling inside the sum. Multiplication scans products column by column
//! (Montgomery reduction interleaved, as in Koç et al.'s FIPS method), and every column is a dot
//! product of two contiguous slices: one operand is stored reversed. In wasm with SIMD128 the dot
//! products use `i64x2.extmul_*_u32x4`, two 32x32->64 products per instruction: an RS256 check
//! in V8 went from about 80 µs (32-bit limbs with scalar carry chains; wasm32 has no 64x64->128
//! multiply, and its carries cost several instructions each) to about 60 µs.
//!
//! Nothing here is constant-time; it must only ever see public data (moduli, exponents,
//! signatures). The public interface takes and returns 32-bit limbs.
//!
//! Bounds: with `R = 2^(w k) >= 4n` and inputs below `2n`, every product stays below `2n`, so no
//! step needs a final subtraction; one is done at the end.

use std::cmp::Ordering;

/// Largest modulus accepted by [`Modulus::from_be_bytes`], in bits. The RSA layer applies
/// Envoy's stricter 8,192-bit limit on top of this one.
pub const MAX_MODULUS_BITS: usize = 16384;

/// With 28-bit limbs a column sums up to `limbs` products below 2^56 (doubled ones for squares,
/// plus one square), which fits in a `u64` only up to this many limbs; more take 26-bit limbs.
const MAX_LIMBS_28: usize = 250;

/// An odd modulus `n >= 3` with its Montgomery constants, for `R = 2^(w * k)`.
#[derive(Clone, Debug)]
pub struct Modulus {
    /// `n` in `k` limbs of `w` bits, little-endian.
    n: Vec<u32>,
    /// The same limbs in reverse order, for the column dot products.
    n_reversed: Vec<u32>,
    /// Bits per limb: 28, or 26 for large moduli.
    w: u32,
    /// `2^w - 1`.
    mask: u64,
    /// `-n^-1 mod 2^w`.
    n0inv: u64,
    /// `R^2 mod n` in `k` limbs, used to move values into Montgomery form.
    rr: Vec<u32>,
    /// `n` as 32-bit limbs, little-endian, the top one non-zero: the public form.
    n32: Vec<u32>,
    /// Bit length of `n`.
    bits: usize,
}

/// Which code computes the column sums, for the tests to check that wasm runs the SIMD path.
#[cfg(target_arch = "wasm32")]
pub const COLUMN_SUMS: &str = "wasm32 SIMD128";
/// Which code computes the column sums, for the tests to check that wasm runs the SIMD path.
#[cfg(not(target_arch = "wasm32"))]
pub const COLUMN_SUMS: &str = "scalar";

/// `sum x[j] * y[j]` over two slices of equal length whose limbs are below 2^28 (the caller
/// keeps the sum below 2^64).
///
/// SIMD128 is enabled on [`Modulus::columns`] only, not for the whole build, so only modules that
/// link the RSA verifier contain SIMD instructions. This is a macro so that it expands inside
/// `columns`: rustc refuses `#[inline(always)]` on a `#[target_feature]` function, and LLVM left
/// such a function as a call per column. Wasm has no runtime feature detection; a module with
/// SIMD needs an engine that has it (V8 and wasmtime do) and one without refuses it at load, which
/// is also why rustc lets safe code call `columns`.
#[cfg(target_arch = "wasm32")]
macro_rules! dot {
    ($x:expr, $y:expr) => {{
        use core::arch::wasm32::{
            i64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4, u64x2_extract_lane,
            u64x2_splat, v128, v128_load,
        };
        let (x, y): (&[u32], &[u32]) = ($x, $y);
        let mut low = u64x2_splat(0);
        let mut high = u64x2_splat(0);
        let mut xs = x.chunks_exact(4);
        let mut ys = y.chunks_exact(4);
        for (a, b) in (&mut xs).zip(&mut ys) {
            // SAFETY: each chunk is 4 u32s, 16 readable bytes; v128_load needs no alignment.
            let (va, vb) = unsafe {
                (
                    v128_load(a.as_ptr().cast::<v128>()),
                    v128_load(b.as_ptr().cast::<v128>()),
                )
            };
            low = i64x2_add(low, u64x2_extmul_low_u32x4(va, vb));
            high = i64x2_add(high, u64x2_extmul_high_u32x4(va, vb));
        }
        let sum = i64x2_add(low, high);
        let mut s = u64x2_extract_lane::<0>(sum) + u64x2_extract_lane::<1>(sum);
        for (&a, &b) in xs.remainder().iter().zip(ys.remainder()) {
            s += u64::from(a) * u64::from(b);
        }
        s
    }};
}

/// `sum x[j] * y[j]`, scalar.
#[cfg(not(target_arch = "wasm32"))]
macro_rules! dot {
    ($x:expr, $y:expr) => {
        dot_scalar($x, $y)
    };
}

/// `sum x[j] * y[j]`, scalar, in two independent sums.
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn dot_scalar(x: &[u32], y: &[u32]) -> u64 {
    let (mut s0, mut s1) = (0u64, 0u64);
    let mut xs = x.chunks_exact(2);
    let mut ys = y.chunks_exact(2);
    for (a, b) in (&mut xs).zip(&mut ys) {
        s0 += u64::from(a[0]) * u64::from(b[0]);
        s1 += u64::from(a[1]) * u64::from(b[1]);
    }
    for (&a, &b) in xs.remainder().iter().zip(ys.remainder()) {
        s0 += u64::from(a) * u64::from(b);
    }
    s0 + s1
}

/// Scratch space for one exponentiation: an operand reversed, and the reduction's quotient
/// digits.
struct Scratch {
    reversed: Vec<u32>,
    m: Vec<u32>,
}

impl Modulus {
    /// Prepares an odd modulus `3 <= n < 2^MAX_MODULUS_BITS` given as big-endian bytes (leading
    /// zeros allowed); `None` for anything else.
    pub fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes = strip_leading_zeros(bytes);
        if bytes.len() * 8 > MAX_MODULUS_BITS {
            return None;
        }
        let n32 = be_to_limbs(bytes, bytes.len().div_ceil(4))?;
        let (&low, &top) = (n32.first()?, n32.last()?);
        if low & 1 == 0 || (n32.len() == 1 && low < 3) {
            return None;
        }
        let bits = 32 * n32.len() - top.leading_zeros() as usize;
        // R >= 2^(32 l + 2) gives R > 4n, which keeps products below 2n, and lets in any base of
        // l 32-bit limbs (below R / 4).
        let needed = 32 * n32.len() + 2;
        let (w, k) = match needed.div_ceil(28) {
            k if k <= MAX_LIMBS_28 => (28, k),
            _ => (26, needed.div_ceil(26)),
        };
        let mask = (1u64 << w) - 1;
        let n = to_radix(&n32, w, k)?;
        let mut m = Modulus {
            n_reversed: n.iter().rev().copied().collect(),
            n,
            w,
            mask,
            n0inv: u64::from(neg_inverse_mod_2_32(low)) & mask,
            rr: Vec::new(),
            n32,
            bits,
        };
        m.rr = m.compute_rr();
        Some(m)
    }

    /// Number of 32-bit limbs of `n` (and of every operand).
    pub fn limbs(&self) -> usize {
        self.n32.len()
    }

    /// Bit length of `n`.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Length of `n` in bytes without leading zeros.
    pub fn byte_len(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// The 32-bit limbs of `n`, little-endian.
    pub fn as_limbs(&self) -> &[u32] {
        &self.n32
    }

    /// Compares a `limbs()`-long value with `n`.
    pub fn cmp_limbs(&self, x: &[u32]) -> Ordering {
        cmp_limbs(x, &self.n32)
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            reversed: vec![0; self.n.len()],
            m: vec![0; self.n.len()],
        }
    }

    /// Computes `base^e mod n` into `out`. `base` may be any `limbs()`-long value (it need not be
    /// reduced below `n`); `out` gets `limbs()` limbs, fully reduced. `None` if the lengths differ.
    pub fn pow_mod(&self, base: &[u32], e: u64, out: &mut [u32]) -> Option<()> {
        let l = self.limbs();
        if base.len() != l || out.len() != l {
            return None;
        }
        if e == 0 {
            // n >= 3, so 1 is already reduced.
            out.fill(0);
            out[0] = 1;
            return Some(());
        }
        let k = self.n.len();
        // base < 2^(32 l) < R / 2.
        let base = to_radix(base, self.w, k)?;
        let mut scratch = self.scratch();
        // x = base * R mod n (below 2n): the Montgomery form of base.
        let mut x = vec![0u32; k];
        self.mul(&base, &self.rr, &mut scratch, &mut x);
        let mut acc = x.clone();
        let mut t = vec![0u32; k];
        let top = 63 - e.leading_zeros();
        let mut in_montgomery_form = true;
        for i in (0..top).rev() {
            self.sqr(&acc, &mut scratch, &mut t);
            std::mem::swap(&mut acc, &mut t);
            if (e >> i) & 1 == 1 {
                // Multiplying by the plain base at the last bit both multiplies and leaves
                // Montgomery form: acc * base * R^-1 = base^e. Odd exponents (all of RSA) thus
                // need no separate conversion.
                let factor = if i == 0 { &base } else { &x };
                self.mul(&acc, factor, &mut scratch, &mut t);
                std::mem::swap(&mut acc, &mut t);
                in_montgomery_form = i != 0;
            }
        }
        if in_montgomery_form {
            let mut one = vec![0u32; k];
            one[0] = 1;
            self.mul(&acc, &one, &mut scratch, &mut t);
            std::mem::swap(&mut acc, &mut t);
        }
        self.reduce_once(&mut acc);
        from_radix(&acc, self.w, out)
    }

    /// `out = a * b * R^-1 mod n`, below `2n` for `a, b < 2n` (or `a < 2n`, `b < R / 2`).
    fn mul(&self, a: &[u32], b: &[u32], scratch: &mut Scratch, out: &mut [u32]) {
        for (r, &x) in scratch.reversed.iter_mut().zip(b.iter().rev()) {
            *r = x;
        }
        self.columns::<false>(a, scratch, out);
    }

    /// `out = a^2 * R^-1 mod n`, below `2n` for `a < 2n`.
    fn sqr(&self, a: &[u32], scratch: &mut Scratch, out: &mut [u32]) {
        for (r, &x) in scratch.reversed.iter_mut().zip(a.iter().rev()) {
            *r = x;
        }
        self.columns::<true>(a, scratch, out);
    }

    /// The product of `a` and the operand in `scratch.reversed` (`a` itself when `SQUARE`, whose
    /// cross products are then summed once and doubled), with the reduction `m * n` added column
    /// by column: column `i` holds `sum a[j] b[i - j] + sum m[j] n[i - j]` plus the carry, and
    /// `m[i]` is chosen so that the low `k` columns vanish; the high `k` are the result.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn columns<const SQUARE: bool>(&self, a: &[u32], scratch: &mut Scratch, out: &mut [u32]) {
        let (k, w, mask) = (self.n.len(), self.w, self.mask);
        let (rev, m) = (&scratch.reversed[..], &mut scratch.m[..]);
        let (n0, n_rev) = (u64::from(self.n[0]), &self.n_reversed[..]);
        // rev[k - 1 - t] is limb t of the other operand, so b[i - j] for j = 0.. is
        // rev[k - 1 - i + j..], contiguous.
        let product = |i: usize, lo: usize| -> u64 {
            let start = k - 1 + lo - i;
            if SQUARE {
                let pairs = i.div_ceil(2) - lo;
                let mut s = 2 * dot!(&a[lo..lo + pairs], &rev[start..start + pairs]);
                if i.is_multiple_of(2) {
                    s += u64::from(a[i / 2]) * u64::from(a[i / 2]);
                }
                s
            } else {
                let end = (i + 1).min(k);
                dot!(&a[lo..end], &rev[start..start + end - lo])
            }
        };
        let mut carry = 0u64;
        for i in 0..k {
            let ab = product(i, 0);
            let mn = dot!(&m[..i], &n_rev[k - 1 - i..k - 1]);
            let s = (ab & mask) + (mn & mask) + carry;
            let mi = ((s & mask) * self.n0inv) & mask;
            m[i] = mi as u32;
            // The low w bits of s + mi * n0 are zero by the choice of mi.
            carry = (ab >> w) + (mn >> w) + ((s + mi * n0) >> w);
        }
        for i in k..2 * k - 1 {
            let lo = i + 1 - k;
            let ab = product(i, lo);
            let mn = dot!(&m[lo..], &n_rev[..k - lo]);
            let s = (ab & mask) + (mn & mask) + carry;
            out[i - k] = (s & mask) as u32;
            carry = (ab >> w) + (mn >> w) + (s >> w);
        }
        // The result is below 2n < R, so the last carry is a single limb.
        out[k - 1] = carry as u32;
    }

    /// Reduces `x < 2n` below `n` in place.
    fn reduce_once(&self, x: &mut [u32]) {
        if cmp_limbs(x, &self.n) != Ordering::Less {
            let mut borrow = 0u64;
            for (xi, &ni) in x.iter_mut().zip(&self.n) {
                let d = u64::from(*xi)
                    .wrapping_sub(u64::from(ni))
                    .wrapping_sub(borrow);
                *xi = (d & self.mask) as u32;
                borrow = d >> 63;
            }
        }
    }

    /// `x = 2x mod n` for `x < n`.
    fn double_mod(&self, x: &mut [u32]) {
        let mut carry = 0;
        for xi in x.iter_mut() {
            let d = (*xi << 1) | carry;
            *xi = d & self.mask as u32;
            carry = d >> self.w;
        }
        // 2n < R, so nothing is carried out, and 2x < 2n needs one subtraction at most.
        self.reduce_once(x);
    }

    /// `R^2 mod n`: start from `R mod n` (the Montgomery form of 1) and raise the Montgomery
    /// form of 2 to the power `w * k` with squarings and modular doublings, which is far
    /// cheaper than doubling `w * k` times.
    fn compute_rr(&self) -> Vec<u32> {
        let k = self.n.len();
        let w = self.w as usize;
        // 2^(bits - 1) < n, doubled (w k - bits + 1) times gives 2^(w k) mod n = R mod n.
        let mut x = vec![0u32; k];
        x[(self.bits - 1) / w] = 1 << ((self.bits - 1) % w);
        for _ in 0..(w * k - self.bits + 1) {
            self.double_mod(&mut x);
        }
        let exp = w * k;
        let mut scratch = self.scratch();
        let mut t = vec![0u32; k];
        for i in (0..usize::BITS - exp.leading_zeros()).rev() {
            self.sqr(&x, &mut scratch, &mut t);
            self.reduce_once(&mut t);
            std::mem::swap(&mut x, &mut t);
            if (exp >> i) & 1 == 1 {
                self.double_mod(&mut x);
            }
        }
        x
    }
}

/// `-x^-1 mod 2^32` for odd `x`, by Newton iteration (each step doubles the correct low bits;
/// `x` itself is a correct inverse modulo 2^3).
fn neg_inverse_mod_2_32(x: u32) -> u32 {
    let mut inv = x;
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(x.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// Regroups the bits of `src` (little-endian limbs of `from` bits) into `out` (limbs of `to`
/// bits); `None` if the value does not fit. Both widths are at most 32.
fn regroup(src: &[u32], from: u32, out: &mut [u32], to: u32) -> Option<()> {
    let mask = (1u64 << to) - 1;
    out.fill(0);
    let (mut acc, mut held, mut next) = (0u64, 0u32, 0usize);
    let mut emit = |digit: u64, next: &mut usize| -> Option<()> {
        match out.get_mut(*next) {
            Some(slot) => *slot = digit as u32,
            None if digit != 0 => return None,
            None => {}
        }
        *next += 1;
        Some(())
    };
    for &limb in src {
        acc |= u64::from(limb) << held;
        held += from;
        while held >= to {
            emit(acc & mask, &mut next)?;
            acc >>= to;
            held -= to;
        }
    }
    emit(acc, &mut next)
}

/// 32-bit limbs to `k` limbs of `w` bits; `None` if the value does not fit.
fn to_radix(src: &[u32], w: u32, k: usize) -> Option<Vec<u32>> {
    let mut out = vec![0u32; k];
    regroup(src, 32, &mut out, w)?;
    Some(out)
}

/// `w`-bit limbs to the 32-bit limbs of `out`; `None` if the value does not fit.
fn from_radix(src: &[u32], w: u32, out: &mut [u32]) -> Option<()> {
    regroup(src, w, out, 32)
}

/// Drops leading zero bytes of a big-endian number.
pub fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Big-endian bytes to `limbs` little-endian limbs; `None` if the value does not fit.
pub fn be_to_limbs(bytes: &[u8], limbs: usize) -> Option<Vec<u32>> {
    let bytes = strip_leading_zeros(bytes);
    if bytes.len() > 4 * limbs {
        return None;
    }
    let mut out = vec![0u32; limbs];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks(4)) {
        *limb = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    }
    Some(out)
}

/// Writes little-endian limbs as a big-endian number filling `out` exactly; `None` if it does
/// not fit.
pub fn limbs_to_be(limbs: &[u32], out: &mut [u8]) -> Option<()> {
    out.fill(0);
    for (i, &limb) in limbs.iter().enumerate() {
        for (k, byte) in limb.to_le_bytes().into_iter().enumerate() {
            let pos = 4 * i + k;
            if pos < out.len() {
                let idx = out.len() - 1 - pos;
                out[idx] = byte;
            } else if byte != 0 {
                return None;
            }
        }
    }
    Some(())
}

/// Compares two little-endian numbers of the same limb count.
pub fn cmp_limbs(a: &[u32], b: &[u32]) -> Ordering {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        match x.cmp(y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rsa::BigUint;

    fn reference_pow(base: &[u8], e: u64, n: &[u8]) -> Vec<u8> {
        BigUint::from_bytes_be(base)
            .modpow(&BigUint::from(e), &BigUint::from_bytes_be(n))
            .to_bytes_be()
    }

    fn ours_pow(m: &Modulus, base: &[u8], e: u64) -> Vec<u8> {
        let b = be_to_limbs(base, m.limbs()).expect("base fits");
        let mut out = vec![0u32; m.limbs()];
        m.pow_mod(&b, e, &mut out).expect("lengths match");
        let mut bytes = vec![0u8; 4 * m.limbs()];
        limbs_to_be(&out, &mut bytes).expect("fits");
        let s = strip_leading_zeros(&bytes).to_vec();
        if s.is_empty() {
            vec![0]
        } else {
            s
        }
    }

    fn random_odd_modulus(rng: &mut StdRng, bits: usize) -> Vec<u8> {
        let mut n = vec![0u8; bits.div_ceil(8)];
        rng.fill(&mut n[..]);
        let excess = n.len() * 8 - bits;
        n[0] &= 0xff >> excess;
        n[0] |= 0x80 >> excess;
        *n.last_mut().expect("non-empty") |= 1;
        n
    }

    #[test]
    fn neg_inverse() {
        for x in [1u32, 3, 5, 0xffff_ffff, 0x8000_0001, 0x1234_5677] {
            assert_eq!(x.wrapping_mul(neg_inverse_mod_2_32(x)), u32::MAX);
        }
    }

    #[test]
    fn rejects_bad_moduli() {
        for bad in [
            &[][..],
            &[0],
            &[0, 0],
            &[1],
            &[2],
            &[0, 1],
            &[4],
            &[0x01, 0x00],
        ] {
            assert!(Modulus::from_be_bytes(bad).is_none(), "{bad:?}");
        }
        assert!(Modulus::from_be_bytes(&[3]).is_some());
        assert!(Modulus::from_be_bytes(&[0, 0, 5]).is_some());
        let mut too_big = vec![0xffu8; MAX_MODULUS_BITS / 8 + 1];
        too_big[0] = 1;
        assert!(Modulus::from_be_bytes(&too_big).is_none());
        assert!(Modulus::from_be_bytes(&vec![0xffu8; MAX_MODULUS_BITS / 8]).is_some());
    }

    #[test]
    fn rr_matches_reference() {
        let mut rng = StdRng::seed_from_u64(1);
        for bits in [
            2, 3, 31, 32, 33, 63, 64, 65, 512, 1023, 1024, 2048, 2049, 4096,
        ] {
            let n = random_odd_modulus(&mut rng, bits.max(2));
            let m = Modulus::from_be_bytes(&n).expect("valid");
            let r2 = BigUint::from(1u8) << (2 * m.w as usize * m.n.len());
            let expect = r2 % BigUint::from_bytes_be(&n);
            let mut rr = vec![0u32; m.limbs()];
            from_radix(&m.rr, m.w, &mut rr).expect("rr < n fits");
            let mut got = vec![0u8; 4 * m.limbs()];
            limbs_to_be(&rr, &mut got).expect("fits");
            assert_eq!(BigUint::from_bytes_be(&got), expect, "bits {bits}");
        }
    }

    #[test]
    fn pow_matches_reference_random() {
        let mut rng = StdRng::seed_from_u64(2);
        let sizes = [
            2usize, 3, 8, 31, 32, 33, 64, 100, 512, 1024, 1025, 2047, 2048, 2056, 3072, 4096, 6976,
            6977, 8192,
        ];
        for &bits in &sizes {
            let n = random_odd_modulus(&mut rng, bits);
            let m = Modulus::from_be_bytes(&n).expect("valid");
            let rounds = if bits >= 4096 { 2 } else { 6 };
            for round in 0..rounds {
                // Bases below R, including ones >= n, plus the edge values.
                let mut base = vec![0u8; 4 * m.limbs()];
                rng.fill(&mut base[..]);
                let base = match round {
                    0 => vec![0u8],
                    1 => vec![1u8],
                    2 => (BigUint::from_bytes_be(&n) - 1u8).to_bytes_be(),
                    3 => n.clone(),
                    _ => base,
                };
                for e in [0u64, 1, 2, 3, 4, 17, 65537, 65536, (1 << 33) - 1, u64::MAX] {
                    assert_eq!(
                        ours_pow(&m, &base, e),
                        reference_pow(&base, e, &n),
                        "bits {bits} round {round} e {e}"
                    );
                }
                let e = rng.gen::<u64>();
                assert_eq!(ours_pow(&m, &base, e), reference_pow(&base, e, &n));
            }
        }
    }

    #[test]
    fn pow_with_extreme_limbs() {
        // All-ones moduli and bases stress every carry path.
        // 218 limbs is the largest modulus on 28-bit limbs (250 of them), 219 the smallest on 26.
        for l in [1usize, 2, 5, 64, 128, 218, 219] {
            let n = vec![0xffu8; 4 * l];
            let m = Modulus::from_be_bytes(&n).expect("valid");
            for base in [vec![0xffu8; 4 * l], {
                let mut b = vec![0xffu8; 4 * l];
                b[4 * l - 1] = 0xfe;
                b
            }] {
                for e in [3u64, 65537, (1 << 33) - 1] {
                    assert_eq!(ours_pow(&m, &base, e), reference_pow(&base, e, &n));
                }
            }
        }
    }

    #[test]
    fn conversions() {
        assert_eq!(be_to_limbs(&[1, 2, 3, 4, 5], 2), Some(vec![0x0203_0405, 1]));
        assert_eq!(
            be_to_limbs(&[0, 0, 0, 1, 2, 3, 4, 5], 2),
            Some(vec![0x0203_0405, 1])
        );
        assert_eq!(be_to_limbs(&[1, 2, 3, 4, 5], 1), None);
        assert_eq!(be_to_limbs(&[], 1), Some(vec![0]));
        let mut out = [0u8; 5];
        assert_eq!(limbs_to_be(&[0x0203_0405, 1], &mut out), Some(()));
        assert_eq!(out, [1, 2, 3, 4, 5]);
        assert_eq!(limbs_to_be(&[0x0203_0405, 0x100], &mut out), None);
        assert_eq!(cmp_limbs(&[1, 2], &[2, 1]), Ordering::Greater);
        assert_eq!(cmp_limbs(&[1, 2], &[1, 2]), Ordering::Equal);
        let value = [0xdead_beef, 0x0123_4567, 0x89];
        for w in [26, 28] {
            let digits = to_radix(&value, w, 4).expect("72 bits fit in 4 digits");
            assert!(digits.iter().all(|&d| d < 1 << w));
            let mut back = [0u32; 3];
            assert_eq!(from_radix(&digits, w, &mut back), Some(()));
            assert_eq!(back, value);
            assert_eq!(to_radix(&value, w, 2), None);
            assert_eq!(from_radix(&digits, w, &mut [0u32; 2]), None);
        }
    }
}
