//! The automatic recipe's decisions on synthetic series with known structure, and a
//! 14-point yearly series trained and forecast end to end.

use particast_ingest::polars::prelude::*;
use particast_ingest::{Dataset, IngestOptions, Source};
use particast_pipeline::recipe::{plan, Plan};
use particast_pipeline::*;

/// A frame of several series with timestamps `ds` in milliseconds.
fn frame(series: &[(&str, Vec<i64>, Vec<f64>)], dtype: DataType) -> DataFrame {
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let mut y = Vec::new();
    for (id, t, v) in series {
        for (a, b) in t.iter().zip(v) {
            ids.push(id.to_string());
            ds.push(*a);
            y.push(*b);
        }
    }
    let ds = match dtype {
        DataType::Date => Series::new(
            "ds".into(),
            ds.iter().map(|&d| d as i32).collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)
        .unwrap(),
        DataType::Int64 => Series::new("ds".into(), ds),
        dt => Series::new("ds".into(), ds).cast(&dt).unwrap(),
    };
    let mut df = df!("unique_id" => ids, "y" => y).unwrap();
    df.with_column(ds.into()).unwrap();
    df
}

fn read(df: DataFrame) -> Dataset {
    Dataset::read(Source::Frame(df), &IngestOptions::default()).unwrap()
}

/// A deterministic pseudo-random stream in [-1, 1).
fn noise(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn decided(p: &Plan, knob: &str) -> String {
    p.report
        .decisions
        .iter()
        .find(|d| d.knob == knob)
        .map(|d| format!("{} ({})", d.value, d.why))
        .unwrap_or_default()
}

fn cfg(h: usize) -> TrainConfig {
    TrainConfig {
        horizon: h,
        ..Default::default()
    }
}

/// Days since 1970-01-01 of the first of month `k` after January 1990.
fn month_start(k: i64) -> i64 {
    let (y, m) = (1990 + k / 12, (k % 12) as u32 + 1);
    chrono::NaiveDate::from_ymd_opt(y as i32, m, 1)
        .unwrap()
        .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days()
}

#[test]
fn hourly_with_a_daily_cycle_keeps_24_and_changes_from_a_day_before() {
    let mut r = noise(1);
    let series: Vec<(&str, Vec<i64>, Vec<f64>)> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            let t: Vec<i64> = (0..24 * 30).map(|i| i * 3_600_000).collect();
            let v = (0..24 * 30)
                .map(|i| 100.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin() + 2.0 * r())
                .collect();
            (*id, t, v)
        })
        .collect();
    let data = read(frame(
        &series,
        DataType::Datetime(TimeUnit::Milliseconds, None),
    ));
    let p = plan(&data, &cfg(24)).unwrap();
    assert_eq!(p.seasons.first(), Some(&24), "{}", decided(&p, "seasons"));
    assert_eq!(p.target, Target::SeasonalChange { season: 24 });
    assert_eq!(p.transform, Transform::Log { offset: 0.0 });
    assert!(p.lags.contains(&24));
    assert!(matches!(
        p.scaling,
        Scaling::SeasonalDiff { season: 24, .. }
    ));
    assert!(p.context >= 48, "{}", decided(&p, "context"));
    // The same data without timestamps (integer steps): the cycle is found all the same.
    let ints: Vec<(&str, Vec<i64>, Vec<f64>)> = series
        .iter()
        .map(|(id, _, v)| (*id, (0..v.len() as i64).collect(), v.clone()))
        .collect();
    let p = plan(&read(frame(&ints, DataType::Int64)), &cfg(24)).unwrap();
    assert_eq!(p.seasons.first(), Some(&24), "{}", decided(&p, "seasons"));
}

#[test]
fn monthly_with_a_yearly_cycle_keeps_12() {
    let mut r = noise(2);
    let series: Vec<(&str, Vec<i64>, Vec<f64>)> = (0..4)
        .map(|k| {
            let t: Vec<i64> = (0..120).map(month_start).collect();
            let v = (0..120)
                .map(|i| {
                    50.0 + k as f64 + 10.0 * (i as f64 * std::f64::consts::TAU / 12.0).cos() + r()
                })
                .collect();
            (["w", "x", "y", "z"][k], t, v)
        })
        .collect();
    let data = read(frame(&series, DataType::Date));
    let p = plan(&data, &cfg(18)).unwrap();
    assert_eq!(p.seasons, vec![12], "{}", decided(&p, "seasons"));
    assert_eq!(p.target, Target::SeasonalChange { season: 12 });
    assert!(decided(&p, "seasons").contains("monthly"));
}

#[test]
fn white_noise_and_a_trend_keep_no_season() {
    let mut r = noise(3);
    let t: Vec<i64> = (0..200).map(month_start).collect();
    // Five series of each (a 90% test passes one noise series in ten at any lag).
    let ids = ["a", "b", "c", "d", "e"];
    let white: Vec<(&str, Vec<i64>, Vec<f64>)> = ids
        .iter()
        .map(|id| (*id, t.clone(), (0..200).map(|_| 10.0 + r()).collect()))
        .collect();
    let trend: Vec<(&str, Vec<i64>, Vec<f64>)> = ids
        .iter()
        .map(|id| {
            (
                *id,
                t.clone(),
                (0..200).map(|i| 5.0 + 0.5 * i as f64 + 0.3 * r()).collect(),
            )
        })
        .collect();
    for v in [white, trend] {
        let data = read(frame(&v, DataType::Date));
        let p = plan(&data, &cfg(12)).unwrap();
        assert!(p.seasons.is_empty(), "{}", decided(&p, "seasons"));
        assert_eq!(p.target, Target::SeasonalChange { season: 1 });
        assert!(matches!(p.scaling, Scaling::SeasonalDiff { season: 1, .. }));
        // A small set without a season also tries the level target.
        assert!(p.alternatives.iter().any(|a| a.1 == Target::Level));
    }
}

#[test]
fn positive_skewed_data_get_the_log_and_zeros_or_negatives_do_not() {
    let mut r = noise(4);
    let t: Vec<i64> = (0..300).map(|i| i * 86_400_000).collect();
    let skewed: Vec<f64> = (0..300).map(|_| (3.0 * r()).exp()).collect();
    let data = read(frame(
        &[("s", t.clone(), skewed)],
        DataType::Datetime(TimeUnit::Milliseconds, None),
    ));
    let p = plan(&data, &cfg(7)).unwrap();
    assert_eq!(p.transform, Transform::Log { offset: 0.0 });
    let mixed: Vec<f64> = (0..300)
        .map(|i| if i % 10 == 0 { 0.0 } else { r() * 5.0 })
        .collect();
    let data = read(frame(
        &[("s", t, mixed)],
        DataType::Datetime(TimeUnit::Milliseconds, None),
    ));
    let p = plan(&data, &cfg(7)).unwrap();
    assert_eq!(p.transform, Transform::None, "{}", decided(&p, "transform"));
    assert!(decided(&p, "transform").contains("series s has the value"));
}

#[test]
fn choices_given_by_the_user_are_kept() {
    let t: Vec<i64> = (0..200).map(month_start).collect();
    let v: Vec<f64> = (0..200).map(|i| 10.0 + (i % 12) as f64).collect();
    let data = read(frame(&[("s", t, v)], DataType::Date));
    let c = TrainConfig {
        horizon: 12,
        seasons: Some(vec![]),
        transform: Some(Transform::None),
        context: Some(40),
        hidden: Some(8),
        epochs: Some(3),
        ..Default::default()
    };
    let p = plan(&data, &c).unwrap();
    assert!(p.seasons.is_empty());
    assert_eq!(p.transform, Transform::None);
    assert_eq!((p.context, p.hidden, p.epochs), (40, 8, 3));
    assert!(p
        .report
        .decisions
        .iter()
        .any(|d| d.knob == "context" && !d.auto));
    // A seasonal target without any season is a clear error.
    let c = TrainConfig {
        target: Some(Target::SeasonalChange { season: 0 }),
        ..c
    };
    let e = plan(&data, &c).unwrap_err().to_string();
    assert!(e.contains("needs a season"), "{e}");
}

#[test]
fn a_14_point_yearly_series_trains_and_forecasts() {
    let days = |y: i32| {
        chrono::NaiveDate::from_ymd_opt(y, 1, 1)
            .unwrap()
            .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
            .num_days()
    };
    let t: Vec<i64> = (1975..1989).map(days).collect();
    let v: Vec<f64> = (0..14)
        .map(|i| 900.0 + 60.0 * i as f64 + [5.0, -7.0][i % 2])
        .collect();
    let other: Vec<f64> = (0..14).map(|i| 50.0 * 1.05f64.powi(i)).collect();
    let data = read(frame(
        &[("a", t.clone(), v), ("b", t, other)],
        DataType::Date,
    ));
    let p = plan(&data, &cfg(6)).unwrap();
    assert!(p.seasons.is_empty());
    assert!(
        p.context >= 1 && p.context <= 8,
        "{}",
        decided(&p, "context")
    );
    let dir = tempfile::tempdir().unwrap();
    let m = train(
        &data,
        &IngestOptions::default(),
        &cfg(6),
        dir.path(),
        false,
        &mut Silent,
    )
    .unwrap();
    let recipe = TrainedModel::load(dir.path()).unwrap().meta.recipe.unwrap();
    assert!(recipe
        .decisions
        .iter()
        .any(|d| d.knob == "seasons" && d.auto));
    let f = forecast_series(
        &m,
        &data.series,
        &ForecastConfig {
            horizon: 6,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(f.len(), 2, "no series dropped");
    for s in &f {
        assert_eq!(s.steps.len(), 6);
        assert!(s
            .steps
            .iter()
            .all(|x| x.median.is_finite() && x.median > 0.0));
    }
    // The trend continues: the last forecast of the growing series is above its last value.
    assert!(f[0].steps[5].median > 900.0, "{:?}", f[0].steps[5].median);
}
