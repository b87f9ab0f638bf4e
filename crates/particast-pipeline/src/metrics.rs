//! Forecast accuracy metrics with their standard definitions.
//!
//! For a series with actuals `y_1..y_h`, point forecast `f` (the median unless said otherwise),
//! in-sample history `x_1..x_n` and seasonality `m`:
//! - **sMAPE** (M4): `200/h * sum |y - f| / (|y| + |f|)`, averaged over series;
//! - **MASE** (M4): `mean |y - f| / (1/(n-m) sum_{t>m} |x_t - x_{t-m}|)`, averaged over series
//!   (and its median over series, which a few badly forecast series cannot move);
//! - **MSIS** (M4, alpha = 0.05): `mean[(U - L) + 2/alpha (L - y) 1{y < L} + 2/alpha (y - U)
//!   1{y > U}]` over the 95% interval, divided by the MASE scale, averaged over series;
//! - **coverage** of each central interval: share of actuals inside it;
//! - **ND**: `sum |y - f| / sum |y|` over all series and steps;
//! - **NRMSE**: `sqrt(mean (y - mean forecast)^2) / mean |y|` over all series and steps;
//! - **wQL**: mean over q in {0.1, ..., 0.9} of `2 sum rho_q(y - f_q) / sum |y|`, with the pinball
//!   loss `rho_q(u) = u (q - 1{u < 0})`;
//! - **CRPS**: mean CRPS per observation (closed form for Gaussian mixtures, sample-based
//!   otherwise), and weighted CRPS `sum CRPS / sum |y|`;
//! - **mean NLL**: mean `-log p(y)` under the predictive mixture (when there is one).

use serde::{Deserialize, Serialize};

/// What is known about one series' forecast and outcome.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalSeries {
    /// Series id.
    pub id: String,
    /// In-sample history (for the MASE / MSIS scale).
    pub history: Vec<f64>,
    /// Actuals over the horizon (NaN where unknown: skipped).
    pub actual: Vec<f64>,
    /// Point forecast for absolute-error metrics.
    pub point: Vec<f64>,
    /// Mean forecast (NRMSE).
    pub mean: Vec<f64>,
    /// Quantile forecasts at 0.1..0.9 (`quantiles[i][t]` for q = (i + 1) / 10); may be empty.
    pub quantiles: Vec<Vec<f64>>,
    /// Central intervals `(level, lo, hi)`.
    pub intervals: Vec<(f64, Vec<f64>, Vec<f64>)>,
    /// CRPS per step; may be empty.
    pub crps: Vec<f64>,
    /// NLL per step; may be empty.
    pub nll: Vec<f64>,
}

/// The metrics over a set of series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Series evaluated.
    pub series: usize,
    /// Observations evaluated.
    pub observations: usize,
    /// sMAPE (percent).
    pub smape: f64,
    /// MAPE (percent; the mean over series of each series' mean absolute percentage error,
    /// steps with a zero actual left out; NaN when every actual is zero).
    #[serde(default)]
    pub mape: f64,
    /// MASE (NaN when no series has history).
    pub mase: f64,
    /// Median over series of the per-series MASE (NaN when no series has history).
    #[serde(default)]
    pub mase_median: f64,
    /// MSIS at 95% (NaN without a 95% interval or history).
    pub msis: f64,
    /// Coverage per interval level.
    pub coverage: Vec<(f64, f64)>,
    /// ND.
    pub nd: f64,
    /// NRMSE.
    pub nrmse: f64,
    /// Mean weighted quantile loss (NaN without quantiles).
    pub wql: f64,
    /// Mean CRPS per observation (NaN when not available).
    pub crps: f64,
    /// Weighted CRPS.
    pub wcrps: f64,
    /// Mean NLL (NaN when not available).
    pub nll: f64,
}

/// The seasonal-naive in-sample scale `1/(n-m) sum |x_t - x_{t-m}|` (NaN when too short).
pub fn seasonal_scale(history: &[f64], m: usize) -> f64 {
    let m = m.max(1);
    if history.len() <= m {
        return f64::NAN;
    }
    let diffs: Vec<f64> = (m..history.len())
        .map(|t| (history[t] - history[t - m]).abs())
        .filter(|v| v.is_finite())
        .collect();
    if diffs.is_empty() {
        f64::NAN
    } else {
        diffs.iter().sum::<f64>() / diffs.len() as f64
    }
}

fn mean_of(v: &[f64]) -> f64 {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The median (mean of the middle two for an even count; NaN when empty).
fn median_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Computes the metrics (see the module docs) with seasonality `m`.
pub fn evaluate(series: &[EvalSeries], m: usize) -> Metrics {
    let mut sum = MetricsSum::default();
    for s in series {
        sum.add(s, seasonal_scale(&s.history, m));
    }
    sum.finish()
}

/// The metrics gathered one series at a time (memory: a few numbers per series), for
/// evaluations that stream; [`evaluate`] is this over a slice.
#[derive(Clone, Debug)]
pub struct MetricsSum {
    smapes: Vec<f64>,
    mapes: Vec<f64>,
    mases: Vec<f64>,
    msises: Vec<f64>,
    abs_err: f64,
    abs_y: f64,
    sq_err: f64,
    n: usize,
    ql: [f64; 9],
    have_q: bool,
    crps_sum: f64,
    crps_n: usize,
    nll_sum: f64,
    nll_n: usize,
    levels: Vec<f64>,
    cover: Vec<(usize, usize)>,
}

impl Default for MetricsSum {
    fn default() -> Self {
        MetricsSum {
            smapes: Vec::new(),
            mapes: Vec::new(),
            mases: Vec::new(),
            msises: Vec::new(),
            abs_err: 0.0,
            abs_y: 0.0,
            sq_err: 0.0,
            n: 0,
            ql: [0.0; 9],
            have_q: true,
            crps_sum: 0.0,
            crps_n: 0,
            nll_sum: 0.0,
            nll_n: 0,
            levels: Vec::new(),
            cover: Vec::new(),
        }
    }
}

impl MetricsSum {
    /// Adds a series whose in-sample scale ([`seasonal_scale`] of its history) is `scale`
    /// (NaN: no scaled metrics for it); `s.history` is not read.
    pub fn add(&mut self, s: &EvalSeries, scale: f64) {
        let idx: Vec<usize> = (0..s.actual.len())
            .filter(|&t| s.actual[t].is_finite())
            .collect();
        if idx.is_empty() {
            return;
        }
        let h = idx.len() as f64;
        let smape = 200.0 / h
            * idx
                .iter()
                .map(|&t| {
                    let den = s.actual[t].abs() + s.point[t].abs();
                    if den == 0.0 {
                        0.0
                    } else {
                        (s.actual[t] - s.point[t]).abs() / den
                    }
                })
                .sum::<f64>();
        self.smapes.push(smape);
        let nonzero: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&t| s.actual[t] != 0.0)
            .collect();
        if !nonzero.is_empty() {
            self.mapes.push(
                100.0 / nonzero.len() as f64
                    * nonzero
                        .iter()
                        .map(|&t| ((s.actual[t] - s.point[t]) / s.actual[t]).abs())
                        .sum::<f64>(),
            );
        }
        let mae = idx
            .iter()
            .map(|&t| (s.actual[t] - s.point[t]).abs())
            .sum::<f64>()
            / h;
        if scale.is_finite() && scale > 0.0 {
            self.mases.push(mae / scale);
        }
        for &t in &idx {
            let y = s.actual[t];
            self.abs_err += (y - s.point[t]).abs();
            self.abs_y += y.abs();
            self.sq_err += (y - s.mean[t]).powi(2);
            self.n += 1;
        }
        if s.quantiles.len() == 9 {
            for (i, q) in s.quantiles.iter().enumerate() {
                let level = (i + 1) as f64 / 10.0;
                for &t in &idx {
                    let u = s.actual[t] - q[t];
                    self.ql[i] += u * (level - if u < 0.0 { 1.0 } else { 0.0 });
                }
            }
        } else {
            self.have_q = false;
        }
        for (level, lo, hi) in &s.intervals {
            let k = match self.levels.iter().position(|l| l == level) {
                Some(k) => k,
                None => {
                    self.levels.push(*level);
                    self.cover.push((0, 0));
                    self.levels.len() - 1
                }
            };
            for &t in &idx {
                let y = s.actual[t];
                self.cover[k].1 += 1;
                if y >= lo[t] && y <= hi[t] {
                    self.cover[k].0 += 1;
                }
            }
            if (*level - 95.0).abs() < 1e-9 && scale.is_finite() && scale > 0.0 {
                let alpha = 0.05;
                let msis = idx
                    .iter()
                    .map(|&t| {
                        let (l, u, y) = (lo[t], hi[t], s.actual[t]);
                        (u - l)
                            + if y < l { 2.0 / alpha * (l - y) } else { 0.0 }
                            + if y > u { 2.0 / alpha * (y - u) } else { 0.0 }
                    })
                    .sum::<f64>()
                    / h
                    / scale;
                self.msises.push(msis);
            }
        }
        if !s.crps.is_empty() {
            for &t in &idx {
                self.crps_sum += s.crps[t];
                self.crps_n += 1;
            }
        }
        if !s.nll.is_empty() {
            for &t in &idx {
                self.nll_sum += s.nll[t];
                self.nll_n += 1;
            }
        }
    }

    /// The metrics of the series added.
    pub fn finish(&self) -> Metrics {
        Metrics {
            series: self.smapes.len(),
            observations: self.n,
            smape: mean_of(&self.smapes),
            mape: mean_of(&self.mapes),
            mase: mean_of(&self.mases),
            mase_median: median_of(&self.mases),
            msis: mean_of(&self.msises),
            coverage: self
                .levels
                .iter()
                .zip(&self.cover)
                .map(|(l, (inside, total))| (*l, *inside as f64 / (*total).max(1) as f64))
                .collect(),
            nd: self.abs_err / self.abs_y,
            nrmse: (self.sq_err / self.n.max(1) as f64).sqrt()
                / (self.abs_y / self.n.max(1) as f64),
            wql: if self.have_q && self.n > 0 {
                self.ql.iter().map(|l| 2.0 * l / self.abs_y).sum::<f64>() / 9.0
            } else {
                f64::NAN
            },
            crps: if self.crps_n > 0 {
                self.crps_sum / self.crps_n as f64
            } else {
                f64::NAN
            },
            wcrps: if self.crps_n > 0 {
                self.crps_sum / self.abs_y
            } else {
                f64::NAN
            },
            nll: if self.nll_n > 0 {
                self.nll_sum / self.nll_n as f64
            } else {
                f64::NAN
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // y = [2, 4], f = [1, 5]: sMAPE = 100 * (1/3 + 1/9), MASE scale from [1, 2, 4, 7] with
        // m = 1: mean(1, 2, 3) = 2, MAE = 1 -> 0.5.
        let s = EvalSeries {
            id: "a".into(),
            history: vec![1.0, 2.0, 4.0, 7.0],
            actual: vec![2.0, 4.0],
            point: vec![1.0, 5.0],
            mean: vec![1.0, 5.0],
            intervals: vec![(95.0, vec![0.0, 4.5], vec![3.0, 6.0])],
            // Every quantile at the point forecast: pinball losses q and 1 - q sum to 1.
            quantiles: vec![vec![1.0, 5.0]; 9],
            crps: vec![0.5, 0.25],
            nll: vec![1.0, 2.0],
        };
        let m = evaluate(&[s], 1);
        assert!((m.wql - 2.0 / 6.0).abs() < 1e-12);
        assert!((m.crps - 0.375).abs() < 1e-12 && (m.wcrps - 0.75 / 6.0).abs() < 1e-12);
        assert!((m.nll - 1.5).abs() < 1e-12);
        assert!((m.smape - 100.0 * (1.0 / 3.0 + 1.0 / 9.0)).abs() < 1e-12);
        assert!((m.mase - 0.5).abs() < 1e-12 && (m.mase_median - 0.5).abs() < 1e-12);
        assert!((median_of(&[3.0, 1.0, 2.0, 10.0]) - 2.5).abs() < 1e-12);
        assert!(median_of(&[]).is_nan());
        assert!((m.nd - 2.0 / 6.0).abs() < 1e-12);
        assert!((m.nrmse - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.coverage, vec![(95.0, 0.5)]);
        // MSIS: widths 3 and 1.5, the second misses by 0.5: (3 + 1.5 + 40 * 0.5) / 2 / 2.
        assert!((m.msis - (3.0 + 1.5 + 20.0) / 2.0 / 2.0).abs() < 1e-12);
    }
}
