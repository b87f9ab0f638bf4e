//! Backtests and covariates, through the command line a user would type.
//!
//! 1. `vic-elec` (`../shared/data/dev/vic_elec`, half-hourly demand with temperature and a
//!    holiday flag): `particast cv` with 14 daily windows (h = 48, step 48) on the last two
//!    weeks, the model trained once on everything before the first cutoff, with the true
//!    future temperature and holiday flag (`--futr-exog Temperature,Holiday`) and without
//!    covariates (`--no-covariates`), three seeds each; the same recipe otherwise.
//! 2. `m4-hourly` (`../shared/data/m4-hourly`, 414 series, h = 48): the time of a 3-window
//!    backtest of a trained model (`cv --pretrained`) against one forecast of every series
//!    (`forecast`), alternating, twice each.
//!
//! Run: `cargo bench --bench cv --features cli`. Prints the tables and writes
//! `benches/results/cv.json`. Environment: `PARTICAST_CV_SEEDS` (default `1,2,3`),
//! `PARTICAST_CV_PARTS` (default `vic-elec,m4-hourly`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn particast(args: &[String]) -> f64 {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_particast"))
        .args(args)
        .output()
        .expect("run particast");
    if !out.status.success() {
        panic!(
            "particast {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    t.elapsed().as_secs_f64()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The `overall` metrics of a `cv --metrics` file.
fn overall(file: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("metrics")).expect("json");
    v["overall"].clone()
}

fn coverage(m: &serde_json::Value, level: f64) -> f64 {
    m["coverage"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|c| (c[0].as_f64().unwrap_or(0.0) - level).abs() < 1e-9)
        })
        .and_then(|c| c[1].as_f64())
        .unwrap_or(f64::NAN)
}

fn vic(shared: &Path, tmp: &Path, seeds: &[String]) -> serde_json::Value {
    let data = shared.join("dev/vic_elec/csv/vic_elec.csv");
    let input = strings(&[
        "--input",
        &path(&data),
        "--id-from-path",
        "--time-col",
        "Time_utc",
        "--target-col",
        "Demand",
    ]);
    let window = strings(&[
        "--horizon",
        "48",
        "--n-windows",
        "14",
        "--step-size",
        "48",
        "--eval-season",
        "48",
    ]);
    println!(
        "{:<14} {:>5} {:>7} {:>7} {:>8} {:>7} {:>6} {:>6} {:>7}",
        "vic-elec", "seed", "MASE", "sMAPE", "CRPS", "MSIS", "cov80", "cov95", "secs"
    );
    let mut out = serde_json::Map::new();
    for (variant, flags) in [
        (
            "covariates",
            strings(&["--futr-exog", "Temperature,Holiday"]),
        ),
        ("none", strings(&["--no-covariates"])),
    ] {
        let mut runs = Vec::new();
        for seed in seeds {
            let dir = tmp.join(format!("vic-{variant}-{seed}"));
            let metrics = dir.with_extension("json");
            let mut args = strings(&["cv", "--quiet"]);
            args.extend(input.iter().cloned());
            args.extend(flags.iter().cloned());
            args.extend(window.iter().cloned());
            args.extend(["--seed".into(), seed.clone()]);
            args.extend(["--model".into(), path(&dir)]);
            args.extend(["--output".into(), path(&dir.with_extension("parquet"))]);
            args.extend(["--metrics".into(), path(&metrics)]);
            let secs = particast(&args);
            let m = overall(&metrics);
            let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<14} {:>5} {:>7.4} {:>7.3} {:>8.2} {:>7.3} {:>6.3} {:>6.3} {:>7.1}",
                variant,
                seed,
                f("mase"),
                f("smape"),
                f("crps"),
                f("msis"),
                coverage(&m, 80.0),
                coverage(&m, 95.0),
                secs
            );
            runs.push(serde_json::json!({"seed": seed, "metrics": m, "seconds": secs}));
        }
        let stat = |k: &str| {
            common::mean_sd(
                &runs
                    .iter()
                    .map(|r| r["metrics"][k].as_f64().unwrap_or(f64::NAN))
                    .collect::<Vec<_>>(),
            )
        };
        let (mase, mase_sd) = stat("mase");
        let (crps, crps_sd) = stat("crps");
        let (smape, _) = stat("smape");
        let (msis, _) = stat("msis");
        println!(
            "{:<14} {:>5} {:>7.4} {:>7.3} {:>8.2} {:>7.3}   (sd MASE {mase_sd:.4}, CRPS {crps_sd:.2})",
            variant, "mean", mase, smape, crps, msis
        );
        out.insert(
            variant.into(),
            serde_json::json!({"mase": mase, "mase_sd": mase_sd, "crps": crps, "crps_sd": crps_sd,
                "smape": smape, "msis": msis, "runs": runs}),
        );
    }
    serde_json::Value::Object(out)
}

fn m4(shared: &Path, tmp: &Path) -> serde_json::Value {
    let dir = shared.join("m4-hourly");
    let train = dir.join("Hourly-train.csv");
    let input = strings(&["--input", &path(&train), "--format", "wide"]);
    let model = tmp.join("m4-model");
    // The model of the backtest: trained on every series up to its first cutoff.
    let mut args = strings(&[
        "cv",
        "--quiet",
        "--horizon",
        "48",
        "--n-windows",
        "3",
        "--eval-season",
        "24",
    ]);
    args.extend(input.iter().cloned());
    args.extend(["--model".into(), path(&model)]);
    args.extend(["--output".into(), path(&tmp.join("m4-cv0.parquet"))]);
    let train_cv = particast(&args);
    let (mut once, mut backtest) = (Vec::new(), Vec::new());
    for i in 0..2 {
        let mut f = strings(&["forecast", "--quiet", "--horizon", "48"]);
        f.extend(input.iter().cloned());
        f.extend(["--model".into(), path(&model)]);
        f.extend([
            "--output".into(),
            path(&tmp.join(format!("m4-f{i}.parquet"))),
        ]);
        once.push(particast(&f));
        let mut c = strings(&[
            "cv",
            "--quiet",
            "--pretrained",
            "--horizon",
            "48",
            "--n-windows",
            "3",
            "--eval-season",
            "24",
        ]);
        c.extend(input.iter().cloned());
        c.extend(["--model".into(), path(&model)]);
        c.extend([
            "--output".into(),
            path(&tmp.join(format!("m4-cv{i}.parquet"))),
        ]);
        c.extend([
            "--metrics".into(),
            path(&tmp.join(format!("m4-cv{i}.json"))),
        ]);
        backtest.push(particast(&c));
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (f, c) = (best(&once), best(&backtest));
    println!(
        "m4-hourly: training + 3-window backtest {train_cv:.1} s; forecast once {f:.1} s, \
         3-window backtest of the trained model {c:.1} s ({:.2}x one forecast, {:.2}x per window; best of 2)",
        c / f,
        c / f / 3.0
    );
    serde_json::json!({
        "train_and_backtest_seconds": train_cv,
        "forecast_seconds": once,
        "backtest_3_windows_seconds": backtest,
        "ratio": c / f,
        "ratio_per_window": c / f / 3.0,
        "metrics": overall(&tmp.join("m4-cv0.json")),
    })
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/data");
    let seeds = common::env_list("PARTICAST_CV_SEEDS", "1,2,3");
    let parts = common::env_list("PARTICAST_CV_PARTS", "vic-elec,m4-hourly");
    let tmp = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut out = serde_json::Map::new();
    out.insert(
        "command".into(),
        "cargo bench --bench cv --features cli".into(),
    );
    for part in &parts {
        match part.as_str() {
            "vic-elec" if shared.join("dev/vic_elec").is_dir() => {
                out.insert(part.clone(), vic(&shared, tmp.path(), &seeds));
            }
            "m4-hourly" if shared.join("m4-hourly").is_dir() => {
                out.insert(part.clone(), m4(&shared, tmp.path()));
            }
            "vic-elec" | "m4-hourly" => eprintln!("skipped {part}: its data is not there"),
            other => panic!("PARTICAST_CV_PARTS: unknown part {other}"),
        }
    }
    out.insert(
        "wall_seconds".into(),
        started.elapsed().as_secs_f64().into(),
    );
    common::write_results("cv", &serde_json::Value::Object(out));
}
