//! The scoring stage: for every observation, the exact one-step predictive NLL under the particle
//! mixture (original units), the PIT value and an anomaly score, streaming through each series in
//! chunks that carry the particle state, with per-series state files for incremental scoring.
//!
//! Definitions (per observation x^t with predictive mixture F):
//! - `particast-nll`: `-log p(x^t | x^{<t})` in the units of the data;
//! - `particast-pit`: `F(x^t)` (for D > 1 targets, that of the first target);
//! - `particast-anomaly`: made from the NLLs by the [`AnomalyMethod`]: by default (`rank`) the
//!   rank of the recent NLL (mean of the last `smooth`) among the series' previous `long_window`
//!   NLLs ([`rank_score`]); `tail`: `1 - p`, with `p = 2 min(F, 1 - F)` the two-sided tail
//!   probability (for D > 1, `p = min(1, D min_d p_d)`, Bonferroni), averaged over the last
//!   `smooth`; `likelihood`: Numenta's anomaly likelihood on the NLL, the Gaussian CDF of the
//!   short mean against the long window ([`likelihood_score`]); `pot`: a generalized Pareto tail
//!   fitted to the top of the window ([`pot_score`]); `surprise`: Numenta's averaging, Gaussian
//!   fit and alarm hold-off over the NLL's rank ([`surprise_score`], the NAB recipe). On top of
//!   the method: the calm score of the last `calm` rows ([`calm_score`], a stuck sensor), the
//!   rank of a run of `stuck` or more identical values among the series' past runs
//!   ([`stuck_score`], a flat-lined sensor), and,
//!   when `novelty` is set, 1 for a value outside the range of the last `long_window` rows
//!   ([`is_novel`]);
//! - `particast-flag`: `particast-anomaly >= threshold`.
//!
//! The scale of a series is fixed by its first `context` steps (so every later point is scored
//! with the past only), unless `refresh` is set: then every `refresh` steps the scale is taken
//! from the last `context` steps and fresh particles are run through them, as for a training
//! window, before the next steps are scored. With `adapt` set ([`adapt`]), each series keeps
//! learning from the rows it has already scored. Missing observations get nulls. Every memory
//! (particles, windows of NLLs, fits, adapted weights) lives in the [`SeriesState`], so scoring
//! from a state file equals one pass.

pub mod adapt;
pub mod anomaly;
pub mod state;

use particast_ingest::PreparedSeries;
use particast_kernels::{score, ParticleState};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::condition::scaled_window;
use crate::error::{PipelineError, Result};
use crate::inputs::{Affine, KernelBatch};
use crate::mixture;
use crate::model_dir::TrainedModel;

pub use adapt::AdaptParams;
use anomaly::Tracker;
pub use anomaly::{
    calm_score, is_novel, likelihood_score, pot_score, rank_score, stuck_score, surprise_score,
    AnomalyMethod, CALM_MIN_HISTORY, CALM_PENALTY, NOVELTY_MIN_HISTORY, SURPRISE_HOLD,
    SURPRISE_MEAN_FLOOR, SURPRISE_MIN_FIT, SURPRISE_POWER, SURPRISE_RED, SURPRISE_VAR_FLOOR,
};
use state::max_lag;
pub use state::{check_state, state_series, SeriesState};

/// Scoring settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Flag observations whose anomaly score reaches this.
    pub threshold: f64,
    /// Average the anomaly score over this many past observations (1: no smoothing); for the
    /// likelihood method, the short window.
    pub smooth: usize,
    /// How the anomaly score is made from the predictive distribution.
    pub method: AnomalyMethod,
    /// The long window of the likelihood and rank methods, and the history of the calm score
    /// (past observations).
    pub long_window: usize,
    /// Also flag runs that are too predictable (0: off): the anomaly score is at least the
    /// calm score ([`calm_score`]) of the tail scores of the last `calm` observations against
    /// those of the `long_window` before them. Catches flat-lined sensors and repeated
    /// stretches, which no single-step surprise sees.
    pub calm: usize,
    /// Also flag a stuck sensor (0: off): from the `stuck`-th identical value in a row on, the
    /// anomaly score is at least the rank of the run's length among the run lengths of the
    /// series' previous `long_window` rows ([`stuck_score`]; for D > 1 targets the largest
    /// over targets, Bonferroni-weighted). A value repeated exactly is what a flat-lined
    /// sensor sends, and the calm score only sees it once the repeats are also more
    /// predictable than the series usually is. Applied after `suppress`, like the novelty rule.
    pub stuck: usize,
    /// Report only the onset of a run of high scores: a score that does not exceed every score
    /// of the previous `suppress` observations is reported as 0 (0: off). Causal and
    /// threshold-free, so a surprise that keeps the score high for several rows raises one flag.
    pub suppress: usize,
    /// Steps per kernel call (memory does not grow with series length).
    pub chunk: usize,
    /// Re-condition every `refresh` steps (0: never): from step `context` on, at every multiple
    /// of `refresh`, the scale is re-estimated from the last `context` observations and fresh
    /// particles are run through them (as for a training window or a forecast) before the next
    /// `refresh` steps are scored. The series is then scored the way the model was trained,
    /// whatever its level has drifted to, at `(context + refresh) / refresh` times the cost;
    /// still only the past is used.
    pub refresh: usize,
    /// Online adaptation ([`adapt`]): every `adapt` steps of a series (0: never, the model
    /// stays frozen), a few gradient steps of the series' own copy of the model on the windows
    /// it has already scored. Causal: a score depends only on the observations before it.
    pub adapt: usize,
    /// The learning rate of adaptation (Adam with fresh moments: about the change of each
    /// weight per gradient step).
    pub adapt_lr: f64,
    /// Gradient steps per adaptation update.
    pub adapt_steps: usize,
    /// Training windows (of the model's `context + horizon` steps) per update.
    pub adapt_windows: usize,
    /// How far back the windows of an update reach, in steps (0: the windows back to back).
    pub adapt_memory: usize,
    /// Which weights adaptation changes.
    pub adapt_params: AdaptParams,
    /// The novelty rule (`None`: off): an observation outside the range of the previous
    /// `long_window` rows of its series (once they hold 10 observed values), widened by this
    /// fraction of the range's width on each side, scores 1, whatever the method says (Numenta's
    /// "spatial anomaly", with 0.05, over all history). A value not seen for that long is news
    /// even when the forecast saw it coming; on NAB it is worth about 9 points to Numenta's
    /// detector and about 18 to this one (seed 1, smoothing 10: 47.8 without, 65.7 with).
    pub novelty: Option<f64>,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            threshold: 0.999,
            smooth: 1,
            method: AnomalyMethod::Rank,
            long_window: 1000,
            calm: 6,
            stuck: 3,
            suppress: 0,
            chunk: 2048,
            refresh: 0,
            adapt: 0,
            adapt_lr: 1e-3,
            adapt_steps: 1,
            adapt_windows: 4,
            adapt_memory: 0,
            adapt_params: AdaptParams::All,
            novelty: None,
        }
    }
}

/// Scores of one series, one entry per step from where scoring started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesScores {
    /// Series id.
    pub id: String,
    /// Physical timestamps.
    pub ds: Vec<i64>,
    /// Whether the input had a row for the step.
    pub present: Vec<bool>,
    /// `[steps][D]` values (None where missing).
    pub y: Vec<Option<f64>>,
    /// NLL per step.
    pub nll: Vec<Option<f64>>,
    /// PIT per step.
    pub pit: Vec<Option<f64>>,
    /// Anomaly score per step.
    pub anomaly: Vec<Option<f64>>,
    /// Flag per step.
    pub flag: Vec<Option<bool>>,
}

/// Scores `s` from step `start` (earlier steps serve only as lag history), continuing `state`.
fn score_from(
    tm: &TrainedModel,
    s: &PreparedSeries,
    start: usize,
    state: &mut SeriesState,
    cfg: &ScoreConfig,
) -> Result<SeriesScores> {
    let spec = &tm.meta.inputs;
    let d = spec.features.n_targets;
    let l = tm.model.config.particles;
    // The network works on transformed values; outputs and saved tails keep the originals.
    let original = s;
    let transformed = tm.transformed(s)?;
    let s: &PreparedSeries = &transformed;
    // The series' own copy of the model once adaptation has changed it.
    let mut model: std::borrow::Cow<'_, particast_kernels::Model<f32>> = if state.adapted.is_empty()
    {
        std::borrow::Cow::Borrowed(&tm.model)
    } else {
        std::borrow::Cow::Owned(particast_kernels::Model::from_params(
            tm.model.config.clone(),
            state.adapted.clone(),
        )?)
    };
    let mut pstate = ParticleState {
        windows: 1,
        particles: l,
        hidden: tm.model.config.hidden,
        h: state.h.clone(),
        log_w: state.log_w.clone(),
    };
    let mut out = SeriesScores {
        id: s.id.clone(),
        ..Default::default()
    };
    let mut tracker = Tracker::resume(cfg, state);
    let mut affine = state.affine();
    let chunk = cfg.chunk.max(1);
    let ctx = tm.meta.context;
    // The absolute step of `start` (continued scoring keeps the refresh phase).
    let abs_start = state.steps;
    let mut t0 = start;
    // The first index of the history (earlier indices would be before the series' start).
    let first = start as i64 - abs_start as i64;
    while t0 < s.len() {
        let mut n = chunk.min(s.len() - t0);
        if cfg.adapt > 0 {
            let abs_t = abs_start + t0 - start;
            if abs_t > 0 && abs_t % cfg.adapt == 0 {
                adapt::update(tm, model.to_mut(), s, t0, first, cfg)?;
            }
            n = n.min(cfg.adapt - abs_t % cfg.adapt);
        }
        // Conditioning steps run before the scored ones (refresh only); their outputs are unused.
        let mut warm = 0;
        if cfg.refresh > 0 {
            let into = (abs_start + t0 - start) % cfg.refresh;
            n = n.min(cfg.refresh - into);
            if into == 0 && abs_start + t0 - start >= ctx && t0 >= ctx {
                warm = ctx;
            }
        }
        let (w, fresh_affine) = scaled_window(tm, s, (t0 - warm) as i64, warm + n, warm);
        if warm > 0 {
            // A fresh start on the conditioning steps, scaled by them alone.
            affine = fresh_affine;
            let fresh = ParticleState::new(&model, 1);
            pstate.h = fresh.h;
            pstate.log_w = fresh.log_w;
        }
        let mut kb = KernelBatch::default();
        let before = spec.covariates_before(s, (t0 - warm) as i64);
        spec.push_window(
            &w,
            warm + n,
            &affine,
            usize::MAX,
            before.as_deref(),
            &mut kb,
        );
        let so = score(&model, &mut pstate, &kb.view(0), false)?;
        let pw = l * tm.model.config.head_width();
        for k in (0..n).map(|k| k + warm) {
            let t = t0 + k - warm;
            out.ds.push(s.timestamp(t as i64));
            out.present.push(s.present.get(t).copied().unwrap_or(false));
            for dd in 0..d {
                out.y.push(original.value(t as i64, dd));
            }
            if !so.observed[k] {
                out.nll.push(None);
                out.pit.push(None);
                out.anomaly.push(None);
                out.flag.push(None);
                continue;
            }
            let log_w = &so.log_w[k * l..(k + 1) * l];
            let raw = &so.raw[k * pw..(k + 1) * pw];
            let mut first_pit = None;
            let mut min_p = 1.0f64;
            let mut n_obs = 0;
            let mut log_jacobian = 0.0;
            for dd in 0..d {
                let Some(y) = s.value(t as i64, dd) else {
                    continue;
                };
                // Without its seasonal reference the dimension has no target (see Target).
                let Some(b) = spec.base(&w, k, dd, &affine) else {
                    continue;
                };
                if let Some(y) = original.value(t as i64, dd) {
                    log_jacobian += spec.transform.log_jacobian(y);
                }
                let comps = mixture::components(&tm.model.config, log_w, raw, dd, &affine, |_| b);
                let f = mixture::cdf(&comps, y);
                first_pit.get_or_insert(f);
                min_p = min_p.min(2.0 * f.min(1.0 - f));
                n_obs += 1;
            }
            let p = (min_p * n_obs as f64).min(1.0);
            // The kernel's likelihood is of the transformed value: back to original units.
            let nll = -(so.ll[k] as f64 + log_jacobian);
            let values = &out.y[out.y.len() - d..];
            let anomaly = tracker.push(p, nll, values);
            out.nll.push(Some(nll));
            out.pit.push(first_pit);
            out.anomaly.push(Some(anomaly));
            out.flag.push(Some(anomaly >= cfg.threshold));
        }
        t0 += n;
    }
    // Keep what continuing needs: the lag history and the conditioning window (for
    // refreshing, and for forecasting from the state), with the covariates of those steps.
    let lag = max_lag(tm) + ctx.max(cfg.adapt_reach(ctx + tm.meta.horizon.max(1)));
    let from = s.len().saturating_sub(lag);
    let c = original.n_covariates;
    state.tail_covariates = original.covariates[from * c..s.len() * c].to_vec();
    state.tail_present = original.present[from..s.len()]
        .iter()
        .map(|&p| u8::from(p))
        .collect();
    let new_min =
        particast_ingest::observed_min(&original.values[start * d..], &original.mask[start * d..]);
    state.min_value = match (state.min_value, new_min) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    state.tail_values = (from..s.len())
        .flat_map(|t| (0..d).map(move |dd| (t, dd)))
        .map(|(t, dd)| original.value(t as i64, dd).unwrap_or(0.0))
        .collect();
    state.tail_mask = (from..s.len())
        .flat_map(|t| (0..d).map(move |dd| (t, dd)))
        .map(|(t, dd)| u8::from(s.value(t as i64, dd).is_some()))
        .collect();
    state.steps += s.len() - start;
    if !s.is_empty() {
        state.last_ds = s.timestamp(s.len() as i64 - 1);
    }
    state.h = pstate.h;
    state.log_w = pstate.log_w;
    state.scale = affine.scale;
    state.loc = affine.loc;
    if let std::borrow::Cow::Owned(m) = model {
        state.adapted = m.params;
    }
    tracker.save(state);
    Ok(out)
}

/// A fresh state for a series: particles at their learned start, the scale from its first
/// `context` steps.
pub fn initial_state(tm: &TrainedModel, s: &PreparedSeries) -> SeriesState {
    let ctx = tm.meta.context.min(s.len());
    // The scale of the transformed values; a value outside the transform's domain counts as
    // missing here (scoring then refuses it with a clear error, or masks it too).
    let head = s.head(ctx);
    let (transformed, _) = tm.meta.inputs.transform.apply_masking(&head);
    let (_, Affine { loc, scale }) = scaled_window(tm, &transformed, 0, ctx, ctx);
    let fresh = ParticleState::new(&tm.model, 1);
    SeriesState {
        id: s.id.clone(),
        steps: 0,
        last_ds: s.stats.first_ds,
        scale,
        loc,
        h: fresh.h,
        log_w: fresh.log_w,
        tail_values: Vec::new(),
        tail_mask: Vec::new(),
        tail_covariates: Vec::new(),
        tail_present: Vec::new(),
        min_value: None,
        adapted: Vec::new(),
        recent_scores: Vec::new(),
        recent_calm: Vec::new(),
        recent_anomaly: Vec::new(),
        recent_raw: Vec::new(),
        recent_mean: Vec::new(),
        surprise_fit: Vec::new(),
        recent_values: Vec::new(),
    }
}

impl ScoreConfig {
    /// Checks every size against its limit ([`crate::limits`]).
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{at_most, MAX_CHUNK, MAX_WINDOW};
        const MAX_ADAPT_WINDOWS: usize = 4096;
        at_most("chunk", self.chunk, MAX_CHUNK, "")?;
        at_most("long_window", self.long_window, MAX_WINDOW, "")?;
        at_most("smooth", self.smooth, MAX_WINDOW, "")?;
        at_most("calm", self.calm, MAX_WINDOW, "")?;
        at_most("stuck", self.stuck, MAX_WINDOW, "")?;
        at_most("suppress", self.suppress, MAX_WINDOW, "")?;
        at_most("refresh", self.refresh, MAX_WINDOW, "")?;
        at_most("adapt", self.adapt, MAX_WINDOW, "")?;
        at_most("adapt_steps", self.adapt_steps, MAX_WINDOW, "")?;
        at_most("adapt_windows", self.adapt_windows, MAX_ADAPT_WINDOWS, "")?;
        at_most("adapt_memory", self.adapt_memory, MAX_WINDOW, "")?;
        if !(self.adapt_lr.is_finite() && self.adapt_lr >= 0.0) {
            return Err(PipelineError::Config(
                "adapt_lr must be a finite number >= 0".into(),
            ));
        }
        if self.novelty.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            return Err(PipelineError::Config(
                "novelty must be a finite number >= 0".into(),
            ));
        }
        if !self.threshold.is_finite() {
            return Err(PipelineError::Config(
                "threshold must be a finite number".into(),
            ));
        }
        Ok(())
    }

    /// Refuses scoring `series` with `tm` when the estimated memory is above the limit
    /// ([`crate::limits::score_bytes`]).
    fn check_memory(&self, tm: &TrainedModel, series: &[PreparedSeries]) -> Result<()> {
        let c = &tm.model.config;
        let steps: usize = series.iter().map(|s| s.len()).sum();
        let longest = series.iter().map(|s| s.len()).max().unwrap_or(0);
        let chunk = self.chunk.max(1).min(longest.max(1));
        let window = self
            .long_window
            .max(self.smooth)
            .max(self.suppress)
            .max(self.long_window + self.calm)
            .min(longest.max(1))
            + 2;
        let width = 4 * c.hidden + c.inputs + c.head_width() + c.embedding;
        crate::limits::check_memory(
            "scoring",
            crate::limits::score_bytes(
                steps,
                c.targets,
                chunk,
                c.particles,
                width,
                window,
                rayon::current_num_threads().min(series.len()),
            ),
            format!(
                "{} steps of {} series, chunks of {chunk} steps x {} particles",
                steps,
                series.len(),
                c.particles
            ),
            "the chunk or the number of rows per call",
        )
    }
}

/// Scores whole series (in parallel over series), returning the scores and the end states.
pub fn score_series(
    tm: &TrainedModel,
    series: &[PreparedSeries],
    cfg: &ScoreConfig,
) -> Result<Vec<(SeriesScores, SeriesState)>> {
    score_some(tm, series, series.iter().map(|_| None).collect(), cfg)
}

/// Scores series in parallel, each from its state in `states` when it has one (the new rows
/// continue it, as [`score_continued`]) or from the start; returns the scores and end states
/// in the order of `series`.
pub fn score_some(
    tm: &TrainedModel,
    series: &[PreparedSeries],
    states: Vec<Option<SeriesState>>,
    cfg: &ScoreConfig,
) -> Result<Vec<(SeriesScores, SeriesState)>> {
    cfg.validate()?;
    cfg.check_memory(tm, series)?;
    if states.len() != series.len() {
        return Err(PipelineError::Config(format!(
            "{} states for {} series",
            states.len(),
            series.len()
        )));
    }
    series
        .par_iter()
        .zip(states)
        .map(|(s, state)| match state {
            Some(mut state) => {
                let scores = continue_from(tm, &mut state, s, cfg)?;
                Ok((scores, state))
            }
            None => {
                let mut state = initial_state(tm, s);
                let scores = score_from(tm, s, 0, &mut state, cfg)?;
                Ok((scores, state))
            }
        })
        .collect()
}

/// Continues scoring with new data of a series from its saved state; gives the same numbers as
/// scoring the old and new data at once. The new data must start after the state's last step.
pub fn score_continued(
    tm: &TrainedModel,
    state: &mut SeriesState,
    new: &PreparedSeries,
    cfg: &ScoreConfig,
) -> Result<SeriesScores> {
    cfg.validate()?;
    cfg.check_memory(tm, std::slice::from_ref(new))?;
    continue_from(tm, state, new, cfg)
}

/// [`score_continued`] without the checks of the settings.
fn continue_from(
    tm: &TrainedModel,
    state: &mut SeriesState,
    new: &PreparedSeries,
    cfg: &ScoreConfig,
) -> Result<SeriesScores> {
    let d = new.n_targets;
    let freq_step = |from: i64, to: i64| -> Option<i64> {
        // Steps between the saved last timestamp and the new first one.
        let axis = particast_ingest::TimeAxis {
            start: from,
            ..new.axis.clone()
        };
        (1..=1_000_000)
            .find(|&k| axis.at(k) >= to)
            .filter(|&k| axis.at(k) == to)
    };
    let gap = match freq_step(state.last_ds, new.stats.first_ds) {
        Some(k) => (k - 1) as usize,
        None => {
            return Err(PipelineError::StateMismatch(format!(
                "series `{}`: new data starts at {} which does not continue the saved state (last step {})",
                new.id,
                new.axis.kind.render(new.stats.first_ds),
                new.axis.kind.render(state.last_ds)
            )))
        }
    };
    // Rebuild a series of: saved tail, missing gap steps, new data; score from after the tail.
    let tail_steps = state.tail_values.len() / d.max(1);
    let prefix = tail_steps + gap;
    let total = prefix + new.len();
    let mut values = vec![0.0; total * d];
    let mut mask = vec![0u8; total * d];
    values[..tail_steps * d].copy_from_slice(&state.tail_values);
    mask[..tail_steps * d].copy_from_slice(&state.tail_mask);
    values[prefix * d..].copy_from_slice(&new.values);
    mask[prefix * d..].copy_from_slice(&new.mask);
    let mut present = vec![false; total];
    present[prefix..].copy_from_slice(&new.present);
    let c = new.n_covariates;
    let mut covariates = vec![0.0f32; total * c];
    covariates[prefix * c..].copy_from_slice(&new.covariates);
    // The saved covariates and rows of the tail (historical covariates of the first new step).
    if state.tail_covariates.len() == tail_steps * c && state.tail_present.len() == tail_steps {
        covariates[..tail_steps * c].copy_from_slice(&state.tail_covariates);
        for (p, &saved) in present.iter_mut().zip(&state.tail_present) {
            *p = saved == 1;
        }
    }
    let start_ds = particast_ingest::TimeAxis {
        start: state.last_ds,
        ..new.axis.clone()
    }
    .at(-(tail_steps as i64) + 1);
    let mut joined = new.clone();
    joined.axis.start = start_ds;
    joined.timestamps = None;
    joined.values = values;
    joined.mask = mask;
    joined.present = present;
    joined.covariates = covariates;
    joined.stats.len = total;
    score_from(tm, &joined, tail_steps, state, cfg)
}
