//! Bounded-memory stages: scoring, forecasting and evaluating part by part, from an input read
//! bucket by bucket, give the same bytes (and metrics) as the in-memory calls.

use particast_ingest::polars::prelude::*;
use particast_ingest::{Dataset, IngestOptions, SeriesStream, Source};
use particast_pipeline::sink::OutputFormat;
use particast_pipeline::stage::{self, ForecastBatches, ScoreBatches};
use particast_pipeline::*;
use std::path::Path;

const SERIES: usize = 3_000;
const STEPS: usize = 100;

/// `SERIES` hourly series of `STEPS` steps, rows in time order (every bucket and every part
/// must regroup them), each series starting at its own offset so that lengths differ.
fn frame() -> DataFrame {
    let hour = 3_600_000_000i64;
    let (mut id, mut ds, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for t in 0..STEPS {
        for s in 0..SERIES {
            if t < s % 7 {
                continue;
            }
            id.push(format!("s{s:04}"));
            ds.push(t as i64 * hour);
            let level = 5.0 + (s % 13) as f64;
            y.push(
                level + (t as f64 * std::f64::consts::TAU / 24.0).sin() + (s * t % 5) as f64 * 0.1,
            );
        }
    }
    df!("unique_id" => id, "ds" => ds, "y" => y)
        .unwrap()
        .lazy()
        .with_column(col("ds").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
        .collect()
        .unwrap()
}

fn tiny() -> TrainConfig {
    TrainConfig {
        hidden: Some(8),
        particles: 3,
        context: Some(36),
        horizon: 24,
        batch_size: Some(16),
        batches_per_epoch: Some(4),
        epochs: Some(1),
        seed: 3,
        ..TrainConfig::classic()
    }
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn streamed_stages_write_the_bytes_of_the_in_memory_ones() {
    let df = frame();
    let rows = df.height();
    // More rows than a part and than a row group.
    assert!(rows > stage::PART_STEPS.max(particast_pipeline::sink::ROWS_PER_GROUP));
    let opts = IngestOptions::default();
    let data = Dataset::read(Source::Frame(df.clone()), &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = train(
        &data,
        &opts,
        &tiny(),
        &dir.path().join("m"),
        false,
        &mut Silent,
    )
    .unwrap();
    // Buckets of at most 40,000 rows: the input is spilled and read back in pieces.
    let bucketed = opts.clone().with_max_rows_in_memory(40_000);
    let stream = || SeriesStream::open(Source::Frame(df.clone()), &bucketed).unwrap();
    assert!(stream().report().buckets > 5);

    for format in [OutputFormat::Parquet, OutputFormat::Arrow] {
        // Scores: more rows than a part and than a row group.
        let cfg = ScoreConfig::default();
        let mem = dir.path().join("scores-mem");
        let scored = stage::score(&model, &data, &cfg, Vec::new()).unwrap();
        scored.write(&mem, format).unwrap();
        let streamed = dir.path().join("scores-stream");
        let batches = ScoreBatches::new(&model, stream(), &data.schema, &cfg, Vec::new())
            .unwrap()
            .keep_states();
        let summary = stage::score_to(batches, &streamed, format).unwrap();
        assert_eq!(bytes(&mem), bytes(&streamed), "{format:?} scores");
        assert_eq!(summary.rows, scored.rows());
        assert_eq!(summary.rows, rows);
        assert_eq!(summary.flagged, scored.flagged());
        assert_eq!(summary.series, SERIES);
        assert_eq!(summary.states, scored.states);

        // Forecasts in both modes: sampled paths keep each series' random stream.
        let modes = match format {
            OutputFormat::Parquet => vec![forecast::Mode::Sample, forecast::Mode::Particle],
            _ => vec![forecast::Mode::Particle],
        };
        for mode in modes {
            let cfg = ForecastConfig {
                horizon: 12,
                mode,
                samples: 50,
                ..Default::default()
            };
            let mem = dir.path().join("fc-mem");
            let models = std::slice::from_ref(&model);
            stage::forecast(models, &data, &cfg)
                .unwrap()
                .write(&mem, format)
                .unwrap();
            let streamed = dir.path().join("fc-stream");
            let batches =
                ForecastBatches::new(models, stream(), &data.schema.time_kind, &cfg).unwrap();
            let n = stage::forecast_to(batches, &streamed, format).unwrap();
            assert_eq!(n, SERIES);
            assert_eq!(
                bytes(&mem),
                bytes(&streamed),
                "{format:?} {mode:?} forecasts"
            );
        }
    }

    // Evaluation of a forecast file of more rows than a part (series straddle the parts)
    // against the last 24 steps, read part by part, equals the in-memory evaluation.
    let cut = |s: &particast_ingest::PreparedSeries| s.head(s.len() - 24);
    let history: Vec<_> = data.series.iter().map(cut).collect();
    let cfg = ForecastConfig {
        horizon: 24 * 4,
        mode: forecast::Mode::Particle,
        ..Default::default()
    };
    let fc = stage::forecast_series_of(
        std::slice::from_ref(&model),
        &history,
        &data.schema.time_kind,
        &cfg,
    )
    .unwrap();
    assert!(fc.series.len() * cfg.horizon > particast_pipeline::sink::ROWS_PER_GROUP);
    let path = dir.path().join("fc.parquet");
    fc.write(&path, OutputFormat::Parquet).unwrap();
    let (read_back, levels) = stage::read_forecast_file(&path, "fc.parquet").unwrap();
    let reader = stage::open_forecast_file(&path, "fc.parquet").unwrap();
    assert_eq!(reader.levels(), &levels[..]);
    let streamed: Vec<_> = stage::open_forecast_file(&path, "fc.parquet")
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    assert_eq!(streamed, read_back);
    let whole = stage::evaluate(&read_back, &levels, &data, &history, false, 24).unwrap();
    let parts =
        stage::evaluate_file(reader, &data, &opts, history.iter().cloned().map(Ok), 24).unwrap();
    assert_eq!(
        serde_json::to_string(&whole).unwrap(),
        serde_json::to_string(&parts).unwrap()
    );
    assert_eq!(whole.series, SERIES);
}
