//! End-to-end tests of the `particast` binary: every command, and the failure paths (exit code 2,
//! a one-line message naming the problem, no partial output left behind).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn particast() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_particast"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> Output {
    particast().args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Exit code 2 and a first stderr line starting with `error:` that contains `needle`.
fn bad_input(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{stderr}");
    assert!(first.contains(needle), "expected `{needle}` in: {stderr}");
}

const TAXI: &str = "data/nab/realKnownCause/nyc_taxi.csv";
const TAXI_ARGS: [&str; 6] = [
    "--id-from-path",
    "--time-col",
    "timestamp",
    "--target-col",
    "value",
    "--lags",
];

fn taxi_input(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["--input".into(), TAXI.into()];
    v.extend(TAXI_ARGS.iter().map(|s| s.to_string()));
    v.push("48,336".into());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn train_small(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    let mut args = vec!["train".to_string()];
    args.extend(taxi_input(&[
        "--model",
        model.to_str().unwrap(),
        "--hidden",
        "16",
        "--particles",
        "4",
        "--context",
        "96",
        "--horizon",
        "48",
        "--epochs",
        "2",
        // No log transform: particle-mode forecasts then carry the mixture columns.
        "--transform",
        "none",
    ]));
    let out = particast().args(&args).output().unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("trained"), "{stdout}");
    model
}

#[test]
fn ingest_demo_reads_the_bundled_nab_files() {
    let out = run(&[
        "ingest",
        "--input",
        "data/nab/*/*.csv",
        "--id-from-path",
        "--time-col",
        "timestamp",
        "--target-col",
        "value",
        "--context",
        "336",
        "--horizon",
        "48",
    ]);
    let stdout = ok(&out);
    assert!(stdout.contains("realKnownCause/nyc_taxi.csv"), "{stdout}");
    assert!(stdout.contains("18384 rows, 3 series"), "{stdout}");
}

#[test]
fn train_inspect_score_forecast_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small(dir.path());
    let m = model.to_str().unwrap();
    let stdout = ok(&run(&["inspect", m]));
    assert!(
        stdout.contains("4 particles") && stdout.contains("lags 1, 48, 336"),
        "{stdout}"
    );
    // Words a user types, not Rust debug values.
    for debug in ["Gru", "Datetime {", "MeanAbs", "None", "Some("] {
        assert!(!stdout.contains(debug), "`{debug}` in\n{stdout}");
    }
    assert!(
        stdout.contains("gru cell") && stdout.contains("--lags 48,336"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["inspect", m, "--json"]).stdout).unwrap();
    assert_eq!(json["model"]["particles"], 4, "{json}");
    assert!(json["parameters"].as_u64().unwrap() > 0);

    let scores = dir.path().join("scores.parquet");
    let state = dir.path().join("state.parquet");
    let mut args = vec!["score".to_string()];
    args.extend(taxi_input(&[
        "--model",
        m,
        "--output",
        scores.to_str().unwrap(),
        "--state-out",
        state.to_str().unwrap(),
    ]));
    let stdout = ok(&particast().args(&args).output().unwrap());
    assert!(stdout.contains("scored     10320 observations"), "{stdout}");
    assert!(scores.exists() && state.exists());

    // 24 steps ahead with one model, or with the ensemble of `models`.
    let forecast = |models: &[&str], out: &Path| {
        let mut args = vec!["forecast".to_string()];
        let mut rest: Vec<&str> = models.iter().flat_map(|m| ["--model", *m]).collect();
        // Particle mode writes the mixture columns checked below (sample mode is the default).
        rest.extend(["--horizon", "24", "--mode", "particle"]);
        rest.extend(["--output", out.to_str().unwrap()]);
        args.extend(taxi_input(&rest));
        ok(&particast().args(&args).output().unwrap())
    };
    let fc = dir.path().join("forecast.parquet");
    forecast(&[m], &fc);
    // The same model twice is an ensemble of two (mixture columns of both).
    let ens = dir.path().join("ensemble.parquet");
    let stdout = forecast(&[m, m], &ens);
    assert!(stdout.contains("ensemble of 2 models"), "{stdout}");
    use particast::polars::prelude::SerReader;
    let cols = particast::polars::prelude::ParquetReader::new(std::fs::File::open(&ens).unwrap())
        .finish()
        .unwrap()
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>();
    assert!(cols.iter().any(|c| c == "particast-weight-7"), "{cols:?}");

    // NAB's scoring of the scores file (one series, five labelled windows).
    let stdout = ok(&run(&[
        "nab",
        "--scores",
        scores.to_str().unwrap(),
        "--labels",
        "data/nab/labels/combined_windows.json",
        "--json",
    ]));
    assert!(
        stdout.contains("\"reward_low_FN_rate\"") && stdout.contains("\"windows\": 5"),
        "{stdout}"
    );

    let fan = dir.path().join("fan.svg");
    let view = dir.path().join("view.png");
    let mut args = vec!["plot".to_string()];
    args.extend(taxi_input(&[
        "--model",
        m,
        "--forecast",
        fan.to_str().unwrap(),
        "--anomaly",
        view.to_str().unwrap(),
        "--labels",
        "data/nab/labels/combined_windows.json",
    ]));
    ok(&particast().args(&args).output().unwrap());
    let svg = std::fs::read_to_string(&fan).unwrap();
    assert!(svg.contains("<svg"));
    let texts = svg_texts(&svg);
    assert_eq!(&std::fs::read(&view).unwrap()[1..4], b"PNG");
    // The fan chart's headline names the series and what is drawn; the legend names every
    // kind of mark; date ticks are whole days for a span of days.
    for want in [
        "nyc_taxi.csv: forecast of 48 steps, median with 80% and 95% intervals",
        "history",
        "median",
        "80% interval",
        "95% interval",
        "particle means",
    ] {
        assert!(texts.iter().any(|t| t == want), "`{want}` not in {texts:?}");
    }
    let ticks: Vec<&String> = texts.iter().filter(|t| t.starts_with("2015-")).collect();
    assert!(
        !ticks.is_empty() && ticks.iter().all(|t| t.len() == 10),
        "date ticks should be whole days: {ticks:?}"
    );
    // The anomaly view labels its threshold line.
    let view_svg = dir.path().join("view.svg");
    let mut args = vec!["plot".to_string()];
    args.extend(taxi_input(&[
        "--model",
        m,
        "--anomaly",
        view_svg.to_str().unwrap(),
        "--labels",
        "data/nab/labels/combined_windows.json",
        "--threshold",
        "0.95",
    ]));
    ok(&particast().args(&args).output().unwrap());
    let texts = svg_texts(&std::fs::read_to_string(&view_svg).unwrap());
    for want in [
        "flag threshold 0.95",
        "anomaly score",
        "observed",
        "flagged",
    ] {
        assert!(texts.iter().any(|t| t == want), "`{want}` not in {texts:?}");
    }
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("nyc_taxi.csv: observations (")
                && t.ends_with(
                    "flagged at anomaly score &gt;= 0.95; shaded: labelled anomaly windows)"
                )),
        "{texts:?}"
    );
    let ticks: Vec<&String> = texts.iter().filter(|t| t.starts_with("2014-")).collect();
    assert!(
        !ticks.is_empty() && ticks.iter().all(|t| t.len() == 7),
        "date ticks should be whole months: {ticks:?}"
    );

    // Evaluating the forecast against the input itself: no timestamps overlap the future, so
    // every actual is unknown and the table says so with zero observations.
    let out = run(&[
        "evaluate",
        "--forecast",
        fc.to_str().unwrap(),
        "--actuals",
        TAXI,
        "--id-from-path",
        "--time-col",
        "timestamp",
        "--target-col",
        "value",
        "--season",
        "48",
        "--json",
    ]);
    let stdout = ok(&out);
    assert!(stdout.contains("\"observations\": 0"), "{stdout}");
}

/// The text of every `<text>` element of an SVG picture.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[test]
fn pipeline_files_run_and_reject_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = dir.path().join("small.toml");
    std::fs::write(
        &spec,
        format!(
            "output_dir = \"out\"\n[input]\npath = \"{}\"\nid_from_path = true\ntime_col = \"timestamp\"\ntarget_cols = [\"value\"]\nlags = [48]\n\
             [train]\nholdout = 48\nhidden = 8\nparticles = 2\ncontext = 48\nhorizon = 48\nepochs = 1\nbatches_per_epoch = 5\n\
             [score]\n[forecast]\nhorizon = 48\n[evaluate]\nseason = 48\n",
            root.join(TAXI).display()
        ),
    )
    .unwrap();
    let stdout = ok(&run(&["run", spec.to_str().unwrap()]));
    assert!(
        stdout.contains("sMAPE") && stdout.contains("coverage 95%"),
        "{stdout}"
    );
    for f in [
        "out/model/model.safetensors",
        "out/model/config.json",
        "out/scores.parquet",
        "out/forecast.parquet",
        "out/metrics.json",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("hidden = 8", "hiden = 8"),
    )
    .unwrap();
    bad_input(&run(&["run", bad.to_str().unwrap()]), "hiden");
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("hidden = 8", "hidden = \"eight\""),
    )
    .unwrap();
    bad_input(&run(&["run", wrong.to_str().unwrap()]), "invalid type");
}

#[test]
fn failures_exit_2_with_one_line_and_leave_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    // Missing file.
    bad_input(
        &run(&["ingest", "--input", "no/such/file.csv"]),
        "no/such/file.csv",
    );
    // Wrong column name.
    bad_input(
        &run(&[
            "ingest",
            "--input",
            TAXI,
            "--id-from-path",
            "--time-col",
            "when",
        ]),
        "missing column `when`",
    );
    // Model / data mismatch: a model for one target applied to two.
    let model = train_small(dir.path());
    let two = dir.path().join("two.csv");
    std::fs::write(&two, "timestamp,a,b\n2015-01-01 00:00:00,1,2\n2015-01-01 00:30:00,3,4\n2015-01-01 01:00:00,5,6\n").unwrap();
    let out_file = dir.path().join("scores.parquet");
    std::fs::write(&out_file, b"previous output").unwrap();
    let out = run(&[
        "score",
        "--input",
        two.to_str().unwrap(),
        "--id-from-path",
        "--time-col",
        "timestamp",
        "--target-col",
        "a",
        "--target-col",
        "b",
        "--model",
        model.to_str().unwrap(),
        "--output",
        out_file.to_str().unwrap(),
    ]);
    bad_input(&out, "trained on 1 target(s)");
    assert_eq!(
        std::fs::read(&out_file).unwrap(),
        b"previous output",
        "the existing output is untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A model folder that is not one.
    bad_input(
        &run(&["inspect", dir.path().to_str().unwrap()]),
        "config.json",
    );
}

#[test]
fn help_lists_examples() {
    for cmd in [
        "ingest", "run", "train", "score", "forecast", "evaluate", "inspect",
    ] {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{cmd}"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    let out = run(&["train", "--input", TAXI]);
    assert_eq!(out.status.code(), Some(2));
}

/// Kill -9 during training, at several moments, then resume: every file left behind loads, and
/// the resumed model is bit-for-bit the one an uninterrupted run writes (training is
/// deterministic and a checkpoint holds the weights, the Adam moments and the progress in one
/// atomically written file).
#[test]
fn kill_9_during_training_then_resume_gives_the_uninterrupted_model() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("train.toml");
    std::fs::write(
        &cfg,
        "batches_per_epoch = 25\nbatch_size = 32\npatience = 100\nlr_patience = 100\n",
    )
    .unwrap();
    let args = |model: &Path, resume: bool| {
        let mut v = vec!["train".to_string(), "-q".into()];
        v.extend(taxi_input(&[
            "--model",
            model.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--hidden",
            "16",
            "--particles",
            "4",
            "--context",
            "96",
            "--horizon",
            "48",
            "--epochs",
            "5",
        ]));
        if resume {
            v.push("--resume".into());
        }
        v
    };
    let straight = dir.path().join("straight");
    let t0 = std::time::Instant::now();
    ok(&particast().args(args(&straight, false)).output().unwrap());
    let full = t0.elapsed();
    let want = std::fs::read(straight.join("model.safetensors")).unwrap();

    // Kill at a spread of moments over the run: before the first checkpoint, mid-epoch, during
    // writes, near the end.
    for (k, frac) in [0.1, 0.3, 0.5, 0.7, 0.9].into_iter().enumerate() {
        let model = dir.path().join(format!("killed{k}"));
        let mut child = particast().args(args(&model, false)).spawn().unwrap();
        std::thread::sleep(full.mul_f64(frac));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever is there is whole: a model that loads, a checkpoint that resumes.
        if model.join("config.json").exists() {
            particast::pipeline::TrainedModel::load(&model).unwrap();
        }
        let out = particast().args(args(&model, true)).output().unwrap();
        ok(&out);
        assert_eq!(
            std::fs::read(model.join("model.safetensors")).unwrap(),
            want,
            "killed at {frac} of the run, then resumed: not the uninterrupted model"
        );
        let stray: Vec<_> = std::fs::read_dir(&model)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty(), "temporary files left: {stray:?}");
    }
}

#[test]
fn a_model_trained_with_ids_from_paths_scores_a_long_table_by_its_id_column() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small(dir.path());
    // Two series of the taxi file in one long table with an id column.
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(TAXI)).unwrap();
    let mut long = String::from("unique_id,timestamp,value\n");
    for id in ["a", "b"] {
        for line in text.lines().skip(1).take(600) {
            long.push_str(&format!("{id},{line}\n"));
        }
    }
    let input = dir.path().join("long.csv");
    std::fs::write(&input, long).unwrap();
    let out = dir.path().join("scores.csv.parquet");
    let (i, m, o) = (
        input.to_str().unwrap(),
        model.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    // Without --id-col the model's ids from paths make one series of both: refused.
    bad_input(
        &run(&["score", "--input", i, "--model", m, "--output", o]),
        "not sorted",
    );
    let stdout = ok(&run(&[
        "score",
        "--input",
        i,
        "--id-col",
        "unique_id",
        "--model",
        m,
        "--output",
        o,
    ]));
    assert!(stdout.contains("1200 observations of 2 series"), "{stdout}");
}

/// Two hourly series whose level follows a `promo` flag; `rows` steps of history and the next
/// `future` steps of the flag alone (the future frame).
fn promo_data(dir: &Path, rows: usize, future: usize) -> (PathBuf, PathBuf) {
    use std::fmt::Write as _;
    let flag = |i: usize, t: usize| u8::from((t * 7 + i * 3) % 11 < 3);
    let ts = |t: usize| format!("2024-01-{:02} {:02}:00:00", 1 + t / 24, t % 24);
    let (mut hist, mut fut) = (
        String::from("unique_id,ds,y,promo\n"),
        String::from("unique_id,ds,promo\n"),
    );
    for i in 0..2 {
        for t in 0..rows + future {
            let y = 10.0 + 3.0 * ((t % 24) as f64 / 4.0).sin() + 5.0 * f64::from(flag(i, t));
            if t < rows {
                writeln!(hist, "s{i},{},{y},{}", ts(t), flag(i, t)).unwrap();
            } else {
                writeln!(fut, "s{i},{},{}", ts(t), flag(i, t)).unwrap();
            }
        }
    }
    let (h, f) = (dir.join("promo.csv"), dir.join("promo-future.csv"));
    std::fs::write(&h, hist).unwrap();
    std::fs::write(&f, fut).unwrap();
    (h, f)
}

#[test]
fn future_covariates_backtests_calibration_and_state_forecasts() {
    let tmp = tempfile::tempdir().unwrap();
    let (hist, fut) = promo_data(tmp.path(), 360, 12);
    let (hist, fut) = (hist.to_str().unwrap(), fut.to_str().unwrap());
    let model = tmp.path().join("m");
    let m = model.to_str().unwrap();
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let small = [
        "--hidden",
        "8",
        "--particles",
        "2",
        "--context",
        "48",
        "--horizon",
        "12",
        "--epochs",
        "2",
        "--batches-per-epoch",
        "4",
        "-q",
    ];
    // A backtest trains the model (on each series before its first cutoff) and calibrates it.
    let mut args = vec![
        "cv",
        "--input",
        hist,
        "--futr-exog",
        "promo",
        "--model",
        m,
        "--n-windows",
        "4",
        "--eval-season",
        "24",
        "--calibrate",
    ];
    let (cv, metrics) = (p("cv.parquet"), p("cv.json"));
    args.extend(["--output", &cv, "--metrics", &metrics]);
    args.extend(small);
    ok(&run(&args));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert_eq!(report["windows"].as_array().unwrap().len(), 4);
    assert!(report["calibration_holdout"]["calibrated"]["msis"].is_number());
    assert!(model.join("calibration.json").is_file());
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&cv).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 2 * 4 * 12);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(&names[..4], &["unique_id", "ds", "cutoff", "y"]);
    // Without the future frame: refused, naming the covariate; with it: forecasts.
    let fc = p("f.parquet");
    let base = [
        "forecast",
        "--input",
        hist,
        "--model",
        m,
        "--horizon",
        "12",
        "--output",
    ];
    let mut a = base.to_vec();
    a.push(&fc);
    bad_input(&run(&a), "future covariates [promo]");
    assert!(!Path::new(&fc).exists());
    let mut a = base.to_vec();
    a.extend([fc.as_str(), "--future", fut, "-q"]);
    ok(&run(&a));
    let mut a = base.to_vec();
    let cal = p("cal.parquet");
    a.extend([cal.as_str(), "--future", fut, "--calibrated", "-q"]);
    ok(&run(&a));
    // The fan chart of such a model needs the future frame too.
    let fan = p("fan.svg");
    let plot = [
        "plot",
        "--input",
        hist,
        "--model",
        m,
        "--series",
        "s0",
        "--forecast",
        &fan,
    ];
    let mut a = plot.to_vec();
    a.extend(["--horizon", "12"]);
    bad_input(&run(&a), "future covariates [promo]");
    a.extend(["--future", fut, "-q"]);
    ok(&run(&a));
    assert!(std::fs::read_to_string(&fan).unwrap().contains("<svg"));
    // A future frame a step short names the series and the steps it has.
    let text = std::fs::read_to_string(fut).unwrap();
    let short: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("2024-01-16 11:00"))
        .collect();
    let short_path = p("short.csv");
    std::fs::write(&short_path, short.join("\n") + "\n").unwrap();
    let mut a = base.to_vec();
    let f2 = p("f2.parquet");
    a.extend([f2.as_str(), "--future", &short_path]);
    bad_input(&run(&a), "has rows for 11 of the 12 steps");
    // Scored with a state file, then forecast from the state alone: the same file.
    let (scores, state) = (p("s.parquet"), p("state.parquet"));
    ok(&run(&[
        "score",
        "--input",
        hist,
        "--model",
        m,
        "--output",
        &scores,
        "--state-out",
        &state,
        "-q",
    ]));
    let from_state = p("fs.parquet");
    ok(&run(&[
        "forecast",
        "--model",
        m,
        "--state-in",
        &state,
        "--horizon",
        "12",
        "--future",
        fut,
        "--output",
        &from_state,
        "-q",
    ]));
    assert_eq!(
        std::fs::read(&from_state).unwrap(),
        std::fs::read(&fc).unwrap(),
        "forecast from the state differs from the forecast from the history"
    );
    // Without --input or --state-in: a usage error.
    bad_input(
        &run(&[
            "forecast",
            "--model",
            m,
            "--horizon",
            "12",
            "--output",
            &p("x.parquet"),
        ]),
        "--input FILE is required",
    );
}

#[test]
fn pipeline_files_backtest_and_forecast_from_states() {
    let tmp = tempfile::tempdir().unwrap();
    let (hist, fut) = promo_data(tmp.path(), 360, 12);
    let spec = format!(
        r#"
output_dir = "out"
[input]
path = "{hist}"
futr_exog = ["promo"]
[train]
hidden = 8
particles = 2
context = 48
horizon = 12
epochs = 2
batches_per_epoch = 4
[score]
state = "out/state.parquet"
[cv]
n_windows = 3
season = 24
calibrate = true
"#,
        hist = hist.display()
    );
    let file = tmp.path().join("p.toml");
    std::fs::write(&file, spec).unwrap();
    let out = ok(&run(&["run", file.to_str().unwrap()]));
    assert!(
        out.contains("cv         2 series x 3 windows x 12 steps"),
        "{out}"
    );
    let dir = tmp.path().join("out");
    for f in [
        "cv.parquet",
        "cv.json",
        "cv-model/calibration.json",
        "state.parquet",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // A second file forecasts the scored series from their states, with the future frame.
    let spec = format!(
        r#"
output_dir = "out"
[input]
path = "{hist}"
futr_exog = ["promo"]
[forecast]
horizon = 12
state_in = "out/state.parquet"
future = "{fut}"
output = "out/from-state.parquet"
"#,
        hist = hist.display(),
        fut = fut.display()
    );
    let file = tmp.path().join("f.toml");
    std::fs::write(&file, spec).unwrap();
    ok(&run(&["run", file.to_str().unwrap()]));
    // The same as `particast forecast` from the whole history.
    let direct = dir.join("direct.parquet");
    ok(&run(&[
        "forecast",
        "--input",
        hist.to_str().unwrap(),
        "--model",
        dir.join("model").to_str().unwrap(),
        "--horizon",
        "12",
        "--future",
        fut.to_str().unwrap(),
        "--output",
        direct.to_str().unwrap(),
        "-q",
    ]));
    assert_eq!(
        std::fs::read(dir.join("from-state.parquet")).unwrap(),
        std::fs::read(&direct).unwrap()
    );
}
