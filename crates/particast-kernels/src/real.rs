//! The floating-point abstraction (f32 for speed, f64 for gradient checks), the one GEMM entry
//! point, and the special functions the heads need.

use faer::{Accum, MatMut, MatRef, Par};
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A real scalar the kernels run on: `f32` or `f64`.
pub trait Real:
    num_traits::Float
    + faer::traits::RealField
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Converts from f64 (rounding for f32).
    fn c(v: f64) -> Self;
    /// Converts to f64.
    fn f(self) -> f64;
    /// log Gamma(x) for x > 0.
    fn lgamma(self) -> Self;
    /// The logistic function as the cells use it: branch-free so loops over it vectorise. f32
    /// uses a polynomial exp (absolute error below 3e-7); f64 is exact to rounding.
    fn sigm(self) -> Self;
    /// tanh as the cells use it (f32: absolute error below 3e-7; f64: exact to rounding).
    fn tanh_act(self) -> Self;
    /// e^x as the heads, the gate and the mixture use it: f32 inlines [`exp_f32`] (relative
    /// error about 2e-7, no libm call per element); f64 is exact to rounding.
    fn exp_fast(self) -> Self;
    /// ln x for x > 0 as the heads and the gate use it: f32 inlines [`ln_f32`] (relative error
    /// about 1e-7); f64 is exact to rounding.
    fn ln_fast(self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn c(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn f(self) -> f64 {
        self as f64
    }
    fn lgamma(self) -> Self {
        libm::lgammaf(self)
    }
    #[inline(always)]
    fn sigm(self) -> Self {
        1.0 / (1.0 + exp_f32(-self))
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        2.0 / (1.0 + exp_f32(-2.0 * self)) - 1.0
    }
    #[inline(always)]
    fn exp_fast(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln_fast(self) -> Self {
        ln_f32(self)
    }
}

/// A branch-free exp for f32 (Cephes' polynomial after range reduction by ln 2; relative error
/// about 2e-7 over the clamped range [-87, 88]), written with plain arithmetic so loops over it
/// vectorise.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from the integer in t's mantissa (t = 1.5 * 2^23 + n exactly, |n| <= 127): integer
    // arithmetic that vectorises, where `n as i32` (a saturating cast) does not.
    let n_int = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    y * f32::from_bits((n_int.wrapping_add(127) as u32) << 23)
}

/// ln x for f32 (Cephes' logf: the mantissa brought into [sqrt(1/2), sqrt(2)), a degree-9
/// polynomial, the exponent times ln 2 in two parts; relative error about 1e-7), inlined.
/// Zero, negative, subnormal and non-finite arguments take `f32::ln`.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    if !(f32::MIN_POSITIVE..=f32::MAX).contains(&x) {
        return x.ln();
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let f = m - 1.0;
    let z = f * f;
    let mut y = 7.037_683_6e-2f32;
    y = y * f - 1.151_461e-1;
    y = y * f + 1.167_699_9e-1;
    y = y * f - 1.242_014_1e-1;
    y = y * f + 1.424_932_3e-1;
    y = y * f - 1.666_805_8e-1;
    y = y * f + 2.000_071_4e-1;
    y = y * f - 2.499_999_4e-1;
    y = y * f + 3.333_333e-1;
    let ef = e as f32;
    let y = y * f * z - 2.121_944_4e-4 * ef - 0.5 * z;
    f + y + 0.693_359_4 * ef
}

/// ln(1 + x) for x > -1 from [`Real::ln_fast`], accurate for small x too (Goldberg's trick:
/// the rounding of 1 + x cancels).
#[inline(always)]
pub fn ln_1p_fast<T: Real>(x: T) -> T {
    let u = T::one() + x;
    if u == T::one() {
        x
    } else {
        u.ln_fast() * x / (u - T::one())
    }
}

impl Real for f64 {
    #[inline(always)]
    fn c(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn f(self) -> f64 {
        self
    }
    fn lgamma(self) -> Self {
        libm::lgamma(self)
    }
    #[inline(always)]
    fn sigm(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        self.tanh()
    }
    #[inline(always)]
    fn exp_fast(self) -> Self {
        self.exp()
    }
    #[inline(always)]
    fn ln_fast(self) -> Self {
        self.ln()
    }
}

/// The digamma function psi(x) for x > 0: recurrence up to x >= 10, then the asymptotic series
/// (absolute error below 1e-12 in f64).
pub fn digamma<T: Real>(x: T) -> T {
    let mut x = x.f();
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0)))));
    T::c(acc + x.ln() - 0.5 * inv - series)
}

/// softplus(x) = log(1 + e^x), stable for large |x|.
#[inline(always)]
pub fn softplus<T: Real>(x: T) -> T {
    if x > T::c(20.0) {
        x
    } else if x < T::c(-20.0) {
        x.exp_fast()
    } else {
        ln_1p_fast(x.exp_fast())
    }
}

/// The logistic function.
#[inline(always)]
pub fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp_fast())
    } else {
        let e = x.exp_fast();
        e / (T::one() + e)
    }
}

/// Inverse of softplus, for initialisation.
pub fn softplus_inv(y: f64) -> f64 {
    if y > 20.0 {
        y
    } else {
        y.exp_m1().ln()
    }
}

/// log(sum(exp(v))) computed stably; `-inf` for an empty or all `-inf` slice.
#[inline]
pub fn logsumexp<T: Real>(v: &[T]) -> T {
    let m = v.iter().copied().fold(T::neg_infinity(), T::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|&x| (x - m).exp_fast()).sum::<T>().ln_fast()
}

/// A row-major matrix operand: `data` holds `rows x cols` with `stride` between rows; when
/// `transpose` is set the operand is the transpose of that matrix.
#[derive(Clone, Copy)]
pub struct Operand<'a, T> {
    /// Row-major storage.
    pub data: &'a [T],
    /// Rows of the stored matrix.
    pub rows: usize,
    /// Columns of the stored matrix.
    pub cols: usize,
    /// Distance between row starts in `data`.
    pub stride: usize,
    /// Use the transpose.
    pub transpose: bool,
}

impl<'a, T> Operand<'a, T> {
    /// A dense row-major matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Operand {
            data,
            rows,
            cols,
            stride: cols,
            transpose: false,
        }
    }
    /// A row-major matrix whose rows are `stride` apart.
    pub fn strided(data: &'a [T], rows: usize, cols: usize, stride: usize) -> Self {
        Operand {
            data,
            rows,
            cols,
            stride,
            transpose: false,
        }
    }
    /// The transpose of this operand.
    pub fn t(self) -> Self {
        Operand {
            transpose: !self.transpose,
            ..self
        }
    }
    fn shape(&self) -> (usize, usize) {
        if self.transpose {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
    fn view(&self) -> MatRef<'a, T> {
        let needed = if self.rows == 0 {
            0
        } else {
            (self.rows - 1) * self.stride + self.cols
        };
        let m = MatRef::from_row_major_slice_with_stride(
            &self.data[..needed],
            self.rows,
            self.cols,
            self.stride.max(1),
        );
        if self.transpose {
            m.transpose()
        } else {
            m
        }
    }
}

/// `dst (m x n, row-major, row stride dst_stride) = [dst +] alpha * a * b` through faer.
///
/// # Panics
/// When the shapes do not agree (a programming error inside the crate, never user input).
pub fn gemm<T: Real>(
    dst: &mut [T],
    dst_stride: usize,
    accumulate: bool,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    alpha: T,
    par: Par,
) {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    assert_eq!(k, k2, "gemm inner dimensions");
    if m == 0 || n == 0 {
        return;
    }
    let needed = (m - 1) * dst_stride + n;
    let dst = &mut dst[..needed];
    assert!(dst_stride >= n, "gemm destination stride");
    // SAFETY: `dst` holds `(m - 1) * dst_stride + n` elements, so every (i, j) with i < m, j < n
    // lies at i * dst_stride + j inside it. (faer 0.24's `from_row_major_slice_with_stride_mut`
    // swaps the strides, so the view is built by hand.)
    let dst_view =
        unsafe { MatMut::from_raw_parts_mut(dst.as_mut_ptr(), m, n, dst_stride as isize, 1) };
    if k == 0 {
        if !accumulate {
            let mut dst_view = dst_view;
            dst_view.fill(T::zero());
        }
        return;
    }
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(dst_view, beta, a.view(), b.view(), alpha, par);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_matches_known_values() {
        // psi(1) = -Euler-Mascheroni; psi(0.5) = -gamma - 2 ln 2; psi(10) from tables.
        let g = 0.577_215_664_901_532_9;
        assert!((digamma(1.0f64) + g).abs() < 1e-12);
        assert!((digamma(0.5f64) + g + 2.0 * 2f64.ln()).abs() < 1e-12);
        assert!((digamma(10.0f64) - 2.251_752_589_066_721).abs() < 1e-12);
    }

    #[test]
    fn gemm_with_transposes_and_strides() {
        // a: 2x3, b: 3x2 stored transposed as 2x3.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0f64];
        let bt = [1.0, 0.0, 2.0, 0.0, 1.0, 1.0f64];
        let mut c = [0.0f64; 2 * 3];
        gemm(
            &mut c,
            3,
            false,
            Operand::new(&a, 2, 3),
            Operand::new(&bt, 2, 3).t(),
            1.0,
            Par::Seq,
        );
        // column 2 of c (stride 3) untouched.
        assert_eq!(c, [7.0, 5.0, 0.0, 16.0, 11.0, 0.0]);
        let mut d = [1.0f64; 4];
        gemm(
            &mut d,
            2,
            true,
            Operand::new(&a, 2, 3),
            Operand::new(&a, 2, 3).t(),
            2.0,
            Par::Seq,
        );
        assert_eq!(d, [29.0, 65.0, 65.0, 155.0]);
    }

    #[test]
    fn fast_f32_activations_are_accurate() {
        let mut worst = (0.0f64, 0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4 * 3.0; // [-60, 60]
            let e = (x.sigm() as f64 - 1.0 / (1.0 + (-(x as f64)).exp())).abs();
            let t = (x.tanh_act() as f64 - (x as f64).tanh()).abs();
            worst.0 = worst.0.max(e);
            worst.1 = worst.1.max(t);
            if x.abs() < 80.0 {
                let ex = ((exp_f32(x) as f64) / (x as f64).exp() - 1.0).abs();
                worst.2 = worst.2.max(ex);
            }
        }
        assert!(
            worst.0 < 3e-7 && worst.1 < 3e-7 && worst.2 < 3e-7,
            "{worst:?}"
        );
        assert_eq!(exp_f32(-1000.0), exp_f32(-87.0));
        let mut worst_ln = 0.0f64;
        let mut worst_ln1p = 0.0f64;
        for i in 1..=400_000 {
            // ln over 1e-30 .. 1e30 (log-spaced), ln_1p over -0.999 .. 1e3.
            let x = 10f64.powf(-30.0 + 60.0 * i as f64 / 400_000.0) as f32;
            let want = (x as f64).ln();
            worst_ln = worst_ln.max((ln_f32(x) as f64 - want).abs() / want.abs().max(1.0));
            let u = (-0.999 + 1000.0 * (i as f64 / 400_000.0).powi(3)) as f32;
            let want = (u as f64).ln_1p();
            let got = ln_1p_fast(u) as f64;
            worst_ln1p = worst_ln1p.max((got - want).abs() / want.abs().max(1e-30));
        }
        assert!(
            worst_ln < 3e-7 && worst_ln1p < 5e-7,
            "{worst_ln} {worst_ln1p}"
        );
        assert_eq!(ln_f32(1.0), 0.0);
        assert!(ln_f32(0.0) == f32::NEG_INFINITY && ln_f32(-1.0).is_nan());
        assert!(ln_f32(f32::INFINITY).is_infinite() && ln_f32(1e-40).is_finite());
        assert!(exp_f32(1000.0).is_finite());
    }

    #[test]
    fn logsumexp_is_stable() {
        let v = [1000.0f64, 1000.0];
        assert!((logsumexp(&v) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(logsumexp::<f64>(&[]), f64::NEG_INFINITY);
    }
}
