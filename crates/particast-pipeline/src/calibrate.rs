//! Conformal calibration of forecast intervals on backtest residuals (split conformal
//! quantile regression, Romano et al. 2019).
//!
//! For every backtest window of every series, each interval at level `a` scores the outcome
//! by how far it falls outside: `s = max(lo - y, y - hi) / scale` (negative inside), with
//! `scale` the series' in-sample mean absolute seasonal difference (the MASE denominator), so
//! that series of different sizes pool. The calibrated interval is `[lo - q scale, hi + q
//! scale]`, with `q` the `ceil((n + 1) a) / n` empirical quantile of the `n` scores: with
//! exchangeable windows its coverage is at least `a`. Quantiles are per horizon step when each
//! step has at least [`MIN_PER_STEP`] scores, else pooled over the steps.
//!
//! A model directory keeps its calibration in `calibration.json` (written by `particast cv
//! --calibrate`, read with the model); forecasts use it when asked (`calibrated = true`,
//! `--calibrated`). Scores are gathered by [`crate::cv`], applied by [`crate::forecast`].

use particast_ingest::PreparedSeries;
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};
use crate::metrics::seasonal_scale;

/// File name of a model's calibration.
pub const CALIBRATION: &str = "calibration.json";

/// Fewest scores per horizon step for a per-step quantile (else pooled over the steps).
pub const MIN_PER_STEP: usize = 50;

/// Interval corrections per level and horizon step, in units of each series' scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Seasonality of the scale (the MASE denominator's).
    pub season: usize,
    /// Interval levels in percent.
    pub levels: Vec<f64>,
    /// `corrections[level][step]`: widen each side by this many scales (negative: narrow).
    pub corrections: Vec<Vec<f64>>,
    /// Whether the quantiles were pooled over the horizon steps.
    pub pooled: bool,
    /// Scores behind each quantile (per step, or in all when pooled).
    pub scores: usize,
}

/// The scale a series' intervals are corrected in (NaN when it has no seasonal pair).
pub fn series_scale(history: &PreparedSeries, season: usize) -> f64 {
    let values: Vec<f64> = (0..history.len())
        .map(|t| history.value(t as i64, 0).unwrap_or(f64::NAN))
        .collect();
    seasonal_scale(&values, season)
}

/// The nonconformity score of outcome `y` against the interval `(lo, hi)` of a series of
/// scale `scale`: how far outside it falls, in scales (negative inside).
pub fn score(lo: f64, hi: f64, y: f64, scale: f64) -> f64 {
    (lo - y).max(y - hi) / scale
}

/// The `level` conformal quantile of `scores` (sorted ascending): the `ceil((n + 1) level)`-th
/// smallest, the largest when that rank is past the end.
fn conformal_quantile(sorted: &[f64], level: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let rank = ((n as f64 + 1.0) * level).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

impl Calibration {
    /// The corrections of nonconformity scores ([`score`]) gathered per level and horizon
    /// step (`scores[level][step]`): per step when every step has [`MIN_PER_STEP`], else
    /// pooled over the steps.
    pub fn from_scores(
        scores: Vec<Vec<Vec<f64>>>,
        levels: &[f64],
        season: usize,
    ) -> Result<Calibration> {
        let horizon = scores.first().map_or(0, Vec::len);
        let per_step = scores
            .iter()
            .all(|by_step| by_step.iter().all(|s| s.len() >= MIN_PER_STEP));
        let mut n = 0;
        let corrections = scores
            .into_iter()
            .zip(levels)
            .map(|(by_step, &level)| {
                let a = level / 100.0;
                if per_step {
                    by_step
                        .into_iter()
                        .map(|mut s| {
                            s.sort_by(f64::total_cmp);
                            n = s.len();
                            conformal_quantile(&s, a)
                        })
                        .collect()
                } else {
                    let mut all: Vec<f64> = by_step.into_iter().flatten().collect();
                    all.sort_by(f64::total_cmp);
                    n = all.len();
                    vec![conformal_quantile(&all, a); horizon]
                }
            })
            .collect();
        if n == 0 {
            return Err(PipelineError::Config(
                "calibration: no backtest outcome with a usable scale (series need more than one \
                 season of history and observed values in their windows)"
                    .into(),
            ));
        }
        Ok(Calibration {
            season,
            levels: levels.to_vec(),
            corrections,
            pooled: !per_step,
            scores: n,
        })
    }

    /// The row of each of `levels` among the calibrated levels; an error for a level that is
    /// not calibrated.
    pub fn rows(&self, levels: &[f64]) -> Result<Vec<usize>> {
        levels
            .iter()
            .map(|l| {
                self.levels
                    .iter()
                    .position(|c| (c - l).abs() < 1e-9)
                    .ok_or_else(|| {
                        PipelineError::Config(format!(
                            "the model's calibration has levels {:?}, not {l}: calibrate with \
                             these levels (particast cv --calibrate --levels ...)",
                            self.levels
                        ))
                    })
            })
            .collect()
    }

    /// The correction of level row `row` at horizon step `k` (the last step's past the
    /// calibrated horizon).
    pub fn correction(&self, row: usize, k: usize) -> Option<f64> {
        let by_step = self.corrections.get(row)?;
        by_step.get(k).or(by_step.last()).copied()
    }

    /// Checks a calibration read from a file.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.corrections.len() != self.levels.len()
            || self.corrections.iter().flatten().any(|q| !q.is_finite())
        {
            return Err("damaged calibration (one row of finite corrections per level)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformal_rank() {
        let s: Vec<f64> = (1..=9).map(f64::from).collect();
        // ceil(10 * 0.8) = 8th smallest.
        assert_eq!(conformal_quantile(&s, 0.8), 8.0);
        assert_eq!(conformal_quantile(&s, 0.99), 9.0);
        assert_eq!(conformal_quantile(&s, 0.01), 1.0);
        assert_eq!(conformal_quantile(&[], 0.5), 0.0);
    }
}
