//! Variable-time arithmetic on the NIST prime curves (y² = x³ − 3x + b over a prime field, prime
//! group order) for ECDSA verification; [`super::p256`] and [`super::p384`] supply the constants
//! and each prime's fast reduction.
//!
//! Field elements, scalars and plain integers are `[u32; N]` little-endian limbs (N = 8 for
//! P-256, 12 for P-384) and are always fully reduced, so equality of limbs is equality of values.
//! As in [`super::bignum`], 32-bit limbs with `u64` products are the widest that wasm32 multiplies
//! natively. Field elements are kept in plain (not Montgomery) form: both primes have a sparse
//! form that reduces a double-width product with a few additions. Scalars mod n use Montgomery
//! multiplication and a binary (Kaliski) inversion: verification needs one inverse and two
//! products.
//!
//! Nothing here is constant-time: verification only ever sees public data (keys, messages,
//! signatures), so branching on values is fine.

/// A field element, scalar or integer: little-endian 32-bit limbs.
pub type Limbs<const N: usize> = [u32; N];

/// Most limbs of any supported curve (P-384).
pub const MAX_LIMBS: usize = 12;

/// Low 32 bits of a `u64`.
pub(crate) const MASK: u64 = 0xffff_ffff;

/// Expands `$body` once per listed index, with `$i` bound to that index as a `usize` constant.
///
/// The release profile builds with opt-level "s", where LLVM does not unroll loops; the hot
/// field code is unrolled by hand with this instead, so that every array index is a constant and
/// the limbs live in locals (registers, once V8 compiles them) rather than in linear memory.
macro_rules! unroll {
    ([$($n:literal)*], |$i:ident| $body:block) => {
        $({
            #[allow(non_upper_case_globals)]
            const $i: usize = $n;
            $body
        })*
    };
}
pub(crate) use unroll;

/// The double-width product of two `[u32; N]` values, `[$n]` listing `0..N`, as `2N` unreduced
/// `u64` columns: each 64-bit limb product adds its low half to column `i + j` and its high half
/// to column `i + j + 1`. No carries are propagated here (each column stays below `4N 2^32`),
/// which keeps the products independent of each other.
macro_rules! mul_wide {
    ($a:expr, $b:expr, $cols:literal, [$($n:literal)*]) => {{
        let (a, b) = ($a, $b);
        let mut t = [0u64; $cols];
        $crate::ecc::unroll!([$($n)*], |i| {
            $crate::ecc::unroll!([$($n)*], |j| {
                let p = u64::from(a[i]) * u64::from(b[j]);
                t[i + j] += p & $crate::ecc::MASK;
                t[i + j + 1] += p >> 32;
            });
        });
        t
    }};
}
pub(crate) use mul_wide;

/// Like [`mul_wide!`] for a square: each cross product once, added twice.
macro_rules! sqr_wide {
    ($a:expr, $cols:literal, [$($n:literal)*]) => {{
        let a = $a;
        let mut t = [0u64; $cols];
        $crate::ecc::unroll!([$($n)*], |i| {
            $crate::ecc::unroll!([$($n)*], |j| {
                if j > i {
                    let p = u64::from(a[i]) * u64::from(a[j]);
                    t[i + j] += (p & $crate::ecc::MASK) << 1;
                    t[i + j + 1] += (p >> 32) << 1;
                }
            });
            let p = u64::from(a[i]) * u64::from(a[i]);
            t[2 * i] += p & $crate::ecc::MASK;
            t[2 * i + 1] += p >> 32;
        });
        t
    }};
}
pub(crate) use sqr_wide;

/// Unrolled `fe_add` and `fe_sub` for a [`Curve`] impl, `[$n]` listing `0..N` (the trait's
/// loop versions cost half a multiplication in V8).
macro_rules! unrolled_add_sub {
    ($limbs:literal, [$($n:literal)*]) => {
        #[inline]
        fn fe_add(a: &Limbs<$limbs>, b: &Limbs<$limbs>) -> Limbs<$limbs> {
            let (mut sum, mut carry) = ([0u32; $limbs], 0u64);
            $crate::ecc::unroll!([$($n)*], |i| {
                let v = u64::from(a[i]) + u64::from(b[i]) + carry;
                sum[i] = v as u32;
                carry = v >> 32;
            });
            let (mut diff, mut borrow) = ([0u32; $limbs], 0u64);
            $crate::ecc::unroll!([$($n)*], |i| {
                let v = u64::from(sum[i])
                    .wrapping_sub(u64::from(Self::P[i]))
                    .wrapping_sub(borrow);
                diff[i] = v as u32;
                borrow = (v >> 32) & 1;
            });
            // sum - p is the result unless it is negative, i.e. borrowed without a carry.
            if carry != 0 || borrow == 0 {
                diff
            } else {
                sum
            }
        }

        #[inline]
        fn fe_sub(a: &Limbs<$limbs>, b: &Limbs<$limbs>) -> Limbs<$limbs> {
            let (mut diff, mut borrow) = ([0u32; $limbs], 0u64);
            $crate::ecc::unroll!([$($n)*], |i| {
                let v = u64::from(a[i])
                    .wrapping_sub(u64::from(b[i]))
                    .wrapping_sub(borrow);
                diff[i] = v as u32;
                borrow = (v >> 32) & 1;
            });
            if borrow == 0 {
                return diff;
            }
            let mut carry = 0u64;
            $crate::ecc::unroll!([$($n)*], |i| {
                let v = u64::from(diff[i]) + u64::from(Self::P[i]) + carry;
                diff[i] = v as u32;
                carry = v >> 32;
            });
            // The carry out of the top limb cancels the borrow.
            let _ = carry;
            diff
        }
    };
}
pub(crate) use unrolled_add_sub;

// ---------------------------------------------------------------------------------------------
// Limb helpers. They are `const fn` so that the curve modules can derive their constants at
// compile time instead of spelling out values that could be mistyped.

/// Parses exactly `8 * N` lower-case hex digits (a big-endian number). For constants: evaluated
/// at compile time, where a malformed string is a compile error.
#[allow(clippy::panic)] // only evaluated in constants: the panic is a build error, never a trap
pub const fn limbs_from_hex<const N: usize>(hex: &str) -> Limbs<N> {
    let bytes = hex.as_bytes();
    assert!(bytes.len() == 8 * N, "hex constant of the wrong length");
    let mut out = [0u32; N];
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        };
        let pos = bytes.len() - 1 - i;
        out[pos / 8] |= (v as u32) << (4 * (pos % 8));
        i += 1;
    }
    out
}

/// `a + b` and the carry out of the top limb.
#[inline]
pub const fn add_limbs<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> (Limbs<N>, bool) {
    let mut out = [0u32; N];
    let mut carry = 0u64;
    let mut i = 0;
    while i < N {
        let s = a[i] as u64 + b[i] as u64 + carry;
        out[i] = s as u32;
        carry = s >> 32;
        i += 1;
    }
    (out, carry != 0)
}

/// `a - b` and whether it borrowed (then the result is `a - b + 2^(32N)`).
#[inline]
pub const fn sub_limbs<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> (Limbs<N>, bool) {
    let mut out = [0u32; N];
    let mut borrow = 0u64;
    let mut i = 0;
    while i < N {
        let d = (a[i] as u64).wrapping_sub(b[i] as u64).wrapping_sub(borrow);
        out[i] = d as u32;
        borrow = (d >> 32) & 1;
        i += 1;
    }
    (out, borrow != 0)
}

/// Whether `a < b`.
#[inline]
pub const fn lt<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> bool {
    let mut i = N;
    while i > 0 {
        i -= 1;
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// Whether every limb is zero.
#[inline]
pub fn is_zero<const N: usize>(a: &Limbs<N>) -> bool {
    a.iter().all(|&l| l == 0)
}

/// `a >> 1`, with `top` shifted into the most significant bit.
#[inline]
fn shr1<const N: usize>(a: &mut Limbs<N>, top: bool) {
    let mut carry = u32::from(top);
    for limb in a.iter_mut().rev() {
        let next = *limb & 1;
        *limb = (*limb >> 1) | (carry << 31);
        carry = next;
    }
}

/// `2a mod m` for `a < m`.
const fn double_mod<const N: usize>(a: &Limbs<N>, m: &Limbs<N>) -> Limbs<N> {
    let (s, carry) = add_limbs(a, a);
    if carry || !lt(&s, m) {
        sub_limbs(&s, m).0
    } else {
        s
    }
}

/// `-m^-1 mod 2^32` for odd `m0`, by Newton iteration.
pub const fn neg_inv_u32(m0: u32) -> u32 {
    let mut inv = m0;
    let mut i = 0;
    while i < 4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(m0.wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
}

/// `R^2 mod m` for `R = 2^(32N)` and `m > 2^(32N - 1)`, by doubling 1 `64N` times.
pub const fn rr_mod<const N: usize>(m: &Limbs<N>) -> Limbs<N> {
    let mut x = [0u32; N];
    x[0] = 1;
    let mut i = 0;
    while i < 64 * N {
        x = double_mod(&x, m);
        i += 1;
    }
    x
}

/// `(p + 1) / 4`, the square-root exponent for a prime `p ≡ 3 (mod 4)` below `2^(32N) - 1`.
pub const fn sqrt_exponent<const N: usize>(p: &Limbs<N>) -> Limbs<N> {
    let mut one = [0u32; N];
    one[0] = 1;
    let (mut e, _) = add_limbs(p, &one);
    let mut i = 0;
    while i < N {
        let next = if i + 1 < N { e[i + 1] } else { 0 };
        e[i] = (e[i] >> 2) | (next << 30);
        i += 1;
    }
    e
}

/// Reads exactly `4N` big-endian bytes; `None` for another length.
pub fn limbs_from_be<const N: usize>(bytes: &[u8]) -> Option<Limbs<N>> {
    if bytes.len() != 4 * N {
        return None;
    }
    let mut out = [0u32; N];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks_exact(4)) {
        *limb = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Some(out)
}

/// Writes `4N` big-endian bytes.
pub fn limbs_to_be<const N: usize>(a: &Limbs<N>) -> Vec<u8> {
    a.iter().rev().flat_map(|l| l.to_be_bytes()).collect()
}

/// `a^-1 mod m` for an odd `m` by the binary extended Euclidean algorithm (variable time, which
/// is far cheaper than Fermat's exponentiation); `None` unless `gcd(a, m) = 1`. `a < m`.
pub fn inv_mod_vartime<const N: usize>(a: &Limbs<N>, m: &Limbs<N>) -> Option<Limbs<N>> {
    let mut one = [0u32; N];
    one[0] = 1;
    // Invariants: x1 * a ≡ u and x2 * a ≡ v (mod m), with x1, x2 < m.
    let (mut u, mut v) = (*a, *m);
    let (mut x1, mut x2) = (one, [0u32; N]);
    let half_mod = |x: &mut Limbs<N>| {
        if x[0] & 1 == 1 {
            // (x + m) / 2, with the sum's carry shifted back in.
            let (s, carry) = add_limbs(x, m);
            *x = s;
            shr1(x, carry);
        } else {
            shr1(x, false);
        }
    };
    let sub_mod = |x: &Limbs<N>, y: &Limbs<N>| {
        let (d, borrow) = sub_limbs(x, y);
        if borrow {
            add_limbs(&d, m).0
        } else {
            d
        }
    };
    // Each round at least halves u or v, and both stay positive while gcd(a, m) = 1.
    while u != one && v != one {
        if is_zero(&u) || is_zero(&v) {
            return None;
        }
        while u[0] & 1 == 0 {
            shr1(&mut u, false);
            half_mod(&mut x1);
        }
        while v[0] & 1 == 0 {
            shr1(&mut v, false);
            half_mod(&mut x2);
        }
        if lt(&u, &v) {
            v = sub_limbs(&v, &u).0;
            x2 = sub_mod(&x2, &x1);
        } else {
            u = sub_limbs(&u, &v).0;
            x1 = sub_mod(&x1, &x2);
        }
    }
    Some(if u == one { x1 } else { x2 })
}

/// `a >> t` for any `t` (zero fill).
fn shr_bits<const N: usize>(a: &mut Limbs<N>, t: usize) {
    let words = (t / 32).min(N);
    if words > 0 {
        a.copy_within(words.., 0);
        a[N - words..].fill(0);
    }
    let bits = (t % 32) as u32;
    if bits > 0 {
        for i in 0..N - 1 {
            a[i] = (a[i] >> bits) | (a[i + 1] << (32 - bits));
        }
        a[N - 1] >>= bits;
    }
}

/// `a << t` for any `t`, dropping what leaves the top limb.
fn shl_bits<const N: usize>(a: &mut Limbs<N>, t: usize) {
    let words = (t / 32).min(N);
    if words > 0 {
        a.copy_within(..N - words, words);
        a[..words].fill(0);
    }
    let bits = (t % 32) as u32;
    if bits > 0 {
        for i in (1..N).rev() {
            a[i] = (a[i] << bits) | (a[i - 1] >> (32 - bits));
        }
        a[0] <<= bits;
    }
}

/// Number of trailing zero bits of a non-zero value (`32N` for zero).
fn trailing_zeros<const N: usize>(a: &Limbs<N>) -> usize {
    a.iter()
        .position(|&l| l != 0)
        .map_or(32 * N, |i| 32 * i + a[i].trailing_zeros() as usize)
}

/// Kaliski's "almost Montgomery inverse": `(a^-1 2^k mod m, k)` with `bits(m) <= k <= 2 bits(m)`
/// for an odd `m` and `0 < a < m`; `None` unless `gcd(a, m) = 1`. Runs of zero bits are shifted
/// out at once and no value needs a modular reduction on the way, which makes it several times
/// faster than [`inv_mod_vartime`].
pub fn almost_inverse<const N: usize>(a: &Limbs<N>, m: &Limbs<N>) -> Option<(Limbs<N>, usize)> {
    if is_zero(a) || !lt(a, m) || m[0] & 1 == 0 {
        return None;
    }
    // Invariants: m = u s + v r, so that r, s <= m while u, v >= 1; a r ≡ -u 2^k and
    // a s ≡ v 2^k (mod m).
    let (mut u, mut v) = (*m, *a);
    let (mut r, mut s) = ([0u32; N], [0u32; N]);
    s[0] = 1;
    let mut k = 0usize;
    loop {
        if u[0] & 1 == 0 {
            // u is never zero here: it only shrinks by subtracting a smaller v.
            let t = trailing_zeros(&u);
            shr_bits(&mut u, t);
            shl_bits(&mut s, t);
            k += t;
        } else if v[0] & 1 == 0 {
            let t = trailing_zeros(&v);
            if t >= 32 * N {
                return None;
            }
            shr_bits(&mut v, t);
            shl_bits(&mut r, t);
            k += t;
        } else if lt(&v, &u) {
            u = sub_limbs(&u, &v).0;
            r = add_limbs(&r, &s).0;
        } else {
            v = sub_limbs(&v, &u).0;
            s = add_limbs(&s, &r).0;
            if is_zero(&v) {
                // The last step also doubles r; 2r < 2m, one subtraction reduces it.
                let (r2, carry) = add_limbs(&r, &r);
                r = if carry || !lt(&r2, m) {
                    sub_limbs(&r2, m).0
                } else {
                    r2
                };
                k += 1;
                break;
            }
        }
    }
    let mut one = [0u32; N];
    one[0] = 1;
    if u != one || is_zero(&r) {
        return None;
    }
    // a r ≡ -2^k, so the inverse times 2^k is m - r.
    Some((sub_limbs(m, &r).0, k))
}

// ---------------------------------------------------------------------------------------------
// Points.

/// A point in affine coordinates; never the point at infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Affine<const N: usize> {
    /// x coordinate.
    pub x: Limbs<N>,
    /// y coordinate.
    pub y: Limbs<N>,
}

/// A point in Jacobian coordinates, `(X / Z^2, Y / Z^3)`; `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
pub struct Jacobian<const N: usize> {
    x: Limbs<N>,
    y: Limbs<N>,
    z: Limbs<N>,
}

impl<const N: usize> Jacobian<N> {
    /// The point at infinity.
    pub const INFINITY: Self = Jacobian {
        x: [0; N],
        y: [0; N],
        z: [0; N],
    };

    /// The same point with `Z = 1`.
    pub fn from_affine(p: &Affine<N>) -> Self {
        let mut z = [0u32; N];
        z[0] = 1;
        Jacobian { x: p.x, y: p.y, z }
    }

    /// Whether this is the point at infinity.
    pub fn is_infinity(&self) -> bool {
        is_zero(&self.z)
    }
}

/// Largest window for [`Table`]s: digits then fit in an `i8`.
pub const MAX_WINDOW: u32 = 8;

/// Odd multiples `(2k + 1) 2^(c L) P` for `k < 2^(w - 2)` and each chunk `c`, with `L` the chunk
/// length in bits: a width-`w` NAF digit `d` at bit `c L + i` of a scalar then contributes
/// `±table[c][|d| / 2]` after `i` more doublings, so a whole scalar needs only `L` doublings.
#[derive(Clone, Debug)]
pub struct Table<const N: usize> {
    window: u32,
    chunks: usize,
    chunk_bits: usize,
    points: Vec<Affine<N>>,
}

impl<const N: usize> Table<N> {
    /// NAF width.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Number of chunks the scalar is split into.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Number of precomputed points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the table has no points (never, for a built table).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// `|digit| 2^(chunk L) P` for an odd digit; `None` out of range.
    fn get(&self, chunk: usize, digit: i8) -> Option<&Affine<N>> {
        let per_chunk = 1usize << (self.window - 2);
        let k = usize::from(digit.unsigned_abs() >> 1);
        if k >= per_chunk {
            return None;
        }
        self.points.get(chunk * per_chunk + k)
    }
}

/// Signed digits of a width-`w` NAF of a `32N`-bit scalar: bit positions `0..=32N`.
type Digits = [i8; 32 * MAX_LIMBS + 1];

/// Width-`w` non-adjacent form of `k` (`2 <= w <= 8`): `k = Σ digits[i] 2^i`, every non-zero
/// digit odd with `|d| < 2^(w-1)`, and at least `w - 1` zeros after each non-zero digit.
fn wnaf<const N: usize>(k: &Limbs<N>, w: u32) -> Digits {
    const { assert!(N <= MAX_LIMBS) };
    let mut digits = [0i8; 32 * MAX_LIMBS + 1];
    let bits = 32 * N;
    let width = 1u32 << w;
    let (half, mask) = (width >> 1, u64::from(width - 1));
    let window_at = |i: usize| {
        let (limb, shift) = (i / 32, i % 32);
        let mut v = u64::from(k[limb]) >> shift;
        if let Some(&next) = k.get(limb + 1) {
            v |= u64::from(next) << (32 - shift);
        }
        (v & mask) as u32
    };
    // `carry` is a pending +1 at bit i from a negative digit below.
    let (mut i, mut carry) = (0usize, 0u32);
    while i < bits {
        let bit = (k[i / 32] >> (i % 32)) & 1;
        if bit == carry {
            // Even: digit 0; a carry on a 1 bit moves up one place unchanged.
            i += 1;
            continue;
        }
        // The window plus the carry is odd and below 2^w.
        let value = window_at(i) + carry;
        let digit = if value < half {
            carry = 0;
            value as i32
        } else {
            // A window running past the top is below 2^(w-1) (the bits above are zero), so
            // this carry lands at most at bit `bits`.
            carry = 1;
            value as i32 - width as i32
        };
        // |digit| < 2^(w-1) <= 128.
        digits[i] = digit as i8;
        i += w as usize;
    }
    // A carry left over sits exactly at bit `bits` (the loop then ended on a single step).
    digits[bits] = carry as i8;
    digits
}

/// A NIST prime curve with `a = -3` over a field of `N` limbs: the constants and the prime's
/// multiplication come from the implementor; everything else is provided.
pub trait Curve<const N: usize>: Sized + 'static {
    /// The field prime p, with `2^(32N-1) < p`.
    const P: Limbs<N>;
    /// The group order n (prime, `2^(32N-1) < n < p`).
    const ORDER: Limbs<N>;
    /// The curve coefficient b.
    const B: Limbs<N>;
    /// The generator.
    const G: Affine<N>;
    /// Chunks the scalars are split into (see [`Table`]); divides `32N`.
    const CHUNKS: usize;
    /// NAF width of the generator's table.
    const G_WINDOW: u32;
    /// NAF width of a public key's table.
    const KEY_WINDOW: u32;

    /// `a * b mod p` for reduced inputs.
    fn fe_mul(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N>;

    /// `a^2 mod p` for a reduced input.
    fn fe_sqr(a: &Limbs<N>) -> Limbs<N>;

    /// The generator's table, built on first use; `None` only if building it failed, which
    /// cannot happen for a correct curve definition.
    fn g_table() -> Option<&'static Table<N>>;

    /// `-n^-1 mod 2^32`, for Montgomery multiplication mod n.
    const ORDER_N0: u32 = neg_inv_u32(Self::ORDER[0]);
    /// `R^2 mod n` with `R = 2^(32N)`.
    const ORDER_RR: Limbs<N> = rr_mod(&Self::ORDER);
    /// `(p + 1) / 4`: both primes are 3 mod 4.
    const SQRT_EXP: Limbs<N> = sqrt_exponent(&Self::P);

    /// `a + b mod p`.
    #[inline]
    fn fe_add(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let (s, carry) = add_limbs(a, b);
        if carry || !lt(&s, &Self::P) {
            sub_limbs(&s, &Self::P).0
        } else {
            s
        }
    }

    /// `a - b mod p`.
    #[inline]
    fn fe_sub(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let (d, borrow) = sub_limbs(a, b);
        if borrow {
            add_limbs(&d, &Self::P).0
        } else {
            d
        }
    }

    /// `-a mod p`.
    fn fe_neg(a: &Limbs<N>) -> Limbs<N> {
        if is_zero(a) {
            *a
        } else {
            sub_limbs(&Self::P, a).0
        }
    }

    /// `a^e mod p`, left to right (only used to take square roots of keys).
    fn fe_pow(a: &Limbs<N>, e: &Limbs<N>) -> Limbs<N> {
        let mut acc = [0u32; N];
        acc[0] = 1;
        for i in (0..32 * N).rev() {
            acc = Self::fe_sqr(&acc);
            if (e[i / 32] >> (i % 32)) & 1 == 1 {
                acc = Self::fe_mul(&acc, a);
            }
        }
        acc
    }

    /// A square root of `a`, if it has one.
    fn fe_sqrt(a: &Limbs<N>) -> Option<Limbs<N>> {
        let root = Self::fe_pow(a, &Self::SQRT_EXP);
        (Self::fe_sqr(&root) == *a).then_some(root)
    }

    /// `x^3 - 3x + b`, the square of y for a curve point with abscissa x.
    fn curve_rhs(x: &Limbs<N>) -> Limbs<N> {
        let x3 = Self::fe_mul(&Self::fe_sqr(x), x);
        let three_x = Self::fe_add(&Self::fe_add(x, x), x);
        Self::fe_add(&Self::fe_sub(&x3, &three_x), &Self::B)
    }

    /// Whether reduced coordinates satisfy the curve equation.
    fn is_on_curve(p: &Affine<N>) -> bool {
        Self::fe_sqr(&p.y) == Self::curve_rhs(&p.x)
    }

    /// `2P` (dbl-2001-b, for a = -3).
    fn point_double(p: &Jacobian<N>) -> Jacobian<N> {
        if p.is_infinity() {
            return *p;
        }
        let delta = Self::fe_sqr(&p.z);
        let gamma = Self::fe_sqr(&p.y);
        let beta = Self::fe_mul(&p.x, &gamma);
        let t = Self::fe_mul(&Self::fe_sub(&p.x, &delta), &Self::fe_add(&p.x, &delta));
        let alpha = Self::fe_add(&Self::fe_add(&t, &t), &t);
        let beta2 = Self::fe_add(&beta, &beta);
        let beta4 = Self::fe_add(&beta2, &beta2);
        let beta8 = Self::fe_add(&beta4, &beta4);
        let x = Self::fe_sub(&Self::fe_sqr(&alpha), &beta8);
        let yz = Self::fe_mul(&p.y, &p.z);
        let z = Self::fe_add(&yz, &yz);
        let gamma_sq = Self::fe_sqr(&gamma);
        let gamma_sq2 = Self::fe_add(&gamma_sq, &gamma_sq);
        let gamma_sq4 = Self::fe_add(&gamma_sq2, &gamma_sq2);
        let gamma_sq8 = Self::fe_add(&gamma_sq4, &gamma_sq4);
        let y = Self::fe_sub(&Self::fe_mul(&alpha, &Self::fe_sub(&beta4, &x)), &gamma_sq8);
        Jacobian { x, y, z }
    }

    /// `P + Q` for an affine `Q` (add-1998-cmo with `Z2 = 1`), including `P = ±Q` and `P = ∞`.
    fn point_add_affine(p: &Jacobian<N>, q: &Affine<N>) -> Jacobian<N> {
        if p.is_infinity() {
            return Jacobian::from_affine(q);
        }
        let z1z1 = Self::fe_sqr(&p.z);
        let u2 = Self::fe_mul(&q.x, &z1z1);
        let s2 = Self::fe_mul(&q.y, &Self::fe_mul(&p.z, &z1z1));
        let h = Self::fe_sub(&u2, &p.x);
        let r = Self::fe_sub(&s2, &p.y);
        if is_zero(&h) {
            // Same x: P = Q needs the doubling formula, P = -Q sums to infinity.
            return if is_zero(&r) {
                Self::point_double(p)
            } else {
                Jacobian::INFINITY
            };
        }
        let hh = Self::fe_sqr(&h);
        let hhh = Self::fe_mul(&h, &hh);
        let v = Self::fe_mul(&p.x, &hh);
        let x = Self::fe_sub(
            &Self::fe_sub(&Self::fe_sqr(&r), &hhh),
            &Self::fe_add(&v, &v),
        );
        let y = Self::fe_sub(
            &Self::fe_mul(&r, &Self::fe_sub(&v, &x)),
            &Self::fe_mul(&p.y, &hhh),
        );
        let z = Self::fe_mul(&p.z, &h);
        Jacobian { x, y, z }
    }

    /// `P + Q` for Jacobian points (add-1998-cmo), including `P = ±Q` and either at infinity.
    fn point_add(p: &Jacobian<N>, q: &Jacobian<N>) -> Jacobian<N> {
        if p.is_infinity() {
            return *q;
        }
        if q.is_infinity() {
            return *p;
        }
        let z1z1 = Self::fe_sqr(&p.z);
        let z2z2 = Self::fe_sqr(&q.z);
        let u1 = Self::fe_mul(&p.x, &z2z2);
        let u2 = Self::fe_mul(&q.x, &z1z1);
        let s1 = Self::fe_mul(&p.y, &Self::fe_mul(&q.z, &z2z2));
        let s2 = Self::fe_mul(&q.y, &Self::fe_mul(&p.z, &z1z1));
        let h = Self::fe_sub(&u2, &u1);
        let r = Self::fe_sub(&s2, &s1);
        if is_zero(&h) {
            return if is_zero(&r) {
                Self::point_double(p)
            } else {
                Jacobian::INFINITY
            };
        }
        let hh = Self::fe_sqr(&h);
        let hhh = Self::fe_mul(&h, &hh);
        let v = Self::fe_mul(&u1, &hh);
        let x = Self::fe_sub(
            &Self::fe_sub(&Self::fe_sqr(&r), &hhh),
            &Self::fe_add(&v, &v),
        );
        let y = Self::fe_sub(
            &Self::fe_mul(&r, &Self::fe_sub(&v, &x)),
            &Self::fe_mul(&s1, &hhh),
        );
        let z = Self::fe_mul(&Self::fe_mul(&p.z, &q.z), &h);
        Jacobian { x, y, z }
    }

    /// The affine form of `p`; `None` at infinity.
    fn to_affine(p: &Jacobian<N>) -> Option<Affine<N>> {
        Self::batch_to_affine(std::slice::from_ref(p)).and_then(|v| v.into_iter().next())
    }

    /// The affine forms of `points` with a single inversion (Montgomery's trick); `None` if any
    /// is the point at infinity.
    fn batch_to_affine(points: &[Jacobian<N>]) -> Option<Vec<Affine<N>>> {
        let mut one = [0u32; N];
        one[0] = 1;
        // prefix[i] = z_0 * ... * z_i
        let mut prefix = Vec::with_capacity(points.len());
        let mut acc = one;
        for p in points {
            if p.is_infinity() {
                return None;
            }
            acc = Self::fe_mul(&acc, &p.z);
            prefix.push(acc);
        }
        // The product of non-zero elements of a prime field is non-zero and so invertible.
        let mut inv = inv_mod_vartime(&acc, &Self::P)?;
        let mut out = vec![Affine { x: one, y: one }; points.len()];
        for (i, p) in points.iter().enumerate().rev() {
            let z_inv = match i.checked_sub(1) {
                Some(prev) => Self::fe_mul(&inv, &prefix[prev]),
                None => inv,
            };
            inv = Self::fe_mul(&inv, &p.z);
            let z2 = Self::fe_sqr(&z_inv);
            out[i] = Affine {
                x: Self::fe_mul(&p.x, &z2),
                y: Self::fe_mul(&p.y, &Self::fe_mul(&z2, &z_inv)),
            };
        }
        Some(out)
    }

    /// The [`Table`] of `base` with `Self::CHUNKS` chunks and NAF width `window`; `None` if the
    /// window is out of range or a multiple is at infinity (impossible for a point of prime
    /// order n, as every multiple used is below n).
    fn build_table(base: &Affine<N>, window: u32) -> Option<Table<N>> {
        let chunks = Self::CHUNKS;
        if !(2..=MAX_WINDOW).contains(&window) || chunks == 0 || !(32 * N).is_multiple_of(chunks) {
            return None;
        }
        let chunk_bits = 32 * N / chunks;
        let per_chunk = 1usize << (window - 2);
        let mut jacobian = Vec::with_capacity(chunks * per_chunk);
        let mut chunk_base = Jacobian::from_affine(base);
        for c in 0..chunks {
            if c > 0 {
                for _ in 0..chunk_bits {
                    chunk_base = Self::point_double(&chunk_base);
                }
            }
            let twice = Self::point_double(&chunk_base);
            let mut multiple = chunk_base;
            jacobian.push(multiple);
            for _ in 1..per_chunk {
                multiple = Self::point_add(&multiple, &twice);
                jacobian.push(multiple);
            }
        }
        Some(Table {
            window,
            chunks,
            chunk_bits,
            points: Self::batch_to_affine(&jacobian)?,
        })
    }

    /// `u1 G + u2 Q` from the generator's table and Q's (built with the same chunking);
    /// infinity also if the tables do not fit together, which cannot happen for tables built
    /// by [`build_table`](Self::build_table) for this curve.
    fn double_mul(g: &Table<N>, u1: &Limbs<N>, q: &Table<N>, u2: &Limbs<N>) -> Jacobian<N> {
        let (chunks, len) = (g.chunks, g.chunk_bits);
        if q.chunks != chunks || q.chunk_bits != len || chunks * len != 32 * N {
            return Jacobian::INFINITY;
        }
        let d1 = wnaf(u1, g.window);
        let d2 = wnaf(u2, q.window);
        let mut acc = Jacobian::INFINITY;
        // Bit c L + i of a scalar is added at offset i of chunk c; the top bit 32N (a NAF
        // carry) is offset L of the last chunk.
        for offset in (0..=len).rev() {
            acc = Self::point_double(&acc);
            let first_chunk = if offset == len { chunks - 1 } else { 0 };
            for c in first_chunk..chunks {
                let pos = c * len + offset;
                for (digits, table) in [(&d1, g), (&d2, q)] {
                    let d = digits[pos];
                    if d == 0 {
                        continue;
                    }
                    let Some(point) = table.get(c, d) else {
                        return Jacobian::INFINITY;
                    };
                    acc = if d > 0 {
                        Self::point_add_affine(&acc, point)
                    } else {
                        let neg = Affine {
                            x: point.x,
                            y: Self::fe_neg(&point.y),
                        };
                        Self::point_add_affine(&acc, &neg)
                    };
                }
            }
        }
        acc
    }

    /// `a * b * R^-1 mod n` (Montgomery multiplication, CIOS) for `a, b < n`.
    fn scalar_mont_mul(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let n = &Self::ORDER;
        let mut t = [0u32; N];
        // The accumulator's limbs above t[N - 1]: t < 2n < 2^(32N + 1) between rows.
        let mut t_hi = 0u64;
        for &ai in a.iter() {
            let ai = u64::from(ai);
            let mut c = 0u64;
            for (tj, &bj) in t.iter_mut().zip(b) {
                let s = u64::from(*tj) + ai * u64::from(bj) + c;
                *tj = s as u32;
                c = s >> 32;
            }
            let s = t_hi + c;
            let (t_n, t_n1) = (s & MASK, s >> 32);
            let m = u64::from(t[0].wrapping_mul(Self::ORDER_N0));
            let mut c = (u64::from(t[0]) + m * u64::from(n[0])) >> 32;
            for j in 1..N {
                let s = u64::from(t[j]) + m * u64::from(n[j]) + c;
                t[j - 1] = s as u32;
                c = s >> 32;
            }
            let s = t_n + c;
            t[N - 1] = s as u32;
            t_hi = t_n1 + (s >> 32);
        }
        if t_hi != 0 || !lt(&t, n) {
            t = sub_limbs(&t, n).0;
        }
        t
    }

    /// `a^-1 R mod n` (the Montgomery form of the inverse) for `0 < a < n`, from
    /// [`almost_inverse`] and one Montgomery multiplication by `2^(64N - k)`.
    fn scalar_inv_mont(a: &Limbs<N>) -> Option<Limbs<N>> {
        let (inv, k) = almost_inverse(a, &Self::ORDER)?;
        // bits(n) = 32N, so 32N <= k <= 64N: inv 2^(64N - k) R^-1 = a^-1 R, where 2^(64N - k)
        // is a single bit below n, or 2^(32N) mod n = 2^(32N) - n when k = 32N.
        let shift = (64 * N).checked_sub(k)?;
        let mut factor = [0u32; N];
        match shift.cmp(&(32 * N)) {
            std::cmp::Ordering::Less => factor[shift / 32] = 1 << (shift % 32),
            std::cmp::Ordering::Equal => factor = sub_limbs(&[0u32; N], &Self::ORDER).0,
            std::cmp::Ordering::Greater => return None,
        }
        Some(Self::scalar_mont_mul(&inv, &factor))
    }

    /// The ECDSA check for `0 < r, s < n` and `z < n` against a public key's table: whether the
    /// x coordinate of `u1 G + u2 Q`, with `u1 = z / s` and `u2 = r / s`, is `r` modulo n.
    fn verify_scalars(q: &Table<N>, z: &Limbs<N>, r: &Limbs<N>, s: &Limbs<N>) -> bool {
        let Some(g) = Self::g_table() else {
            return false;
        };
        // n is prime and 0 < s < n, so the inverse exists.
        let Some(w_mont) = Self::scalar_inv_mont(s) else {
            return false;
        };
        let u1 = Self::scalar_mont_mul(z, &w_mont);
        let u2 = Self::scalar_mont_mul(r, &w_mont);
        let sum = Self::double_mul(g, &u1, q, &u2);
        if sum.is_infinity() {
            return false;
        }
        // x = X / Z^2 is in [0, p) and p < 2n, so x mod n = r means x = r or x = r + n: compare
        // X with r Z^2 (and (r + n) Z^2) instead of inverting Z. r < n < p is a field element.
        let z2 = Self::fe_sqr(&sum.z);
        if Self::fe_mul(r, &z2) == sum.x {
            return true;
        }
        let (r_plus_n, carry) = add_limbs(r, &Self::ORDER);
        !carry && lt(&r_plus_n, &Self::P) && Self::fe_mul(&r_plus_n, &z2) == sum.x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p256::P256;
    use crate::p384::P384;
    use ::p256::elliptic_curve::bigint::ArrayEncoding as _;
    use ::p256::elliptic_curve::sec1::ToEncodedPoint;
    use ::p256::elliptic_curve::{Curve as _, PrimeField as _};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rsa::BigUint;

    fn big<const N: usize>(a: &Limbs<N>) -> BigUint {
        BigUint::from_bytes_be(&limbs_to_be(a))
    }

    fn limbs<const N: usize>(v: &BigUint) -> Limbs<N> {
        let bytes = v.to_bytes_be();
        assert!(bytes.len() <= 4 * N);
        let mut padded = vec![0u8; 4 * N - bytes.len()];
        padded.extend_from_slice(&bytes);
        limbs_from_be(&padded).expect("fits")
    }

    /// Edge values below m plus random ones, some with long runs of ones or zeros.
    fn samples<const N: usize>(rng: &mut StdRng, m: &Limbs<N>, count: usize) -> Vec<Limbs<N>> {
        let m_big = big(m);
        let mut out: Vec<Limbs<N>> = [0u32, 1, 2, 3]
            .iter()
            .map(|&v| limbs(&BigUint::from(v)))
            .collect();
        for k in 1..=3u32 {
            out.push(limbs(&(&m_big - k)));
        }
        out.push(limbs(&(&m_big >> 1)));
        out.push(limbs(&((&m_big >> 1) + 1u32)));
        for bit in [31usize, 32, 95, 96, 127, 128, 191, 192, 223, 224] {
            let v = BigUint::from(1u8) << bit;
            if v < m_big {
                out.push(limbs(&v));
                out.push(limbs(&(v - 1u8)));
            }
        }
        while out.len() < count {
            let mut v = [0u32; N];
            for l in v.iter_mut() {
                *l = match rng.gen_range(0..4) {
                    0 => 0,
                    1 => u32::MAX,
                    _ => rng.gen(),
                };
            }
            out.push(limbs(&(big(&v) % &m_big)));
        }
        out
    }

    fn check_field<const N: usize, C: Curve<N>>(seed: u64, expected_p: &BigUint) {
        assert_eq!(&big(&C::P), expected_p);
        let p = expected_p;
        let mut rng = StdRng::seed_from_u64(seed);
        let xs = samples(&mut rng, &C::P, 60);
        for a in &xs {
            let ab = big(a);
            assert_eq!(big(&C::fe_sqr(a)), (&ab * &ab) % p, "sqr {ab:x}");
            assert_eq!(big(&C::fe_neg(a)), (p - &ab) % p);
            if !is_zero(a) {
                let inv = inv_mod_vartime(a, &C::P).expect("invertible");
                assert_eq!(big(&C::fe_mul(a, &inv)), BigUint::from(1u8));
            }
            let rhs = C::curve_rhs(a);
            if let Some(root) = C::fe_sqrt(&rhs) {
                assert_eq!(C::fe_sqr(&root), rhs);
            }
            for b in &xs {
                let bb = big(b);
                assert_eq!(big(&C::fe_mul(a, b)), (&ab * &bb) % p, "{ab:x} * {bb:x}");
                assert_eq!(big(&C::fe_add(a, b)), (&ab + &bb) % p);
                assert_eq!(big(&C::fe_sub(a, b)), (&ab + p - &bb) % p);
            }
        }
        assert!(inv_mod_vartime(&[0u32; N], &C::P).is_none());
        assert!(almost_inverse(&[0u32; N], &C::P).is_none());
        assert!(almost_inverse(&C::P, &C::P).is_none());
        // A common factor: 2 and an even modulus, 3 and a multiple of 3.
        let mut even = C::P;
        even[0] ^= 1;
        assert!(almost_inverse(&limbs(&BigUint::from(2u8)), &even).is_none());
        let nine = limbs::<N>(&BigUint::from(9u8));
        assert!(almost_inverse(&limbs(&BigUint::from(3u8)), &nine).is_none());
        assert!(inv_mod_vartime(&limbs(&BigUint::from(3u8)), &nine).is_none());
        // p is 3 mod 4 and exactly one of a, -a is a square for a != 0.
        let two = limbs::<N>(&BigUint::from(2u8));
        let squares = [two, C::fe_neg(&two)]
            .iter()
            .filter(|v| C::fe_sqrt(v).is_some())
            .count();
        assert_eq!(squares, 1);
    }

    fn check_scalars<const N: usize, C: Curve<N>>(seed: u64) {
        let n = big(&C::ORDER);
        let r = BigUint::from(1u8) << (32 * N);
        assert_eq!(big(&C::ORDER_RR), (&r * &r) % &n);
        assert_eq!(C::ORDER[0].wrapping_mul(C::ORDER_N0), u32::MAX);
        let r_inv = r.modpow(&(&n - 2u8), &n);
        let mut rng = StdRng::seed_from_u64(seed);
        let xs = samples(&mut rng, &C::ORDER, 30);
        for a in &xs {
            let ab = big(a);
            if !is_zero(a) {
                let inv = inv_mod_vartime(a, &C::ORDER).expect("invertible");
                assert_eq!(big(&inv), ab.modpow(&(&n - 2u8), &n));
            }
            if !is_zero(a) {
                let (inv, k) = almost_inverse(a, &C::ORDER).expect("invertible");
                assert_eq!(
                    big(&inv),
                    ab.modpow(&(&n - 2u8), &n) * (BigUint::from(1u8) << k) % &n
                );
                assert!((32 * N..=64 * N).contains(&k));
                let mont = C::scalar_inv_mont(a).expect("invertible");
                assert_eq!(big(&mont), ab.modpow(&(&n - 2u8), &n) * &r % &n);
            }
            for b in &xs {
                let want = (&ab * big(b) % &n) * &r_inv % &n;
                assert_eq!(big(&C::scalar_mont_mul(a, b)), want);
            }
        }
    }

    #[test]
    fn p256_field_and_scalars() {
        let one = BigUint::from(1u8);
        let p = (&one << 256) - (&one << 224) + (&one << 192) + (&one << 96) - 1u8;
        check_field::<8, P256>(1, &p);
        check_scalars::<8, P256>(2);
        assert_eq!(
            limbs_to_be(&P256::ORDER),
            ::p256::NistP256::ORDER.to_be_byte_array().to_vec()
        );
        assert_eq!(big(&P256::SQRT_EXP), (&p + 1u8) >> 2);
    }

    #[test]
    fn p384_field_and_scalars() {
        let one = BigUint::from(1u8);
        let p = (&one << 384) - (&one << 128) - (&one << 96) + (&one << 32) - 1u8;
        check_field::<12, P384>(3, &p);
        check_scalars::<12, P384>(4);
        assert_eq!(
            limbs_to_be(&P384::ORDER),
            ::p384::NistP384::ORDER.to_be_byte_array().to_vec()
        );
    }

    #[test]
    fn wnaf_digits() {
        let mut rng = StdRng::seed_from_u64(5);
        let n = P384::ORDER;
        for (i, k) in samples(&mut rng, &n, 40).into_iter().enumerate() {
            let mut k = k;
            if i == 0 {
                k = [u32::MAX; 12];
            }
            for w in 2..=MAX_WINDOW {
                let d = wnaf(&k, w);
                let (mut pos, mut neg) = (BigUint::from(0u8), BigUint::from(0u8));
                let mut last_nonzero: Option<usize> = None;
                for (bit, &digit) in d.iter().enumerate() {
                    if digit == 0 {
                        continue;
                    }
                    assert_eq!(digit & 1, 1, "odd digits");
                    assert!(i32::from(digit).unsigned_abs() < 1 << (w - 1));
                    if let Some(prev) = last_nonzero {
                        assert!(bit - prev >= w as usize, "non-adjacent");
                    }
                    last_nonzero = Some(bit);
                    let v = BigUint::from(i32::from(digit).unsigned_abs()) << bit;
                    if digit > 0 {
                        pos += v;
                    } else {
                        neg += v;
                    }
                }
                assert_eq!(pos, big(&k) + neg, "w {w}");
            }
        }
    }

    /// `affine` as an uncompressed SEC1 encoding.
    fn sec1<const N: usize>(p: &Affine<N>) -> Vec<u8> {
        let mut out = vec![4u8];
        out.extend(limbs_to_be(&p.x));
        out.extend(limbs_to_be(&p.y));
        out
    }

    macro_rules! point_tests {
        ($name:ident, $n:literal, $curve:ty, $crate_:ident, $seed:literal, $keys:literal, $scalars:literal) => {
            #[test]
            fn $name() {
                use ::$crate_::{ProjectivePoint, Scalar};
                let reference = |k: &Limbs<$n>| -> Scalar {
                    Option::from(Scalar::from_repr(::$crate_::FieldBytes::clone_from_slice(
                        &limbs_to_be(k),
                    )))
                    .expect("scalar below n")
                };
                let encode = |p: &ProjectivePoint| p.to_affine().to_encoded_point(false);
                let g = ProjectivePoint::GENERATOR;
                assert_eq!(sec1(&<$curve>::G), encode(&g).as_bytes());
                assert!(<$curve>::is_on_curve(&<$curve>::G));
                let ours = |p: &Jacobian<$n>| <$curve>::to_affine(p).map(|a| sec1(&a));

                // Doubling and addition, including the special cases.
                let gj = Jacobian::from_affine(&<$curve>::G);
                let g2 = <$curve>::point_double(&gj);
                assert_eq!(ours(&g2).expect("finite"), encode(&g.double()).as_bytes());
                let g3 = <$curve>::point_add_affine(&g2, &<$curve>::G);
                assert_eq!(ours(&g3).expect("finite"), encode(&(g + g + g)).as_bytes());
                let also_g2 = <$curve>::point_add_affine(&gj, &<$curve>::G);
                assert_eq!(ours(&also_g2), ours(&g2));
                let neg_g = Affine {
                    x: <$curve>::G.x,
                    y: <$curve>::fe_neg(&<$curve>::G.y),
                };
                assert!(<$curve>::point_add_affine(&gj, &neg_g).is_infinity());
                assert!(<$curve>::point_add(&g2, &Jacobian::from_affine(&neg_g))
                    .is_infinity()
                    .eq(&false));
                assert_eq!(
                    ours(&<$curve>::point_add(&g2, &gj)),
                    ours(&g3),
                    "full addition"
                );
                assert_eq!(
                    ours(&<$curve>::point_add(&g2, &g2)),
                    ours(&<$curve>::point_double(&g2))
                );
                assert!(<$curve>::point_add(&gj, &Jacobian::from_affine(&neg_g)).is_infinity());
                assert_eq!(
                    ours(&<$curve>::point_add(&Jacobian::INFINITY, &g2)),
                    ours(&g2)
                );
                assert_eq!(
                    ours(&<$curve>::point_add(&g2, &Jacobian::INFINITY)),
                    ours(&g2)
                );
                assert!(<$curve>::point_double(&Jacobian::INFINITY).is_infinity());
                assert!(<$curve>::to_affine(&Jacobian::INFINITY).is_none());

                // u1 G + u2 Q against the reference, for keys Q = d G including d = 1 (so that
                // the two tables hold the same points) and d = n - 1 (Q = -G).
                let mut rng = StdRng::seed_from_u64($seed);
                let gt = <$curve>::g_table().expect("generator table");
                let n = <$curve>::ORDER;
                let one = limbs::<$n>(&BigUint::from(1u8));
                let n_minus_1 = sub_limbs(&n, &one).0;
                let mut ds = vec![one, n_minus_1, limbs(&BigUint::from(2u8))];
                ds.extend(
                    samples(&mut rng, &n, 30)
                        .into_iter()
                        .rev()
                        .take($keys)
                        .filter(|d| !is_zero(d)),
                );
                for d in &ds {
                    let q_ref = g * reference(d);
                    let q = Affine {
                        x: limbs_from_be(&encode(&q_ref).as_bytes()[1..1 + 4 * $n]).expect("x"),
                        y: limbs_from_be(&encode(&q_ref).as_bytes()[1 + 4 * $n..]).expect("y"),
                    };
                    let qt = <$curve>::build_table(&q, <$curve>::KEY_WINDOW).expect("table");
                    let mut us = samples(&mut rng, &n, 30);
                    us.rotate_left(rng.gen_range(0..30));
                    us.truncate($scalars);
                    us.push(*d);
                    us.push(sub_limbs(&n, d).0);
                    for (i, u1) in us.iter().enumerate() {
                        let u2 = &us[(i * 7 + 3) % us.len()];
                        let want = g * reference(u1) + q_ref * reference(u2);
                        let got = <$curve>::double_mul(gt, u1, &qt, u2);
                        let want_enc = (!bool::from(want.is_identity()))
                            .then(|| encode(&want).as_bytes().to_vec());
                        assert_eq!(ours(&got), want_enc, "d {d:x?} u1 {u1:x?} u2 {u2:x?}");
                    }
                }
            }
        };
    }

    use ::p256::elliptic_curve::group::Group as _;
    // The reference p384 crate takes milliseconds per scalar multiplication: fewer cases.
    point_tests!(p256_points, 8, P256, p256, 6, 6, 12);
    point_tests!(p384_points, 12, P384, p384, 7, 2, 5);
}
