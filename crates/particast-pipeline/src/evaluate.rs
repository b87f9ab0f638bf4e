//! From forecasts and outcomes to [`EvalSeries`] and [`Metrics`]: quantiles, CRPS and NLL
//! computed from the predictive distribution itself ([`evaluate_forecasts`] for a whole run).

use particast_ingest::{Dataset, PreparedSeries};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::error::{PipelineError, Result};
use crate::forecast::{empirical_quantile, SeriesForecast, StepForecast};
use crate::metrics::{seasonal_scale, EvalSeries, Metrics, MetricsSum};
use crate::mixture;

/// Evaluation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateConfig {
    /// Seasonality of the in-sample naive scale of MASE and MSIS (1: the previous step).
    pub season: usize,
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        EvaluateConfig { season: 1 }
    }
}

/// The metrics of `forecasts` (with interval `levels`) against `actuals`, each series'
/// in-sample scale (MASE, MSIS, at seasonality `season`) from its series in `history` (none:
/// no scaled metrics for it). Outcomes are matched by timestamp, or by position when
/// `positional` (wide files whose step counter restarts, like M4's test set). Series missing
/// from the actuals are skipped; none in common is an error.
pub fn evaluate_forecasts(
    forecasts: &[SeriesForecast],
    levels: &[f64],
    actuals: &Dataset,
    history: &[PreparedSeries],
    positional: bool,
    season: usize,
) -> Result<Metrics> {
    let scales = history_scales(history.iter().map(Ok), season)?;
    evaluate_stream(
        forecasts.iter().cloned().map(Ok),
        levels,
        actuals,
        &scales,
        positional,
    )
}

/// The in-sample scale of every series (see [`seasonal_scale`], seasonality `season`), by id:
/// what scaled metrics need of a history, read as a stream (one number per series is kept).
pub fn history_scales(
    history: impl Iterator<Item = particast_ingest::Result<impl std::borrow::Borrow<PreparedSeries>>>,
    season: usize,
) -> Result<HashMap<String, f64>> {
    let mut out = HashMap::new();
    for h in history {
        let h = h?;
        let h = h.borrow();
        out.insert(h.id.clone(), seasonal_scale(&history_of(h), season));
    }
    Ok(out)
}

/// [`evaluate_forecasts`] over forecasts as they come (a forecast file read part by part, say),
/// with each series' in-sample scale from `scales` ([`history_scales`]; a series without one
/// gets no scaled metrics): memory holds one forecast and a few numbers per series.
pub fn evaluate_stream(
    forecasts: impl Iterator<Item = Result<SeriesForecast>>,
    levels: &[f64],
    actuals: &Dataset,
    scales: &HashMap<String, f64>,
    positional: bool,
) -> Result<Metrics> {
    let index: HashMap<&str, &PreparedSeries> =
        actuals.series.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut sum = MetricsSum::default();
    let (mut any, mut matched) = (false, false);
    for f in forecasts {
        let f = f?;
        any = true;
        let Some(a) = index.get(f.id.as_str()) else {
            continue;
        };
        matched = true;
        let actual = actuals_for(&f, a, positional);
        let scale = scales.get(f.id.as_str()).copied().unwrap_or(f64::NAN);
        sum.add(&eval_series(&f, &actual, Vec::new(), levels), scale);
    }
    if any && !matched {
        return Err(PipelineError::NoOverlap);
    }
    Ok(sum.finish())
}

/// The outcome of every forecast step, looked up in `outcome` by timestamp, or by position when
/// `positional` (wide files whose step counter restarts, like M4's test set); NaN where unknown.
pub fn actuals_for(f: &SeriesForecast, outcome: &PreparedSeries, positional: bool) -> Vec<f64> {
    let index: std::collections::HashMap<i64, usize> = if positional {
        Default::default()
    } else {
        (0..outcome.len())
            .map(|t| (outcome.timestamp(t as i64), t))
            .collect()
    };
    f.steps
        .iter()
        .enumerate()
        .map(|(k, st)| {
            let t = if positional {
                Some(k)
            } else {
                index.get(&st.ds).copied()
            };
            t.and_then(|t| outcome.value(t as i64, 0))
                .unwrap_or(f64::NAN)
        })
        .collect()
}

/// The first target of a series as a vector (NaN where missing), for MASE / MSIS scales.
pub fn history_of(s: &PreparedSeries) -> Vec<f64> {
    (0..s.len())
        .map(|t| s.value(t as i64, 0).unwrap_or(f64::NAN))
        .collect()
}

/// CRPS of a step's predictive at y: closed form for Gaussian mixtures, the sample estimator for
/// sampled paths, and `2 * integral of the pinball loss over q` on a 999-point grid otherwise
/// (Student-t mixtures).
pub fn step_crps(s: &StepForecast, y: f64) -> f64 {
    if !s.mixture.is_empty() {
        if s.mixture.iter().all(|c| c.nu.is_infinite()) {
            return mixture::crps_gaussian_mixture(&s.mixture, y);
        }
        let n = 999;
        return (1..=n)
            .map(|i| {
                let q = i as f64 / (n + 1) as f64;
                let u = y - mixture::quantile(&s.mixture, q);
                2.0 * u * (q - if u < 0.0 { 1.0 } else { 0.0 })
            })
            .sum::<f64>()
            / n as f64;
    }
    if !s.samples.is_empty() {
        return mixture::crps_samples(&s.samples, y);
    }
    f64::NAN
}

/// The step's q-quantile (exact for mixtures, empirical for samples).
pub fn step_quantile(s: &StepForecast, q: f64) -> f64 {
    if !s.mixture.is_empty() {
        mixture::quantile(&s.mixture, q)
    } else if !s.samples.is_empty() {
        let mut v = s.samples.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        empirical_quantile(&v, q)
    } else {
        f64::NAN
    }
}

/// Builds the evaluation record of one forecast against `actual` (same steps; NaN where
/// unknown) with in-sample `history`; `levels` name the forecast's intervals.
pub fn eval_series(
    f: &SeriesForecast,
    actual: &[f64],
    history: Vec<f64>,
    levels: &[f64],
) -> EvalSeries {
    let steps = &f.steps;
    let h = steps.len().min(actual.len());
    let actual = actual[..h].to_vec();
    let quantiles = (1..=9)
        .map(|i| {
            steps[..h]
                .iter()
                .map(|s| step_quantile(s, i as f64 / 10.0))
                .collect()
        })
        .collect();
    // A point forecast (no intervals, or fewer than the levels) is scored on what it has.
    let intervals = levels
        .iter()
        .enumerate()
        .filter(|(k, _)| steps[..h].iter().all(|s| s.intervals.len() > *k))
        .map(|(k, l)| {
            (
                *l,
                steps[..h].iter().map(|s| s.intervals[k].0).collect(),
                steps[..h].iter().map(|s| s.intervals[k].1).collect(),
            )
        })
        .collect();
    let crps = steps[..h]
        .iter()
        .zip(&actual)
        .map(|(s, &y)| step_crps(s, y))
        .collect();
    let nll = if steps.iter().all(|s| !s.mixture.is_empty()) {
        steps[..h]
            .iter()
            .zip(&actual)
            .map(|(s, &y)| -mixture::pdf(&s.mixture, y).ln())
            .collect()
    } else {
        Vec::new()
    };
    EvalSeries {
        id: f.id.clone(),
        history,
        point: steps[..h].iter().map(|s| s.median).collect(),
        mean: steps[..h].iter().map(|s| s.mean).collect(),
        actual,
        quantiles,
        intervals,
        crps,
        nll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture::Component;

    #[test]
    fn grid_crps_agrees_with_the_closed_form() {
        let comps = vec![
            Component {
                weight: 0.4,
                mu: 0.0,
                sigma: 1.0,
                nu: f64::INFINITY,
            },
            Component {
                weight: 0.6,
                mu: 3.0,
                sigma: 0.5,
                nu: f64::INFINITY,
            },
        ];
        let s = StepForecast {
            ds: 0,
            mean: 0.0,
            median: 0.0,
            intervals: vec![],
            mixture: comps.clone(),
            samples: vec![],
        };
        let exact = step_crps(&s, 1.2);
        let mut t = s.clone();
        // A huge but finite dof forces the grid path on (practically) the same distribution.
        t.mixture.iter_mut().for_each(|c| c.nu = 1e9);
        let grid = step_crps(&t, 1.2);
        assert!((exact - grid).abs() < 2e-3, "{exact} vs {grid}");
    }
}
