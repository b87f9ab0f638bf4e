//! Emission heads: raw outputs to distribution parameters, log-densities and their gradients.
//!
//! A particle row's raw head outputs are laid out `[mu_0..mu_D, s_0..s_D, (v_0..v_D)]`:
//! mean `mu`, scale `sigma = softplus(s) + floor`, and for the Student-t head degrees of freedom
//! `nu = 2 + softplus(v)` (so the variance is finite).

use crate::model::Head;
use crate::real::{digamma, sigmoid, softplus, Real};

/// Distribution parameters of one particle for one target dimension.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Emission<T> {
    /// Location.
    pub mu: T,
    /// Scale (standard deviation for the Gaussian).
    pub sigma: T,
    /// Degrees of freedom (Student-t); `+inf` for the Gaussian.
    pub nu: T,
}

/// The parameters of dimension `d` from a raw output row of `D` dimensions.
#[inline]
pub fn emission<T: Real>(head: Head, raw: &[T], d: usize, dims: usize, floor: T) -> Emission<T> {
    let mu = raw[d];
    let sigma = softplus(raw[dims + d]) + floor;
    let nu = match head {
        Head::Gaussian => T::infinity(),
        Head::StudentT => T::c(2.0) + softplus(raw[2 * dims + d]),
    };
    Emission { mu, sigma, nu }
}

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// log density of `y` under `e`.
#[inline]
pub fn log_density<T: Real>(head: Head, e: &Emission<T>, y: T) -> T {
    let z = (y - e.mu) / e.sigma;
    match head {
        Head::Gaussian => -T::c(HALF_LN_2PI) - e.sigma.ln_fast() - T::c(0.5) * z * z,
        Head::StudentT => {
            let nu = e.nu;
            let half = T::c(0.5);
            ((nu + T::one()) * half).lgamma()
                - (nu * half).lgamma()
                - half * (nu * T::c(std::f64::consts::PI)).ln()
                - e.sigma.ln()
                - (nu + T::one()) * half * (z * z / nu).ln_1p()
        }
    }
}

/// Sum over observed dimensions of the log density of `y` for one particle row, and (when
/// `grad` is given) the derivative of that sum with respect to each raw output, written into
/// `grad` (same layout as `raw`; unobserved dimensions get 0).
#[inline]
pub fn row_log_density<T: Real>(
    head: Head,
    raw: &[T],
    y: &[T],
    mask: &[T],
    floor: T,
    grad: Option<&mut [T]>,
) -> T {
    let dims = y.len();
    let mut total = T::zero();
    let mut grad = grad;
    if let Some(g) = grad.as_deref_mut() {
        g.iter_mut().for_each(|v| *v = T::zero());
    }
    for d in 0..dims {
        if mask[d] == T::zero() {
            continue;
        }
        let e = emission(head, raw, d, dims, floor);
        total += log_density(head, &e, y[d]);
        let Some(g) = grad.as_deref_mut() else {
            continue;
        };
        let z = (y[d] - e.mu) / e.sigma;
        let ds_raw = sigmoid(raw[dims + d]);
        match head {
            Head::Gaussian => {
                g[d] = z / e.sigma;
                g[dims + d] = (z * z - T::one()) / e.sigma * ds_raw;
            }
            Head::StudentT => {
                let nu = e.nu;
                let one = T::one();
                let a = one + z * z / nu;
                g[d] = (nu + one) * z / (nu * a * e.sigma);
                g[dims + d] = (-one + (nu + one) * z * z / (nu * a)) / e.sigma * ds_raw;
                let half = T::c(0.5);
                let dnu = half * digamma((nu + one) * half)
                    - half * digamma(nu * half)
                    - half / nu
                    - half * a.ln()
                    + (nu + one) * z * z / (T::c(2.0) * nu * nu * a);
                g[2 * dims + d] = dnu * sigmoid(raw[2 * dims + d]);
            }
        }
    }
    total
}

/// One Gaussian row of [`gaussian_rows`]: the raw scale `x`, `e^x`, sigma, z and the log
/// density, as `emission`, `softplus` and `log_density` compute them.
#[inline(always)]
fn gaussian_row<T: Real>(mu: T, x: T, y: T, floor: T) -> (T, T, T, T, T) {
    let one = T::one();
    let e = x.exp_fast();
    let u = one + e;
    let ln_1p = if u == one {
        e
    } else {
        u.ln_fast() * e / (u - one)
    };
    let sp = if x > T::c(20.0) {
        x
    } else if x < T::c(-20.0) {
        e
    } else {
        ln_1p
    };
    let sigma = sp + floor;
    let z = (y - mu) / sigma;
    let ld = T::zero() + (-T::c(HALF_LN_2PI) - sigma.ln_fast() - T::c(0.5) * z * z);
    (x, e, sigma, z, ld)
}

/// [`row_log_density`] of many one-dimensional Gaussian rows at once, bit for bit: row `i` has
/// raw outputs `raw[2 i..2 i + 2]`, observation `y[i]` and mask `mask[i]`; its log density goes
/// to `lp[i]` and, with `grad`, its two derivatives to `grad[2 i..2 i + 2]`. The same arithmetic
/// as the row-at-a-time path, with its branches as selects, so the loop vectorises: the
/// softplus's exponential also gives the logistic function for negative raw scales. Compiled
/// for AVX-512 and AVX2 with run-time dispatch, like the cells.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
pub(crate) fn gaussian_rows<T: Real>(
    raw: &[T],
    y: &[T],
    mask: &[T],
    floor: T,
    lp: &mut [T],
    grad: Option<&mut [T]>,
) {
    let n = lp.len();
    let (raw, y, mask) = (&raw[..2 * n], &y[..n], &mask[..n]);
    let one = T::one();
    match grad {
        None => {
            for i in 0..n {
                let (.., ld) = gaussian_row(raw[2 * i], raw[2 * i + 1], y[i], floor);
                lp[i] = if mask[i] == T::zero() { T::zero() } else { ld };
            }
        }
        Some(g) => {
            let g = &mut g[..2 * n];
            for i in 0..n {
                let (x, e, sigma, z, ld) = gaussian_row(raw[2 * i], raw[2 * i + 1], y[i], floor);
                // sigmoid(x) as `sigmoid` computes it (e^x is `e` below 0).
                let ds = if x >= T::zero() {
                    one / (one + (-x).exp_fast())
                } else {
                    e / (one + e)
                };
                let observed = mask[i] != T::zero();
                lp[i] = if observed { ld } else { T::zero() };
                g[2 * i] = if observed { z / sigma } else { T::zero() };
                g[2 * i + 1] = if observed {
                    (z * z - one) / sigma * ds
                } else {
                    T::zero()
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_rows_equal_the_row_path_bit_for_bit() {
        let n = 37;
        let raw: Vec<f32> = (0..2 * n)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * if i % 2 == 1 { 2.7 } else { 0.3 })
            .collect();
        let y: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let mask: Vec<f32> = (0..n).map(|i| f32::from(u8::from(i % 5 != 0))).collect();
        let mut lp = vec![0.0; n];
        let mut g = vec![0.0; 2 * n];
        gaussian_rows(&raw, &y, &mask, 1e-3, &mut lp, Some(&mut g));
        let mut lp2 = vec![0.0; n];
        gaussian_rows(&raw, &y, &mask, 1e-3, &mut lp2, None);
        for i in 0..n {
            let mut gi = [0.0f32; 2];
            let want = row_log_density(
                Head::Gaussian,
                &raw[2 * i..2 * i + 2],
                &y[i..i + 1],
                &mask[i..i + 1],
                1e-3,
                Some(&mut gi),
            );
            assert_eq!(lp[i].to_bits(), want.to_bits(), "row {i}");
            assert_eq!(lp2[i].to_bits(), want.to_bits(), "row {i}");
            assert_eq!(g[2 * i].to_bits(), gi[0].to_bits(), "row {i}");
            assert_eq!(g[2 * i + 1].to_bits(), gi[1].to_bits(), "row {i}");
        }
    }

    #[test]
    fn student_t_tends_to_gaussian() {
        let g = Emission {
            mu: 0.3f64,
            sigma: 1.7,
            nu: f64::INFINITY,
        };
        let t = Emission { nu: 1e7, ..g };
        let a = log_density(Head::Gaussian, &g, 1.1);
        let b = log_density(Head::StudentT, &t, 1.1);
        assert!((a - b).abs() < 1e-6, "{a} {b}");
    }

    #[test]
    fn student_t_density_matches_a_closed_form() {
        // nu = 3: p(z) = 2 / (pi sqrt(3) (1 + z^2/3)^2) / sigma.
        let e = Emission {
            mu: 1.0f64,
            sigma: 2.0,
            nu: 3.0,
        };
        let y = 2.5;
        let z: f64 = (y - 1.0) / 2.0;
        let want =
            (2.0 / (std::f64::consts::PI * 3f64.sqrt() * (1.0 + z * z / 3.0).powi(2)) / 2.0).ln();
        assert!((log_density(Head::StudentT, &e, y) - want).abs() < 1e-12);
    }

    #[test]
    fn raw_gradients_match_finite_differences() {
        for head in [Head::Gaussian, Head::StudentT] {
            let raw = [0.2f64, -1.3, 0.4, 0.9, 0.1, -0.5];
            let y = [0.7, -2.0];
            let mask = [1.0, 1.0];
            let p = head.outputs_per_dim() * 2;
            let raw = &raw[..p];
            let mut g = vec![0.0; p];
            row_log_density(head, raw, &y, &mask, 1e-3, Some(&mut g));
            for i in 0..p {
                let h = 1e-6;
                let mut a = raw.to_vec();
                a[i] += h;
                let mut b = raw.to_vec();
                b[i] -= h;
                let fd = (row_log_density(head, &a, &y, &mask, 1e-3, None)
                    - row_log_density(head, &b, &y, &mask, 1e-3, None))
                    / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{head:?} {i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }
}
