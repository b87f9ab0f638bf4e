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

#[cfg(test)]
mod tests {
    use super::*;

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
