//! Choosing between the recipe's alternatives: each candidate trains into a `.candidate-k`
//! folder of the model directory, forecasts the held-out tail of every series, and the one
//! with the lowest MASE is kept (its checkpoint with it); the candidate folders are removed.

use particast_ingest::PreparedSeries;
use std::path::Path;
use std::time::Instant;
use tracing::{info, info_span, warn};

use super::checkpoint::{CHECKPOINT_STATE, CHECKPOINT_WEIGHTS};
use super::{train_plan, Job, Reporter};
use crate::error::{PipelineError, Result};
use crate::model_dir::{read_file, TrainedModel};
use crate::recipe::Plan;

/// Trains the plan's first choice and each alternative, keeps the best in `dir`.
pub(super) fn train_candidates(
    job: &Job<'_>,
    plan: &Plan,
    dir: &Path,
    reporter: &mut dyn Reporter,
    start: Instant,
) -> Result<TrainedModel> {
    let (data, cfg) = (job.data, job.cfg);
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
        trained.push(train_plan(job, &p, &sub, reporter, Instant::now())?);
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
pub(crate) fn holdout_mase(
    model: &TrainedModel,
    series: &[PreparedSeries],
    horizon: usize,
) -> Result<f64> {
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
    // Future covariates of the held-out steps are the series' own.
    let future = model.meta.inputs.needs_future().then(|| {
        crate::forecast::FutureCovariates::from_series(
            series,
            &model.meta.data.covariate_cols,
            "the held-out tail",
        )
    });
    let forecasts = crate::forecast::forecast_ensemble_future(
        std::slice::from_ref(model),
        &heads,
        &cfg,
        future.as_ref(),
    )?;
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
