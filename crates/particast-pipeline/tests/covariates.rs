//! Covariates by kind (future, historical, static), future frames, forecasting from saved
//! score states, rolling-origin cross-validation and conformal calibration, on a small
//! synthetic hourly dataset whose demand follows a promotion flag.

use particast_ingest::{Dataset, IngestOptions, PreparedSeries, Source};
use particast_pipeline::cv::{backtest, CvConfig};
use particast_pipeline::*;
use std::fmt::Write as _;
use std::path::Path;

const N: usize = 480;
const H: usize = 24;

/// A deterministic 0/1 flag per (series, step).
fn promo(i: usize, t: usize) -> u8 {
    let x = (t as u64 * 2_654_435_761 + i as u64 * 40_503) % 97;
    u8::from(x < 25)
}

/// Three hourly series: a daily cycle, `+ 6 promo`, a slow `sensor` and a constant `size`.
fn write_csv(dir: &Path, rows: usize) -> std::path::PathBuf {
    let mut text = String::from("unique_id,ds,y,promo,sensor,size\n");
    for i in 0..3 {
        for t in 0..rows {
            let day = (2.0 * std::f64::consts::PI * t as f64 / 24.0).sin();
            let y = 20.0 + 4.0 * day + 6.0 * f64::from(promo(i, t)) + i as f64;
            let hour = t % 24;
            let date = 1 + t / 24;
            let month = 1 + (date - 1) / 28;
            let day_of_month = 1 + (date - 1) % 28;
            writeln!(
                text,
                "s{i},2024-{month:02}-{day_of_month:02} {hour:02}:00:00,{y},{},{},{}",
                promo(i, t),
                (t as f64 / 50.0).cos(),
                i + 1
            )
            .unwrap();
        }
    }
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn opts() -> IngestOptions {
    IngestOptions {
        futr_exog: vec!["promo".into()],
        hist_exog: vec!["sensor".into()],
        stat_exog: vec!["size".into()],
        ..Default::default()
    }
}

fn config() -> TrainConfig {
    TrainConfig {
        hidden: Some(8),
        particles: 2,
        context: Some(48),
        horizon: H,
        batch_size: Some(16),
        batches_per_epoch: Some(6),
        epochs: Some(2),
        seed: 3,
        ..TrainConfig::classic()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    data: Dataset,
    model: TrainedModel,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = write_csv(dir.path(), N);
    let data = Dataset::read(Source::path(path), &opts()).unwrap();
    let model = train(
        &data,
        &opts(),
        &config(),
        &dir.path().join("m"),
        false,
        &mut Silent,
    )
    .unwrap();
    Fixture { dir, data, model }
}

fn history(data: &Dataset) -> Vec<PreparedSeries> {
    data.series.iter().map(|s| s.head(s.len() - H)).collect()
}

fn fc_config(mode: Mode) -> ForecastConfig {
    ForecastConfig {
        horizon: H,
        mode,
        samples: 20,
        ..Default::default()
    }
}

fn means(f: &[SeriesForecast]) -> Vec<f64> {
    f.iter()
        .flat_map(|s| s.steps.iter().map(|x| x.mean))
        .collect()
}

#[test]
fn covariate_kinds_are_read_standardised_and_checked() {
    let fx = fixture();
    let covs = &fx.model.meta.inputs.covariates;
    let kinds: Vec<(String, CovariateKind)> =
        covs.iter().map(|c| (c.name.clone(), c.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("promo".into(), CovariateKind::Future),
            ("sensor".into(), CovariateKind::Historical),
            ("size".into(), CovariateKind::Static),
        ]
    );
    // size is 1, 2, 3 in equal parts: mean 2, population sd sqrt(2/3).
    assert!((covs[2].mean - 2.0).abs() < 1e-9);
    assert!((covs[2].scale - (2.0f64 / 3.0).sqrt()).abs() < 1e-6);
    assert!(fx.model.meta.inputs.needs_future());
    // A name in no column, a name in two lists, a static column that varies: clear errors.
    let mut bad = opts();
    bad.covariate_cols = Some(vec!["promo".into(), "sensor".into(), "size".into()]);
    bad.hist_exog = vec!["temperature".into()];
    let e = train(
        &fx.data,
        &bad,
        &config(),
        &fx.dir.path().join("x"),
        false,
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("hist_exog names `temperature`"), "{e}");
    let mut twice = opts();
    twice.hist_exog = vec!["promo".into()];
    let e = train(
        &fx.data,
        &twice,
        &config(),
        &fx.dir.path().join("x"),
        false,
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("both future and historical"), "{e}");
    let mut varying = opts();
    varying.stat_exog = vec!["size".into(), "sensor".into()];
    varying.hist_exog.clear();
    let e = train(
        &fx.data,
        &varying,
        &config(),
        &fx.dir.path().join("x"),
        false,
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("static covariate `sensor` is not constant within series `s0`"),
        "{e}"
    );
}

#[test]
fn future_covariates_are_required_and_change_the_forecast() {
    let fx = fixture();
    let hist = history(&fx.data);
    let cfg = fc_config(Mode::Particle);
    let e = forecast_series(&fx.model, &hist, &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("future covariates [promo]"), "{e}");
    let cols = fx.data.schema.covariate_cols.clone();
    let future = FutureCovariates::from_series(&fx.data.series, &cols, "test");
    let models = std::slice::from_ref(&fx.model);
    let with = forecast_ensemble_future(models, &hist, &cfg, Some(&future)).unwrap();
    assert!(means(&with).iter().all(|m| m.is_finite()));
    // Other promotions, other forecasts: the model reads the future frame.
    let mut flipped = fx.data.series.clone();
    for s in &mut flipped {
        for t in s.len() - H..s.len() {
            s.covariates[t * 3] = 1.0 - s.covariates[t * 3];
        }
    }
    let other = FutureCovariates::from_series(&flipped, &cols, "test");
    let changed = forecast_ensemble_future(models, &hist, &cfg, Some(&other)).unwrap();
    assert_ne!(means(&with), means(&changed));
    // A missing future value names the column, the series and the step.
    let mut gap = fx.data.series.clone();
    let t = gap[1].len() - H + 2;
    gap[1].present[t] = false;
    let holes = FutureCovariates::from_series(&gap, &cols, "test");
    let e = forecast_ensemble_future(models, &hist, &cfg, Some(&holes))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`promo` is missing for series `s1`"), "{e}");
    assert!(e.contains("(step 3 of 24)"), "{e}");
    // Too few future rows.
    let short: Vec<PreparedSeries> = fx.data.series.iter().map(|s| s.head(s.len() - 1)).collect();
    let few = FutureCovariates::from_series(&short, &cols, "test");
    let e = forecast_ensemble_future(models, &hist, &cfg, Some(&few))
        .unwrap_err()
        .to_string();
    assert!(e.contains("has rows for 23 of the 24 steps"), "{e}");
}

#[test]
fn a_future_frame_file_gives_the_same_forecast_as_the_known_rows() {
    let fx = fixture();
    let hist = history(&fx.data);
    // The future frame: id, time and the future column only, one row per series and step.
    let full = std::fs::read_to_string(fx.dir.path().join("data.csv")).unwrap();
    let mut text = String::from("unique_id,ds,promo\n");
    for (i, line) in full.lines().skip(1).enumerate() {
        if i % N >= N - H {
            let f: Vec<&str> = line.split(',').collect();
            writeln!(text, "{},{},{}", f[0], f[1], f[3]).unwrap();
        }
    }
    let path = fx.dir.path().join("future.csv");
    std::fs::write(&path, text).unwrap();
    let future =
        stage::read_future(&fx.model, Source::path(&path), &Overrides::new("input")).unwrap();
    assert_eq!(future.len(), 3);
    let cols = fx.data.schema.covariate_cols.clone();
    let known = FutureCovariates::from_series(&fx.data.series, &cols, "test");
    let models = std::slice::from_ref(&fx.model);
    for mode in [Mode::Particle, Mode::Sample] {
        let cfg = fc_config(mode);
        let a = forecast_ensemble_future(models, &hist, &cfg, Some(&future)).unwrap();
        let b = forecast_ensemble_future(models, &hist, &cfg, Some(&known)).unwrap();
        assert_eq!(a, b, "{mode:?}");
    }
}

#[test]
fn forecasting_from_a_saved_state_equals_forecasting_from_the_history() {
    let fx = fixture();
    let hist = history(&fx.data);
    let scfg = ScoreConfig::default();
    // Scored in two calls (a state file in between), then forecast from the saved state.
    let cut = 300;
    let first: Vec<PreparedSeries> = hist.iter().map(|s| s.head(cut)).collect();
    let states: Vec<SeriesState> = score_series(&fx.model, &first, &scfg)
        .unwrap()
        .into_iter()
        .map(|(_, st)| st)
        .collect();
    let path = fx.dir.path().join("state.parquet");
    save_states(&states, &path).unwrap();
    let mut states = load_states(&path).unwrap();
    for (st, s) in states.iter_mut().zip(&hist) {
        let mut rest = s.clone();
        let (d, c) = (s.n_targets, s.n_covariates);
        rest.values = s.values[cut * d..].to_vec();
        rest.mask = s.mask[cut * d..].to_vec();
        rest.present = s.present[cut..].to_vec();
        rest.covariates = s.covariates[cut * c..].to_vec();
        rest.axis.start = s.timestamp(cut as i64);
        rest.stats.len = s.len() - cut;
        rest.stats.first_ds = s.timestamp(cut as i64);
        score_continued(&fx.model, st, &rest, &scfg).unwrap();
    }
    let from_states = stage::state_series_of(&fx.model, &states).unwrap();
    let cols = fx.data.schema.covariate_cols.clone();
    let future = FutureCovariates::from_series(&fx.data.series, &cols, "test");
    let models = std::slice::from_ref(&fx.model);
    for mode in [Mode::Particle, Mode::Sample] {
        let cfg = fc_config(mode);
        let a = forecast_ensemble_future(models, &from_states, &cfg, Some(&future)).unwrap();
        let b = forecast_ensemble_future(models, &hist, &cfg, Some(&future)).unwrap();
        assert_eq!(a, b, "{mode:?}");
    }
    // A state that keeps too little history is refused.
    let mut short = states[0].clone();
    short.tail_values.truncate(2);
    short.tail_mask.truncate(2);
    let e = stage::state_series_of(&fx.model, &[short])
        .unwrap_err()
        .to_string();
    assert!(e.contains("keeps 2 steps of history"), "{e}");
}

#[test]
fn cross_validation_windows_layout_and_calibration() {
    let fx = fixture();
    let cv = CvConfig {
        n_windows: 3,
        step_size: Some(12),
        ..CvConfig::default()
    };
    let fc = ForecastConfig {
        horizon: H,
        mode: Mode::Sample,
        samples: 30,
        ..Default::default()
    };
    let bt = backtest(
        std::slice::from_ref(&fx.model),
        &fx.data.series,
        &fc,
        &cv,
        None,
    )
    .unwrap();
    assert_eq!(bt.windows.len(), 3 * 3);
    let df = bt
        .frame(&fx.data.series, &fx.data.schema.time_kind)
        .unwrap();
    assert_eq!(df.height(), 3 * 3 * H);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        &names[..5],
        &["unique_id", "ds", "cutoff", "y", "particast"]
    );
    // Window k of a series of N steps is cut at N - H - (2 - k) 12 steps; its first forecast
    // step is the one after the cutoff, and y is the series' own value there.
    for w in &bt.windows {
        let s = &fx.data.series[w.series];
        assert_eq!(w.origin, N - H - (2 - w.window) * 12);
        assert_eq!(w.cutoff, s.timestamp(w.origin as i64 - 1));
        assert_eq!(w.forecast.steps[0].ds, s.timestamp(w.origin as i64));
    }
    let y = df.column("y").unwrap().f64().unwrap().clone();
    let s0 = &fx.data.series[0];
    assert_eq!(y.get(0), s0.value((N - H - 24) as i64, 0));
    let (per, overall) = bt.metrics(&fx.data).unwrap();
    assert_eq!(per.len(), 3);
    assert!((overall.mase - per.iter().map(|m| m.mase).sum::<f64>() / 3.0).abs() < 1e-12);
    // In-sample, a pooled conformal correction covers at least its level.
    let cal = bt.calibration(&fx.data, |_| true).unwrap();
    assert!(cal.pooled, "9 windows x 24 steps: too few per step");
    let fitted = bt.calibrated(&fx.data, &cal, |_| true).unwrap();
    let (_, after) = fitted.metrics(&fx.data).unwrap();
    for (level, c) in &after.coverage {
        assert!(*c >= level / 100.0 - 1e-9, "{level}: {c}");
    }
    // Saved with the model, used by forecasts that ask.
    let dir = fx.dir.path().join("m");
    TrainedModel::save_calibration(&dir, &cal).unwrap();
    let loaded = TrainedModel::load(&dir).unwrap();
    assert_eq!(loaded.calibration.as_ref(), Some(&cal));
    let hist = history(&fx.data);
    let cols = fx.data.schema.covariate_cols.clone();
    let future = FutureCovariates::from_series(&fx.data.series, &cols, "test");
    let mut cfg = fc_config(Mode::Particle);
    cfg.calibrated = true;
    let e = forecast_ensemble_future(std::slice::from_ref(&fx.model), &hist, &cfg, Some(&future))
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no calibration"), "{e}");
    let raw = forecast_ensemble_future(
        std::slice::from_ref(&loaded),
        &hist,
        &fc_config(Mode::Particle),
        Some(&future),
    )
    .unwrap();
    let wide = forecast_ensemble_future(std::slice::from_ref(&loaded), &hist, &cfg, Some(&future))
        .unwrap();
    let width = |f: &[SeriesForecast]| -> f64 {
        f.iter()
            .flat_map(|s| s.steps.iter().map(|x| x.intervals[1].1 - x.intervals[1].0))
            .sum()
    };
    let q = cal.corrections[1][0];
    assert!(
        (width(&wide) > width(&raw)) == (q > 0.0),
        "correction {q}: widths {} vs {}",
        width(&wide),
        width(&raw)
    );
    // Retraining into the folder removes the stale calibration.
    let again = train(&fx.data, &opts(), &config(), &dir, false, &mut Silent).unwrap();
    assert!(again.calibration.is_none());
    assert!(!dir.join("calibration.json").exists());
}

#[test]
fn refit_backtests_train_one_model_per_window_on_its_own_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_csv(dir.path(), N);
    let data = Dataset::read(Source::path(path), &opts()).unwrap();
    let cv = CvConfig {
        n_windows: 2,
        refit: true,
        ..CvConfig::default()
    };
    let fc = fc_config(Mode::Particle);
    let m = dir.path().join("m");
    let (bt, models) =
        stage::cross_validate(&data, &opts(), &config(), &fc, &cv, &m, &mut Silent).unwrap();
    assert_eq!(models.len(), 2);
    assert!(m.join("window-1").is_dir() && m.join("window-2").is_dir());
    // Every window's model trained on all three series (each cut at that window's cutoff).
    for (k, model) in models.iter().enumerate() {
        let s = model.meta.training.as_ref().unwrap();
        assert_eq!(s.series, 3, "window {k}");
    }
    // Each window is forecast by its own model: the same numbers as a backtest of that window
    // with that model alone.
    for (k, model) in models.iter().enumerate() {
        let one = backtest(std::slice::from_ref(model), &data.series, &fc, &cv, Some(k)).unwrap();
        let mine: Vec<&SeriesForecast> = bt
            .windows
            .iter()
            .filter(|w| w.window == k)
            .map(|w| &w.forecast)
            .collect();
        let theirs: Vec<&SeriesForecast> = one.windows.iter().map(|w| &w.forecast).collect();
        assert_eq!(mine, theirs, "window {k}");
    }
    assert_eq!(
        particast_pipeline::cv::calibration_dir(&m, &cv),
        m.join("window-2")
    );
}

#[test]
fn a_model_with_ids_from_paths_reads_its_future_frame_by_an_id_column() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read_to_string(write_csv(dir.path(), N)).unwrap();
    // One series in a file of its own, without an id column.
    let (mut hist, mut fut, mut bare) = (
        String::from("ds,y,promo\n"),
        String::from("unique_id,ds,promo\n"),
        String::from("ds,promo\n"),
    );
    for (i, line) in full.lines().skip(1).take(N).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        if i < N - H {
            writeln!(hist, "{},{},{}", f[1], f[2], f[3]).unwrap();
        } else {
            writeln!(fut, "one.csv,{},{}", f[1], f[3]).unwrap();
            writeln!(bare, "{},{}", f[1], f[3]).unwrap();
        }
    }
    let path = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (h, f, b) = (
        path("one.csv", &hist),
        path("future.csv", &fut),
        path("bare.csv", &bare),
    );
    let opts = IngestOptions {
        id_from_path: true,
        futr_exog: vec!["promo".into()],
        ..Default::default()
    };
    let data = Dataset::read(Source::path(&h), &opts).unwrap();
    assert_eq!(data.series[0].id, "one.csv");
    let model = train(
        &data,
        &opts,
        &config(),
        &dir.path().join("m"),
        false,
        &mut Silent,
    )
    .unwrap();
    let input = Overrides::new("input");
    let future = stage::read_future(&model, Source::path(&f), &input).unwrap();
    let cfg = fc_config(Mode::Particle);
    let fc = forecast_ensemble_future(
        std::slice::from_ref(&model),
        &data.series,
        &cfg,
        Some(&future),
    )
    .unwrap();
    assert_eq!(fc[0].steps.len(), H);
    let e = stage::read_future(&model, Source::path(&b), &input)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("names each series in a `unique_id` column"),
        "{e}"
    );
}
