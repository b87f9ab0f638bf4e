//! particast with its defaults on every development set: the command line a new user would
//! type (`particast train` and `particast forecast` with only the input options and the
//! horizon), three seeds, scored next to seasonal naive (with empirical intervals) and, on M3,
//! the original Theta submission, all by the project's own scorer.
//!
//! Run: `cargo bench --bench dev --features cli`. Prints one row per set and method and writes
//! `benches/results/dev.json`. Sets (`../shared/data/dev`, `../shared/data/m4-hourly`):
//! M3 yearly, quarterly, monthly and other; Tourism yearly, quarterly and monthly (their
//! published test parts); M4 Hourly (official test set); and four single-source sets whose last
//! `h` steps of every series are held out: Victoria electricity (30 min, h 48), Australian
//! retail (152 monthly series, h 24), Peyton Manning's page views (daily, h 28) and US
//! gasoline (weekly, h 52). Covariate columns are left out (`--no-covariates`): forecasting
//! with future covariates is a separate feature.
//!
//! Environment:
//! - `PARTICAST_DEV_SEEDS` (default `1,2,3`);
//! - `PARTICAST_DEV_SETS` (default all): comma-separated names, e.g. `m3-yearly,tourism-monthly`;
//! - `PARTICAST_DEV_TRAIN_ARGS`, `PARTICAST_DEV_FORECAST_ARGS`: extra arguments for
//!   experiments (the published numbers use none);
//! - `PARTICAST_DEV_RESULTS` (results file name, default `dev`);
//! - `PARTICAST_DEV_CALIBRATE=N`: train with `particast cv --n-windows N --calibrate` instead
//!   of `particast train` (the model sees every series up to its first cutoff, N horizons
//!   before the end of the training part), and score its test forecasts both raw and
//!   `--calibrated` (the conformal calibration fitted on the N windows).

mod common;

use particast::ingest::{Dataset, IngestOptions, Layout, Source};
use particast::pipeline::evaluate::{actuals_for, eval_series, history_of};
use particast::pipeline::metrics::{evaluate, Metrics};
use particast::pipeline::{SeriesForecast, StepForecast};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const LEVELS: [f64; 2] = [80.0, 95.0];

/// One row of a long table: series id, time label, value.
type Row = (String, String, String);
/// Published point forecasts: method name and, per series id, the `h` values.
type Reference = (String, Vec<(String, Vec<f64>)>);

/// One development set, prepared as long CSV files `series_id,time,value`.
struct Set {
    name: String,
    train: PathBuf,
    test: PathBuf,
    h: usize,
    /// Season of MASE, MSIS and seasonal naive.
    m: usize,
    /// Input options of the command line (beyond `--input`).
    input: Vec<String>,
    /// Reading options for the library side (the same columns).
    opts: IngestOptions,
    /// Published reference forecasts to score (M3: Theta).
    reference: Option<Reference>,
}

fn write_long(path: &Path, rows: &[(String, String, String)]) {
    let mut text = String::from("series_id,time,value\n");
    for (id, t, v) in rows {
        text.push_str(&format!("{id},{t},{v}\n"));
    }
    std::fs::write(path, text).expect("write csv");
}

fn long_opts() -> IngestOptions {
    IngestOptions {
        id_col: "series_id".into(),
        time_col: "time".into(),
        target_cols: vec!["value".into()],
        covariate_cols: Some(Vec::new()),
        ..Default::default()
    }
}

/// M3 or Tourism, one frequency: the published train and test parts of the series whose
/// `st` code starts with `prefix`.
fn competition(
    dev: &Path,
    tmp: &Path,
    comp: &str,
    prefix: char,
    freq: &str,
    h: usize,
    m: usize,
) -> Set {
    let meta = common::read_rows(&dev.join(format!("{comp}/csv/{comp}_meta.csv")));
    let keep: HashMap<String, ()> = meta
        .iter()
        .filter(|r| r[1].to_uppercase().starts_with(prefix))
        .map(|r| (r[0].clone(), ()))
        .collect();
    let name = format!("{comp}-{freq}");
    let by_step = comp == "m3" && freq == "monthly";
    // Train lengths, for test steps counted from 1 again.
    let n: HashMap<String, usize> = meta
        .iter()
        .map(|r| (r[0].clone(), r[5].parse().unwrap_or(0)))
        .collect();
    let mut paths = Vec::new();
    for part in ["train", "test"] {
        let rows: Vec<(String, String, String)> =
            common::read_rows(&dev.join(format!("{comp}/csv/{comp}_{part}.csv")))
                .into_iter()
                .filter(|r| keep.contains_key(&r[0]))
                .map(|r| {
                    // M3's monthly labels include 29 series without a real start date
                    // (`1-01`): that set is read by step number (integer steps).
                    let t = if !by_step {
                        r[2].clone()
                    } else if part == "test" {
                        let step: usize = r[1].parse().expect("step");
                        (n[&r[0]] + step).to_string()
                    } else {
                        r[1].clone()
                    };
                    (r[0].clone(), t, r[3].clone())
                })
                .collect();
        let p = tmp.join(format!("{name}-{part}.csv"));
        write_long(&p, &rows);
        paths.push(p);
    }
    let reference = (comp == "m3").then(|| {
        let rows = common::read_rows(&dev.join("m3/csv/m3_original_forecasts.csv"));
        let f: Vec<(String, Vec<f64>)> = rows
            .into_iter()
            .filter(|r| r[0] == "THETA" && keep.contains_key(&r[1]))
            .map(|r| {
                let v = r[2..2 + h]
                    .iter()
                    .map(|x| x.parse::<f64>().expect("forecast"))
                    .collect();
                (r[1].clone(), v)
            })
            .collect();
        ("Theta".to_string(), f)
    });
    Set {
        name,
        input: common::long_input(&paths[0]),
        train: paths[0].clone(),
        test: paths[1].clone(),
        h,
        m,
        opts: long_opts(),
        reference,
    }
}

/// A table of `(series, time, value)` rows in time order per series: the last `h` of every
/// series become the test part.
fn holdout(tmp: &Path, name: &str, rows: Vec<(String, String, String)>, h: usize, m: usize) -> Set {
    let mut by: Vec<(String, Vec<Row>)> = Vec::new();
    for r in rows {
        match by.last_mut() {
            Some((id, v)) if *id == r.0 => v.push(r),
            _ => by.push((r.0.clone(), vec![r])),
        }
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (_, v) in by {
        let cut = v.len().saturating_sub(h);
        train.extend(v[..cut].iter().cloned());
        test.extend(v[cut..].iter().cloned());
    }
    let (a, b) = (
        tmp.join(format!("{name}-train.csv")),
        tmp.join(format!("{name}-test.csv")),
    );
    write_long(&a, &train);
    write_long(&b, &test);
    Set {
        name: name.into(),
        input: common::long_input(&a),
        train: a,
        test: b,
        h,
        m,
        opts: long_opts(),
        reference: None,
    }
}

fn prepare(name: &str, dev: &Path, shared: &Path, tmp: &Path) -> Option<Set> {
    let one =
        |id: &str, rows: Vec<Vec<String>>, t: usize, v: usize| -> Vec<(String, String, String)> {
            rows.into_iter()
                .filter(|r| r.len() > t.max(v) && !r[v].is_empty())
                .map(|r| (id.to_string(), r[t].clone(), r[v].clone()))
                .collect()
        };
    Some(match name {
        "m3-yearly" => competition(dev, tmp, "m3", 'Y', "yearly", 6, 1),
        "m3-quarterly" => competition(dev, tmp, "m3", 'Q', "quarterly", 8, 4),
        "m3-monthly" => competition(dev, tmp, "m3", 'M', "monthly", 18, 12),
        "m3-other" => competition(dev, tmp, "m3", 'O', "other", 8, 1),
        "tourism-yearly" => competition(dev, tmp, "tourism", 'Y', "yearly", 4, 1),
        "tourism-quarterly" => competition(dev, tmp, "tourism", 'Q', "quarterly", 8, 4),
        "tourism-monthly" => competition(dev, tmp, "tourism", 'M', "monthly", 24, 12),
        "m4-hourly" => {
            let dir = shared.join("m4-hourly");
            let train = dir.join("Hourly-train.csv");
            let wide = IngestOptions {
                layout: Layout::Wide,
                ..Default::default()
            };
            Set {
                name: name.into(),
                input: vec![
                    "--input".into(),
                    train.to_string_lossy().into(),
                    "--format".into(),
                    "wide".into(),
                ],
                train,
                test: dir.join("Hourly-test.csv"),
                h: 48,
                m: 24,
                opts: wide,
                reference: None,
            }
        }
        "vic-elec" => {
            let rows = common::read_rows(&dev.join("vic_elec/csv/vic_elec.csv"));
            holdout(tmp, name, one("vic_elec", rows, 0, 2), 48, 48)
        }
        "aus-retail" => {
            let rows = common::read_rows(&dev.join("aus_retail/csv/aus_retail.csv"));
            let r = rows
                .into_iter()
                .filter(|r| r.len() > 4 && !r[4].is_empty())
                .map(|r| (r[2].clone(), r[3].clone(), r[4].clone()))
                .collect();
            holdout(tmp, name, r, 24, 12)
        }
        "peyton-manning" => {
            let rows = common::read_rows(
                &dev.join("peyton_manning_wiki/example_wp_log_peyton_manning.csv"),
            );
            holdout(tmp, name, one("peyton", rows, 0, 1), 28, 7)
        }
        "us-gasoline" => {
            // Newest first in the file, `MM/DD/YYYY`: written oldest first as ISO dates.
            let rows = common::read_rows(&dev.join("us_gasoline/us_gasoline.csv"));
            let mut r: Vec<(String, String, String)> = rows
                .into_iter()
                .filter(|r| r.len() > 1 && !r[1].is_empty())
                .map(|r| {
                    let p: Vec<&str> = r[0].split('/').collect();
                    let iso = format!("{}-{:0>2}-{:0>2}", p[2], p[0], p[1]);
                    ("gasoline".to_string(), iso, r[1].clone())
                })
                .collect();
            r.sort_by(|a, b| a.1.cmp(&b.1));
            holdout(tmp, name, r, 52, 52)
        }
        _ => return None,
    })
}

fn particast(args: &[String]) -> (f64, String) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_particast"))
        .args(args)
        .output()
        .expect("run particast");
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        panic!("particast {} failed:\n{stdout}\n{stderr}", args.join(" "));
    }
    (secs, stdout + &stderr)
}

fn extra(name: &str) -> Vec<String> {
    std::env::var(name)
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn cov95(m: &Metrics) -> f64 {
    m.coverage
        .iter()
        .find(|(l, _)| (*l - 95.0).abs() < 1e-9)
        .map(|c| c.1)
        .unwrap_or(f64::NAN)
}

/// Scores library-side forecasts (the baselines) against the set's test part.
fn score(set: &Set, train: &Dataset, forecasts: &[SeriesForecast]) -> Metrics {
    let test = Dataset::read(Source::Path(set.test.to_string_lossy().into()), &set.opts)
        .expect("test part");
    let positional = set.opts.layout == Layout::Wide;
    let history: HashMap<&str, Vec<f64>> = train
        .series
        .iter()
        .map(|s| (s.id.as_str(), history_of(s)))
        .collect();
    let evals: Vec<_> = forecasts
        .iter()
        .filter_map(|f| {
            let full = test.get(&f.id)?;
            let actual = actuals_for(f, full, positional);
            Some(eval_series(
                f,
                &actual,
                history.get(f.id.as_str()).cloned().unwrap_or_default(),
                &LEVELS,
            ))
        })
        .collect();
    evaluate(&evals, set.m)
}

fn point_forecasts(train: &Dataset, f: &[(String, Vec<f64>)]) -> Vec<SeriesForecast> {
    let by: HashMap<&str, &Vec<f64>> = f.iter().map(|(id, v)| (id.as_str(), v)).collect();
    train
        .series
        .iter()
        .filter_map(|s| {
            let v = by.get(s.id.as_str())?;
            let n = s.len() as i64;
            Some(SeriesForecast {
                id: s.id.clone(),
                steps: v
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| StepForecast {
                        ds: s.timestamp(n + i as i64),
                        mean: p,
                        median: p,
                        intervals: Vec::new(),
                        mixture: Vec::new(),
                        samples: Vec::new(),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The metrics of `evaluate --json` (NaN is written as null there).
fn from_json(v: &serde_json::Value) -> Metrics {
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Metrics {
        series: v["series"].as_u64().unwrap_or(0) as usize,
        observations: v["observations"].as_u64().unwrap_or(0) as usize,
        smape: f("smape"),
        mape: f("mape"),
        mase: f("mase"),
        mase_median: f("mase_median"),
        msis: f("msis"),
        coverage: v["coverage"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p[0].as_f64().unwrap_or(f64::NAN),
                            p[1].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        nd: f("nd"),
        nrmse: f("nrmse"),
        wql: f("wql"),
        crps: f("crps"),
        wcrps: f("wcrps"),
        nll: f("nll"),
    }
}

fn metrics_json(m: &Metrics) -> serde_json::Value {
    serde_json::json!({
        "series": m.series, "smape": m.smape, "mape": m.mape, "mase": m.mase,
        "msis": m.msis, "coverage95": cov95(m),
    })
}

/// One run of a set: seed, metrics, training and forecasting seconds, the recipe, and the
/// calibrated forecasts' metrics (with `PARTICAST_DEV_CALIBRATE`).
type Run = (u64, Metrics, f64, f64, serde_json::Value, Option<Metrics>);

fn stat_raw_msis(runs: &[Run]) -> f64 {
    common::mean_sd(&runs.iter().map(|r| r.1.msis).collect::<Vec<_>>()).0
}

fn c95_raw(runs: &[Run]) -> f64 {
    common::mean_sd(&runs.iter().map(|r| cov95(&r.1)).collect::<Vec<_>>()).0
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/data");
    let dev = shared.join("dev");
    if !dev.is_dir() {
        eprintln!("skipped: {} not found", dev.display());
        return;
    }
    let all = "m3-yearly,m3-quarterly,m3-monthly,m3-other,tourism-yearly,tourism-quarterly,tourism-monthly,m4-hourly,vic-elec,aus-retail,peyton-manning,us-gasoline";
    let names = common::env_list("PARTICAST_DEV_SETS", all);
    let seeds: Vec<u64> = common::env_list("PARTICAST_DEV_SEEDS", "1,2,3")
        .iter()
        .map(|s| s.parse().expect("seed"))
        .collect();
    let results = std::env::var("PARTICAST_DEV_RESULTS").unwrap_or_else(|_| "dev".into());
    let train_extra = extra("PARTICAST_DEV_TRAIN_ARGS");
    let forecast_extra = extra("PARTICAST_DEV_FORECAST_ARGS");
    let calibrate: Option<usize> = std::env::var("PARTICAST_DEV_CALIBRATE").ok().map(|v| {
        v.parse()
            .expect("PARTICAST_DEV_CALIBRATE: a number of windows")
    });
    let command = [
        "PARTICAST_DEV_SEEDS",
        "PARTICAST_DEV_SETS",
        "PARTICAST_DEV_TRAIN_ARGS",
        "PARTICAST_DEV_FORECAST_ARGS",
        "PARTICAST_DEV_RESULTS",
        "PARTICAST_DEV_CALIBRATE",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}=\"{v}\" ")))
    .collect::<String>()
        + "cargo bench --bench dev --features cli";
    let tmp = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    println!(
        "{:<18} {:<16} {:>7} {:>7} {:>7} {:>8} {:>6} {:>8} {:>7}",
        "set", "method", "sMAPE", "MAPE", "MASE", "MSIS", "cov95", "train s", "fcst s"
    );
    let mut out = Vec::new();
    for name in &names {
        let Some(set) = prepare(name, &dev, &shared, tmp.path()) else {
            panic!("PARTICAST_DEV_SETS: unknown set {name} (known: {all})");
        };
        if !set.train.exists() {
            eprintln!("skipped {name}: {} not found", set.train.display());
            continue;
        }
        let train = Dataset::read(Source::Path(set.train.to_string_lossy().into()), &set.opts)
            .expect("train part");
        let row = |method: &str, m: &Metrics, tr: f64, fc: f64| {
            println!(
                "{:<18} {:<16} {:>7.3} {:>7.3} {:>7.3} {:>8.3} {:>6.3} {:>8.1} {:>7.1}",
                set.name,
                method,
                m.smape,
                m.mape,
                m.mase,
                m.msis,
                cov95(m),
                tr,
                fc
            );
        };
        let sn = common::seasonal_naive(&train.series, set.h, set.m, &LEVELS);
        let sn = score(&set, &train, &sn);
        row("seasonal naive", &sn, 0.0, 0.0);
        let reference = set.reference.as_ref().map(|(method, f)| {
            let m = score(&set, &train, &point_forecasts(&train, f));
            row(method, &m, 0.0, 0.0);
            (method.clone(), m)
        });
        let mut runs: Vec<Run> = Vec::new();
        for &seed in &seeds {
            let dir = tmp.path().join(format!("{name}-{seed}"));
            let model = dir.join("model");
            let fc = dir.join("forecast.parquet");
            let h = set.h.to_string();
            std::fs::create_dir_all(&dir).expect("run folder");
            let mut args: Vec<String> = match calibrate {
                None => vec!["train".into(), "--quiet".into()],
                Some(n) => vec![
                    "cv".into(),
                    "--quiet".into(),
                    "--n-windows".into(),
                    n.to_string(),
                    "--eval-season".into(),
                    set.m.to_string(),
                    "--calibrate".into(),
                    "--output".into(),
                    dir.join("cv.parquet").to_string_lossy().into(),
                ],
            };
            args.extend(set.input.iter().cloned());
            args.extend([
                "--horizon".into(),
                h.clone(),
                "--seed".into(),
                seed.to_string(),
            ]);
            args.extend(["--model".into(), model.to_string_lossy().into()]);
            args.extend(train_extra.iter().cloned());
            let (train_s, _) = particast(&args);
            let forecast = |fc: &Path, calibrated: bool| -> f64 {
                let mut args: Vec<String> = vec!["forecast".into(), "--quiet".into()];
                args.extend(set.input.iter().cloned());
                args.extend(["--horizon".into(), h.clone()]);
                args.extend(["--model".into(), model.to_string_lossy().into()]);
                args.extend(["--output".into(), fc.to_string_lossy().into()]);
                args.extend(forecast_extra.iter().cloned());
                if calibrated {
                    args.push("--calibrated".into());
                }
                particast(&args).0
            };
            let evaluate = |fc: &Path| -> Metrics {
                let mut args: Vec<String> = vec![
                    "evaluate".into(),
                    "--json".into(),
                    "--forecast".into(),
                    fc.to_string_lossy().into(),
                    "--actuals".into(),
                    set.test.to_string_lossy().into(),
                    "--history".into(),
                    set.train.to_string_lossy().into(),
                    "--season".into(),
                    set.m.to_string(),
                ];
                // The reading options minus `--input PATH`.
                args.extend(
                    set.input
                        .iter()
                        .skip(2)
                        .filter(|a| *a != "--no-covariates")
                        .cloned(),
                );
                let (_, json) = particast(&args);
                from_json(&serde_json::from_str(&json).expect("evaluate --json"))
            };
            let forecast_s = forecast(&fc, false);
            let m = evaluate(&fc);
            let calibrated = calibrate.map(|_| {
                let cfc = dir.join("calibrated.parquet");
                forecast(&cfc, true);
                let c = evaluate(&cfc);
                row(&format!("calibrated s{seed}"), &c, 0.0, 0.0);
                c
            });
            let config: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(model.join("config.json")).expect("config.json"),
            )
            .expect("config");
            row(&format!("particast s{seed}"), &m, train_s, forecast_s);
            runs.push((
                seed,
                m,
                train_s,
                forecast_s,
                config["recipe"].clone(),
                calibrated,
            ));
        }
        if runs.is_empty() {
            continue;
        }
        let stat = |f: &dyn Fn(&Metrics) -> f64| {
            common::mean_sd(&runs.iter().map(|r| f(&r.1)).collect::<Vec<_>>())
        };
        let (smape, smape_sd) = stat(&|m| m.smape);
        let (mape, _) = stat(&|m| m.mape);
        let (mase, mase_sd) = stat(&|m| m.mase);
        let (msis, _) = stat(&|m| m.msis);
        let (c95, _) = stat(&cov95);
        let train_s = runs.iter().map(|r| r.2).sum::<f64>() / runs.len() as f64;
        let forecast_s = runs.iter().map(|r| r.3).sum::<f64>() / runs.len() as f64;
        println!(
            "{:<18} {:<16} {:>7.3} {:>7.3} {:>7.3} {:>8.3} {:>6.3} {:>8.1} {:>7.1}   (sd sMAPE {smape_sd:.3}, MASE {mase_sd:.3})",
            set.name, "particast mean", smape, mape, mase, msis, c95, train_s, forecast_s
        );
        let calibrated: Vec<&Metrics> = runs.iter().filter_map(|r| r.5.as_ref()).collect();
        let calibrated_mean = (!calibrated.is_empty()).then(|| {
            let stat = |f: &dyn Fn(&Metrics) -> f64| {
                common::mean_sd(&calibrated.iter().map(|m| f(m)).collect::<Vec<_>>()).0
            };
            let (msis, c95) = (stat(&|m| m.msis), stat(&cov95));
            let c80 = stat(&|m| m.coverage.first().map_or(f64::NAN, |c| c.1));
            let raw80 = common::mean_sd(
                &runs
                    .iter()
                    .map(|r| r.1.coverage.first().map_or(f64::NAN, |c| c.1))
                    .collect::<Vec<_>>(),
            )
            .0;
            println!(
                "{:<18} {:<16} MSIS {msis:.3} (raw {:.3}), coverage 80% {c80:.3} (raw {raw80:.3}), 95% {c95:.3} (raw {:.3})",
                set.name, "calibrated mean", stat_raw_msis(&runs), c95_raw(&runs)
            );
            serde_json::json!({"msis": msis, "coverage80": c80, "coverage95": c95,
                "raw_msis": stat_raw_msis(&runs), "raw_coverage80": raw80, "raw_coverage95": c95_raw(&runs)})
        });
        out.push(serde_json::json!({
            "set": set.name,
            "calibrated": calibrated_mean,
            "h": set.h,
            "season": set.m,
            "series": train.series.len(),
            "particast": {
                "smape": smape, "smape_sd": smape_sd, "mape": mape, "mase": mase,
                "mase_sd": mase_sd, "msis": msis, "coverage95": c95,
                "train_seconds": train_s, "forecast_seconds": forecast_s,
                "runs": runs.iter().map(|r| serde_json::json!({
                    "seed": r.0, "metrics": metrics_json(&r.1),
                    "train_seconds": r.2, "forecast_seconds": r.3, "recipe": r.4,
                    "calibrated": r.5.as_ref().map(metrics_json),
                })).collect::<Vec<_>>(),
            },
            "seasonal_naive": metrics_json(&sn),
            "reference": reference.as_ref().map(|(k, m)| serde_json::json!({"method": k, "metrics": metrics_json(m)})),
        }));
    }
    let total = started.elapsed().as_secs_f64();
    println!("total wall time {total:.0} s");
    common::write_results(
        &results,
        &serde_json::json!({
            "command": command,
            "seeds": seeds,
            "levels": LEVELS,
            "wall_seconds": total,
            "sets": out,
        }),
    );
}
