//! The training stage: windows from ingestion, per-window scaling, Adam with clipping,
//! learning-rate decay on plateau, early stopping on a held-out tail of every series,
//! checkpoints every epoch, and resume.

use particast_ingest::{
    sample_windows, Dataset, IngestOptions, PreparedSeries, ShortSeries, Weighting,
    WindowBatchBuilder, WindowSpec,
};
use particast_kernels::{
    clip_global_norm, loss_and_grad, score, Adam, AdamConfig, Cell, Gate, Head, Model, ModelConfig,
    ParticleState, TrainOptions,
};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use tracing::{info, info_span, warn};

use crate::error::{PipelineError, Result};
use crate::inputs::{InputSpec, KernelBatch, Scaling, Target, Transform};
use crate::model_dir::{
    read_file, read_tensor, tensors_to_bytes_with, write_json, ModelMeta, TensorData, TrainedModel,
    CHECKPOINT_PROGRESS_KEY, CHECKPOINT_STATE, CHECKPOINT_WEIGHTS, FORMAT_VERSION,
};
use crate::recipe::{Plan, RecipeReport};

/// Training settings. The recipe knobs (seasons, lags, transform, target, scaling, context,
/// hidden size and the training budget) are `None` by default, which means `auto`: decided
/// from the data by [`crate::recipe::plan`] at training time, printed and stored in the
/// model's `config.json`. The same struct serves the CLI, pipeline files (`"auto"` or an
/// absent key) and Rust.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Recurrent cell.
    pub cell: Cell,
    /// Emission head.
    pub head: Head,
    /// Mixture gate.
    pub gate: Gate,
    /// Hidden units (auto: 32, 40 for large panels).
    #[serde(with = "crate::recipe::auto")]
    pub hidden: Option<usize>,
    /// Particles.
    pub particles: usize,
    /// Per-particle embedding size (0 for the note's exact form).
    pub embedding: usize,
    /// Learned transition noise during training.
    pub noise: bool,
    /// Seasons in steps (auto: from the frequency, kept when the data show them; empty:
    /// none).
    #[serde(with = "crate::recipe::auto")]
    pub seasons: Option<Vec<usize>>,
    /// Target lags in steps, added to those of the input options (auto: 1 and the seasons).
    #[serde(with = "crate::recipe::auto")]
    pub lags: Option<Vec<usize>>,
    /// Context steps per window (also the scale window).
    #[serde(with = "crate::recipe::auto")]
    pub context: Option<usize>,
    /// Horizon steps per window; the last `horizon` steps of each series are held out for
    /// validation.
    pub horizon: usize,
    /// Windows per gradient step (auto: 64).
    #[serde(with = "crate::recipe::auto")]
    pub batch_size: Option<usize>,
    /// Gradient steps per epoch (auto: from the windows available).
    #[serde(with = "crate::recipe::auto")]
    pub batches_per_epoch: Option<usize>,
    /// Maximum epochs (auto: from the windows available).
    #[serde(with = "crate::recipe::auto")]
    pub epochs: Option<usize>,
    /// Adam step size.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip: f64,
    /// Stop after this many epochs without a better validation NLL.
    pub patience: usize,
    /// Multiply the learning rate by this after `lr_patience` epochs without improvement.
    pub lr_decay: f64,
    /// Epochs without improvement before the learning rate decays.
    pub lr_patience: usize,
    /// Smallest learning rate.
    pub min_lr: f64,
    /// Leading steps of each window without loss (the particles settle first).
    pub burn_in: usize,
    /// Seed of initialisation, window sampling and noise.
    pub seed: u64,
    /// Scaling rule (auto: seasonal differences at the target's season; a season of 0 means
    /// the recipe's).
    #[serde(with = "crate::recipe::auto")]
    pub scaling: Option<Scaling>,
    /// What the emission models (auto: the change from one season ago, or from the previous
    /// step without a season; `seasonal_change` with season 0 means the recipe's season).
    #[serde(with = "crate::recipe::auto")]
    pub target: Option<Target>,
    /// Transform of the values before scaling (auto: `log` when every training value is
    /// positive).
    #[serde(with = "crate::recipe::auto")]
    pub transform: Option<Transform>,
    /// How training windows are spread over the series (auto: every series equally often).
    #[serde(with = "crate::recipe::auto")]
    pub weighting: Option<Weighting>,
    /// Compare the recipe's alternatives on the validation split when the data are
    /// ambiguous (a season shown by some series only), keeping the better.
    pub select: bool,
    /// Floor of the emission scale (scaled units).
    pub sigma_floor: f64,
    /// Initial fixed-share rate.
    pub share_init: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            cell: Cell::Gru,
            head: Head::Gaussian,
            gate: Gate::Uniform,
            hidden: None,
            particles: 8,
            embedding: 4,
            noise: false,
            seasons: None,
            lags: None,
            context: None,
            horizon: 48,
            batch_size: None,
            batches_per_epoch: None,
            epochs: None,
            lr: 3e-3,
            weight_decay: 0.0,
            clip: 10.0,
            patience: 6,
            lr_decay: 0.5,
            lr_patience: 2,
            min_lr: 1e-5,
            burn_in: 0,
            seed: 42,
            scaling: None,
            target: None,
            transform: None,
            weighting: None,
            select: true,
            sigma_floor: 1e-3,
            share_init: 0.05,
        }
    }
}

impl TrainConfig {
    /// The pre-recipe defaults (mean |y| scaling, the level, no transform, no lags, context
    /// 168, 30 epochs of 50 steps of 64 windows, hidden 32, windows weighted by scale): for
    /// comparisons with the automatic recipe.
    pub fn classic() -> Self {
        TrainConfig {
            hidden: Some(32),
            seasons: Some(Vec::new()),
            lags: Some(Vec::new()),
            context: Some(168),
            batch_size: Some(64),
            batches_per_epoch: Some(50),
            epochs: Some(30),
            scaling: Some(Scaling::default()),
            target: Some(Target::Level),
            transform: Some(Transform::None),
            weighting: Some(Weighting::Scale),
            ..Default::default()
        }
    }
}

/// One epoch, as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Mean training NLL per observation (scaled units).
    pub train_nll: f64,
    /// Validation NLL per observation (scaled units), if there is a validation set.
    pub val_nll: Option<f64>,
    /// Validation NLL per observation in original units (of the transformed values when the
    /// model has a transform).
    pub val_nll_original: Option<f64>,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient steps per second.
    pub batches_per_second: f64,
    /// Whether this epoch's model is the best so far (and was saved).
    pub improved: bool,
}

/// Receives progress; the CLI draws bars, libraries stay silent.
pub trait Reporter {
    /// Training starts (after any resume).
    fn on_start(&mut self, _epochs: usize, _batches_per_epoch: usize, _first_epoch: usize) {}
    /// A gradient step ended.
    fn on_batch(&mut self, _epoch: usize, _batch: usize, _loss: f64) {}
    /// An epoch ended.
    fn on_epoch(&mut self, _report: &EpochReport) {}
    /// The recipe was decided (before any training).
    fn on_recipe(&mut self, _report: &RecipeReport) {}
    /// Candidate `k` of `n` (1-based) starts training.
    fn on_candidate(&mut self, _k: usize, _n: usize, _name: &str) {}
    /// The candidates were compared (`report.candidates` says how) and one kept.
    fn on_selected(&mut self, _report: &RecipeReport) {}
}

/// A reporter that reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// What training achieved (stored in the model's config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Trainable scalars.
    pub parameters: usize,
    /// Epochs run (including before a resume).
    pub epochs: usize,
    /// Epoch of the best validation NLL.
    pub best_epoch: usize,
    /// Best validation NLL per observation, scaled units.
    pub best_val_nll: Option<f64>,
    /// The same in original units (of the transformed values when the model has a transform).
    pub best_val_nll_original: Option<f64>,
    /// Wall time of this run, seconds.
    pub wall_seconds: f64,
    /// Effective number of particles `1 / sum w^2`, averaged over validation steps.
    pub effective_particles: f64,
    /// Mean pairwise distance between particle states at the end of the validation windows.
    pub particle_distance: f64,
    /// Training series and validation windows.
    pub series: usize,
    /// Validation windows (one per series long enough).
    pub validation_windows: usize,
    /// Final learning rate.
    pub final_lr: f64,
    /// Whether training resumed from a checkpoint.
    pub resumed: bool,
    /// Per-epoch history.
    pub history: Vec<EpochReport>,
}

/// Progress saved with each checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Progress {
    config: TrainConfig,
    epochs_done: usize,
    adam_t: u64,
    lr: f64,
    best_val: Option<f64>,
    best_epoch: usize,
    epochs_since_best: usize,
    epochs_since_lr: usize,
    history: Vec<EpochReport>,
}

impl TrainConfig {
    /// Checks the settings the user gave (auto knobs are checked once decided).
    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(PipelineError::Config(m.into()));
        if self.horizon == 0 || self.context == Some(0) {
            return bad("context and horizon must be positive");
        }
        if [self.batch_size, self.batches_per_epoch, self.epochs].contains(&Some(0)) {
            return bad("batch_size, batches_per_epoch and epochs must be positive");
        }
        use crate::limits::{at_most, MAX_BATCH_SIZE, MAX_CONTEXT, MAX_HORIZON};
        if let Some(c) = self.context {
            at_most("context", c, MAX_CONTEXT, "")?;
        }
        at_most("horizon", self.horizon, MAX_HORIZON, "")?;
        if let Some(b) = self.batch_size {
            at_most("batch_size", b, MAX_BATCH_SIZE, "")?;
        }
        let max_dim = particast_kernels::ModelConfig::MAX_DIM;
        if let Some(h) = self.hidden {
            at_most("hidden", h, max_dim, "")?;
        }
        at_most("particles", self.particles, max_dim, "")?;
        at_most("embedding", self.embedding, max_dim, "")?;
        for &m in self
            .seasons
            .iter()
            .flatten()
            .chain(self.lags.iter().flatten())
        {
            at_most("a season or lag", m, crate::limits::MAX_CONTEXT, "")?;
        }
        let positive = |v: f64| v > 0.0 && v.is_finite();
        if !positive(self.lr) || !positive(self.clip) {
            return bad("lr and clip must be positive");
        }
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad("lr_decay must be in (0, 1]");
        }
        if let Some(t) = &self.transform {
            t.validate()?;
        }
        if let Some(s) = &self.scaling {
            if !matches!(s, Scaling::SeasonalDiff { season: 0, .. }) {
                s.validate()?;
            }
        }
        Ok(())
    }

    fn model_config(&self, spec: &InputSpec, hidden: usize) -> ModelConfig {
        ModelConfig {
            cell: self.cell,
            head: self.head,
            gate: self.gate,
            hidden,
            particles: self.particles,
            embedding: self.embedding,
            inputs: spec.n_inputs(),
            targets: spec.features.n_targets,
            noise: self.noise,
            sigma_floor: self.sigma_floor,
            share_init: self.share_init,
            ..Default::default()
        }
    }
}

impl Plan {
    fn window(&self, horizon: usize) -> WindowSpec {
        WindowSpec {
            context: self.context,
            horizon,
            stride: 1,
            batch_size: self.batch_size,
            short_series: ShortSeries::Pad,
            weighting: self.weighting,
        }
    }
    fn check(&self, cfg: &TrainConfig) -> Result<()> {
        if self.burn_in_too_long(cfg) {
            return Err(PipelineError::Config(
                "burn_in must be shorter than context + horizon".into(),
            ));
        }
        self.scaling.validate()
    }
    fn burn_in_too_long(&self, cfg: &TrainConfig) -> bool {
        cfg.burn_in >= self.context + cfg.horizon
    }
}

/// The validation set: the last `context + horizon` steps of every series (padded in front when
/// shorter), with loss on the horizon only.
fn validation_batch(
    series: &[PreparedSeries],
    spec: &InputSpec,
    context: usize,
    horizon: usize,
) -> Result<KernelBatch> {
    let t = context + horizon;
    let mut builder = WindowBatchBuilder::new(t, spec.features.clone());
    for s in series.iter().filter(|s| s.len() > horizon) {
        builder.push(s, s.len() as i64 - t as i64);
    }
    let batch = builder.finish()?;
    spec.from_record_batch(&batch, context)
}

/// Removes the temporary files of atomic writes that a killed process left in `dir` (they are
/// never the only copy of anything: the rename that would have published them did not happen).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".particast-") && name.ends_with(".tmp") {
            match std::fs::remove_file(e.path()) {
                Ok(()) => info!(file = %e.path().display(), "removed a stale temporary file"),
                Err(err) => {
                    warn!(file = %e.path().display(), %err, "cannot remove a stale temporary file")
                }
            }
        }
    }
}

/// Refuses training settings whose estimated memory (one batch's activations, the parameters
/// with gradients and Adam moments) is above the limit ([`crate::limits::train_bytes`]).
fn check_train_memory(cfg: &TrainConfig, plan: &Plan, mc: &ModelConfig) -> Result<()> {
    let window = plan.context + cfg.horizon;
    let per_row = 8 * mc.hidden + mc.inputs + mc.embedding + 2 * mc.head_width();
    crate::limits::check_memory(
        "training",
        crate::limits::train_bytes(
            plan.batch_size,
            window,
            mc.particles,
            per_row,
            mc.parameter_count().unwrap_or(u64::MAX),
        ),
        format!(
            "batches of {} windows x {window} steps x {} particles x hidden {}",
            plan.batch_size, mc.particles, mc.hidden
        ),
        "batch_size, context, horizon, particles or hidden",
    )
}

/// Trains a model on `data` and writes it to `dir` (resuming from a checkpoint there when
/// `resume` is set and one exists). Every `auto` knob of `cfg` is decided first
/// ([`crate::recipe::plan`]); when the recipe has alternatives, each is trained into a
/// candidate folder inside `dir`, the one with the best validation NLL is kept and the
/// candidate folders are removed.
pub fn train(
    data: &Dataset,
    ingest: &IngestOptions,
    cfg: &TrainConfig,
    dir: &Path,
    resume: bool,
    reporter: &mut dyn Reporter,
) -> Result<TrainedModel> {
    let _span = info_span!("train").entered();
    cfg.validate()?;
    let start = Instant::now();
    let plan = crate::recipe::plan(data, cfg)?;
    plan.check(cfg)?;
    // Impossible sizes are refused before anything is printed or written.
    {
        let mut features = data.schema.features.clone();
        features.lags = plan.lags.clone();
        let spec =
            InputSpec::with_transform(features, plan.scaling.clone(), plan.target, plan.transform);
        let mc = cfg.model_config(&spec, plan.hidden);
        mc.validate()?;
        check_train_memory(cfg, &plan, &mc)?;
    }
    for d in &plan.report.decisions {
        info!(knob = %d.knob, value = %d.value, auto = d.auto, why = %d.why, "recipe");
    }
    reporter.on_recipe(&plan.report);
    if plan.alternatives.is_empty() {
        return train_plan(data, ingest, cfg, &plan, dir, resume, reporter, start);
    }
    let mut candidates = vec![(
        plan.report
            .decisions
            .iter()
            .find(|d| d.knob == "target")
            .map(|d| d.value.clone())
            .unwrap_or_default(),
        plan.target,
        plan.scaling.clone(),
    )];
    candidates.extend(plan.alternatives.iter().cloned());
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    let mut trained = Vec::new();
    for (k, (name, target, scaling)) in candidates.iter().enumerate() {
        let _c = info_span!("candidate", k, name = %name).entered();
        reporter.on_candidate(k + 1, candidates.len(), name);
        let mut p = plan.clone();
        p.target = *target;
        p.scaling = scaling.clone();
        p.alternatives.clear();
        let sub = dir.join(format!(".candidate-{}", k + 1));
        trained.push(train_plan(
            data,
            ingest,
            cfg,
            &p,
            &sub,
            resume,
            reporter,
            Instant::now(),
        )?);
    }
    // Each candidate forecasts the held-out tail of every series from the part it was
    // trained on; the lower MASE wins (teacher-forced NLLs hardly tell a level target from a
    // change target: both see the previous value).
    let scores: Vec<f64> = trained
        .iter()
        .map(|m| holdout_mase(m, &data.series, cfg.horizon))
        .collect::<Result<_>>()?;
    let best = (0..trained.len())
        .min_by(|&a, &b| {
            let key = |k: usize| {
                if scores[k].is_finite() {
                    scores[k]
                } else {
                    f64::INFINITY
                }
            };
            key(a).total_cmp(&key(b))
        })
        .unwrap_or(0);
    let mut report = plan.report.clone();
    report.candidates = candidates
        .iter()
        .zip(&trained)
        .zip(&scores)
        .enumerate()
        .map(
            |(k, (((name, target, scaling), m), &mase))| crate::recipe::Candidate {
                name: name.clone(),
                target: *target,
                scaling: scaling.clone(),
                val_nll: m
                    .meta
                    .training
                    .as_ref()
                    .and_then(|t| t.best_val_nll_original),
                holdout_mase: mase.is_finite().then_some(mase),
                chosen: k == best,
            },
        )
        .collect();
    let shown = report
        .candidates
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.name,
                c.holdout_mase
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_else(|| "-".into())
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (name, target, scaling) = &candidates[best];
    for d in &mut report.decisions {
        match d.knob.as_str() {
            "target" => {
                d.value = name.clone();
                d.why = format!(
                    "the lower MASE forecasting the held-out tail of every series: {shown}"
                );
            }
            "scaling" => d.value = scaling.to_string(),
            "seasons" => {
                if let Some(m) = target.season().filter(|&m| m > 1) {
                    if d.value == "none" {
                        d.value = m.to_string();
                        d.why.push_str(&format!(
                            "; {m} kept after all: its candidate forecast the held-out tail better"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    reporter.on_selected(&report);
    info!(chosen = %name, ?target, "recipe selection");
    let mut winner = trained.swap_remove(best);
    winner.meta.recipe = Some(report);
    if let Some(t) = &mut winner.meta.training {
        t.wall_seconds = start.elapsed().as_secs_f64();
    }
    winner.save(dir)?;
    // The winner's checkpoint stays with the model (a later resume trains it further).
    let sub = dir.join(format!(".candidate-{}", best + 1));
    for f in [CHECKPOINT_WEIGHTS, CHECKPOINT_STATE] {
        if sub.join(f).exists() {
            let bytes = read_file(&sub.join(f))?;
            crate::model_dir::write_atomic(&dir.join(f), &bytes)?;
        }
    }
    for k in 0..candidates.len() {
        let sub = dir.join(format!(".candidate-{}", k + 1));
        if let Err(e) = std::fs::remove_dir_all(&sub) {
            warn!(dir = %sub.display(), %e, "cannot remove a candidate folder");
        }
    }
    Ok(winner)
}

/// The mean over series of the MASE (naive scale of the part trained on) of `model`'s
/// median forecast of the last `horizon` steps of every series longer than `horizon + 1`,
/// from the steps before them (NaN when no series can be scored).
fn holdout_mase(model: &TrainedModel, series: &[PreparedSeries], horizon: usize) -> Result<f64> {
    let pairs: Vec<(&PreparedSeries, PreparedSeries)> = series
        .iter()
        .filter(|s| s.len() > horizon + 1)
        .map(|s| (s, s.head(s.len() - horizon)))
        .collect();
    let heads: Vec<PreparedSeries> = pairs.iter().map(|(_, h)| h.clone()).collect();
    let cfg = crate::forecast::ForecastConfig {
        horizon,
        ..Default::default()
    };
    let forecasts = crate::forecast::forecast_series(model, &heads, &cfg)?;
    let (mut sum, mut n) = (0.0, 0usize);
    for ((full, head), f) in pairs.iter().zip(&forecasts) {
        let hist = crate::evaluate::history_of(head);
        let scale = crate::metrics::seasonal_scale(&hist, 1);
        if !(scale.is_finite() && scale > 0.0) {
            continue;
        }
        let start = head.len() as i64;
        let errs: Vec<f64> = f
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, st)| Some((full.value(start + i as i64, 0)? - st.median).abs()))
            .collect();
        if !errs.is_empty() {
            sum += errs.iter().sum::<f64>() / errs.len() as f64 / scale;
            n += 1;
        }
    }
    Ok(if n == 0 { f64::NAN } else { sum / n as f64 })
}

/// Trains one concrete plan into `dir`.
#[allow(clippy::too_many_arguments)]
fn train_plan(
    data: &Dataset,
    ingest: &IngestOptions,
    cfg: &TrainConfig,
    plan: &Plan,
    dir: &Path,
    resume: bool,
    reporter: &mut dyn Reporter,
    start: Instant,
) -> Result<TrainedModel> {
    let mut features = data.schema.features.clone();
    features.lags = plan.lags.clone();
    let spec =
        InputSpec::with_transform(features, plan.scaling.clone(), plan.target, plan.transform);
    spec.validate()?;
    let mut schema = data.schema.clone();
    schema.features.lags = plan.lags.clone();
    let mut ingest = ingest.clone();
    ingest.lags = plan.lags.clone();
    // Everything below works on transformed values.
    let transformed;
    let data = if spec.transform.is_identity() {
        data
    } else {
        let mut t = data.clone();
        for s in &mut t.series {
            spec.transform.apply_in_place(s)?;
        }
        transformed = t;
        &transformed
    };
    let model_cfg = cfg.model_config(&spec, plan.hidden);
    model_cfg.validate()?;
    check_train_memory(cfg, plan, &model_cfg)?;
    // Hold out the last `horizon` steps of every series for validation.
    let train_series: Vec<PreparedSeries> = data
        .series
        .iter()
        .map(|s| match crate::recipe::training_len(s, cfg.horizon) {
            n if n < s.len() => s.head(n),
            _ => s.clone(),
        })
        .filter(|s| s.stats.observed.iter().sum::<usize>() > 0)
        .collect();
    if train_series.is_empty() {
        return Err(PipelineError::Config(
            "no series with observations to train on".into(),
        ));
    }
    let val = validation_batch(&data.series, &spec, plan.context, cfg.horizon)?;
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    remove_stale_temporaries(dir);

    let mut model = Model::<f32>::new(model_cfg.clone(), cfg.seed)?;
    let mut adam = Adam::new(
        AdamConfig {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
        model.params.len(),
    );
    let mut progress = Progress {
        config: cfg.clone(),
        epochs_done: 0,
        adam_t: 0,
        lr: cfg.lr,
        best_val: None,
        best_epoch: 0,
        epochs_since_best: 0,
        epochs_since_lr: 0,
        history: Vec::new(),
    };
    let mut resumed = false;
    if resume && dir.join(CHECKPOINT_WEIGHTS).exists() {
        // Tensors and progress come from one file, written by one rename: a kill at any
        // moment leaves either the previous checkpoint or the new one, never a mix.
        let path = dir.join(CHECKPOINT_WEIGHTS);
        let bytes = read_file(&path)?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| PipelineError::format(&path, format!("not a safetensors file: {e}")))?;
        let saved: Progress = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(CHECKPOINT_PROGRESS_KEY))
            .ok_or_else(|| PipelineError::format(&path, "the checkpoint has no training progress"))
            .and_then(|json| {
                serde_json::from_str(json).map_err(|e| {
                    PipelineError::format(&path, format!("bad training progress: {e}"))
                })
            })?;
        // The stopping rules may change on resume (train longer); nothing else may.
        let comparable = |c: &TrainConfig| TrainConfig {
            epochs: None,
            patience: 0,
            ..c.clone()
        };
        if comparable(&saved.config) != comparable(cfg) {
            return Err(PipelineError::Config(format!(
                "{} was written with other training settings; train into a new folder or without resume",
                path.display()
            )));
        }
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| PipelineError::format(&path, format!("not a safetensors file: {e}")))?;
        let n = model.params.len();
        let params = read_tensor(&st, "params", &[n], &path)?;
        model.params = params.iter().map(|&v| v as f32).collect();
        adam.m = read_tensor(&st, "adam.m", &[n], &path)?;
        adam.v = read_tensor(&st, "adam.v", &[n], &path)?;
        adam.t = saved.adam_t;
        progress = saved;
        progress.config = cfg.clone();
        resumed = true;
        info!(
            epochs_done = progress.epochs_done,
            "resumed from checkpoint"
        );
    }

    let meta = |training: Option<TrainSummary>| ModelMeta {
        format_version: FORMAT_VERSION,
        particast_version: env!("CARGO_PKG_VERSION").to_string(),
        model: model_cfg.clone(),
        data: schema.clone(),
        ingest: ingest.clone(),
        inputs: spec.clone(),
        context: plan.context,
        horizon: cfg.horizon,
        training,
        recipe: Some(plan.report.clone()),
    };
    let window = plan.window(cfg.horizon);
    let mut grad = vec![0.0f32; model.params.len()];
    reporter.on_start(
        plan.epochs,
        plan.batches_per_epoch,
        progress.epochs_done + 1,
    );
    let mut best_model = if resumed && dir.join(crate::model_dir::WEIGHTS).exists() {
        // The best model so far; a damaged one is an error, not a silent restart.
        TrainedModel::load(dir)?.model
    } else {
        model.clone()
    };
    while progress.epochs_done < plan.epochs
        && (progress.epochs_since_best < cfg.patience || progress.best_val.is_none())
    {
        let epoch = progress.epochs_done + 1;
        let _e = info_span!("epoch", epoch).entered();
        let t0 = Instant::now();
        let epoch_seed = cfg
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(epoch as u64);
        let windows = sample_windows(
            &train_series,
            &window,
            &spec.features,
            plan.batch_size * plan.batches_per_epoch,
            epoch_seed,
        )?;
        let mut train_sum = 0.0;
        for b in 0..plan.batches_per_epoch {
            let slice = windows.slice(b * plan.batch_size, plan.batch_size);
            let kb = spec.from_record_batch(&slice, plan.context)?;
            let opts = TrainOptions {
                noise_seed: cfg.noise.then_some(epoch_seed.wrapping_add(b as u64)),
                ..Default::default()
            };
            let r = loss_and_grad(&model, &kb.view(cfg.burn_in), &opts, Some(&mut grad))?;
            if !r.nll.is_finite() {
                return Err(PipelineError::Diverged {
                    epoch,
                    batch: b,
                    value: r.nll,
                });
            }
            let norm = clip_global_norm(&mut grad, cfg.clip);
            if !norm.is_finite() {
                warn!(epoch, batch = b, "non-finite gradient norm; step skipped");
                continue;
            }
            adam.step(&mut model.params, &grad, progress.lr);
            train_sum += r.nll;
            reporter.on_batch(epoch, b, r.nll);
        }
        let train_nll = train_sum / plan.batches_per_epoch as f64;
        let (val_nll, val_orig) = if val.windows > 0 {
            let r = loss_and_grad(
                &model,
                &val.view(plan.context),
                &TrainOptions::default(),
                None,
            )?;
            (Some(r.nll), Some(r.nll_original))
        } else {
            (None, None)
        };
        let improved = match (val_nll, progress.best_val) {
            (Some(v), Some(best)) => v < best - 1e-6,
            (Some(v), None) => v.is_finite(),
            (None, _) => true,
        };
        if improved {
            progress.best_val = val_nll.or(Some(train_nll));
            progress.best_epoch = epoch;
            progress.epochs_since_best = 0;
            progress.epochs_since_lr = 0;
            best_model = model.clone();
            TrainedModel {
                meta: meta(None),
                model: best_model.clone(),
            }
            .save(dir)?;
        } else {
            progress.epochs_since_best += 1;
            progress.epochs_since_lr += 1;
            if progress.epochs_since_lr >= cfg.lr_patience {
                progress.lr = (progress.lr * cfg.lr_decay).max(cfg.min_lr);
                progress.epochs_since_lr = 0;
            }
        }
        let report = EpochReport {
            epoch,
            train_nll,
            val_nll,
            val_nll_original: val_orig,
            lr: progress.lr,
            batches_per_second: plan.batches_per_epoch as f64 / t0.elapsed().as_secs_f64(),
            improved,
        };
        info!(epoch, train_nll, val_nll = ?val_nll, lr = progress.lr, "epoch done");
        reporter.on_epoch(&report);
        progress.history.push(report);
        progress.epochs_done = epoch;
        progress.adam_t = adam.t;
        // Checkpoint: tensors and progress in one file (one atomic rename), then a readable
        // copy of the progress.
        let n = model.params.len();
        let progress_json = serde_json::to_string(&progress)
            .map_err(|e| PipelineError::Config(format!("serialising progress: {e}")))?;
        let bytes = tensors_to_bytes_with(
            &[
                ("params".into(), vec![n], TensorData::F32(&model.params)),
                ("adam.m".into(), vec![n], TensorData::F64(&adam.m)),
                ("adam.v".into(), vec![n], TensorData::F64(&adam.v)),
            ],
            Some([(CHECKPOINT_PROGRESS_KEY.to_string(), progress_json)].into()),
        )?;
        crate::model_dir::write_atomic(&dir.join(CHECKPOINT_WEIGHTS), &bytes)?;
        write_json(&dir.join(CHECKPOINT_STATE), &progress)?;
    }

    // Diagnostics on the validation windows with the best model.
    let (ess, distance) = if val.windows > 0 {
        let r = loss_and_grad(
            &best_model,
            &val.view(plan.context),
            &TrainOptions::default(),
            None,
        )?;
        let mut state = ParticleState::new(&best_model, val.windows);
        score(&best_model, &mut state, &val.view(0), true)?;
        (r.effective_particles, state.mean_pairwise_distance())
    } else {
        (model_cfg.particles as f64, 0.0)
    };
    let best = progress
        .history
        .iter()
        .find(|h| h.epoch == progress.best_epoch);
    let summary = TrainSummary {
        parameters: best_model.params.len(),
        epochs: progress.epochs_done,
        best_epoch: progress.best_epoch,
        best_val_nll: best.and_then(|b| b.val_nll),
        best_val_nll_original: best.and_then(|b| b.val_nll_original),
        wall_seconds: start.elapsed().as_secs_f64(),
        effective_particles: ess,
        particle_distance: distance,
        series: train_series.len(),
        validation_windows: val.windows,
        final_lr: progress.lr,
        resumed,
        history: progress.history.clone(),
    };
    let trained = TrainedModel {
        meta: meta(Some(summary)),
        model: best_model,
    };
    trained.save(dir)?;
    Ok(trained)
}
