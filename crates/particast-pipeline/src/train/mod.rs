//! The training stage: windows from ingestion, per-window scaling, Adam with clipping,
//! learning-rate decay on plateau, early stopping on a held-out tail of every series,
//! checkpoints every epoch, and resume.

mod checkpoint;
mod select;

use particast_ingest::{
    sample_window_starts, Dataset, IngestOptions, PreparedSeries, ShortSeries, WindowSpec,
};
use particast_kernels::{
    clip_global_norm, loss_and_grad, score, Adam, AdamConfig, Model, ModelConfig, ParticleState,
    TrainOptions,
};
use std::path::Path;
use std::time::Instant;
use tracing::{info, info_span, warn};

use crate::error::{PipelineError, Result};
use crate::inputs::{InputSpec, KernelBatch};
use crate::model_dir::{EpochReport, ModelMeta, TrainSummary, TrainedModel, FORMAT_VERSION};
use crate::recipe::{Plan, RecipeReport};
use crate::settings::TrainConfig;
use checkpoint::{Progress, CHECKPOINT_WEIGHTS};

pub use checkpoint::MODEL_FILES;

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
) -> KernelBatch {
    let t = context + horizon;
    let picks: Vec<(usize, i64)> = (0..series.len())
        .filter(|&i| series[i].len() > horizon)
        .map(|i| (i, series[i].len() as i64 - t as i64))
        .collect();
    spec.windows_batch(series, &picks, t, context)
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
        let spec = input_spec(data, ingest, &plan)?;
        let mc = cfg.model_config(&spec, plan.hidden);
        mc.validate()?;
        check_train_memory(cfg, &plan, &mc)?;
    }
    for d in &plan.report.decisions {
        info!(knob = %d.knob, value = %d.value, auto = d.auto, why = %d.why, "recipe");
    }
    reporter.on_recipe(&plan.report);
    let job = Job {
        data,
        ingest,
        cfg,
        resume,
    };
    if plan.alternatives.is_empty() {
        return train_plan(&job, &plan, dir, reporter, start);
    }
    select::train_candidates(&job, &plan, dir, reporter, start)
}

/// The model's inputs under `plan`: the data's features with the plan's lags, the covariates
/// by kind (from `ingest`'s `futr_exog` / `hist_exog` / `stat_exog`), standardised on the
/// training data.
fn input_spec(data: &Dataset, ingest: &IngestOptions, plan: &Plan) -> Result<InputSpec> {
    let mut features = data.schema.features.clone();
    features.lags = plan.lags.clone();
    let covariates =
        crate::inputs::fit_covariates(&data.schema.covariate_cols, ingest, &data.series)?;
    Ok(
        InputSpec::with_transform(features, plan.scaling.clone(), plan.target, plan.transform)
            .with_covariates(covariates),
    )
}

/// What every training run of one `train` call shares.
#[derive(Clone, Copy)]
struct Job<'a> {
    data: &'a Dataset,
    ingest: &'a IngestOptions,
    cfg: &'a TrainConfig,
    resume: bool,
}

/// Trains one concrete plan into `dir`.
fn train_plan(
    job: &Job<'_>,
    plan: &Plan,
    dir: &Path,
    reporter: &mut dyn Reporter,
    start: Instant,
) -> Result<TrainedModel> {
    let Job {
        data,
        ingest,
        cfg,
        resume,
    } = *job;
    let spec = input_spec(data, ingest, plan)?;
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
    let val = validation_batch(&data.series, &spec, plan.context, cfg.horizon);
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    remove_stale_temporaries(dir);
    // A calibration belongs to the model it was fitted on.
    let stale = dir.join(crate::calibrate::CALIBRATION);
    if stale.is_file() {
        std::fs::remove_file(&stale).map_err(|e| PipelineError::io(&stale, e))?;
    }

    let mut model = Model::<f32>::new(model_cfg.clone(), cfg.seed)?;
    let mut adam = Adam::new(
        AdamConfig {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
        model.params.len(),
    );
    let mut progress = Progress::new(cfg);
    let mut resumed = false;
    if resume && dir.join(CHECKPOINT_WEIGHTS).exists() {
        progress = checkpoint::restore(dir, cfg, &mut model, &mut adam)?;
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
        let picks = sample_window_starts(
            &train_series,
            &window,
            plan.batch_size * plan.batches_per_epoch,
            epoch_seed,
        )?;
        let mut train_sum = 0.0;
        for b in 0..plan.batches_per_epoch {
            let at = (b * plan.batch_size).min(picks.len());
            let slice = &picks[at..(at + plan.batch_size).min(picks.len())];
            let kb = spec.windows_batch(&train_series, slice, window.len(), plan.context);
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
                calibration: None,
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
        checkpoint::save(dir, &progress, &model, &adam)?;
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
        calibration: None,
    };
    trained.save(dir)?;
    Ok(trained)
}
