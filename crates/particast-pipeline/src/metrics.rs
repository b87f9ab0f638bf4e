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
    let mut smapes = Vec::new();
    let mut mapes = Vec::new();
    let mut mases = Vec::new();
    let mut msises = Vec::new();
    let (mut abs_err, mut abs_y, mut sq_err, mut n) = (0.0, 0.0, 0.0, 0usize);
    let mut ql = [0.0f64; 9];
    let mut have_q = true;
    let mut crps_sum = 0.0;
    let mut crps_n = 0usize;
    let mut nll_sum = 0.0;
    let mut nll_n = 0usize;
    let mut levels: Vec<f64> = Vec::new();
    let mut cover: Vec<(usize, usize)> = Vec::new();
    for s in series {
        let idx: Vec<usize> = (0..s.actual.len())
            .filter(|&t| s.actual[t].is_finite())
            .collect();
        if idx.is_empty() {
            continue;
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
        smapes.push(smape);
        let nonzero: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&t| s.actual[t] != 0.0)
            .collect();
        if !nonzero.is_empty() {
            mapes.push(
                100.0 / nonzero.len() as f64
                    * nonzero
                        .iter()
                        .map(|&t| ((s.actual[t] - s.point[t]) / s.actual[t]).abs())
                        .sum::<f64>(),
            );
        }
        let scale = seasonal_scale(&s.history, m);
        let mae = idx
            .iter()
            .map(|&t| (s.actual[t] - s.point[t]).abs())
            .sum::<f64>()
            / h;
        if scale.is_finite() && scale > 0.0 {
            mases.push(mae / scale);
        }
        for &t in &idx {
            let y = s.actual[t];
            abs_err += (y - s.point[t]).abs();
            abs_y += y.abs();
            sq_err += (y - s.mean[t]).powi(2);
            n += 1;
        }
        if s.quantiles.len() == 9 {
            for (i, q) in s.quantiles.iter().enumerate() {
                let level = (i + 1) as f64 / 10.0;
                for &t in &idx {
                    let u = s.actual[t] - q[t];
                    ql[i] += u * (level - if u < 0.0 { 1.0 } else { 0.0 });
                }
            }
        } else {
            have_q = false;
        }
        for (level, lo, hi) in &s.intervals {
            let k = match levels.iter().position(|l| l == level) {
                Some(k) => k,
                None => {
                    levels.push(*level);
                    cover.push((0, 0));
                    levels.len() - 1
                }
            };
            for &t in &idx {
                let y = s.actual[t];
                cover[k].1 += 1;
                if y >= lo[t] && y <= hi[t] {
                    cover[k].0 += 1;
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
                msises.push(msis);
            }
        }
        if !s.crps.is_empty() {
            for &t in &idx {
                crps_sum += s.crps[t];
                crps_n += 1;
            }
        }
        if !s.nll.is_empty() {
            for &t in &idx {
                nll_sum += s.nll[t];
                nll_n += 1;
            }
        }
    }
    Metrics {
        series: smapes.len(),
        observations: n,
        smape: mean_of(&smapes),
        mape: mean_of(&mapes),
        mase: mean_of(&mases),
        mase_median: median_of(&mases),
        msis: mean_of(&msises),
        coverage: levels
            .iter()
            .zip(&cover)
            .map(|(l, (inside, total))| (*l, *inside as f64 / (*total).max(1) as f64))
            .collect(),
        nd: abs_err / abs_y,
        nrmse: (sq_err / n.max(1) as f64).sqrt() / (abs_y / n.max(1) as f64),
        wql: if have_q && n > 0 {
            ql.iter().map(|l| 2.0 * l / abs_y).sum::<f64>() / 9.0
        } else {
            f64::NAN
        },
        crps: if crps_n > 0 {
            crps_sum / crps_n as f64
        } else {
            f64::NAN
        },
        wcrps: if crps_n > 0 {
            crps_sum / abs_y
        } else {
            f64::NAN
        },
        nll: if nll_n > 0 {
            nll_sum / nll_n as f64
        } else {
            f64::NAN
        },
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
