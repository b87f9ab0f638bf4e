//! Rolling-origin cross-validation (backtests), in Nixtla's layout.
//!
//! Each series gets `n_windows` cutoffs counted from its end: window k (0 the oldest) forecasts
//! `h` steps from the history of length `len - h - (n_windows - 1 - k) step_size`; the cutoff is
//! the last timestamp of that history. By default one model is trained on every series up to
//! its first cutoff and forecasts all windows; with `refit` a model is trained per window on
//! the history before its cutoff. All windows of all series are forecast in one parallel batch
//! (a forecast conditions on the last `context` steps before its cutoff, so a window costs what
//! a forecast costs). Future covariates come from the series' own rows after each cutoff.
//!
//! Output columns ([`Backtest::frame`]): `unique_id`, `ds`, `cutoff` (both in the input's time
//! type), `y` (the outcome, null where missing), then the forecast file's columns (`particast`,
//! `particast-median`, `particast-lo-80`, `particast-hi-80`, ...). Metrics ([`Backtest::metrics`]): those of
//! [`crate::evaluate`] per window and their mean over the windows.

use particast_ingest::{Dataset, PreparedSeries, TimeKind};
use polars::prelude::{DataFrame, DataType, NamedFrom, Series};
use serde::{Deserialize, Serialize};

use crate::calibrate::Calibration;
use crate::error::{PipelineError, Result};
use crate::forecast::{
    calibrate_intervals, forecast_ensemble_future, ForecastConfig, FutureCovariates, SeriesForecast,
};
use crate::metrics::Metrics;
use crate::model_dir::TrainedModel;
use crate::output::{forecast_batch, to_dataframe};

/// Cross-validation settings (the horizon and forecast settings are the forecast's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CvConfig {
    /// Windows (cutoffs) per series.
    pub n_windows: usize,
    /// Steps between consecutive cutoffs (`None`: the horizon).
    pub step_size: Option<usize>,
    /// Train a model per window on the history before its cutoff (instead of one model on the
    /// history before the first cutoff).
    pub refit: bool,
    /// Seasonality of MASE, MSIS and of the calibration's scale (`None`: the model's shortest
    /// season, else 1).
    pub season: Option<usize>,
}

impl Default for CvConfig {
    fn default() -> Self {
        CvConfig {
            n_windows: 3,
            step_size: None,
            refit: false,
            season: None,
        }
    }
}

impl CvConfig {
    /// Checks the settings against the horizon `h`.
    pub fn validate(&self, h: usize) -> Result<()> {
        if self.n_windows == 0 {
            return Err(PipelineError::Config("n_windows must be positive".into()));
        }
        crate::limits::at_most("n_windows", self.n_windows, 10_000, "")?;
        if self.step_size == Some(0) {
            return Err(PipelineError::Config("step_size must be positive".into()));
        }
        if h == 0 {
            return Err(PipelineError::Config("horizon must be positive".into()));
        }
        Ok(())
    }

    /// Steps between cutoffs for horizon `h`.
    pub fn step(&self, h: usize) -> usize {
        self.step_size.unwrap_or(h)
    }

    /// The history length before each cutoff of a series of `len` steps (oldest first), or
    /// `None` when the first would be empty.
    pub fn cutoffs(&self, len: usize, h: usize) -> Option<Vec<usize>> {
        let back = h.checked_add(self.step(h).checked_mul(self.n_windows - 1)?)?;
        let first = len.checked_sub(back).filter(|&n| n > 0)?;
        Some(
            (0..self.n_windows)
                .map(|k| first + k * self.step(h))
                .collect(),
        )
    }

    /// The seasonality of the metrics for `model`.
    pub fn season_for(&self, model: &TrainedModel) -> usize {
        self.season
            .or_else(|| {
                model
                    .meta
                    .recipe
                    .as_ref()
                    .and_then(|r| r.decisions.iter().find(|d| d.knob == "seasons"))
                    .and_then(|d| {
                        d.value
                            .split(|c: char| !c.is_ascii_digit())
                            .find_map(|t| t.parse::<usize>().ok())
                    })
            })
            .or_else(|| model.meta.inputs.target.season())
            .unwrap_or(1)
            .max(1)
    }
}

/// Every series cut before its first cutoff (series too short for the windows are left out):
/// what the model of a backtest trains on.
pub fn before_first_cutoff(
    series: &[PreparedSeries],
    cv: &CvConfig,
    h: usize,
) -> Vec<PreparedSeries> {
    series
        .iter()
        .filter_map(|s| Some(s.head(cv.cutoffs(s.len(), h)?[0])))
        .collect()
}

/// One forecast window of one series.
#[derive(Clone, Debug)]
pub struct Window {
    /// Window number (0 the oldest).
    pub window: usize,
    /// Index of the series in the input.
    pub series: usize,
    /// History length before the cutoff.
    pub origin: usize,
    /// The cutoff: the last timestamp of the history.
    pub cutoff: i64,
    /// The forecast.
    pub forecast: SeriesForecast,
}

/// A backtest's forecasts, with what its outputs need.
#[derive(Clone, Debug)]
pub struct Backtest {
    /// Every window of every series, series by series, windows oldest first.
    pub windows: Vec<Window>,
    /// Interval levels.
    pub levels: Vec<f64>,
    /// Forecast settings.
    pub forecast: ForecastConfig,
    /// Mixture components per step (particle mode).
    pub particles: usize,
    /// Whether any component is a Student-t.
    pub student_t: bool,
    /// Windows per series.
    pub n_windows: usize,
    /// Series left out (too short for the windows).
    pub skipped: usize,
    /// The seasonality of the metrics.
    pub season: usize,
}

/// Forecasts the windows `only` (all when `None`) of every series of `series` with `models`
/// (their ensemble when several): one parallel batch over all windows.
pub fn backtest(
    models: &[TrainedModel],
    series: &[PreparedSeries],
    fc: &ForecastConfig,
    cv: &CvConfig,
    only: Option<usize>,
) -> Result<Backtest> {
    let h = fc.horizon;
    cv.validate(h)?;
    let Some(first) = models.first() else {
        return Err(PipelineError::Config("a backtest needs a model".into()));
    };
    let mut picks = Vec::new();
    let mut skipped = 0;
    for (i, s) in series.iter().enumerate() {
        match cv.cutoffs(s.len(), h) {
            Some(cuts) => picks.extend(
                cuts.into_iter()
                    .enumerate()
                    .filter(|(k, _)| only.is_none_or(|o| o == *k))
                    .map(|(k, n)| (k, i, n)),
            ),
            None => skipped += 1,
        }
    }
    if picks.is_empty() {
        return Err(PipelineError::Config(format!(
            "no series is longer than the {} windows need ({} steps: h = {h} plus {} x step_size \
             {}, and one step of history)",
            cv.n_windows,
            h + cv.step(h) * (cv.n_windows - 1) + 1,
            cv.n_windows - 1,
            cv.step(h)
        )));
    }
    let histories: Vec<PreparedSeries> = picks.iter().map(|&(_, i, n)| series[i].head(n)).collect();
    let future = models
        .iter()
        .any(|m| m.meta.inputs.needs_future())
        .then(|| {
            FutureCovariates::from_series(
                series,
                &first.meta.data.covariate_cols,
                "the rows after each cutoff",
            )
        });
    let out = forecast_ensemble_future(models, &histories, fc, future.as_ref())?;
    let windows = picks
        .iter()
        .zip(out)
        .map(|(&(k, i, n), forecast)| Window {
            window: k,
            series: i,
            origin: n,
            cutoff: series[i].timestamp(n as i64 - 1),
            forecast,
        })
        .collect();
    Ok(Backtest {
        windows,
        levels: fc.levels.clone(),
        forecast: fc.clone(),
        particles: models.iter().map(|m| m.model.config.particles).sum(),
        student_t: models
            .iter()
            .any(|m| m.model.config.head == particast_kernels::Head::StudentT),
        n_windows: cv.n_windows,
        skipped,
        season: cv.season_for(first),
    })
}

impl Backtest {
    /// Appends the windows of `other` (another window's backtest of the same series).
    pub fn extend(&mut self, other: Backtest) {
        self.windows.extend(other.windows);
        self.windows.sort_by_key(|w| (w.series, w.window));
    }

    /// The rows in Nixtla's layout: `unique_id`, `ds`, `cutoff`, `y`, then the forecast
    /// columns; `series` are the backtest's input series (for the outcomes).
    pub fn frame(&self, series: &[PreparedSeries], time_kind: &TimeKind) -> Result<DataFrame> {
        let forecasts: Vec<SeriesForecast> =
            self.windows.iter().map(|w| w.forecast.clone()).collect();
        let batch = forecast_batch(
            &forecasts,
            &self.levels,
            self.forecast.mode,
            self.particles,
            self.student_t,
        )?;
        let mut df = to_dataframe(&batch, time_kind)?;
        let (mut cutoff, mut y) = (Vec::new(), Vec::new());
        for w in &self.windows {
            let s = &series[w.series];
            for k in 0..w.forecast.steps.len() {
                cutoff.push(w.cutoff);
                y.push(s.value((w.origin + k) as i64, 0));
            }
        }
        let polars_err = |e: polars::error::PolarsError| PipelineError::Polars {
            context: "building the cross-validation table".into(),
            source: e.into(),
        };
        let ds_type = df.column("ds").map_err(polars_err)?.dtype().clone();
        let cutoff = Series::new("cutoff".into(), cutoff)
            .cast(&ds_type)
            .map_err(polars_err)?;
        let y = Series::new("y".into(), y)
            .cast(&DataType::Float64)
            .map_err(polars_err)?;
        df.insert_column(2, cutoff.into()).map_err(polars_err)?;
        df.insert_column(3, y.into()).map_err(polars_err)?;
        Ok(df)
    }

    /// The windows `k` as (forecast, history, series) triples.
    fn of_window<'a>(
        &'a self,
        k: usize,
        histories: &'a [PreparedSeries],
        series: &'a [PreparedSeries],
    ) -> impl Iterator<Item = (&'a SeriesForecast, &'a PreparedSeries, &'a PreparedSeries)> + 'a
    {
        self.windows
            .iter()
            .zip(histories)
            .filter(move |(w, _)| w.window == k)
            .map(move |(w, hist)| (&w.forecast, hist, &series[w.series]))
    }

    /// The history of every window (each series cut at the window's cutoff).
    pub fn histories(&self, series: &[PreparedSeries]) -> Vec<PreparedSeries> {
        self.windows
            .iter()
            .map(|w| series[w.series].head(w.origin))
            .collect()
    }

    /// The metrics of each window (oldest first) against `data` (the backtest's input), and
    /// their mean over the windows.
    pub fn metrics(&self, data: &Dataset) -> Result<(Vec<Metrics>, Metrics)> {
        let histories = self.histories(&data.series);
        let mut per = Vec::with_capacity(self.n_windows);
        for k in 0..self.n_windows {
            let (fcs, hist): (Vec<SeriesForecast>, Vec<PreparedSeries>) = self
                .of_window(k, &histories, &data.series)
                .map(|(f, h, _)| (f.clone(), h.clone()))
                .unzip();
            if fcs.is_empty() {
                continue;
            }
            per.push(crate::evaluate::evaluate_forecasts(
                &fcs,
                &self.levels,
                data,
                &hist,
                false,
                self.season,
            )?);
        }
        let overall = mean_metrics(&per);
        Ok((per, overall))
    }

    /// A conformal calibration fitted on the windows `windows` ([`crate::calibrate`]): the
    /// nonconformity score of every observed outcome of those windows, per level and step.
    pub fn calibration(
        &self,
        data: &Dataset,
        windows: impl Fn(usize) -> bool,
    ) -> Result<Calibration> {
        let levels = &self.levels;
        let mut scores: Vec<Vec<Vec<f64>>> =
            vec![vec![Vec::new(); self.forecast.horizon]; levels.len()];
        for w in self.windows.iter().filter(|w| windows(w.window)) {
            let series = &data.series[w.series];
            let scale = crate::calibrate::series_scale(&series.head(w.origin), self.season);
            if !(scale.is_finite() && scale > 0.0) {
                continue;
            }
            for (k, step) in w
                .forecast
                .steps
                .iter()
                .enumerate()
                .take(self.forecast.horizon)
            {
                let t = (w.origin + k) as i64;
                let Some(y) = series.value(t, 0) else {
                    continue;
                };
                for (l, &(lo, hi)) in step.intervals.iter().enumerate().take(levels.len()) {
                    scores[l][k].push(crate::calibrate::score(lo, hi, y, scale));
                }
            }
        }
        Calibration::from_scores(scores, levels, self.season)
    }

    /// This backtest with the windows `windows` only.
    pub fn only(&self, windows: impl Fn(usize) -> bool) -> Backtest {
        let mut out = self.clone();
        out.windows.retain(|w| windows(w.window));
        out
    }

    /// This backtest with `calibration` applied to the windows `windows` only (the others
    /// dropped): for measuring a calibration on windows it was not fitted on.
    pub fn calibrated(
        &self,
        data: &Dataset,
        calibration: &Calibration,
        windows: impl Fn(usize) -> bool,
    ) -> Result<Backtest> {
        let mut out = self.only(windows);
        let histories = out.histories(&data.series);
        let mut fcs: Vec<SeriesForecast> = out.windows.iter().map(|w| w.forecast.clone()).collect();
        calibrate_intervals(
            calibration,
            &mut fcs,
            &histories,
            &self.levels,
            self.forecast.nonnegative,
        )?;
        for (w, f) in out.windows.iter_mut().zip(fcs) {
            w.forecast = f;
        }
        Ok(out)
    }
}

/// What a backtest measured: the metrics per window and overall and, when asked, a conformal
/// calibration of all windows with its check on the last window (fitted on the earlier ones).
#[derive(Clone, Debug, serde::Serialize)]
pub struct CvReport {
    /// Windows per series.
    pub n_windows: usize,
    /// Steps between cutoffs.
    pub step_size: usize,
    /// Horizon.
    pub h: usize,
    /// Seasonality of the metrics.
    pub season: usize,
    /// Series backtested.
    pub series: usize,
    /// Series left out (too short).
    pub skipped_series: usize,
    /// Metrics of each window, oldest first.
    pub windows: Vec<Metrics>,
    /// Their mean.
    pub overall: Metrics,
    /// The last window raw and calibrated by the windows before it (at least two windows).
    pub calibration_holdout: Option<CalibrationCheck>,
    /// The calibration of all windows (to save with the model).
    pub calibration: Option<Calibration>,
}

/// A calibration measured on a window it was not fitted on.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CalibrationCheck {
    /// Windows it was fitted on (the ones before the last).
    pub fitted_on_windows: usize,
    /// The last window's metrics, raw.
    pub raw: Metrics,
    /// The last window's metrics, calibrated.
    pub calibrated: Metrics,
}

impl Backtest {
    /// The report of this backtest of `data` ([`CvReport`]); `calibrate`: fit the calibration
    /// and check it on the last window.
    pub fn report(&self, data: &Dataset, cv: &CvConfig, calibrate: bool) -> Result<CvReport> {
        let (windows, overall) = self.metrics(data)?;
        let last = self.n_windows - 1;
        let (calibration_holdout, calibration) = if calibrate {
            let check = if self.n_windows >= 2 {
                let early = self.calibration(data, |k| k < last)?;
                let raw = self.only(|k| k == last).metrics(data)?.1;
                let calibrated = self
                    .calibrated(data, &early, |k| k == last)?
                    .metrics(data)?
                    .1;
                Some(CalibrationCheck {
                    fitted_on_windows: last,
                    raw,
                    calibrated,
                })
            } else {
                None
            };
            (check, Some(self.calibration(data, |_| true)?))
        } else {
            (None, None)
        };
        Ok(CvReport {
            n_windows: self.n_windows,
            step_size: cv.step(self.forecast.horizon),
            h: self.forecast.horizon,
            season: self.season,
            series: data.series.len() - self.skipped,
            skipped_series: self.skipped,
            windows,
            overall,
            calibration_holdout,
            calibration,
        })
    }
}

/// The model directory a backtest's calibration belongs to: `dir`, or with `refit` the last
/// window's model (`dir/window-N`, the one trained on the most data).
pub fn calibration_dir(dir: &std::path::Path, cv: &CvConfig) -> std::path::PathBuf {
    if cv.refit {
        dir.join(format!("window-{}", cv.n_windows))
    } else {
        dir.to_path_buf()
    }
}

/// The mean of each metric over `per` (NaN-free means; coverage level by level).
fn mean_metrics(per: &[Metrics]) -> Metrics {
    let n = per.len().max(1) as f64;
    let mean = |f: fn(&Metrics) -> f64| per.iter().map(f).sum::<f64>() / n;
    let mut m = per.first().cloned().unwrap_or_default();
    m.series = per.iter().map(|p| p.series).max().unwrap_or(0);
    m.observations = per.iter().map(|p| p.observations).sum();
    m.smape = mean(|p| p.smape);
    m.mape = mean(|p| p.mape);
    m.mase = mean(|p| p.mase);
    m.mase_median = mean(|p| p.mase_median);
    m.msis = mean(|p| p.msis);
    m.nd = mean(|p| p.nd);
    m.nrmse = mean(|p| p.nrmse);
    m.wql = mean(|p| p.wql);
    m.crps = mean(|p| p.crps);
    m.wcrps = mean(|p| p.wcrps);
    m.nll = mean(|p| p.nll);
    for (i, c) in m.coverage.iter_mut().enumerate() {
        c.1 = per
            .iter()
            .map(|p| p.coverage.get(i).map_or(0.0, |c| c.1))
            .sum::<f64>()
            / n;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_count_back_from_the_end() {
        let cv = CvConfig {
            n_windows: 3,
            step_size: Some(2),
            ..CvConfig::default()
        };
        // len 20, h 4: windows at 12, 14, 16 (the last one ends at 20).
        assert_eq!(cv.cutoffs(20, 4), Some(vec![12, 14, 16]));
        assert_eq!(cv.cutoffs(8, 4), None);
        assert_eq!(cv.cutoffs(9, 4), Some(vec![1, 3, 5]));
        let one = CvConfig {
            n_windows: 1,
            ..CvConfig::default()
        };
        assert_eq!(one.cutoffs(10, 4), Some(vec![6]));
        assert!(CvConfig {
            n_windows: 0,
            ..CvConfig::default()
        }
        .validate(4)
        .is_err());
    }
}
