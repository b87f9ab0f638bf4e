//! M4 Hourly accuracy over several seeds: `pipelines/m4-hourly.toml` trained once per variant
//! and seed (on the 414 training series), then forecast 48 hours in each forecast mode and
//! scored against the official test set with the M4 definitions, next to the official
//! reference points.
//!
//! Run: `cargo bench --bench m4`. Prints one row per run, the mean and standard deviation per
//! variant and mode, and writes `benches/results/m4.json`. OWA is relative to the official
//! Naive2 (sMAPE 18.383, MASE 2.395). Environment:
//! - `PARTICAST_M4_SEEDS` (default `1,2,3`);
//! - `PARTICAST_M4_VARIANTS` (default `pipeline`): `pipeline` is the file as it is (log
//!   transform, seasonal-change target, seasonal-difference scaling); `level` is the earlier
//!   default (no transform, the level as target, mean |y| scaling); `change` is the
//!   seasonal-change target with seasonal-difference scaling but no transform; `log_level` the
//!   log transform with the level as target;
//! - `PARTICAST_M4_MODES` (default `particle,sample`): forecast modes, all from the same model;
//!   with more than one seed, each mode is also scored for the ensemble of the seeds' models
//!   (`forecast_ensemble`: the equal-weight mixture of their predictives), row `ens`;
//! - `PARTICAST_M4_PARTICLES`, `PARTICAST_M4_EPOCHS` (default: the pipeline's; an epoch is 50
//!   gradient steps);
//! - `PARTICAST_M4_RESULTS` (results file name, default `m4`).
//!
//! Every run first scores seasonal naive with empirical intervals (the quantiles of each
//! series' own one- and two-season differences), the MSIS and coverage reference that M4 did
//! not publish; `PARTICAST_M4_SEEDS= PARTICAST_M4_RESULTS=m4-seasonal-naive` runs only that.
//!
//! Needs the M4 data where the pipeline file points (`../shared/data/m4-hourly`).

mod common;

use particast::ingest::{Dataset, Source};
use particast::pipeline::{
    forecast_ensemble, Mode, Scaling, Silent, Target, TrainedModel, Transform,
};
use particast::run::{evaluate, run_pipeline};
use particast::spec::PipelineSpec;
use std::path::PathBuf;
use std::time::Instant;

const NAIVE2: (f64, f64) = (18.383, 2.395);

/// OWA against the official Naive2, and the coverage of the 95% interval.
fn owa_and_coverage95(m: &particast::pipeline::metrics::Metrics) -> (f64, f64) {
    let owa = 0.5 * (m.smape / NAIVE2.0 + m.mase / NAIVE2.1);
    let cov95 = m
        .coverage
        .iter()
        .find(|(lvl, _)| (*lvl - 95.0).abs() < 1e-9)
        .map(|c| c.1)
        .unwrap_or(f64::NAN);
    (owa, cov95)
}

/// Applies a named variant to the training settings.
fn apply_variant(variant: &str, cfg: &mut particast::pipeline::TrainConfig) {
    let seasonal_diff = Scaling::SeasonalDiff {
        season: 24,
        floor: 1e-4,
    };
    let change = Target::SeasonalChange { season: 24 };
    let log = Transform::Log { offset: 0.0 };
    let (scaling, target, transform) = match variant {
        "pipeline" => return,
        "level" => (
            Scaling::MeanAbs { floor: 1e-6 },
            Target::Level,
            Transform::None,
        ),
        "change" => (seasonal_diff, change, Transform::None),
        "log_level" => (Scaling::MeanAbs { floor: 1e-6 }, Target::Level, log),
        other => panic!("unknown variant {other}"),
    };
    cfg.scaling = Some(scaling);
    cfg.target = Some(target);
    cfg.transform = Some(transform);
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("pipelines/m4-hourly.toml");
    let base = PipelineSpec::load(&file).expect("pipelines/m4-hourly.toml");
    let data_path = PathBuf::from(&base.input.path);
    if !data_path.exists() {
        eprintln!("skipped: {} not found", data_path.display());
        return;
    }
    let seeds: Vec<u64> = common::env_list("PARTICAST_M4_SEEDS", "1,2,3")
        .iter()
        .map(|s| s.parse().expect("seed"))
        .collect();
    let variants = common::env_list("PARTICAST_M4_VARIANTS", "pipeline");
    let modes: Vec<Mode> = common::env_list("PARTICAST_M4_MODES", "particle,sample")
        .iter()
        .map(|m| match m.as_str() {
            "particle" => Mode::Particle,
            "sample" => Mode::Sample,
            other => panic!("PARTICAST_M4_MODES: unknown mode {other}"),
        })
        .collect();
    let particles: Option<usize> = std::env::var("PARTICAST_M4_PARTICLES")
        .ok()
        .and_then(|s| s.parse().ok());
    let epochs: Option<usize> = std::env::var("PARTICAST_M4_EPOCHS")
        .ok()
        .and_then(|s| s.parse().ok());
    let results = std::env::var("PARTICAST_M4_RESULTS").unwrap_or_else(|_| "m4".into());
    // The command that reproduces this file, with the settings that differ from the defaults.
    let command = [
        "PARTICAST_M4_SEEDS",
        "PARTICAST_M4_VARIANTS",
        "PARTICAST_M4_MODES",
        "PARTICAST_M4_PARTICLES",
        "PARTICAST_M4_EPOCHS",
        "PARTICAST_M4_RESULTS",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v} ")))
    .collect::<String>()
        + "cargo bench --bench m4";
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = Dataset::read(Source::Path(base.input.path.clone()), &base.input.options)
        .expect("M4 training data");
    let levels = &base.forecast.as_ref().expect("[forecast]").config.levels;
    let sn = common::seasonal_naive(&data.series, 48, 24, levels);
    let sn = evaluate(&base, &sn, &data.series, &data).expect("seasonal naive");
    let (sn_owa, sn_cov95) = owa_and_coverage95(&sn);
    println!(
        "seasonal naive with empirical intervals: sMAPE {:.3}, MASE {:.3}, OWA {:.3}, MSIS {:.2}, 95% coverage {:.3}",
        sn.smape, sn.mase, sn_owa, sn.msis, sn_cov95
    );

    println!(
        "{:<10} {:<8} {:>4} {:>3} {:>8} {:>7} {:>7} {:>6} {:>7} {:>6} {:>7} {:>8} {:>8}",
        "variant",
        "mode",
        "seed",
        "L",
        "sMAPE",
        "MASE",
        "MASEmed",
        "OWA",
        "MSIS",
        "cov95",
        "epochs",
        "train s",
        "fcst s"
    );
    let mut runs = Vec::new();
    let mut ensembles = Vec::new();
    for variant in &variants {
        for &seed in &seeds {
            let out = tmp.path().join(format!("{variant}-{seed}"));
            let mut spec = base.clone();
            spec.output_dir = out.clone();
            let train = spec.train.as_mut().expect("[train]");
            train.model = out.join("model");
            train.config.seed = seed;
            if let Some(l) = particles {
                train.config.particles = l;
            }
            if let Some(e) = epochs {
                train.config.epochs = Some(e);
            }
            apply_variant(variant, &mut train.config);
            let l = train.config.particles;
            let mut training = None;
            for (k, &mode) in modes.iter().enumerate() {
                // The first mode trains; the others forecast from the same model.
                let mut spec = spec.clone();
                if k > 0 {
                    spec.train = None;
                }
                let name = format!("{mode:?}").to_lowercase();
                let f = spec.forecast.as_mut().expect("[forecast]");
                f.output = out.join(format!("forecast-{name}.parquet"));
                f.config.mode = mode;
                spec.evaluate.as_mut().expect("[evaluate]").output =
                    out.join(format!("metrics-{name}.json"));
                let t = Instant::now();
                let report = run_pipeline(&spec, &mut Silent).expect("pipeline run");
                let total = t.elapsed().as_secs_f64();
                if let Some(tr) = report.training {
                    training = Some(tr);
                }
                let tr = training.as_ref().expect("training");
                let train_s = if k == 0 { tr.wall_seconds } else { 0.0 };
                let m = report.metrics.expect("metrics");
                let (owa, cov95) = owa_and_coverage95(&m);
                println!(
                    "{:<10} {:<8} {:>4} {:>3} {:>8.3} {:>7.3} {:>7.3} {:>6.3} {:>7.2} {:>6.3} {:>7} {:>8.1} {:>8.1}",
                    variant,
                    name,
                    seed,
                    l,
                    m.smape,
                    m.mase,
                    m.mase_median,
                    owa,
                    m.msis,
                    cov95,
                    tr.epochs,
                    tr.wall_seconds,
                    total - train_s
                );
                runs.push(serde_json::json!({
                    "variant": variant, "mode": name, "seed": seed, "particles": l,
                    "smape": m.smape, "mase": m.mase, "mase_median": m.mase_median, "owa": owa,
                    "msis": m.msis, "coverage95": cov95, "crps": m.crps, "wcrps": m.wcrps,
                    "nll": m.nll, "epochs": tr.epochs, "train_seconds": tr.wall_seconds,
                    "forecast_evaluate_seconds": total - train_s,
                }));
            }
        }
    }
    // The equal-weight mixture of the seeds' models, per variant and mode.
    if seeds.len() > 1 {
        for variant in &variants {
            let models: Vec<TrainedModel> = seeds
                .iter()
                .map(|seed| {
                    TrainedModel::load(&tmp.path().join(format!("{variant}-{seed}/model")))
                        .expect("a trained model")
                })
                .collect();
            for &mode in &modes {
                let name = format!("{mode:?}").to_lowercase();
                let mut cfg = base.forecast.as_ref().expect("[forecast]").config.clone();
                cfg.mode = mode;
                let t = Instant::now();
                let fc = forecast_ensemble(&models, &data.series, &cfg).expect("ensemble");
                let m = evaluate(&base, &fc, &data.series, &data).expect("evaluation");
                let secs = t.elapsed().as_secs_f64();
                let (owa, cov95) = owa_and_coverage95(&m);
                println!(
                    "{:<10} {:<8} {:>4} {:>3} {:>8.3} {:>7.3} {:>7.3} {:>6.3} {:>7.2} {:>6.3} {:>7} {:>8} {:>8.1}",
                    variant, name, "ens", models[0].model.config.particles, m.smape, m.mase,
                    m.mase_median, owa, m.msis, cov95, "-", "-", secs
                );
                ensembles.push(serde_json::json!({
                    "variant": variant, "mode": name, "seeds": seeds,
                    "smape": m.smape, "mase": m.mase, "mase_median": m.mase_median, "owa": owa,
                    "msis": m.msis, "coverage95": cov95, "crps": m.crps, "wcrps": m.wcrps,
                    "forecast_evaluate_seconds": secs,
                }));
            }
        }
    }
    println!();
    println!(
        "{:<10} {:<8} {:>16} {:>16} {:>14} {:>14} {:>12} {:>10}",
        "variant", "mode", "sMAPE", "MASE", "OWA", "MSIS", "cov95", "train s"
    );
    let mut summary = Vec::new();
    for variant in &variants {
        for mode in &modes {
            let name = format!("{mode:?}").to_lowercase();
            let of = |k: &str| -> Vec<f64> {
                runs.iter()
                    .filter(|r| r["variant"] == variant.as_str() && r["mode"] == name.as_str())
                    .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
                    .collect()
            };
            if of("smape").is_empty() {
                continue;
            }
            let (s, m, o, ms, c, t) = (
                common::mean_sd(&of("smape")),
                common::mean_sd(&of("mase")),
                common::mean_sd(&of("owa")),
                common::mean_sd(&of("msis")),
                common::mean_sd(&of("coverage95")),
                common::mean_sd(&of("train_seconds")),
            );
            println!(
                "{:<10} {:<8} {:>8.3} ± {:<5.3} {:>8.3} ± {:<5.3} {:>6.3} ± {:<5.3} {:>6.2} ± {:<5.2} {:>5.3} ± {:<4.3} {:>10.0}",
                variant, name, s.0, s.1, m.0, m.1, o.0, o.1, ms.0, ms.1, c.0, c.1, t.0
            );
            summary.push(serde_json::json!({
                "variant": variant, "mode": name, "seeds": seeds.len(),
                "smape": [s.0, s.1], "mase": [m.0, m.1], "owa": [o.0, o.1], "msis": [ms.0, ms.1],
                "coverage95": [c.0, c.1], "train_seconds": t.0,
            }));
        }
    }
    println!("reference: seasonal naive 13.912 / 1.193 (OWA 0.627), Naive2 18.383 / 2.395 (1.000), ES-RNN 9.328 / 0.893, best 8.913 / 0.801 / 0.410");
    let json = serde_json::json!({
        "command": command,
        "pipeline": "pipelines/m4-hourly.toml",
        "reference": {
            "seasonal_naive": {"smape": 13.912, "mase": 1.193},
            "seasonal_naive_empirical_intervals": {
                "smape": sn.smape, "mase": sn.mase, "owa": sn_owa, "msis": sn.msis,
                "coverage95": sn_cov95
            },
            "naive2": {"smape": 18.383, "mase": 2.395},
            "es_rnn_winner": {"smape": 9.328, "mase": 0.893},
            "best_hourly": {"smape": 8.913, "mase": 0.801, "owa": 0.410}
        },
        "runs": runs,
        "summary": summary,
        "ensembles": ensembles,
    });
    common::write_results(&results, &json);
}
