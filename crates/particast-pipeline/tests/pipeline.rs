//! End-to-end on bundled real data (NAB's nyc_taxi, 30-minute taxi demand): train a small model,
//! score, forecast, evaluate; plus the model directory's failure modes and the M4 scorer check.

use particast_ingest::{Dataset, IngestOptions, PreparedSeries, Source};
use particast_pipeline::metrics::{evaluate, EvalSeries};
use particast_pipeline::output::{forecast_batch, scores_batch, to_dataframe};
use particast_pipeline::sink::write_parquet;
use particast_pipeline::*;
use std::path::PathBuf;

fn taxi() -> (Dataset, IngestOptions) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/nab/realKnownCause/nyc_taxi.csv");
    let opts = IngestOptions {
        id_from_path: true,
        time_col: "timestamp".into(),
        target_cols: vec!["value".into()],
        lags: vec![48, 336],
        ..Default::default()
    };
    (Dataset::read(Source::path(path), &opts).unwrap(), opts)
}

fn small_config() -> TrainConfig {
    TrainConfig {
        hidden: Some(24),
        particles: 4,
        context: Some(96),
        horizon: 48,
        batch_size: Some(32),
        batches_per_epoch: Some(30),
        epochs: Some(12),
        patience: 4,
        lr: 5e-3,
        seed: 7,
        ..TrainConfig::classic()
    }
}

/// Holds out the last `h` steps of every series.
fn split(data: &Dataset, h: usize) -> (Dataset, Vec<PreparedSeries>) {
    let mut train = data.clone();
    train.series = data.series.iter().map(|s| s.head(s.len() - h)).collect();
    (train, data.series.clone())
}

#[test]
fn train_score_forecast_evaluate_on_nyc_taxi() {
    let (data, opts) = taxi();
    let (train_data, full) = split(&data, 48);
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("model");
    let cfg = small_config();
    let model = train(&train_data, &opts, &cfg, &model_dir, false, &mut Silent).unwrap();
    let summary = model.meta.training.clone().unwrap();
    assert!(summary.best_val_nll.unwrap().is_finite());
    assert!(summary.epochs >= 1 && summary.parameters > 0);
    assert!(
        summary.effective_particles > 0.99 && summary.effective_particles <= 4.0 + 1e-4,
        "{}",
        summary.effective_particles
    );

    // The directory round-trips.
    let loaded = TrainedModel::load(&model_dir).unwrap();
    assert_eq!(loaded.model.params, model.model.params);
    loaded.check_schema(&data.schema).unwrap();
    let mut three = data.schema.clone();
    three.target_cols = vec!["a".into(), "b".into(), "c".into()];
    let e = loaded.check_schema(&three).unwrap_err();
    assert!(e.to_string().contains("trained on 1 target(s)"), "{e}");

    // Forecast the held-out day.
    let fc = ForecastConfig {
        horizon: 48,
        mode: Mode::Particle,
        ..Default::default()
    };
    let forecasts = forecast_series(&loaded, &train_data.series, &fc).unwrap();
    let f = &forecasts[0];
    assert_eq!(f.steps.len(), 48);
    let s_full = &full[0];
    let origin = train_data.series[0].len();
    for (k, st) in f.steps.iter().enumerate() {
        assert_eq!(
            st.ds,
            s_full.timestamp((origin + k) as i64),
            "timestamps continue the series"
        );
        let w: f64 = st.mixture.iter().map(|c| c.weight).sum();
        assert!((w - 1.0).abs() < 1e-5, "weights sum to 1: {w}");
        let (lo80, hi80) = st.intervals[0];
        let (lo95, hi95) = st.intervals[1];
        assert!(
            lo95 <= lo80 && lo80 <= st.median && st.median <= hi80 && hi80 <= hi95,
            "monotone quantiles"
        );
    }
    let batch = forecast_batch(&forecasts, &fc.levels, fc.mode, 4, false).unwrap();
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for want in [
        "unique_id",
        "ds",
        "particast",
        "particast-median",
        "particast-lo-80",
        "particast-hi-95",
        "particast-weight-3",
        "particast-mu-0",
        "particast-std-2",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }

    // Beats seasonal naive (yesterday's values) on the held-out day.
    let actual: Vec<f64> = (origin..origin + 48)
        .map(|t| s_full.value(t as i64, 0).unwrap())
        .collect();
    let naive: Vec<f64> = (origin..origin + 48)
        .map(|t| s_full.value(t as i64 - 48, 0).unwrap())
        .collect();
    let median: Vec<f64> = f.steps.iter().map(|s| s.median).collect();
    let mae = |p: &[f64]| {
        p.iter()
            .zip(&actual)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / 48.0
    };
    eprintln!(
        "held-out MAE: model {:.1}, seasonal naive {:.1}",
        mae(&median),
        mae(&naive)
    );
    assert!(
        mae(&median) < mae(&naive),
        "model {} vs seasonal naive {}",
        mae(&median),
        mae(&naive)
    );

    // Evaluate: coverage and CRPS are defined.
    let history: Vec<f64> = (0..origin)
        .map(|t| train_data.series[0].value(t as i64, 0).unwrap_or(f64::NAN))
        .collect();
    let ev = EvalSeries {
        id: f.id.clone(),
        history,
        actual: actual.clone(),
        point: median.clone(),
        mean: f.steps.iter().map(|s| s.mean).collect(),
        intervals: vec![
            (
                80.0,
                f.steps.iter().map(|s| s.intervals[0].0).collect(),
                f.steps.iter().map(|s| s.intervals[0].1).collect(),
            ),
            (
                95.0,
                f.steps.iter().map(|s| s.intervals[1].0).collect(),
                f.steps.iter().map(|s| s.intervals[1].1).collect(),
            ),
        ],
        crps: f
            .steps
            .iter()
            .zip(&actual)
            .map(|(s, y)| mixture::crps_gaussian_mixture(&s.mixture, *y))
            .collect(),
        ..Default::default()
    };
    let m = evaluate(&[ev], 48);
    assert!(m.mase.is_finite() && m.smape.is_finite() && m.crps.is_finite() && m.msis.is_finite());

    // Score the whole series twice: identical bytes.
    let scfg = ScoreConfig::default();
    let write = |name: &str| {
        let scores: Vec<_> = score_series(&loaded, &data.series, &scfg)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let b = scores_batch(&scores, &data.schema).unwrap();
        let mut df = to_dataframe(&b, &data.schema.time_kind).unwrap();
        let p = dir.path().join(name);
        write_parquet(&mut df, &p).unwrap();
        (std::fs::read(p).unwrap(), df)
    };
    let (a, df) = write("a.parquet");
    let (b, _) = write("b.parquet");
    assert_eq!(a, b);
    assert_eq!(df.height(), 10320);
    let pit = df.column("particast-pit").unwrap().f64().unwrap();
    assert!(pit.iter().flatten().all(|p| (0.0..=1.0).contains(&p)));
    let anomaly = df.column("particast-anomaly").unwrap().f64().unwrap();
    assert!(anomaly.iter().flatten().all(|p| (0.0..=1.0).contains(&p)));
}

/// nyc_taxi and a model trained for three batches: enough to exercise scoring paths.
fn quick_taxi_model() -> (Dataset, TrainedModel, tempfile::TempDir) {
    let (data, opts) = taxi();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.epochs = Some(1);
    cfg.batches_per_epoch = Some(3);
    let model = train(&data, &opts, &cfg, dir.path(), false, &mut Silent).unwrap();
    (data, model, dir)
}

#[test]
fn incremental_scoring_matches_one_pass() {
    let (data, model, dir) = quick_taxi_model();
    let taxi = &data.series[0];
    // A stuck sensor across the cut (the stuck rule's run continues from the saved values).
    let mut stuck = taxi.clone();
    let v = stuck.values[5989];
    stuck.values[5990..6020].iter_mut().for_each(|x| *x = v);
    // Refreshing every 48 steps with the cut at 6000 (not a multiple of 48): the block that
    // straddles the cut continues from the saved state.
    for (s, method, suppress, refresh) in [
        (taxi, AnomalyMethod::Tail, 0, 0),
        (taxi, AnomalyMethod::Likelihood, 0, 0),
        (taxi, AnomalyMethod::Likelihood, 12, 0),
        (taxi, AnomalyMethod::Likelihood, 12, 48),
        (taxi, AnomalyMethod::Rank, 12, 0),
        (&stuck, AnomalyMethod::Rank, 0, 0),
        (taxi, AnomalyMethod::Surprise, 0, 0),
        (taxi, AnomalyMethod::Surprise, 12, 48),
    ] {
        let scfg = ScoreConfig {
            smooth: 5,
            chunk: 500,
            method,
            long_window: 300,
            suppress,
            refresh,
            novelty: (method == AnomalyMethod::Surprise).then_some(0.05),
            ..Default::default()
        };
        let (whole, _) = score_series(&model, std::slice::from_ref(s), &scfg)
            .unwrap()
            .remove(0);
        let cut = 6000;
        let (first, state) = score_series(&model, &[s.head(cut)], &scfg)
            .unwrap()
            .remove(0);
        // Through a state file and back.
        let path = dir.path().join("state.parquet");
        save_states(std::slice::from_ref(&state), &path).unwrap();
        let mut state = load_states(&path).unwrap().remove(0);
        check_state(&model, &state).unwrap();
        // The rest of the series as new data.
        let mut rest = s.clone();
        rest.values = s.values[cut..].to_vec();
        rest.mask = s.mask[cut..].to_vec();
        rest.present = s.present[cut..].to_vec();
        rest.axis.start = s.timestamp(cut as i64);
        rest.stats.len = s.len() - cut;
        rest.stats.first_ds = s.timestamp(cut as i64);
        let second = score_continued(&model, &mut state, &rest, &scfg).unwrap();
        let joined: Vec<Option<f64>> = first.nll.iter().chain(second.nll.iter()).copied().collect();
        assert_eq!(joined.len(), whole.nll.len());
        for (t, (a, b)) in joined.iter().zip(&whole.nll).enumerate() {
            let (a, b) = (a.unwrap(), b.unwrap());
            // The same operations in the same order: identical, not merely close.
            assert_eq!(a.to_bits(), b.to_bits(), "{method:?} step {t}: {a} vs {b}");
        }
        let an: Vec<Option<f64>> = first
            .anomaly
            .iter()
            .chain(second.anomaly.iter())
            .copied()
            .collect();
        assert_eq!(an, whole.anomaly, "{method:?}");
        assert!(an.iter().flatten().all(|a| (0.0..=1.0).contains(a)));
        if std::ptr::eq(s, &stuck) {
            // From the third identical value on, flagged on both sides of the cut.
            assert!(
                an[5991..6020].iter().all(|a| a.unwrap() > 0.999),
                "{:?}",
                &an[5988..6020]
            );
        }
    }
}

#[test]
fn resume_continues_from_the_checkpoint() {
    let (data, opts) = taxi();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.epochs = Some(2);
    cfg.batches_per_epoch = Some(4);
    cfg.patience = 10;
    let straight = train(
        &data,
        &opts,
        &cfg,
        &dir.path().join("a"),
        false,
        &mut Silent,
    )
    .unwrap();
    // Interrupted after one epoch, then resumed.
    let mut first = cfg.clone();
    first.epochs = Some(1);
    let b = dir.path().join("b");
    train(&data, &opts, &first, &b, false, &mut Silent).unwrap();
    let resumed = train(&data, &opts, &cfg, &b, true, &mut Silent).unwrap();
    let summary = resumed.meta.training.unwrap();
    assert!(summary.resumed);
    assert_eq!(summary.epochs, 2);
    assert_eq!(
        resumed.model.params, straight.model.params,
        "resume gives the uninterrupted result"
    );
}

#[test]
fn model_directory_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let e = TrainedModel::load(&dir.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains("not a model directory"), "{e}");
    std::fs::write(dir.path().join("config.json"), "{\"format_version\": 99}").unwrap();
    let e = TrainedModel::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("format version 99"), "{e}");
    std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
    let e = TrainedModel::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
}

/// Reads an M4 wide CSV (id, then values) by hand.
fn read_m4(path: &std::path::Path) -> Vec<(String, Vec<f64>)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let mut cells = l.split(',').map(|c| c.trim_matches('"'));
            let id = cells.next().unwrap().to_string();
            (
                id,
                cells
                    .filter(|c| !c.is_empty())
                    .map(|c| c.parse().unwrap())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn the_scorer_reproduces_the_official_m4_hourly_numbers() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/m4-hourly");
    if !base.exists() {
        eprintln!(
            "skipped: {} not found (the M4 data is not bundled)",
            base.display()
        );
        return;
    }
    let train = read_m4(&base.join("Hourly-train.csv"));
    let test = read_m4(&base.join("Hourly-test.csv"));
    for (file, smape, mase) in [
        ("submission-sNaive-hourly.csv", 13.912, 1.193),
        ("submission-Naive2-hourly.csv", 18.383, 2.395),
    ] {
        let fc = read_m4(&base.join(file));
        let series: Vec<EvalSeries> = train
            .iter()
            .zip(&test)
            .zip(&fc)
            .map(|(((id, hist), (_, y)), (_, f))| EvalSeries {
                id: id.clone(),
                history: hist.clone(),
                actual: y.clone(),
                point: f.clone(),
                mean: f.clone(),
                ..Default::default()
            })
            .collect();
        let m = evaluate(&series, 24);
        assert_eq!(m.series, 414);
        assert!((m.smape - smape).abs() < 5e-4, "{file}: sMAPE {}", m.smape);
        assert!((m.mase - mase).abs() < 5e-4, "{file}: MASE {}", m.mase);
    }
}

/// NAB's scorer checked on the official per-timestamp output of the `numenta` detector: it must
/// reproduce the official normalised scores (results/final_results.json) to within 0.1.
#[test]
fn the_nab_scorer_reproduces_the_official_numenta_scores() {
    use particast_pipeline::nab::{score_corpus, NabFile, PROFILES};
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab");
    if !base.exists() {
        eprintln!(
            "skipped: {} not found (the full NAB corpus is not bundled)",
            base.display()
        );
        return;
    }
    let windows: std::collections::HashMap<String, Vec<Vec<String>>> = serde_json::from_str(
        &std::fs::read_to_string(base.join("labels/combined_windows.json")).unwrap(),
    )
    .unwrap();
    let mut files = Vec::new();
    for (name, wins) in &windows {
        let (cat, file) = name.split_once('/').unwrap();
        let path = base
            .join("results/numenta")
            .join(cat)
            .join(format!("numenta_{file}"));
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<(String, f64)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                (c[0].to_string(), c[2].parse().unwrap())
            })
            .collect();
        let index = |ts: &str| {
            let ts = ts.trim_end_matches(".000000");
            rows.iter()
                .position(|(t, _)| t == ts)
                .unwrap_or_else(|| panic!("{name}: {ts} not in the file"))
        };
        files.push(NabFile {
            name: name.clone(),
            scores: rows.iter().map(|r| r.1).collect(),
            windows: wins.iter().map(|w| (index(&w[0]), index(&w[1]))).collect(),
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(files.len(), 58);
    let official: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(base.join("results/final_results.json")).unwrap(),
    )
    .unwrap();
    for p in &PROFILES {
        let r = score_corpus(&files, p);
        let want = official["numenta"][p.name].as_f64().unwrap();
        eprintln!(
            "{}: {:.3} (official {want:.3}), threshold {:.4}",
            p.name, r.normalized, r.threshold
        );
        assert!(
            (r.normalized - want).abs() < 0.1,
            "{}: {} vs official {want}",
            p.name,
            r.normalized
        );
    }
}

/// The config with its wall-clock fields (training time, batches per second) removed: the only
/// parts of a model directory that depend on the machine rather than on the seed and data.
fn config_without_timings(dir: &std::path::Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let t = v["training"].as_object_mut().unwrap();
    t.remove("wall_seconds");
    for e in t["history"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("batches_per_second");
    }
    v
}

#[test]
fn same_seed_same_bytes_with_one_or_two_threads() {
    let (data, opts) = taxi();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.epochs = Some(2);
    cfg.batches_per_epoch = Some(4);
    let pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    // Everything a user gets out: weights, config, scores, both kinds of forecast, as bytes.
    let run = |name: &str, threads: usize| {
        pool(threads).install(|| {
            let d = dir.path().join(name);
            let model = train(&data, &opts, &cfg, &d, false, &mut Silent).unwrap();
            let scores: Vec<_> = score_series(&model, &data.series, &ScoreConfig::default())
                .unwrap()
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            let b = scores_batch(&scores, &data.schema).unwrap();
            let mut df = to_dataframe(&b, &data.schema.time_kind).unwrap();
            write_parquet(&mut df, &d.join("scores.parquet")).unwrap();
            for (mode, file) in [
                (Mode::Particle, "particle.parquet"),
                (Mode::Sample, "sample.parquet"),
            ] {
                let fc = ForecastConfig {
                    horizon: 48,
                    mode,
                    samples: 64,
                    seed: 3,
                    ..Default::default()
                };
                let f = forecast_series(&model, &data.series, &fc).unwrap();
                let b = forecast_batch(&f, &fc.levels, mode, cfg.particles, false).unwrap();
                let mut df = to_dataframe(&b, &data.schema.time_kind).unwrap();
                write_parquet(&mut df, &d.join(file)).unwrap();
            }
            let files = [
                "model.safetensors",
                "scores.parquet",
                "particle.parquet",
                "sample.parquet",
            ];
            let bytes: Vec<Vec<u8>> = files
                .iter()
                .map(|f| std::fs::read(d.join(f)).unwrap())
                .collect();
            (bytes, config_without_timings(&d))
        })
    };
    let a = run("a", 2);
    let b = run("b", 2);
    let c = run("c", 1);
    assert_eq!(a, b, "same seed, same bytes");
    assert_eq!(a, c, "one thread or two: the same bytes");
}

/// Trains `cfg` on `data`, scores every series and forecasts 24 steps; asserts every loss, NLL,
/// PIT, anomaly score and forecast number is finite. Returns the number of scored observations.
fn train_score_forecast_finite(
    name: &str,
    data: &Dataset,
    opts: &IngestOptions,
    cfg: &TrainConfig,
) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let model = train(data, opts, cfg, dir.path(), false, &mut Silent)
        .unwrap_or_else(|e| panic!("{name}: training failed: {e}"));
    let summary = model.meta.training.clone().unwrap();
    for e in &summary.history {
        assert!(e.train_nll.is_finite(), "{name}: train NLL {}", e.train_nll);
        assert!(
            e.val_nll.is_none_or(f64::is_finite),
            "{name}: validation NLL {:?}",
            e.val_nll
        );
    }
    let mut scored = 0;
    for (s, _) in score_series(&model, &data.series, &ScoreConfig::default()).unwrap() {
        for ((nll, pit), a) in s.nll.iter().zip(&s.pit).zip(&s.anomaly) {
            if let Some(v) = nll {
                assert!(v.is_finite(), "{name} {}: NLL {v}", s.id);
                scored += 1;
            }
            assert!(
                pit.is_none_or(|p| (0.0..=1.0).contains(&p)),
                "{name}: PIT {pit:?}"
            );
            assert!(
                a.is_none_or(|p| (0.0..=1.0).contains(&p)),
                "{name}: anomaly {a:?}"
            );
        }
    }
    let fc = ForecastConfig {
        horizon: 24,
        mode: Mode::Particle,
        ..Default::default()
    };
    for f in forecast_series(&model, &data.series, &fc).unwrap() {
        for st in &f.steps {
            assert!(
                st.mean.is_finite()
                    && st.median.is_finite()
                    && st
                        .intervals
                        .iter()
                        .all(|(lo, hi)| lo.is_finite() && hi.is_finite() && lo <= hi),
                "{name} {}: forecast {:?}",
                f.id,
                (st.mean, st.median, &st.intervals)
            );
        }
    }
    scored
}

fn tiny_config() -> TrainConfig {
    TrainConfig {
        hidden: Some(8),
        particles: 4,
        context: Some(48),
        horizon: 24,
        batch_size: Some(16),
        batches_per_epoch: Some(8),
        epochs: Some(2),
        seed: 5,
        ..TrainConfig::classic()
    }
}

#[test]
fn extreme_inputs_keep_finite_losses_nlls_and_forecasts() {
    use particast_ingest::polars::prelude::*;
    let n = 800usize;
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let mut y = Vec::new();
    let mut push = |id: &str, f: &dyn Fn(usize) -> f64| {
        for t in 0..n {
            ids.push(id.to_string());
            ds.push(t as i64);
            y.push(f(t));
        }
    };
    // Around 1e12 with small wiggles (relative changes of 1e-9).
    push("huge", &|t| 1e12 + 1e3 * ((t as f64) * 0.3).sin());
    push("negative-huge", &|t| -1e12 - 5e2 * (t % 7) as f64);
    // A long constant run, one spike, constant again.
    push("constant-then-spike", &|t| if t == 600 { 1e6 } else { 5.0 });
    // Exactly zero throughout, then one value.
    push("zeros-then-one", &|t| if t == 700 { 1.0 } else { 0.0 });
    // Tiny values.
    push("tiny", &|t| 1e-12 * (1.0 + (t % 5) as f64));
    // Near the largest accepted magnitude.
    push("near-limit", &|t| 1e29 * (1.0 + 0.01 * (t % 3) as f64));
    let df = df!("unique_id" => ids, "ds" => ds, "y" => y).unwrap();
    let opts = IngestOptions::default();
    let data = Dataset::read(Source::Frame(df), &opts).unwrap();
    for head in [
        particast_kernels::Head::Gaussian,
        particast_kernels::Head::StudentT,
    ] {
        let cfg = TrainConfig {
            head,
            ..tiny_config()
        };
        let scored = train_score_forecast_finite("extreme", &data, &opts, &cfg);
        assert_eq!(scored, 6 * n);
    }
}

/// The `[score]` table of `pipelines/nab.toml`.
fn nab_score_config() -> ScoreConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/nab.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file: toml::Table = toml::from_str(&text).unwrap();
    file["score"].clone().try_into().unwrap()
}

/// Training on every file of the NAB corpus (one small model per file, on its probation period
/// as NAB allows) and on the whole M4 Hourly training set never gives a non-finite loss, NLL,
/// anomaly score or forecast. Skipped when the workplace data is absent.
#[test]
fn training_on_every_nab_file_and_on_m4_hourly_stays_finite() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if !shared.join("nab/data").exists() || !shared.join("m4-hourly").exists() {
        eprintln!("skipped: {} not found", shared.display());
        return;
    }
    let pattern = shared.join("nab/data/*/*.csv");
    let files: Vec<_> = glob::glob(pattern.to_str().unwrap())
        .unwrap()
        .filter_map(|p| p.ok())
        .collect();
    assert_eq!(files.len(), 58);
    let opts = IngestOptions {
        id_from_path: true,
        time_col: "timestamp".into(),
        target_cols: vec!["value".into()],
        irregular: particast_ingest::Irregular::Sequence,
        sort: true,
        ..Default::default()
    };
    let mut scored = 0;
    for f in &files {
        let data = Dataset::read(Source::path(f), &opts).unwrap();
        // The probation period (first 15%) for training, every row for scoring.
        let mut probation = data.clone();
        probation.series = data
            .series
            .iter()
            .map(|s| s.head(particast_pipeline::nab::probation(s.len()).max(100)))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let model = train(
            &probation,
            &opts,
            &tiny_config(),
            dir.path(),
            false,
            &mut Silent,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // The default anomaly score, and the `[score]` recipe of pipelines/nab.toml as shipped
        // (surprise, novelty, online adaptation with a memory longer than most files).
        let nab = nab_score_config();
        for scfg in [ScoreConfig::default(), nab] {
            for (s, _) in score_series(&model, &data.series, &scfg).unwrap() {
                for (v, a) in s.nll.iter().flatten().zip(s.anomaly.iter().flatten()) {
                    assert!(v.is_finite(), "{}: NLL {v}", f.display());
                    assert!((0.0..=1.0).contains(a), "{}: anomaly {a}", f.display());
                    scored += 1;
                }
            }
        }
    }
    assert_eq!(
        scored,
        2 * 365_558,
        "every NAB row scored with both recipes"
    );

    let m4 = IngestOptions {
        layout: particast_ingest::Layout::Wide,
        lags: vec![24, 168],
        ..Default::default()
    };
    let data = Dataset::read(Source::path(shared.join("m4-hourly/Hourly-train.csv")), &m4).unwrap();
    assert_eq!(data.series.len(), 414);
    let cfg = TrainConfig {
        batches_per_epoch: Some(30),
        ..tiny_config()
    };
    train_score_forecast_finite("M4 Hourly", &data, &m4, &cfg);
}

#[test]
fn suppression_keeps_only_the_onset_of_a_run() {
    let (data, model, _dir) = quick_taxi_model();
    let base = ScoreConfig {
        method: AnomalyMethod::Likelihood,
        smooth: 6,
        ..Default::default()
    };
    let w = 10;
    let plain = &score_series(&model, &data.series, &base).unwrap()[0].0;
    let sup = &score_series(
        &model,
        &data.series,
        &ScoreConfig {
            suppress: w,
            ..base.clone()
        },
    )
    .unwrap()[0]
        .0;
    // Recompute the rule from the plain scores by hand.
    let a: Vec<f64> = plain.anomaly.iter().flatten().copied().collect();
    let b: Vec<f64> = sup.anomaly.iter().flatten().copied().collect();
    assert_eq!(a.len(), b.len());
    let mut zeroed = 0;
    for t in 0..a.len() {
        let onset = a[t.saturating_sub(w)..t].iter().all(|&p| a[t] > p);
        assert_eq!(b[t], if onset { a[t] } else { 0.0 }, "step {t}");
        zeroed += usize::from(!onset);
    }
    assert!(
        zeroed > a.len() / 2,
        "most steps are not onsets: {zeroed} of {}",
        a.len()
    );
}

#[test]
fn the_calm_score_flags_a_stuck_sensor_that_no_single_step_surprise_sees() {
    use particast_ingest::polars::prelude::*;
    // Noise around 10 (a fixed pseudo-random stream); the sensor then sticks at 10, the centre
    // of every forecast, for 48 steps: each value is unsurprising, only their run is not.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut y: Vec<f64> = (0..4000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            10.0 + ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    let train_rows = 3000;
    let (from, to) = (3500, 3548);
    y[from..to].iter_mut().for_each(|v| *v = 10.0);
    let frame = |n: usize| {
        df!(
            "unique_id" => vec!["s"; n],
            "ds" => (0..n as i64).collect::<Vec<_>>(),
            "y" => y[..n].to_vec()
        )
        .unwrap()
    };
    let opts = IngestOptions::default();
    let train_data = Dataset::read(Source::Frame(frame(train_rows)), &opts).unwrap();
    let data = Dataset::read(Source::Frame(frame(y.len())), &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        hidden: Some(8),
        particles: 2,
        context: Some(24),
        horizon: 8,
        ..small_config()
    };
    let model = train(&train_data, &opts, &cfg, dir.path(), false, &mut Silent).unwrap();
    let scores = |calm: usize, stuck: usize| {
        let cfg = ScoreConfig {
            calm,
            stuck,
            ..Default::default()
        };
        score_series(&model, &data.series, &cfg).unwrap()[0]
            .0
            .anomaly
            .iter()
            .map(|a| a.unwrap_or(0.0))
            .collect::<Vec<f64>>()
    };
    assert_eq!(ScoreConfig::default().calm, 6, "on by default");
    assert_eq!(ScoreConfig::default().stuck, 3, "on by default");
    // The calm score alone (the stuck-sensor rule off).
    let (with, without) = (scores(6, 0), scores(0, 0));
    // Never below the method's own score.
    assert!(with.iter().zip(&without).all(|(a, b)| a >= b));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Once a window of 6 is stuck, the calm score dominates and flags (threshold 0.999) the
    // stretch that the surprise alone does not flag at all; elsewhere it adds no flag and
    // little score.
    let flags = |v: &[f64]| v.iter().filter(|&&a| a >= 0.999).count();
    let (inside, inside0) = (mean(&with[from + 6..to]), mean(&without[from + 6..to]));
    let (outside, outside0) = (
        mean(&with[train_rows..from]),
        mean(&without[train_rows..from]),
    );
    assert!(
        inside > 0.99 && inside > inside0 + 0.2,
        "stuck: {inside} vs {inside0}"
    );
    assert!(flags(&with[from..to]) >= 36, "{:?}", &with[from..to]);
    assert_eq!(flags(&without[from..to]), 0);
    assert_eq!(
        flags(&with[train_rows..from]),
        flags(&without[train_rows..from])
    );
    assert!(
        outside < outside0 + 0.1,
        "elsewhere {outside} vs {outside0}"
    );
    // The stuck-sensor rule alone: from the third identical value on, every row of the stretch
    // is flagged (this noise never repeats a value), and nothing else is.
    let stuck = scores(0, 3);
    assert!(stuck.iter().zip(&without).all(|(a, b)| a >= b));
    assert_eq!(
        flags(&stuck[from + 2..to]),
        to - from - 2,
        "{:?}",
        &stuck[from..to]
    );
    assert!(
        stuck[from + 2..to].windows(2).all(|w| w[1] > w[0]),
        "longer runs rank higher: {:?}",
        &stuck[from..to]
    );
    assert_eq!(
        flags(&stuck[train_rows..from]),
        flags(&without[train_rows..from])
    );
    assert_eq!(stuck[train_rows..from], without[train_rows..from]);
}

#[test]
fn seasonal_change_target_forecasts_scores_and_rolls_its_own_seasons() {
    // nyc_taxi has a daily cycle of 48 half-hours; lag 48 is an input lag, so it can be the
    // target's season.
    let (data, opts) = taxi();
    let (train_data, full) = split(&data, 48);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.target = Some(Target::SeasonalChange { season: 48 });
    let model = train(&train_data, &opts, &cfg, dir.path(), false, &mut Silent).unwrap();
    assert_eq!(
        TrainedModel::load(dir.path()).unwrap().meta.inputs.target,
        cfg.target.unwrap()
    );

    // A season that is not an input lag is added to the lags.
    let mut other = cfg.clone();
    other.target = Some(Target::SeasonalChange { season: 24 });
    other.epochs = Some(1);
    let m24 = train(
        &train_data,
        &opts,
        &other,
        &dir.path().join("s24"),
        false,
        &mut Silent,
    )
    .unwrap();
    assert!(m24.meta.inputs.features.lags.contains(&24));

    // Lags 1, 48 and 336 enter as seasonal changes (so 49, 96 and 384 are read too).
    assert_eq!(
        model.meta.inputs.lag_inputs,
        LagInputs::SeasonalChange {
            lags: vec![1, 48, 336]
        }
    );
    assert_eq!(
        model.meta.inputs.features.lags,
        vec![1, 48, 336, 49, 96, 384]
    );
    // A config whose lag inputs name a lag the windows do not hold is refused on loading.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::copy(
        dir.path().join("model.safetensors"),
        damaged.join("model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    let lag_inputs = serde_json::to_string(&config["inputs"]["lag_inputs"]).unwrap();
    assert_eq!(
        lag_inputs,
        r#"{"kind":"seasonal_change","lags":[1,48,336]}"#
    );
    config["inputs"]["lag_inputs"]["lags"] = serde_json::json!([1, 48, 7]);
    std::fs::write(damaged.join("config.json"), config.to_string()).unwrap();
    let e = TrainedModel::load(&damaged).unwrap_err().to_string();
    assert!(e.contains("lag input 7 needs lags 7 and 7 + 48"), "{e}");

    // Scoring: the first season has no reference, so no target and no NLL; the rest is scored.
    let s = &data.series[0];
    let (scores, _) = score_series(&model, std::slice::from_ref(s), &ScoreConfig::default())
        .unwrap()
        .remove(0);
    assert!(scores.nll[..48].iter().all(|v| v.is_none()));
    let scored: Vec<f64> = scores.nll[48..].iter().flatten().copied().collect();
    assert!(scored.len() > s.len() - 48 - 100 && scored.iter().all(|v| v.is_finite()));
    assert!(scores.pit.iter().flatten().all(|p| (0.0..=1.0).contains(p)));

    // Forecasting the held-out day: better than seasonal naive, in both modes.
    let origin = train_data.series[0].len();
    let s_full = &full[0];
    let actual: Vec<f64> = (origin..origin + 48)
        .map(|t| s_full.value(t as i64, 0).unwrap())
        .collect();
    let mae = |p: &[f64]| {
        p.iter()
            .zip(&actual)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / p.len() as f64
    };
    let naive: Vec<f64> = (origin..origin + 48)
        .map(|t| s_full.value(t as i64 - 48, 0).unwrap())
        .collect();
    for mode in [Mode::Particle, Mode::Sample] {
        let fc = ForecastConfig {
            horizon: 48,
            mode,
            seed: 3,
            ..Default::default()
        };
        let f = forecast_series(&model, &train_data.series, &fc)
            .unwrap()
            .remove(0);
        let median: Vec<f64> = f.steps.iter().map(|s| s.median).collect();
        eprintln!(
            "{mode:?}: held-out MAE model {:.1}, seasonal naive {:.1}",
            mae(&median),
            mae(&naive)
        );
        assert!(mae(&median) < mae(&naive), "{mode:?}");
    }

    // Scoring that refreshes at the forecast origin conditions fresh particles on the same
    // `context` steps with the same scale as the forecast: its NLL of the first held-out value
    // is that of the one-step forecast mixture (forecast inputs built along the rollout,
    // scoring inputs from windows: the same numbers).
    let origin_i = origin;
    assert_eq!(origin_i % 48, 0);
    let refreshed = ScoreConfig {
        refresh: 48,
        ..Default::default()
    };
    let (scores, _) = score_series(&model, std::slice::from_ref(s), &refreshed)
        .unwrap()
        .remove(0);
    // Uncensored particle-mode forecasts (the mean of a mixture censored at 0 is not its centre).
    let uncensored = |m: &TrainedModel, horizon: usize| {
        let fc = ForecastConfig {
            horizon,
            nonnegative: Nonnegative::Never,
            mode: Mode::Particle,
            ..Default::default()
        };
        forecast_series(m, &train_data.series, &fc)
            .unwrap()
            .remove(0)
    };
    let f = uncensored(&model, 1);
    let y = actual[0];
    let nll_fc = -particast_pipeline::mixture::pdf(&f.steps[0].mixture, y).ln();
    let nll_sc = scores.nll[origin_i].unwrap();
    assert!(
        (nll_fc - nll_sc).abs() < 1e-4 * nll_sc.abs().max(1.0),
        "{nll_fc} vs {nll_sc}"
    );

    // With the head's means zeroed the network predicts no change: the particle forecast is
    // seasonal naive exactly, and past one season it repeats its own first season.
    let mut flat = model.clone();
    let (w, h, dims) = (
        flat.model.config.head_width(),
        flat.model.config.hidden,
        flat.model.config.targets,
    );
    assert_eq!(flat.model.tensor("head.w").unwrap().len(), w * h);
    flat.model.tensor_mut("head.w").unwrap()[..dims * h].fill(0.0);
    flat.model.tensor_mut("head.b").unwrap()[..dims].fill(0.0);
    let f = uncensored(&flat, 120);
    let history = &train_data.series[0];
    for (k, st) in f.steps.iter().enumerate() {
        let want = history.value((origin + k % 48) as i64 - 48, 0).unwrap();
        // The mixture weights are f32: they sum to 1 within 1e-7.
        assert!(
            (st.mean - want).abs() <= 1e-6 * want.abs().max(1.0),
            "step {k}: {} vs {want}",
            st.mean
        );
    }
}

#[test]
fn log_transform_is_exact_in_original_units() {
    // A model with a log transform, and the same network without it fed ln(y) by hand: the
    // NLLs differ by exactly ln y (the Jacobian), PITs agree, forecast quantiles are exp() of
    // the hand-fed ones.
    let (data, opts) = taxi();
    let (train_data, _) = split(&data, 48);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.epochs = Some(2);
    cfg.batches_per_epoch = Some(5);
    cfg.transform = Some(Transform::Log { offset: 1.0 });
    cfg.target = Some(Target::SeasonalChange { season: 48 });
    cfg.scaling = Some(Scaling::SeasonalDiff {
        season: 48,
        floor: 1e-4,
    });
    let model = train(&train_data, &opts, &cfg, dir.path(), false, &mut Silent).unwrap();
    let mut plain = model.clone();
    plain.meta.inputs.transform = Transform::None;
    let s = train_data.series[0].clone();
    let logged = cfg.transform.unwrap().apply(&s).unwrap().into_owned();
    assert!((logged.values[0] - (s.values[0] + 1.0).ln()).abs() < 1e-12);

    let scfg = ScoreConfig::default();
    let (a, _) = score_series(&model, std::slice::from_ref(&s), &scfg)
        .unwrap()
        .remove(0);
    let (b, _) = score_series(&plain, std::slice::from_ref(&logged), &scfg)
        .unwrap()
        .remove(0);
    assert_eq!(
        a.y,
        (0..s.len())
            .map(|t| s.value(t as i64, 0))
            .collect::<Vec<_>>()
    );
    let mut checked = 0;
    for t in 0..s.len() {
        match (a.nll[t], b.nll[t], s.value(t as i64, 0)) {
            (Some(x), Some(z), Some(y)) => {
                assert!(
                    (x - (z + (y + 1.0).ln())).abs() < 1e-9,
                    "step {t}: {x} vs {z}"
                );
                assert_eq!(a.pit[t], b.pit[t]);
                checked += 1;
            }
            (None, None, _) => {}
            other => panic!("step {t}: {other:?}"),
        }
    }
    assert!(checked > s.len() / 2);

    let fc = ForecastConfig {
        horizon: 48,
        nonnegative: Nonnegative::Never,
        mode: Mode::Particle,
        ..Default::default()
    };
    let fa = forecast_series(&model, std::slice::from_ref(&s), &fc)
        .unwrap()
        .remove(0);
    let fb = forecast_series(&plain, std::slice::from_ref(&logged), &fc)
        .unwrap()
        .remove(0);
    for (x, z) in fa.steps.iter().zip(&fb.steps) {
        let back = |u: f64| u.exp() - 1.0;
        assert!((x.median - back(z.median)).abs() <= 1e-9 * x.median.abs().max(1.0));
        for (i, j) in x.intervals.iter().zip(&z.intervals) {
            assert!((i.0 - back(j.0)).abs() <= 1e-9 * i.0.abs().max(1.0));
            assert!((i.1 - back(j.1)).abs() <= 1e-9 * i.1.abs().max(1.0));
        }
        // The mean of the log-normal mixture: sum w exp(mu + sigma^2 / 2) - offset.
        let mean: f64 = z
            .mixture
            .iter()
            .map(|c| c.weight * (c.mu + 0.5 * c.sigma * c.sigma).exp())
            .sum::<f64>()
            - 1.0;
        assert!((x.mean - mean).abs() <= 1e-9 * mean.abs().max(1.0));
        // No Gaussian mixture in original units: 99 quantiles instead.
        assert!(x.mixture.is_empty() && x.samples.len() == 99);
        assert!(x.samples.windows(2).all(|w| w[0] <= w[1]));
    }

    // A value outside the domain (y <= -offset) is a clear error, in every stage.
    let mut bad = s.clone();
    bad.values[10] = -1.0;
    let e = score_series(&model, std::slice::from_ref(&bad), &scfg).unwrap_err();
    assert!(
        e.to_string()
            .contains("step 10: value -1 is outside the domain"),
        "{e}"
    );
    let e = forecast_series(&model, std::slice::from_ref(&bad), &fc).unwrap_err();
    assert!(e.to_string().contains("outside the domain"), "{e}");
    let mut bad_data = train_data.clone();
    bad_data.series[0] = bad;
    let e = train(
        &bad_data,
        &opts,
        &cfg,
        &dir.path().join("b"),
        false,
        &mut Silent,
    )
    .unwrap_err();
    assert!(
        e.is_bad_input() && e.to_string().contains("outside the domain"),
        "{e}"
    );
}

#[test]
fn nonnegative_series_are_censored_at_zero() {
    // A series near zero whose forecasts would dip below it.
    let (data, model, _dir) = quick_taxi_model();
    let mut s = data.series[0].clone();
    let n = s.len();
    for (t, v) in s.values.iter_mut().enumerate() {
        *v = if t + 200 > n { 0.5 } else { *v };
    }
    let run = |s: &PreparedSeries, rule: Nonnegative, mode: Mode| {
        let fc = ForecastConfig {
            horizon: 24,
            mode,
            nonnegative: rule,
            ..Default::default()
        };
        forecast_series(&model, std::slice::from_ref(s), &fc)
            .unwrap()
            .remove(0)
    };
    for mode in [Mode::Particle, Mode::Sample] {
        let raw = run(&s, Nonnegative::Never, mode);
        let auto = run(&s, Nonnegative::Auto, mode);
        assert!(
            raw.steps.iter().any(|st| st.intervals[1].0 < 0.0),
            "{mode:?}: the uncensored 95% interval reaches below 0"
        );
        for (r, a) in raw.steps.iter().zip(&auto.steps) {
            assert_eq!(a.intervals[1].0, r.intervals[1].0.max(0.0));
            assert_eq!(a.median, r.median.max(0.0));
            assert!(a.mean >= r.mean && a.mean >= 0.0);
            assert!(a.samples.iter().all(|v| *v >= 0.0));
        }
    }
    // A series with a negative value is left alone under `auto`.
    s.values[0] = -1.0;
    let raw = run(&s, Nonnegative::Never, Mode::Particle);
    let auto = run(&s, Nonnegative::Auto, Mode::Particle);
    assert_eq!(raw, auto);
}

#[test]
fn an_ensemble_is_the_equal_weight_mixture_of_its_models() {
    let (data, model, _dir) = quick_taxi_model();
    let series = std::slice::from_ref(&data.series[0]);
    let fc = ForecastConfig {
        horizon: 12,
        mode: Mode::Particle,
        ..Default::default()
    };
    let one = forecast_series(&model, series, &fc).unwrap().remove(0);
    assert_eq!(
        forecast_ensemble(std::slice::from_ref(&model), series, &fc)
            .unwrap()
            .remove(0),
        one
    );
    // A model mixed with itself is the same predictive: halved weights, twice the components.
    let twice = forecast_ensemble(&[model.clone(), model.clone()], series, &fc)
        .unwrap()
        .remove(0);
    for (a, b) in one.steps.iter().zip(&twice.steps) {
        assert_eq!(b.mixture.len(), 2 * a.mixture.len());
        assert!((b.mixture.iter().map(|c| c.weight).sum::<f64>() - 1.0).abs() < 1e-5);
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-6 * x.abs().max(1.0);
        assert!(close(a.mean, b.mean) && close(a.median, b.median));
        for (i, j) in a.intervals.iter().zip(&b.intervals) {
            assert!(close(i.0, j.0) && close(i.1, j.1));
        }
    }
    // Two different models in sample mode: the pooled paths of both.
    let mut other = model.clone();
    other.model.params.iter_mut().for_each(|p| *p *= 0.9);
    let sfc = ForecastConfig {
        horizon: 12,
        mode: Mode::Sample,
        samples: 50,
        ..Default::default()
    };
    let a = forecast_series(&model, series, &sfc).unwrap().remove(0);
    let b = forecast_series(&other, series, &sfc).unwrap().remove(0);
    let ab = forecast_ensemble(&[model, other], series, &sfc)
        .unwrap()
        .remove(0);
    for ((x, y), z) in a.steps.iter().zip(&b.steps).zip(&ab.steps) {
        let mut pooled: Vec<f64> = x.samples.iter().chain(&y.samples).copied().collect();
        pooled.sort_by(|p, q| p.total_cmp(q));
        assert_eq!(z.samples, pooled);
        assert!((z.mean - 0.5 * (x.mean + y.mean)).abs() < 1e-9 * x.mean.abs().max(1.0));
        let want = empirical_quantile_of(&pooled, 0.025);
        assert!((z.intervals[1].0 - want).abs() < 1e-9 * want.abs().max(1.0));
    }
    assert!(forecast_ensemble(&[], series, &fc).is_err());
}

/// The type-7 empirical quantile of sorted values.
fn empirical_quantile_of(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}
