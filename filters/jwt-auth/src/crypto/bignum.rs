//! Variable-time Montgomery arithmetic for RSA public-key operations.
//!
//! Numbers are little-endian vectors of 32-bit limbs and products are accumulated in `u64`: wasm32
//! has a native 64-bit multiply but no 64x64->128 one, so 32-bit limbs are the widest that map onto
//! single machine instructions there. Nothing here is constant-time; it must only ever see public
//! data (moduli, exponents, signatures).
//!
//! Bounds that make the carries fit: for limbs `x, y, z, w < 2^32`, `x * y + z + w < 2^64`.

use std::cmp::Ordering;

/// Largest modulus accepted by [`Modulus::from_be_bytes`], in bits. The RSA layer applies the
/// stricter limit of the `rsa` crate on top of this one.
pub const MAX_MODULUS_BITS: usize = 16384;

const MASK: u64 = 0xffff_ffff;

/// An odd modulus `n >= 3` with its Montgomery constants, for `R = 2^(32 * limbs)`.
#[derive(Clone, Debug)]
pub struct Modulus {
    /// `n`, little-endian limbs, the top one non-zero.
    n: Vec<u32>,
    /// `-n^-1 mod 2^32`.
    n0inv: u32,
    /// `R^2 mod n`, used to move values into Montgomery form.
    rr: Vec<u32>,
    /// Bit length of `n`.
    bits: usize,
}

impl Modulus {
    /// Prepares an odd modulus `3 <= n < 2^MAX_MODULUS_BITS` given as big-endian bytes (leading
    /// zeros allowed); `None` for anything else.
    pub fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes = strip_leading_zeros(bytes);
        if bytes.len() * 8 > MAX_MODULUS_BITS {
            return None;
        }
        let n = be_to_limbs(bytes, bytes.len().div_ceil(4))?;
        let (&low, &top) = (n.first()?, n.last()?);
        if low & 1 == 0 || (n.len() == 1 && low < 3) {
            return None;
        }
        let bits = 32 * n.len() - top.leading_zeros() as usize;
        let mut m = Modulus {
            n0inv: neg_inverse_mod_2_32(low),
            rr: Vec::new(),
            n,
            bits,
        };
        m.rr = m.compute_rr();
        Some(m)
    }

    /// Number of 32-bit limbs of `n` (and of every operand).
    pub fn limbs(&self) -> usize {
        self.n.len()
    }

    /// Bit length of `n`.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Length of `n` in bytes without leading zeros.
    pub fn byte_len(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// The limbs of `n`, little-endian.
    pub fn as_limbs(&self) -> &[u32] {
        &self.n
    }

    /// Compares a `limbs()`-long value with `n`.
    pub fn cmp_limbs(&self, x: &[u32]) -> Ordering {
        cmp_limbs(x, &self.n)
    }

    /// Computes `base^e mod n` into `out`. `base` may be any `limbs()`-long value (it need not be
    /// reduced below `n`); `out` gets `limbs()` limbs, fully reduced. `None` if the lengths differ.
    pub fn pow_mod(&self, base: &[u32], e: u64, out: &mut [u32]) -> Option<()> {
        let l = self.limbs();
        if base.len() != l || out.len() != l {
            return None;
        }
        let mut scratch = vec![0u32; 2 * l + 1];
        if e == 0 {
            // n >= 3, so 1 is already reduced.
            out.fill(0);
            out[0] = 1;
            return Some(());
        }
        // x = base * R mod n: the Montgomery form of base (base < R is all CIOS needs).
        let mut x = self.rr.clone();
        self.mont_mul(&mut x, base, &mut scratch);
        out.copy_from_slice(&x);
        let top = 63 - e.leading_zeros();
        for i in (0..top).rev() {
            self.mont_sqr(out, &mut scratch);
            if (e >> i) & 1 == 1 {
                if i == 0 {
                    // Multiplying by the plain base instead of x both multiplies and leaves
                    // Montgomery form: out * base * R^-1 = base^e. Odd exponents (all of RSA)
                    // thus end here without a separate conversion.
                    self.mont_mul(out, base, &mut scratch);
                    return Some(());
                }
                self.mont_mul(out, &x, &mut scratch);
            }
        }
        // Even exponent, or e == 1: leave Montgomery form by multiplying with 1.
        let mut one = vec![0u32; l];
        one[0] = 1;
        self.mont_mul(out, &one, &mut scratch);
        Some(())
    }

    /// `acc = a * acc * R^-1 mod n` (CIOS with both passes fused into one loop). Requires
    /// `acc < n` and `a < R`; then every intermediate stays below `2n` and the result below `n`.
    /// `t` needs at least `2 * limbs() + 1` limbs: instead of shifting the accumulator down a
    /// limb per row, row i works on the window `t[i..]`, so reads and writes share one index.
    fn mont_mul(&self, acc: &mut [u32], a: &[u32], t: &mut [u32]) {
        let l = self.n.len();
        let n = &self.n[..];
        let (b, a, n0inv) = (&acc[..l], &a[..l], self.n0inv);
        let t = &mut t[..2 * l + 1];
        t.fill(0);
        for (i, &ai) in a.iter().enumerate() {
            let ai = u64::from(ai);
            let (row, top) = t[i..i + l + 2].split_at_mut(l);
            // Column 0 decides m, so that the row's sum is divisible by 2^32 there.
            let p = ai * u64::from(b[0]) + u64::from(row[0]);
            let m = u64::from((p as u32).wrapping_mul(n0inv));
            let (mut c1, mut c2) = (p >> 32, (m * u64::from(n[0]) + (p & MASK)) >> 32);
            mac2_row(&mut row[1..], ai, &b[1..], m, &n[1..], &mut c1, &mut c2);
            // The window value stays below 2n < 2R, so top[0] (written by the previous row) is
            // 0 or 1 and this sum stays below 2^34; top[1] has not been written yet.
            let s = u64::from(top[0]) + c1 + c2;
            top[0] = s as u32;
            top[1] = (s >> 32) as u32;
        }
        acc.copy_from_slice(&t[l..2 * l]);
        self.reduce_once(acc, t[2 * l]);
    }

    /// `acc = acc^2 * R^-1 mod n`: the square costs about half a product (each cross term once,
    /// then doubled), followed by a separate Montgomery reduction. Requires `acc < n`.
    /// `t` needs at least `2 * limbs() + 1` limbs.
    fn mont_sqr(&self, acc: &mut [u32], t: &mut [u32]) {
        let l = self.n.len();
        let (a, t) = (&acc[..l], &mut t[..2 * l]);
        t.fill(0);
        // Cross products a[i] * a[j] for i < j, two rows per pass: rows i and i + 1 overlap
        // from limb 2i + 3 on, and interleaving them gives the CPU two independent carry chains
        // (a single chain is latency-bound).
        let mut i = 0;
        while i + 2 < l {
            let (a0, a1) = (u64::from(a[i]), u64::from(a[i + 1]));
            let p = a0 * u64::from(a[i + 1]) + u64::from(t[2 * i + 1]);
            t[2 * i + 1] = p as u32;
            let p = a0 * u64::from(a[i + 2]) + u64::from(t[2 * i + 2]) + (p >> 32);
            t[2 * i + 2] = p as u32;
            let (mut c1, mut c2) = (p >> 32, 0u64);
            let (y0, y1) = (&a[i + 3..], &a[i + 2..l - 1]);
            mac2_row(&mut t[2 * i + 3..i + l], a0, y0, a1, y1, &mut c1, &mut c2);
            // Limbs i + l and i + l + 1 have not been written yet.
            let q = a1 * u64::from(a[l - 1]) + c1 + c2;
            t[i + l] = q as u32;
            t[i + l + 1] = (q >> 32) as u32;
            i += 2;
        }
        // The last one or two rows (row l - 1 is empty).
        while i < l {
            let ai = u64::from(a[i]);
            let mut c = 0u64;
            for (tj, &aj) in t[2 * i + 1..i + l].iter_mut().zip(&a[i + 1..]) {
                let p = ai * u64::from(aj) + u64::from(*tj) + c;
                *tj = p as u32;
                c = p >> 32;
            }
            t[i + l] = c as u32;
            i += 1;
        }
        // Double the cross products and add the squares a[i]^2 at limb 2i.
        let (mut shifted_out, mut c) = (0u32, 0u64);
        for (pair, &ai) in t.chunks_exact_mut(2).zip(a) {
            let sq = u64::from(ai) * u64::from(ai);
            let (w0, w1) = (pair[0], pair[1]);
            let d0 = (w0 << 1) | shifted_out;
            let d1 = (w1 << 1) | (w0 >> 31);
            shifted_out = w1 >> 31;
            let s0 = u64::from(d0) + (sq & MASK) + c;
            let s1 = u64::from(d1) + (sq >> 32) + (s0 >> 32);
            pair[0] = s0 as u32;
            pair[1] = s1 as u32;
            c = s1 >> 32;
        }
        // a^2 < 2^(64 l), so nothing is left in shifted_out or c.
        let hi = self.redc(t);
        acc.copy_from_slice(&t[l..]);
        self.reduce_once(acc, hi);
    }

    /// Montgomery reduction of the `2 * limbs()`-limb `t < n * R` in place: afterwards the upper
    /// half of `t`, plus the returned carry bit times `R`, equals `t * R^-1 mod n` and is `< 2n`.
    fn redc(&self, t: &mut [u32]) -> u32 {
        let l = self.n.len();
        let (n, n0inv) = (&self.n[..], self.n0inv);
        // Carry into limb i + l, not yet added.
        let mut hi = 0u64;
        let mut i = 0;
        // Two rows per pass, for two independent carry chains: row i adds m0 * n at limb i,
        // row i + 1 adds m1 * n at limb i + 1, and m1 depends only on limb i + 1 after row i's
        // first two columns.
        while i + 1 < l {
            let m0 = u64::from(t[i].wrapping_mul(n0inv));
            let p = m0 * u64::from(n[0]) + u64::from(t[i]);
            let p = m0 * u64::from(n[1]) + u64::from(t[i + 1]) + (p >> 32);
            let mut c1 = p >> 32;
            let u = p & MASK;
            let m1 = u64::from((u as u32).wrapping_mul(n0inv));
            let mut c2 = (m1 * u64::from(n[0]) + u) >> 32;
            mac2_row(
                &mut t[i + 2..i + l],
                m0,
                &n[2..],
                m1,
                &n[1..l - 1],
                &mut c1,
                &mut c2,
            );
            let p = u64::from(t[i + l]) + c1 + hi;
            let q = m1 * u64::from(n[l - 1]) + (p & MASK) + c2;
            t[i + l] = q as u32;
            let s = u64::from(t[i + l + 1]) + (p >> 32) + (q >> 32);
            t[i + l + 1] = s as u32;
            hi = s >> 32;
            i += 2;
        }
        if i < l {
            // Odd limb count: one last single row.
            let m = u64::from(t[i].wrapping_mul(n0inv));
            let mut c = 0u64;
            for (tj, &nj) in t[i..i + l].iter_mut().zip(n) {
                let p = m * u64::from(nj) + u64::from(*tj) + c;
                *tj = p as u32;
                c = p >> 32;
            }
            let s = u64::from(t[i + l]) + c + hi;
            t[i + l] = s as u32;
            hi = s >> 32;
        }
        hi as u32
    }

    /// Reduces `x + hi * R`, known to be `< 2n`, below `n` in place.
    fn reduce_once(&self, x: &mut [u32], hi: u32) {
        if hi != 0 || cmp_limbs(x, &self.n) != Ordering::Less {
            // When hi is set the subtraction borrows out of the top limb, cancelling it.
            let mut borrow = 0u64;
            for (xi, &ni) in x.iter_mut().zip(&self.n) {
                let d = u64::from(*xi)
                    .wrapping_sub(u64::from(ni))
                    .wrapping_sub(borrow);
                *xi = d as u32;
                borrow = (d >> 32) & 1;
            }
        }
    }

    /// `R^2 mod n`: start from `R mod n` (the Montgomery form of 1) and raise the Montgomery
    /// form of 2 to the power `32 * limbs()` with squarings and modular doublings, which is far
    /// cheaper than doubling `32 * limbs()` times.
    fn compute_rr(&self) -> Vec<u32> {
        let l = self.n.len();
        // 2^(bits - 1) < n, doubled (32 l - bits + 1) times gives 2^(32 l) mod n = R mod n.
        let mut x = vec![0u32; l];
        x[(self.bits - 1) / 32] = 1 << ((self.bits - 1) % 32);
        for _ in 0..(32 * l - self.bits + 1) {
            self.double_mod(&mut x);
        }
        // Now x represents 1; walk the bits of 32 l from the top.
        let exp = 32 * l;
        let mut scratch = vec![0u32; 2 * l + 1];
        for i in (0..usize::BITS - exp.leading_zeros()).rev() {
            self.mont_sqr(&mut x, &mut scratch);
            if (exp >> i) & 1 == 1 {
                self.double_mod(&mut x);
            }
        }
        x
    }

    /// `x = 2x mod n` for `x < n`.
    fn double_mod(&self, x: &mut [u32]) {
        let mut top = 0u32;
        for w in x.iter_mut() {
            let next = *w >> 31;
            *w = (*w << 1) | top;
            top = next;
        }
        // 2x < 2n, so one subtraction is enough.
        self.reduce_once(x, top);
    }
}

/// Two interleaved multiply-accumulate chains over `t`: for each k, `t[k] + x * y0[k] + c1`
/// (chain 1), then its low limb `+ z * y1[k] + c2` (chain 2) is stored back. Two chains keep the
/// CPU busy where one would wait on its carry; the loop is unrolled because V8 does not
/// remove the loop overhead by itself (unrolling four times measured 4% faster than twice in
/// V8; twice was 15% faster than not unrolled). The three slices must have the same length.
#[inline(always)]
fn mac2_row(t: &mut [u32], x: u64, y0: &[u32], z: u64, y1: &[u32], c1: &mut u64, c2: &mut u64) {
    debug_assert!(t.len() == y0.len() && t.len() == y1.len());
    let (mut k1, mut k2) = (*c1, *c2);
    let mut ts = t.chunks_exact_mut(4);
    let mut y0s = y0.chunks_exact(4);
    let mut y1s = y1.chunks_exact(4);
    for ((tp, u), v) in (&mut ts).zip(&mut y0s).zip(&mut y1s) {
        let p = x * u64::from(u[0]) + u64::from(tp[0]) + k1;
        let q = z * u64::from(v[0]) + (p & MASK) + k2;
        tp[0] = q as u32;
        let p = x * u64::from(u[1]) + u64::from(tp[1]) + (p >> 32);
        let q = z * u64::from(v[1]) + (p & MASK) + (q >> 32);
        tp[1] = q as u32;
        let p = x * u64::from(u[2]) + u64::from(tp[2]) + (p >> 32);
        let q = z * u64::from(v[2]) + (p & MASK) + (q >> 32);
        tp[2] = q as u32;
        let p = x * u64::from(u[3]) + u64::from(tp[3]) + (p >> 32);
        let q = z * u64::from(v[3]) + (p & MASK) + (q >> 32);
        tp[3] = q as u32;
        (k1, k2) = (p >> 32, q >> 32);
    }
    let rest = ts
        .into_remainder()
        .iter_mut()
        .zip(y0s.remainder())
        .zip(y1s.remainder());
    for ((tk, &u), &v) in rest {
        let p = x * u64::from(u) + u64::from(*tk) + k1;
        let q = z * u64::from(v) + (p & MASK) + k2;
        *tk = q as u32;
        (k1, k2) = (p >> 32, q >> 32);
    }
    (*c1, *c2) = (k1, k2);
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
            let r2 = BigUint::from(1u8) << (64 * m.limbs());
            let expect = r2 % BigUint::from_bytes_be(&n);
            let mut got = vec![0u8; 4 * m.limbs()];
            limbs_to_be(&m.rr, &mut got).expect("fits");
            assert_eq!(BigUint::from_bytes_be(&got), expect, "bits {bits}");
        }
    }

    #[test]
    fn pow_matches_reference_random() {
        let mut rng = StdRng::seed_from_u64(2);
        let sizes = [
            2usize, 3, 8, 31, 32, 33, 64, 100, 512, 1024, 1025, 2047, 2048, 2056, 3072, 4096, 8192,
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
        for l in [1usize, 2, 5, 64, 128] {
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
    }
}
