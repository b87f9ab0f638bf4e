//! Predictive mixtures over particles: built from the kernel's outputs (`components`), CDF,
//! density, exact quantiles by inversion, and CRPS.

use particast_kernels::{emission, ModelConfig};
use statrs::distribution::{Continuous, ContinuousCDF, Normal, StudentsT};

use crate::inputs::Affine;

/// One mixture component in original units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Component {
    /// Weight (the weights of a mixture sum to 1).
    pub weight: f64,
    /// Location.
    pub mu: f64,
    /// Scale (standard deviation for the Gaussian).
    pub sigma: f64,
    /// Degrees of freedom; infinite for a Gaussian component.
    pub nu: f64,
}

impl Component {
    fn standard_cdf(&self, z: f64) -> f64 {
        if self.nu.is_finite() {
            StudentsT::new(0.0, 1.0, self.nu)
                .map(|t| t.cdf(z))
                .unwrap_or(f64::NAN)
        } else {
            // Normal::new(0, 1) cannot fail.
            Normal::new(0.0, 1.0).map(|n| n.cdf(z)).unwrap_or(f64::NAN)
        }
    }
    /// P(X <= x).
    pub fn cdf(&self, x: f64) -> f64 {
        self.standard_cdf((x - self.mu) / self.sigma)
    }
    /// Density at x.
    pub fn pdf(&self, x: f64) -> f64 {
        let z = (x - self.mu) / self.sigma;
        let p = if self.nu.is_finite() {
            StudentsT::new(0.0, 1.0, self.nu)
                .map(|t| t.pdf(z))
                .unwrap_or(f64::NAN)
        } else {
            Normal::new(0.0, 1.0).map(|n| n.pdf(z)).unwrap_or(f64::NAN)
        };
        p / self.sigma
    }
    /// Standard deviation (finite for nu > 2).
    pub fn std(&self) -> f64 {
        if self.nu.is_finite() {
            self.sigma * (self.nu / (self.nu - 2.0)).sqrt()
        } else {
            self.sigma
        }
    }
}

/// The mixture CDF at x.
pub fn cdf(c: &[Component], x: f64) -> f64 {
    c.iter()
        .map(|k| k.weight * k.cdf(x))
        .sum::<f64>()
        .clamp(0.0, 1.0)
}

/// The mixture density at x.
pub fn pdf(c: &[Component], x: f64) -> f64 {
    c.iter().map(|k| k.weight * k.pdf(x)).sum()
}

/// The mixture mean.
pub fn mean(c: &[Component]) -> f64 {
    c.iter().map(|k| k.weight * k.mu).sum()
}

/// The mean of `max(X, lo)` for X drawn from the mixture (the mean of the predictive censored
/// at `lo`): per component `lo + sigma E[max(Z - c, 0)]` with `c = (lo - mu) / sigma`, which is
/// `sigma (phi(c) - c (1 - Phi(c)))` for a Gaussian and `sigma ((nu + c^2) / (nu - 1) f(c) -
/// c (1 - F(c)))` for a Student-t (nu > 1; nu <= 1 has no mean: the uncensored location is
/// returned for such a component, bounded below by `lo`).
pub fn censored_mean(c: &[Component], lo: f64) -> f64 {
    c.iter()
        .map(|k| {
            let z = (lo - k.mu) / k.sigma;
            let upper = if k.nu.is_finite() {
                if k.nu <= 1.0 {
                    return k.weight * k.mu.max(lo);
                }
                StudentsT::new(0.0, 1.0, k.nu)
                    .map(|t| (k.nu + z * z) / (k.nu - 1.0) * t.pdf(z) - z * (1.0 - t.cdf(z)))
                    .unwrap_or(f64::NAN)
            } else {
                Normal::new(0.0, 1.0)
                    .map(|n| n.pdf(z) - z * (1.0 - n.cdf(z)))
                    .unwrap_or(f64::NAN)
            };
            k.weight * (lo + k.sigma * upper)
        })
        .sum()
}

/// The mixture standard deviation.
pub fn std(c: &[Component]) -> f64 {
    let m = mean(c);
    c.iter()
        .map(|k| k.weight * (k.std().powi(2) + (k.mu - m).powi(2)))
        .sum::<f64>()
        .sqrt()
}

/// The q-quantile of the mixture, found by bisection on the exact CDF until the CDF is within
/// 1e-9 of q or the bracket is narrower than 1e-12 of the mixture's spread.
pub fn quantile(c: &[Component], q: f64) -> f64 {
    let q = q.clamp(1e-12, 1.0 - 1e-12);
    let spread = c
        .iter()
        .map(|k| k.std().max(k.sigma))
        .fold(0.0f64, f64::max)
        .max(1e-300);
    let mut lo = c
        .iter()
        .map(|k| k.mu - 10.0 * k.std().max(k.sigma))
        .fold(f64::INFINITY, f64::min);
    let mut hi = c
        .iter()
        .map(|k| k.mu + 10.0 * k.std().max(k.sigma))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut step = spread;
    while cdf(c, lo) > q && step.is_finite() {
        lo -= step;
        step *= 2.0;
    }
    step = spread;
    while cdf(c, hi) < q && step.is_finite() {
        hi += step;
        step *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let f = cdf(c, mid);
        if (f - q).abs() < 1e-9 || hi - lo < 1e-12 * spread {
            return mid;
        }
        if f < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn std_normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn std_normal_cdf(z: f64) -> f64 {
    Normal::new(0.0, 1.0).map(|n| n.cdf(z)).unwrap_or(f64::NAN)
}

/// E|X - y| for X ~ N(mu, s^2).
fn abs_moment(mu: f64, s: f64, y: f64) -> f64 {
    if s <= 0.0 {
        return (mu - y).abs();
    }
    let z = (y - mu) / s;
    s * (2.0 * std_normal_pdf(z) + z * (2.0 * std_normal_cdf(z) - 1.0))
}

/// CRPS of a Gaussian mixture at y, in closed form:
/// `sum_i w_i E|X_i - y| - 1/2 sum_ij w_i w_j E|X_i - X_j|` with
/// `X_i - X_j ~ N(mu_i - mu_j, s_i^2 + s_j^2)` (Grimit et al. 2006).
pub fn crps_gaussian_mixture(c: &[Component], y: f64) -> f64 {
    let mut first = 0.0;
    let mut second = 0.0;
    for a in c {
        first += a.weight * abs_moment(a.mu, a.sigma, y);
        for b in c {
            let s = (a.sigma * a.sigma + b.sigma * b.sigma).sqrt();
            second += a.weight * b.weight * abs_moment(a.mu - b.mu, s, 0.0);
        }
    }
    first - 0.5 * second
}

/// CRPS of an empirical distribution (samples) at y:
/// `mean |x_i - y| - 1/(2 n^2) sum_ij |x_i - x_j|`, in O(n log n) by sorting.
pub fn crps_samples(samples: &[f64], y: f64) -> f64 {
    let n = samples.len();
    if n == 0 {
        return f64::NAN;
    }
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let first: f64 = s.iter().map(|x| (x - y).abs()).sum::<f64>() / n as f64;
    // sum_{i<j} (x_j - x_i) = sum_j x_j (2j - n + 1) over sorted x.
    let pair: f64 = s
        .iter()
        .enumerate()
        .map(|(j, x)| x * (2.0 * j as f64 - n as f64 + 1.0))
        .sum();
    first - pair / (n as f64 * n as f64)
}

/// The mixture of one step for dimension `d` from the kernel's log-weights and raw head
/// outputs, in original units; `base(l)` is the
/// model-unit base that particle l's emission is relative to (see [`crate::Target`]).
pub(crate) fn components(
    cfg: &ModelConfig,
    log_w: &[f32],
    raw: &[f32],
    d: usize,
    affine: &Affine,
    base: impl Fn(usize) -> f64,
) -> Vec<Component> {
    let (l, p, dims) = (cfg.particles, cfg.head_width(), cfg.targets);
    (0..l)
        .map(|li| {
            let e = emission(
                cfg.head,
                &raw[li * p..(li + 1) * p],
                d,
                dims,
                cfg.sigma_floor as f32,
            );
            Component {
                weight: (log_w[li] as f64).exp(),
                mu: affine.to_original(d, e.mu as f64 + base(li)),
                sigma: e.sigma as f64 * affine.scale[d],
                nu: e.nu as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal as RNormal};

    fn mix() -> Vec<Component> {
        vec![
            Component {
                weight: 0.3,
                mu: -1.0,
                sigma: 0.5,
                nu: f64::INFINITY,
            },
            Component {
                weight: 0.7,
                mu: 2.0,
                sigma: 1.5,
                nu: f64::INFINITY,
            },
        ]
    }

    #[test]
    fn quantiles_invert_the_cdf() {
        let mut c = mix();
        for q in [0.01, 0.1, 0.5, 0.9, 0.975] {
            let x = quantile(&c, q);
            assert!((cdf(&c, x) - q).abs() < 1e-6, "{q}");
        }
        c[1].nu = 3.0;
        for q in [0.025, 0.5, 0.975] {
            let x = quantile(&c, q);
            assert!((cdf(&c, x) - q).abs() < 1e-6, "{q}");
        }
    }

    #[test]
    fn crps_closed_form_matches_monte_carlo() {
        // Independent check: CRPS = E|X - y| - 1/2 E|X - X'| estimated with 400k draws.
        let c = mix();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let draw = |rng: &mut rand_chacha::ChaCha8Rng| {
            let u: f64 = rand::Rng::random(rng);
            let k = if u < c[0].weight { &c[0] } else { &c[1] };
            RNormal::new(k.mu, k.sigma).unwrap().sample(rng)
        };
        let y = 0.7;
        let n = 400_000;
        let (mut a, mut b) = (0.0, 0.0);
        for _ in 0..n {
            let x = draw(&mut rng);
            let x2 = draw(&mut rng);
            a += (x - y).abs();
            b += (x - x2).abs();
        }
        let mc = a / n as f64 - 0.5 * b / n as f64;
        let exact = crps_gaussian_mixture(&c, y);
        assert!((mc - exact).abs() < 5e-3, "{mc} vs {exact}");
        // And the sample estimator agrees with the closed form on many samples.
        let samples: Vec<f64> = (0..100_000).map(|_| draw(&mut rng)).collect();
        assert!((crps_samples(&samples, y) - exact).abs() < 1e-2);
    }

    #[test]
    fn censored_mean_matches_monte_carlo() {
        let mut c = mix();
        c[1].nu = 4.0;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let n = 400_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let u: f64 = rand::Rng::random(&mut rng);
            let x = if u < c[0].weight {
                RNormal::new(c[0].mu, c[0].sigma).unwrap().sample(&mut rng)
            } else {
                c[1].mu + c[1].sigma * rand_distr::StudentT::new(4.0).unwrap().sample(&mut rng)
            };
            sum += x.max(0.5);
        }
        let mc = sum / n as f64;
        let exact = censored_mean(&c, 0.5);
        assert!((mc - exact).abs() < 5e-3, "{mc} vs {exact}");
        // Far below every component the censoring does next to nothing (the Student-t's tail
        // beyond z = -668 still carries about 1e-8 of the mean).
        assert!((censored_mean(&c, -1e3) - mean(&c)).abs() < 1e-6);
        c[1].nu = f64::INFINITY;
        assert!((censored_mean(&c, -1e3) - mean(&c)).abs() < 1e-12);
    }

    #[test]
    fn crps_of_a_point_mass_is_the_absolute_error() {
        assert!((crps_samples(&[3.0; 10], 1.0) - 2.0).abs() < 1e-12);
    }
}
