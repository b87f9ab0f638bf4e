//! Anomaly scores from the predictive distribution: the recipes ([`AnomalyMethod`]), their
//! score functions, and the causal per-series memory they keep (`Tracker`) while a series
//! is scored, saved in its [`SeriesState`] so incremental scoring continues it exactly.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use super::state::SeriesState;
use super::ScoreConfig;

/// The anomaly score's recipe (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AnomalyMethod {
    /// One minus the two-sided tail probability of the observation.
    #[default]
    Tail,
    /// Short-term against long-term surprise (NLL), as a probability.
    Likelihood,
    /// The rank of the recent surprise (mean NLL of the last `smooth` observations) among the
    /// NLLs of the previous `long_window` observations, as a fraction; beyond the largest of
    /// them it keeps rising with the excess (relative to the largest minus the median, on a log
    /// scale), so the most extreme surprises still rank above the others. Unlike a z-score it
    /// does not assume the NLLs are Gaussian: on a spiky series a spike only ranks as high as
    /// it is rare there.
    Rank,
    /// A calibrated surprise: peaks over threshold. A generalized Pareto distribution is fitted
    /// (by moments, shape in [0, 0.45]) to the excesses of the top 2% of the previous
    /// `long_window` NLLs over their 98% quantile; the score of the recent surprise (as for
    /// `rank`) is one minus its tail probability under that fit, and its rank below the
    /// quantile ([`pot_score`]). Heavy tails per series, like the rank, but with a smooth,
    /// extrapolating tail where the rank only counts the few largest past values.
    Pot,
}

impl AnomalyMethod {
    /// Whether the method keeps a sorted copy of its window.
    fn keeps_sorted(self) -> bool {
        matches!(self, AnomalyMethod::Rank | AnomalyMethod::Pot)
    }
}

/// The causal memory of the anomaly method of one series: the last raw values (tail scores
/// or NLLs), the rank method's sorted copy of them, and the last scores before suppression.
pub(crate) struct Tracker<'a> {
    cfg: &'a ScoreConfig,
    recent: VecDeque<f64>,
    /// The rank method's sorted copy of `recent` (kept equal to it between steps).
    sorted: Vec<f64>,
    recent_anomaly: VecDeque<f64>,
}

impl<'a> Tracker<'a> {
    /// Continues the memory saved in `state`.
    pub(crate) fn resume(cfg: &'a ScoreConfig, state: &SeriesState) -> Self {
        let recent: VecDeque<f64> = state.recent_scores.iter().copied().collect();
        let sorted: Vec<f64> = if cfg.method.keeps_sorted() {
            let mut v: Vec<f64> = recent.iter().copied().collect();
            v.sort_by(f64::total_cmp);
            v
        } else {
            Vec::new()
        };
        Tracker {
            cfg,
            recent,
            sorted,
            recent_anomaly: state.recent_anomaly.iter().copied().collect(),
        }
    }

    /// The anomaly score of an observation with two-sided tail probability `p` and NLL `nll`.
    pub(crate) fn push(&mut self, p: f64, nll: f64) -> f64 {
        let cfg = self.cfg;
        let recent = &mut self.recent;
        let sorted = &mut self.sorted;
        let (raw_value, keep) = match cfg.method {
            AnomalyMethod::Tail => (1.0 - p, cfg.smooth.max(1)),
            AnomalyMethod::Likelihood => (nll, cfg.long_window.max(cfg.smooth).max(2)),
            // The previous long_window NLLs and this one.
            AnomalyMethod::Rank | AnomalyMethod::Pot => {
                (nll, cfg.long_window.max(cfg.smooth).max(1) + 1)
            }
        };
        recent.push_back(raw_value);
        while recent.len() > keep {
            if let Some(old) = recent.pop_front() {
                if cfg.method.keeps_sorted() {
                    // Always present (`sorted` mirrors `recent`); checked all the same.
                    let i = sorted.partition_point(|x| x.total_cmp(&old).is_lt());
                    if i < sorted.len() {
                        sorted.remove(i);
                    }
                }
            }
        }
        let short = cfg.smooth.max(1).min(recent.len());
        let short_mean = recent.iter().rev().take(short).sum::<f64>() / short as f64;
        let anomaly = match cfg.method {
            AnomalyMethod::Tail => short_mean,
            AnomalyMethod::Likelihood => {
                let n = recent.len() as f64;
                if recent.len() < 10 {
                    0.5
                } else {
                    let mean = recent.iter().sum::<f64>() / n;
                    let var = recent.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                    let sd = var.sqrt().max(1e-9 * (1.0 + mean.abs()));
                    likelihood_score((short_mean - mean) / sd)
                }
            }
            AnomalyMethod::Rank | AnomalyMethod::Pot => {
                // `sorted` holds the previous NLLs; then this one joins them.
                let score = if cfg.method == AnomalyMethod::Pot {
                    pot_score(sorted, short_mean)
                } else {
                    rank_score(sorted, short_mean)
                };
                let i = sorted.partition_point(|x| x.total_cmp(&raw_value).is_lt());
                sorted.insert(i, raw_value);
                score
            }
        };
        if cfg.suppress == 0 {
            return anomaly;
        }
        // O(W) per step; W is a few hundred at most, well under the kernel's cost.
        let onset = self.recent_anomaly.iter().all(|&a| anomaly > a);
        self.recent_anomaly.push_back(anomaly);
        while self.recent_anomaly.len() > cfg.suppress {
            self.recent_anomaly.pop_front();
        }
        if onset {
            anomaly
        } else {
            0.0
        }
    }

    /// Saves the memory into `state`.
    pub(crate) fn save(self, state: &mut SeriesState) {
        state.recent_scores = self.recent.into_iter().collect();
        state.recent_anomaly = self.recent_anomaly.into_iter().collect();
    }
}

/// The likelihood method's score of a z-value: `1 - q(z)`, with `q` the upper normal tail
/// probability, while `q >= 1e-6` (z up to 4.75); beyond, `1 - 1e-6 / (1 + ln(1 + log10(1e-6 / q)))`,
/// which continues `1 - q` continuously and strictly increases with z without ever reaching 1,
/// so that ties at 1.0 (Gaussian CDFs round to 1 from z = 8.3) cannot hide the most extreme
/// surprises from a threshold. `log10 q` is exact (erfc) up to z = 30 and asymptotic beyond.
pub fn likelihood_score(z: f64) -> f64 {
    use statrs::function::erf::erfc;
    const Q0: f64 = 1e-6;
    if z.is_nan() {
        return 0.5;
    }
    let q = 0.5 * erfc(z / std::f64::consts::SQRT_2);
    if q >= Q0 {
        return 1.0 - q;
    }
    let log10_q = if z < 30.0 {
        q.log10()
    } else {
        // ln q = -z^2/2 - ln(z sqrt(2 pi)) + O(1/z^2)
        (-0.5 * z * z - (z * (2.0 * std::f64::consts::PI).sqrt()).ln()) / std::f64::consts::LN_10
    };
    if !log10_q.is_finite() {
        return 1.0 - f64::EPSILON;
    }
    1.0 - Q0 / (1.0 + (Q0.log10() - log10_q).ln_1p())
}

/// The rank method's score of `v` among the ascending `sorted` past values: the fraction
/// below it (ties count half) while `v` is at most their maximum; beyond it,
/// `1 - 0.5 / m / (1 + ln(1 + excess / (max - median)))`, which continues the fraction
/// continuously and rises strictly with the excess without reaching 1 (the logarithm keeps even
/// astronomically large excesses below 1 in f64). Fewer than 10 past values: 0.5.
pub fn rank_score(sorted: &[f64], v: f64) -> f64 {
    let m = sorted.len();
    if m < 10 || v.is_nan() {
        return 0.5;
    }
    let max = sorted[m - 1];
    if v > max {
        let spread = (max - sorted[m / 2]).max(1e-12 * (1.0 + max.abs()));
        return 1.0 - 0.5 / m as f64 / (1.0 + ((v - max) / spread).ln_1p());
    }
    let below = sorted.partition_point(|x| *x < v);
    let at_most = sorted.partition_point(|x| *x <= v);
    (below as f64 + 0.5 * (at_most - below) as f64) / m as f64
}

/// The fraction of the past values that [`pot_score`]'s tail fit reads.
pub const POT_FRACTION: f64 = 0.02;

/// The `pot` method's score of `v` among the ascending `sorted` past values: with `u` their
/// `1 - POT_FRACTION` quantile, `v <= u` scores its rank (as [`rank_score`]); beyond, one minus
/// the tail probability `P(X > v) = f (1 + xi (v - u) / sigma)^(-1/xi)` of a generalized Pareto
/// fitted by moments to the excesses over `u` (`f` the fraction above `u`; the shape `xi` kept in
/// [0, 0.45], `xi = 0` the exponential). Below a tail probability of 1e-12 the score keeps rising
/// with `-log P` without reaching 1, so extreme surprises stay ordered. Fewer than 100 past
/// values: the rank score.
pub fn pot_score(sorted: &[f64], v: f64) -> f64 {
    let m = sorted.len();
    if m < 100 || v.is_nan() {
        return rank_score(sorted, v);
    }
    let k = ((1.0 - POT_FRACTION) * m as f64) as usize;
    let u = sorted[k.min(m - 1)];
    if v <= u {
        return rank_score(sorted, v);
    }
    let excess = &sorted[k..];
    let n = excess.len() as f64;
    let mean = excess.iter().map(|x| x - u).sum::<f64>() / n;
    let var = excess.iter().map(|x| (x - u - mean).powi(2)).sum::<f64>() / n;
    let floor = 1e-12 * (1.0 + u.abs());
    let mean = mean.max(floor);
    let (xi, sigma) = if var > 0.0 {
        let r = mean * mean / var;
        (
            (0.5 * (1.0 - r)).clamp(0.0, 0.45),
            (0.5 * mean * (r + 1.0)).max(floor),
        )
    } else {
        (0.0, mean)
    };
    let z = (v - u) / sigma;
    let log_p = (n / m as f64).ln() - if xi > 1e-9 { (xi * z).ln_1p() / xi } else { z };
    const LOG_P0: f64 = -27.631_021_115_928_547; // ln 1e-12
    if log_p > LOG_P0 {
        // Continuous with the rank at u (its tail probability there is about n / m).
        1.0 - log_p.exp()
    } else {
        1.0 - 1e-12 / (1.0 + ((LOG_P0 - log_p) / std::f64::consts::LN_10).ln_1p())
    }
}

#[cfg(test)]
mod tests {
    use super::{likelihood_score, pot_score, rank_score};

    #[test]
    fn pot_score_is_the_rank_below_the_quantile_then_a_rising_tail_probability() {
        // Exponential-looking past values: -ln of evenly spaced probabilities.
        let mut past: Vec<f64> = (1..=1000).map(|i| -(i as f64 / 1001.0).ln()).collect();
        past.sort_by(f64::total_cmp);
        assert_eq!(pot_score(&past, 0.5), rank_score(&past, 0.5));
        // Beyond the quantile the tail fit gives about the exponential's tail probability.
        let s = pot_score(&past, 6.0);
        assert!((1.0 - s - (-6.0f64).exp()).abs() < 1.5e-3, "{s}");
        let mut last = pot_score(&past, 4.0);
        for v in [5.0, 8.0, 20.0, 50.0, 1e3, 1e9, 1e300] {
            let r = pot_score(&past, v);
            assert!(r > last && r < 1.0, "{v}: {r} after {last}");
            last = r;
        }
        // Few past values: the rank; constant past: still ordered.
        assert_eq!(pot_score(&past[..50], 3.0), rank_score(&past[..50], 3.0));
        let flat = vec![1.0; 200];
        assert!(pot_score(&flat, 1.5) > pot_score(&flat, 1.0));
        assert!(pot_score(&flat, 3.0) > pot_score(&flat, 1.5));
    }
    use statrs::distribution::{ContinuousCDF, Normal};

    #[test]
    fn the_likelihood_score_is_the_normal_cdf_then_keeps_rising_below_1() {
        let n = Normal::new(0.0, 1.0).unwrap();
        for z in [-5.0, -1.0, 0.0, 1.0, 2.5, 4.0, 4.7] {
            assert!((likelihood_score(z) - n.cdf(z)).abs() < 1e-12, "z = {z}");
        }
        let zs: Vec<f64> = (0..4000)
            .map(|i| -3.0 + i as f64 * 0.05)
            .chain([1e3, 1e6])
            .collect();
        let s: Vec<f64> = zs.iter().map(|&z| likelihood_score(z)).collect();
        for (w, z) in s.windows(2).zip(&zs[1..]) {
            assert!(
                w[1] > w[0],
                "not increasing at z = {z}: {} then {}",
                w[0],
                w[1]
            );
            assert!(w[1] < 1.0);
        }
        // Continuous where the two pieces meet (q = 1e-6 at z = 4.7534).
        let (a, b) = (likelihood_score(4.7533), likelihood_score(4.7535));
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        assert_eq!(likelihood_score(f64::INFINITY), 1.0 - f64::EPSILON);
    }

    #[test]
    fn rank_score_is_the_fraction_below_then_keeps_rising() {
        let past: Vec<f64> = (1..=20).map(f64::from).collect();
        // Fewer than 10 past values: no opinion.
        assert_eq!(rank_score(&past[..9], 100.0), 0.5);
        // 5 of 20 below 5.5; 4 below and one tie (half) at 5.
        assert_eq!(rank_score(&past, 5.5), 0.25);
        assert_eq!(rank_score(&past, 5.0), 4.5 / 20.0);
        assert_eq!(rank_score(&past, 0.0), 0.0);
        // At the maximum: 19.5 / 20; beyond it, continuous and strictly rising, below 1.
        assert_eq!(rank_score(&past, 20.0), 1.0 - 0.5 / 20.0);
        let mut last = rank_score(&past, 20.0);
        for v in [20.001, 21.0, 30.0, 1e3, 1e9, 1e300] {
            let r = rank_score(&past, v);
            assert!(r > last && r < 1.0, "{v}: {r} after {last}");
            last = r;
        }
        assert!((rank_score(&past, 20.0 + 1e-9) - (1.0 - 0.5 / 20.0)).abs() < 1e-9);
        // Constant past: still ordered beyond it.
        let flat = vec![3.0; 12];
        assert_eq!(rank_score(&flat, 3.0), 0.5);
        assert!(rank_score(&flat, 3.1) > rank_score(&flat, 3.0));
        assert!(rank_score(&flat, 4.0) > rank_score(&flat, 3.1));
    }
}
