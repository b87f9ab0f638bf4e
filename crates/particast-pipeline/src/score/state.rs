//! The state of a series' scoring, and its check against a model: what incremental scoring
//! (`--state-in` / `--state-out`) saves between calls. The file format is in
//! [`crate::output::states`].

use serde::{Deserialize, Serialize};

use particast_ingest::{PreparedSeries, SeriesStats, TimeAxis};

use crate::error::{PipelineError, Result};
use crate::inputs::Affine;
use crate::model_dir::TrainedModel;

/// Where scoring of one series stands: enough to continue it exactly with new data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    /// Series id.
    pub id: String,
    /// Steps scored so far.
    pub steps: usize,
    /// Timestamp of the last step scored (physical value).
    pub last_ds: i64,
    /// Scale per target dimension.
    pub scale: Vec<f64>,
    /// Location per target dimension (0 under mean-|y| scaling).
    pub loc: Vec<f64>,
    /// `[L][H]` particle states.
    pub h: Vec<f32>,
    /// `[L]` log-weights for the next step.
    pub log_w: Vec<f32>,
    /// The last `context + max lag` steps' values (`[steps][D]`, 0 where missing), for lag
    /// features and for forecasting from the state (states written before forecasting from
    /// them keep `max lag` steps, `+ context` when refreshing).
    pub tail_values: Vec<f64>,
    /// Their observed flags.
    pub tail_mask: Vec<u8>,
    /// The raw covariates of the same steps (`[steps][C]`; empty without covariates, and in
    /// states written before this field).
    #[serde(default)]
    pub tail_covariates: Vec<f32>,
    /// Whether each of those steps had a row (empty: unknown, none).
    #[serde(default)]
    pub tail_present: Vec<u8>,
    /// The smallest observed value of the whole history scored (for the `auto` censoring of
    /// forecasts from the state); `None` when nothing was observed or not recorded.
    #[serde(default)]
    pub min_value: Option<f64>,
    /// The series' adapted weights (online adaptation, [`crate::ScoreConfig::adapt`]); empty
    /// while the model's own weights score it.
    #[serde(default)]
    pub adapted: Vec<f32>,
    /// The last raw values the anomaly method keeps (tail scores, or NLLs).
    pub recent_scores: Vec<f64>,
    /// The last tail scores of the calm score ([`crate::ScoreConfig::calm`]; empty in states
    /// written before it).
    #[serde(default)]
    pub recent_calm: Vec<f64>,
    /// The last anomaly scores before suppression (for [`crate::ScoreConfig::suppress`]).
    pub recent_anomaly: Vec<f64>,
    /// The `surprise` method's last `smooth` powered ranks (empty for other methods, and in
    /// states written before it).
    #[serde(default)]
    pub recent_raw: Vec<f64>,
    /// The `surprise` method's last `long_window` means of those.
    #[serde(default)]
    pub recent_mean: Vec<f64>,
    /// The `surprise` method's running sum and sum of squares of `recent_mean`, and its last
    /// tail probability (empty: fresh).
    #[serde(default)]
    pub surprise_fit: Vec<f64>,
    /// The last `long_window` rows' values (`[rows][D]`, NaN where missing), whose range the
    /// novelty rule ([`crate::ScoreConfig::novelty`]) and whose runs of repeats the stuck rule
    /// ([`crate::ScoreConfig::stuck`]) read (empty: none yet, or written before them).
    #[serde(default)]
    pub recent_values: Vec<f64>,
}

impl SeriesState {
    /// The series' affine map (its scale and location).
    pub fn affine(&self) -> Affine {
        Affine {
            loc: self.loc.clone(),
            scale: self.scale.clone(),
        }
    }
}

/// Checks a loaded state against the model (particle and hidden sizes, targets).
pub fn check_state(tm: &TrainedModel, state: &SeriesState) -> Result<()> {
    let c = &tm.model.config;
    if state.h.len() != c.particles * c.hidden
        || state.log_w.len() != c.particles
        || state.scale.len() != c.targets
        || state.loc.len() != c.targets
        || state.scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
        || state.loc.iter().any(|l| !l.is_finite())
        || !(state.adapted.is_empty() || state.adapted.len() == tm.model.params.len())
        || state.adapted.iter().any(|w| !w.is_finite())
    {
        return Err(PipelineError::SchemaMismatch(format!(
            "the state of series `{}` does not fit the model (L={}, H={}, D={})",
            state.id, c.particles, c.hidden, c.targets
        )));
    }
    Ok(())
}

/// The largest lag the model reads (1 without lags).
pub(crate) fn max_lag(tm: &TrainedModel) -> usize {
    tm.meta
        .inputs
        .features
        .lags
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
}

/// The recent history a state keeps, as a series on the model's time axis ending at the
/// state's last step: what forecasting from a state reads (the last `context + max lag` steps
/// are all a forecast reads, so it equals forecasting from the full history). A state that
/// keeps fewer steps than that (written before forecasting from states) is refused.
pub fn state_series(tm: &TrainedModel, state: &SeriesState) -> Result<PreparedSeries> {
    check_state(tm, state)?;
    let d = tm.model.config.targets;
    let c = tm.meta.data.covariate_cols.len();
    let n = state.tail_values.len() / d.max(1);
    let need = (tm.meta.context + max_lag(tm)).min(state.steps);
    if n < need || state.tail_mask.len() != n * d {
        return Err(PipelineError::StateMismatch(format!(
            "the state of series `{}` keeps {n} steps of history; forecasting from it needs \
             {need} (context + the largest lag): score the series again with --state-out",
            state.id
        )));
    }
    let Some(frequency) = tm.meta.data.frequency else {
        return Err(PipelineError::StateMismatch(
            "the model has no frequency, so a state's steps have no timestamps".into(),
        ));
    };
    let kind = tm.meta.data.time_kind.clone();
    let end = TimeAxis {
        kind: kind.clone(),
        start: state.last_ds,
        frequency,
    };
    let axis = TimeAxis {
        start: end.at(1 - n as i64),
        ..end
    };
    let (covariates, present) =
        if state.tail_covariates.len() == n * c && state.tail_present.len() == n {
            (
                state.tail_covariates.clone(),
                state.tail_present.iter().map(|&p| p == 1).collect(),
            )
        } else {
            (vec![0.0; n * c], vec![c == 0; n])
        };
    let full = PreparedSeries {
        id: state.id.clone(),
        index: 0,
        axis: axis.clone(),
        timestamps: None,
        n_targets: d,
        values: state.tail_values.clone(),
        mask: state.tail_mask.clone(),
        present,
        covariates,
        n_covariates: c,
        stats: SeriesStats {
            len: n,
            rows: n,
            observed: vec![0; d],
            mean: vec![0.0; d],
            mean_abs: vec![0.0; d],
            gaps_filled: 0,
            non_finite: 0,
            duplicates_merged: 0,
            first_ds: axis.start,
            last_ds: state.last_ds,
            frequency: Some(frequency),
            min: None,
        },
    };
    // Statistics of the kept steps; the minimum is the whole history's.
    let mut s = full.head(n);
    s.stats.min = match (state.min_value, s.stats.min) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(s)
}
