//! particast against GluonTS DeepAR (PyTorch, CPU), side by side in one run, on M4 Hourly.
//!
//! Run: `cargo bench --bench deepar`. The benchmark's own script (`benches/deepar/setup.sh`)
//! installs the pinned DeepAR into a virtual environment the first time. Both tools get the same
//! 2 threads, the same 414 training series, hidden size 40, context 168, horizon 48, batch 64,
//! the same number of gradient steps and lags {1, 24, 168}; then each
//! - trains (windows per second = gradient steps x batch size / wall time),
//! - forecasts every series 48 steps ahead (series per second; DeepAR and particast's sample
//!   mode draw 100 paths, particast's particle mode gives the exact mixture instead),
//! - scores observations by their exact predictive log-likelihood (observations per second;
//!   particast streams each series once, DeepAR re-runs its network over the past of each
//!   48-step window).
//!
//! Prints a table with the ratios and writes `benches/results/deepar.json`. Needs the M4 data
//! (`../shared/data/m4-hourly`, or `PARTICAST_M4_DIR`). `PARTICAST_BENCH_STEPS` sets the number
//! of gradient steps (default 200). `PARTICAST_BENCH_PROFILE=L` runs particast alone with L
//! particles and writes nothing, for a profiler (`perf record -g -- target/release/deps/deepar-*`).

mod common;

use particast_ingest::{Dataset, IngestOptions, Layout, Source};
use particast_pipeline::{
    forecast_series, score_series, train, ForecastConfig, Mode, ScoreConfig, Silent, TrainConfig,
};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const THREADS: usize = 2;

struct Side {
    name: String,
    train_wps: f64,
    forecast_sps: f64,
    forecast_what: String,
    score_ops: f64,
    score_nll: f64,
    train_seconds: f64,
}

fn particast_side(
    data: &Dataset,
    opts: &IngestOptions,
    particles: usize,
    steps: usize,
) -> Vec<Side> {
    let cfg = TrainConfig {
        hidden: Some(40),
        particles,
        context: Some(168),
        horizon: 48,
        batch_size: Some(64),
        batches_per_epoch: Some(50),
        epochs: Some(steps.div_ceil(50)),
        patience: usize::MAX,
        lr_patience: usize::MAX,
        seed: 1,
        ..TrainConfig::classic()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let model = train(data, opts, &cfg, dir.path(), false, &mut Silent).expect("training");
    let train_seconds = t.elapsed().as_secs_f64();
    let train_wps = (cfg.epochs.unwrap_or(0)
        * cfg.batches_per_epoch.unwrap_or(0)
        * cfg.batch_size.unwrap_or(0)) as f64
        / train_seconds;

    let t = Instant::now();
    let scored = score_series(&model, &data.series, &ScoreConfig::default()).expect("scoring");
    let score_s = t.elapsed().as_secs_f64();
    let nlls: Vec<f64> = scored
        .iter()
        .flat_map(|(s, _)| s.nll.iter().flatten().copied())
        .collect();
    let score_ops = nlls.len() as f64 / score_s;
    let score_nll = nlls.iter().sum::<f64>() / nlls.len() as f64;

    let mut out = Vec::new();
    for (mode, what) in [
        (Mode::Particle, "exact mixture".to_string()),
        (Mode::Sample, "100 paths".to_string()),
    ] {
        let fc = ForecastConfig {
            horizon: 48,
            mode,
            samples: 100,
            ..Default::default()
        };
        let t = Instant::now();
        let f = forecast_series(&model, &data.series, &fc).expect("forecast");
        let forecast_sps = f.len() as f64 / t.elapsed().as_secs_f64();
        out.push(Side {
            name: format!("particast L={particles}"),
            train_wps,
            forecast_sps,
            forecast_what: what,
            score_ops,
            score_nll,
            train_seconds,
        });
    }
    out
}

fn deepar_side(m4: &std::path::Path, steps: usize) -> Result<(Side, serde_json::Value), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let setup = Command::new(root.join("benches/deepar/setup.sh"))
        .output()
        .map_err(|e| format!("cannot run benches/deepar/setup.sh: {e}"))?;
    if !setup.status.success() {
        return Err(format!(
            "benches/deepar/setup.sh failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        ));
    }
    let python = String::from_utf8_lossy(&setup.stdout).trim().to_string();
    let out = Command::new(&python)
        .arg(root.join("benches/deepar/deepar_bench.py"))
        .args(["--train", &m4.join("Hourly-train.csv").to_string_lossy()])
        .args([
            "--steps",
            &steps.to_string(),
            "--threads",
            &THREADS.to_string(),
        ])
        .env("OMP_NUM_THREADS", THREADS.to_string())
        .env("MKL_NUM_THREADS", THREADS.to_string())
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "DeepAR benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("bad JSON from DeepAR ({e}): {line}"))?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok((
        Side {
            name: "DeepAR".into(),
            train_wps: f("train_windows_per_second"),
            forecast_sps: f("forecast_series_per_second"),
            forecast_what: "100 paths".into(),
            score_ops: f("score_observations_per_second"),
            score_nll: f("score_mean_nll"),
            train_seconds: f("train_seconds"),
        },
        v,
    ))
}

fn main() {
    let m4 = std::env::var_os("PARTICAST_M4_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/m4-hourly")
        });
    if !m4.join("Hourly-train.csv").exists() {
        eprintln!(
            "skipped: {} has no Hourly-train.csv (set PARTICAST_M4_DIR)",
            m4.display()
        );
        return;
    }
    let steps: usize = std::env::var("PARTICAST_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build_global()
        .expect("thread pool");
    let opts = IngestOptions {
        layout: Layout::Wide,
        lags: vec![24, 168],
        ..Default::default()
    };
    let data = Dataset::read(Source::path(m4.join("Hourly-train.csv")), &opts).expect("M4");

    if let Ok(spec) = std::env::var("PARTICAST_BENCH_PROFILE") {
        // Profiling: particast alone with `spec` particles, nothing written.
        let particles = spec.trim().parse().unwrap_or(8);
        for s in particast_side(&data, &opts, particles, steps) {
            println!(
                "{}: train {:.1} windows/s ({:.2} s), forecast {} {:.1} series/s, score {:.0} obs/s",
                s.name, s.train_wps, s.train_seconds, s.forecast_what, s.forecast_sps, s.score_ops
            );
        }
        return;
    }
    let (deepar, raw) = match deepar_side(&m4, steps) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut sides = particast_side(&data, &opts, 1, steps);
    sides.extend(particast_side(&data, &opts, 8, steps));

    println!(
        "M4 Hourly, {} series, {steps} gradient steps of 64 windows, {THREADS} threads",
        data.series.len()
    );
    println!(
        "{:<16} {:>12} {:>9} {:>14} {:<14} {:>13} {:>9} | {:>7} {:>7} {:>7}",
        "tool",
        "train win/s",
        "train s",
        "forecast ser/s",
        "(forecast)",
        "score obs/s",
        "NLL",
        "x train",
        "x fcst",
        "x score"
    );
    let mut rows = Vec::new();
    for s in std::iter::once(&deepar).chain(&sides) {
        let r = (
            s.train_wps / deepar.train_wps,
            s.forecast_sps / deepar.forecast_sps,
            s.score_ops / deepar.score_ops,
        );
        println!(
            "{:<16} {:>12.1} {:>9.1} {:>14.1} {:<14} {:>13.0} {:>9.3} | {:>7.2} {:>7.2} {:>7.2}",
            s.name,
            s.train_wps,
            s.train_seconds,
            s.forecast_sps,
            s.forecast_what,
            s.score_ops,
            s.score_nll,
            r.0,
            r.1,
            r.2
        );
        rows.push(serde_json::json!({
            "tool": s.name,
            "train_windows_per_second": s.train_wps,
            "train_seconds": s.train_seconds,
            "forecast": s.forecast_what,
            "forecast_series_per_second": s.forecast_sps,
            "score_observations_per_second": s.score_ops,
            "score_mean_nll": s.score_nll,
            "ratio_vs_deepar": { "train": r.0, "forecast": r.1, "score": r.2 },
        }));
    }
    let json = serde_json::json!({
        "command": "cargo bench --bench deepar",
        "data": "M4 Hourly train, 414 series",
        "threads": THREADS,
        "gradient_steps": steps,
        "settings": { "hidden": 40, "context": 168, "horizon": 48, "batch": 64, "lags": [1, 24, 168], "deepar_layers": 1 },
        "deepar_raw": raw,
        "results": rows,
    });
    common::write_results("deepar", &json);
}
