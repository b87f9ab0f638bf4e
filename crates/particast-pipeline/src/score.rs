//! The scoring stage: for every observation, the exact one-step predictive NLL under the particle
//! mixture (original units), the PIT value and an anomaly score, streaming through each series in
//! chunks that carry the particle state, with per-series state files for incremental scoring.
//!
//! Definitions (per observation x^t with predictive mixture F):
//! - `particast-nll`: `-log p(x^t | x^{<t})` in the units of the data;
//! - `particast-pit`: `F(x^t)` (for D > 1 targets, that of the first target);
//! - `particast-anomaly`: `1 - p`, with `p = 2 min(F, 1 - F)` the two-sided tail probability
//!   (for D > 1, `p = min(1, D min_d p_d)`, Bonferroni), averaged over the last `smooth` scores
//!   (method `tail`); or, with method `likelihood` (Numenta's anomaly likelihood on the NLL), the
//!   Gaussian CDF `1 - q(z)` of `z = (mean of the last smooth NLLs - mean of the last
//!   long_window) / their std`, which is high when the recent surprise is unusual for this
//!   series; below `q = 1e-6` the score keeps growing with z instead of rounding to 1
//!   ([`likelihood_score`]), so that the most extreme surprises still rank above the others;
//!   or, with method `rank`, the rank of that recent NLL among the previous `long_window` NLLs
//!   ([`rank_score`]);
//! - `particast-flag`: `particast-anomaly >= threshold`.
//!
//! The scale of a series is fixed by its first `context` steps (so every later point is scored
//! with the past only), unless `refresh` is set: then every `refresh` steps the scale is taken
//! from the last `context` steps and fresh particles are run through them, as for a training
//! window, before the next steps are scored. Missing observations get nulls.

use particast_ingest::{PreparedSeries, WindowData};
use particast_kernels::{emission, score, ParticleState};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use crate::error::{PipelineError, Result};
use crate::inputs::{Affine, KernelBatch};
use crate::mixture::{self, Component};
use crate::model_dir::TrainedModel;

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
    /// The long window of the likelihood method (past observations).
    pub long_window: usize,
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
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            threshold: 0.999,
            smooth: 1,
            method: AnomalyMethod::Tail,
            long_window: 1000,
            suppress: 0,
            chunk: 2048,
            refresh: 0,
        }
    }
}

/// The anomaly score's recipe (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
}

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
    /// The last `max lag` steps' values (`[steps][D]`, 0 where missing), for lag features.
    pub tail_values: Vec<f64>,
    /// Their observed flags.
    pub tail_mask: Vec<u8>,
    /// The last raw values the anomaly method keeps (tail scores, or NLLs).
    pub recent_scores: Vec<f64>,
    /// The last anomaly scores before suppression (for [`ScoreConfig::suppress`]).
    pub recent_anomaly: Vec<f64>,
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

/// Mixture components of one step for dimension `d`, in original units; `base(l)` is the
/// model-unit base that particle l's emission is relative to (see [`crate::Target`]).
pub(crate) fn components(
    tm: &TrainedModel,
    log_w: &[f32],
    raw: &[f32],
    d: usize,
    affine: &Affine,
    base: impl Fn(usize) -> f64,
) -> Vec<Component> {
    let cfg = &tm.model.config;
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

fn max_lag(tm: &TrainedModel) -> usize {
    tm.meta
        .inputs
        .features
        .lags
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
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
    let mut recent: VecDeque<f64> = state.recent_scores.iter().copied().collect();
    // The rank method's sorted copy of `recent` (kept equal to it between steps).
    let mut sorted: Vec<f64> = if cfg.method == AnomalyMethod::Rank {
        let mut v: Vec<f64> = recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        v
    } else {
        Vec::new()
    };
    let mut recent_anomaly: VecDeque<f64> = state.recent_anomaly.iter().copied().collect();
    let mut affine = state.affine();
    let chunk = cfg.chunk.max(1);
    let ctx = tm.meta.context;
    // The absolute step of `start` (continued scoring keeps the refresh phase).
    let abs_start = state.steps;
    let mut t0 = start;
    while t0 < s.len() {
        let mut n = chunk.min(s.len() - t0);
        // Conditioning steps run before the scored ones (refresh only); their outputs are unused.
        let mut warm = 0;
        if cfg.refresh > 0 {
            let into = (abs_start + t0 - start) % cfg.refresh;
            n = n.min(cfg.refresh - into);
            if into == 0 && abs_start + t0 - start >= ctx && t0 >= ctx {
                warm = ctx;
            }
        }
        let w = WindowData::of(s, (t0 - warm) as i64, warm + n, &spec.features);
        if warm > 0 {
            // A fresh start on the conditioning steps, scaled by them alone.
            affine = spec.scaling.affine(&w.values, &w.mask, d, warm);
            let fresh = ParticleState::new(&tm.model, 1);
            pstate.h = fresh.h;
            pstate.log_w = fresh.log_w;
        }
        let mut kb = KernelBatch::default();
        spec.push_window(&w, warm + n, &affine, &mut kb);
        let so = score(&tm.model, &mut pstate, &kb.view(0), false)?;
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
                let comps = components(tm, log_w, raw, dd, &affine, |_| b);
                let f = mixture::cdf(&comps, y);
                first_pit.get_or_insert(f);
                min_p = min_p.min(2.0 * f.min(1.0 - f));
                n_obs += 1;
            }
            let p = (min_p * n_obs as f64).min(1.0);
            // The kernel's likelihood is of the transformed value: back to original units.
            let nll = -(so.ll[k] as f64 + log_jacobian);
            let (raw_value, keep) = match cfg.method {
                AnomalyMethod::Tail => (1.0 - p, cfg.smooth.max(1)),
                AnomalyMethod::Likelihood => (nll, cfg.long_window.max(cfg.smooth).max(2)),
                // The previous long_window NLLs and this one.
                AnomalyMethod::Rank => (nll, cfg.long_window.max(cfg.smooth).max(1) + 1),
            };
            recent.push_back(raw_value);
            while recent.len() > keep {
                if let Some(old) = recent.pop_front() {
                    if cfg.method == AnomalyMethod::Rank {
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
                AnomalyMethod::Rank => {
                    // `sorted` holds the previous NLLs; then this one joins them.
                    let score = rank_score(&sorted, short_mean);
                    let i = sorted.partition_point(|x| x.total_cmp(&raw_value).is_lt());
                    sorted.insert(i, raw_value);
                    score
                }
            };
            let anomaly = if cfg.suppress == 0 {
                anomaly
            } else {
                // O(W) per step; W is a few hundred at most, well under the kernel's cost.
                let onset = recent_anomaly.iter().all(|&a| anomaly > a);
                recent_anomaly.push_back(anomaly);
                while recent_anomaly.len() > cfg.suppress {
                    recent_anomaly.pop_front();
                }
                if onset {
                    anomaly
                } else {
                    0.0
                }
            };
            out.nll.push(Some(nll));
            out.pit.push(first_pit);
            out.anomaly.push(Some(anomaly));
            out.flag.push(Some(anomaly >= cfg.threshold));
        }
        t0 += n;
    }
    // Keep what continuing needs: the lag history, and the conditioning window when refreshing.
    let lag = max_lag(tm) + if cfg.refresh > 0 { ctx } else { 0 };
    let from = s.len().saturating_sub(lag);
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
    state.recent_scores = recent.into_iter().collect();
    state.recent_anomaly = recent_anomaly.into_iter().collect();
    Ok(out)
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

/// A fresh state for a series: particles at their learned start, the scale from its first
/// `context` steps.
pub fn initial_state(tm: &TrainedModel, s: &PreparedSeries) -> SeriesState {
    let d = s.n_targets;
    let ctx = tm.meta.context.min(s.len());
    // The scale of the transformed values; a value outside the transform's domain counts as
    // missing here (scoring then refuses it with a clear error).
    let transform = tm.meta.inputs.transform;
    let (values, mask): (Vec<f32>, Vec<u8>) = s.values[..ctx * d]
        .iter()
        .zip(&s.mask[..ctx * d])
        .map(|(&v, &m)| match (m, transform.forward(v)) {
            (1, Some(u)) => (u as f32, 1),
            _ => (0.0, 0),
        })
        .unzip();
    let Affine { loc, scale } = tm.meta.inputs.scaling.affine(&values, &mask, d, ctx);
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
        recent_scores: Vec::new(),
        recent_anomaly: Vec::new(),
    }
}

impl ScoreConfig {
    /// Checks every size against its limit ([`crate::limits`]).
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{at_most, MAX_CHUNK, MAX_WINDOW};
        at_most("chunk", self.chunk, MAX_CHUNK, "")?;
        at_most("long_window", self.long_window, MAX_WINDOW, "")?;
        at_most("smooth", self.smooth, MAX_WINDOW, "")?;
        at_most("suppress", self.suppress, MAX_WINDOW, "")?;
        at_most("refresh", self.refresh, MAX_WINDOW, "")?;
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
    cfg.validate()?;
    cfg.check_memory(tm, series)?;
    series
        .par_iter()
        .map(|s| {
            let mut state = initial_state(tm, s);
            let scores = score_from(tm, s, 0, &mut state, cfg)?;
            Ok((scores, state))
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
            return Err(PipelineError::Config(format!(
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

fn list_f64(name: &str, rows: impl Iterator<Item = Vec<f64>>) -> polars::prelude::Column {
    use polars::prelude::*;
    let items: Vec<Series> = rows.map(|v| Series::new("".into(), v)).collect();
    Series::new(name.into(), items).into_column()
}

fn list_f32(name: &str, rows: impl Iterator<Item = Vec<f32>>) -> polars::prelude::Column {
    use polars::prelude::*;
    let items: Vec<Series> = rows.map(|v| Series::new("".into(), v)).collect();
    Series::new(name.into(), items).into_column()
}

/// Writes per-series scoring states as a Parquet file (atomically): one row per series with its
/// id, steps, last timestamp, and list columns for the scale, location, particle states, log-weights, the
/// lag history and the recent anomaly scores.
pub fn save_states(states: &[SeriesState], path: &std::path::Path) -> Result<()> {
    use polars::prelude::*;
    let n = states.len();
    let columns = vec![
        Column::new(
            "unique_id".into(),
            states.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "steps".into(),
            states.iter().map(|s| s.steps as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "last_ds".into(),
            states.iter().map(|s| s.last_ds).collect::<Vec<_>>(),
        ),
        list_f64("scale", states.iter().map(|s| s.scale.clone())),
        list_f64("loc", states.iter().map(|s| s.loc.clone())),
        list_f32("h", states.iter().map(|s| s.h.clone())),
        list_f32("log_w", states.iter().map(|s| s.log_w.clone())),
        list_f64("tail_values", states.iter().map(|s| s.tail_values.clone())),
        list_f64(
            "tail_mask",
            states
                .iter()
                .map(|s| s.tail_mask.iter().map(|&m| m as f64).collect()),
        ),
        list_f64(
            "recent_scores",
            states.iter().map(|s| s.recent_scores.clone()),
        ),
        list_f64(
            "recent_anomaly",
            states.iter().map(|s| s.recent_anomaly.clone()),
        ),
    ];
    let mut df = DataFrame::new(n, columns).map_err(|e| PipelineError::Polars {
        context: "building the state table".into(),
        message: e.to_string(),
    })?;
    crate::output::write_parquet(&mut df, path)
}

/// Reads a state file written by [`save_states`].
pub fn load_states(path: &std::path::Path) -> Result<Vec<SeriesState>> {
    use polars::prelude::*;
    let bad = |m: String| PipelineError::format(path, m);
    let file = std::fs::File::open(path).map_err(|e| PipelineError::io(path, e))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| bad(format!("not a state file: {e}")))?;
    let col = |name: &str| {
        df.column(name)
            .map_err(|_| bad(format!("state file has no `{name}` column")))
    };
    let ids = col("unique_id")?
        .str()
        .map_err(|e| bad(e.to_string()))?
        .clone();
    let steps = col("steps")?.u64().map_err(|e| bad(e.to_string()))?.clone();
    let last = col("last_ds")?
        .i64()
        .map_err(|e| bad(e.to_string()))?
        .clone();
    let lists = |name: &str| -> Result<ListChunked> {
        col(name)?.list().cloned().map_err(|e| bad(e.to_string()))
    };
    let (scale, h, log_w, tv, tm, rs) = (
        lists("scale")?,
        lists("h")?,
        lists("log_w")?,
        lists("tail_values")?,
        lists("tail_mask")?,
        lists("recent_scores")?,
    );
    // State files written before locations existed have no `loc` column: location 0.
    let loc = df.column("loc").ok().and_then(|c| c.list().ok().cloned());
    let recent_anomaly = df
        .column("recent_anomaly")
        .ok()
        .and_then(|c| c.list().ok().cloned());
    let f64s = |l: &ListChunked, i: usize| -> Result<Vec<f64>> {
        let s = l
            .get_as_series(i)
            .ok_or_else(|| bad(format!("row {i}: missing list")))?;
        let s = s.cast(&DataType::Float64).map_err(|e| bad(e.to_string()))?;
        let ca = s.f64().map_err(|e| bad(e.to_string()))?;
        ca.iter()
            .map(|v| v.ok_or_else(|| bad(format!("row {i}: null in a list"))))
            .collect()
    };
    (0..df.height())
        .map(|i| {
            Ok(SeriesState {
                id: ids
                    .get(i)
                    .ok_or_else(|| bad(format!("row {i}: null id")))?
                    .to_string(),
                steps: steps.get(i).unwrap_or(0) as usize,
                last_ds: last
                    .get(i)
                    .ok_or_else(|| bad(format!("row {i}: null last_ds")))?,
                scale: f64s(&scale, i)?,
                loc: match &loc {
                    Some(l) => f64s(l, i)?,
                    None => vec![0.0; f64s(&scale, i)?.len()],
                },
                h: f64s(&h, i)?.into_iter().map(|v| v as f32).collect(),
                log_w: f64s(&log_w, i)?.into_iter().map(|v| v as f32).collect(),
                tail_values: f64s(&tv, i)?,
                tail_mask: f64s(&tm, i)?
                    .into_iter()
                    .map(|v| u8::from(v != 0.0))
                    .collect(),
                recent_scores: f64s(&rs, i)?,
                recent_anomaly: match &recent_anomaly {
                    Some(l) => f64s(l, i)?,
                    None => Vec::new(),
                },
            })
        })
        .collect()
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
    {
        return Err(PipelineError::SchemaMismatch(format!(
            "the state of series `{}` does not fit the model (L={}, H={}, D={})",
            state.id, c.particles, c.hidden, c.targets
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{likelihood_score, rank_score};
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
