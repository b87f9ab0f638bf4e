//! Ingestion tests: real NAB files (CSV and Parquet), validation errors, the polars <-> arrow-rs
//! bridge, bounded-memory partitioning, features, and property tests of windowing invariants.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt8Type};
use arrow_array::RecordBatch;
use particast_ingest::ffi::{dataframe_to_record_batch, record_batch_to_dataframe};
use particast_ingest::*;
use polars::prelude::*;
use proptest::prelude::*;
use std::path::PathBuf;

fn nab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/nab")
}

fn nab_opts() -> IngestOptions {
    IngestOptions {
        id_from_path: true,
        time_col: "timestamp".into(),
        target_cols: vec!["value".into()],
        ..Default::default()
    }
}

/// Reads a two-column NAB CSV by hand (independent of polars) into (seconds, value) pairs.
fn read_nab_by_hand(path: &std::path::Path) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let (ts, v) = line.split_once(',').unwrap();
            let dt = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").unwrap();
            (dt.and_utc().timestamp(), v.parse().unwrap())
        })
        .collect()
}

fn write_parquet(df: &mut DataFrame, path: &std::path::Path) {
    let f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(f).finish(df).unwrap();
}

fn f64s(v: &[f64]) -> Vec<f64> {
    v.to_vec()
}

#[test]
fn nab_csv_matches_an_independent_reading() {
    let path = nab_dir().join("realKnownCause/nyc_taxi.csv");
    let expected = read_nab_by_hand(&path);
    let data = Dataset::read(Source::path(&path), &nab_opts()).unwrap();
    assert_eq!(data.series.len(), 1);
    let s = &data.series[0];
    assert_eq!(s.id, "nyc_taxi.csv");
    assert_eq!(s.len(), expected.len());
    assert_eq!(s.stats.gaps_filled, 0);
    assert_eq!(s.stats.observed, vec![expected.len()]);
    let mean: f64 = expected.iter().map(|e| e.1).sum::<f64>() / expected.len() as f64;
    assert!((s.stats.mean[0] - mean).abs() < 1e-9 * mean);
    assert_eq!(data.schema.frequency_text(), "30min");
    assert_eq!(
        data.schema.features.calendar,
        vec![
            CalendarFeature::MinuteOfHour,
            CalendarFeature::HourOfDay,
            CalendarFeature::DayOfWeek,
            CalendarFeature::DayOfYear
        ]
    );
    for (t, (secs, v)) in expected.iter().enumerate() {
        assert_eq!(s.value(t as i64, 0), Some(*v));
        let us = s.timestamp(t as i64);
        assert_eq!(us, secs * 1_000_000, "step {t}");
    }
    assert_eq!(s.stats.first_ds, expected[0].0 * 1_000_000);
    assert_eq!(s.stats.last_ds, expected.last().unwrap().0 * 1_000_000);
}

#[test]
fn nab_parquet_and_csv_agree_and_globs_name_series_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        "realKnownCause/nyc_taxi.csv",
        "artificialWithAnomaly/art_daily_jumpsup.csv",
        "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    ];
    for f in files {
        let csv = nab_dir().join(f);
        let mut df = CsvReadOptions::default()
            .with_has_header(true)
            .map_parse_options(|o| o.with_try_parse_dates(true))
            .try_into_reader_with_file_path(Some(csv))
            .unwrap()
            .finish()
            .unwrap();
        let out = dir.path().join(f).with_extension("parquet");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        write_parquet(&mut df, &out);
    }
    let glob_csv = format!("{}/*/*.csv", nab_dir().display());
    let glob_pq = format!("{}/*/*.parquet", dir.path().display());
    let from_csv = Dataset::read(Source::Path(glob_csv), &nab_opts()).unwrap();
    let from_pq = Dataset::read(Source::Path(glob_pq), &nab_opts()).unwrap();
    let mut ids: Vec<_> = from_csv.series.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    let mut want: Vec<_> = files.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(from_csv.series.len(), from_pq.series.len());
    for s in &from_csv.series {
        let p = from_pq
            .get(&s.id.replace(".csv", ".parquet"))
            .expect("same series from parquet");
        assert_eq!(s.values, p.values);
        assert_eq!(s.mask, p.mask);
        assert_eq!(s.axis, p.axis);
        assert_eq!(s.stats.mean, p.stats.mean);
    }
    assert_eq!(from_csv.report.rows, 10320 + 4032 + 4032);
}

fn long_frame(ids: &[&str], ds: &[i64], y: &[f64]) -> DataFrame {
    df!("unique_id" => ids, "ds" => ds, "y" => f64s(y)).unwrap()
}

fn read_err(df: DataFrame, opts: &IngestOptions) -> IngestError {
    Dataset::read(Source::Frame(df), opts).unwrap_err()
}

#[test]
fn validation_errors_name_the_problem() {
    let opts = IngestOptions::default();
    // Missing column.
    let df = df!("unique_id" => ["a"], "ds" => [0i64], "value" => [1.0]).unwrap();
    let e = read_err(df, &opts);
    assert!(
        matches!(&e, IngestError::MissingColumn { column, .. } if column == "y"),
        "{e}"
    );
    assert!(e.to_string().contains("unique_id, ds, value"), "{e}");
    // Text that is not a number (text columns of numbers are parsed, `NA` is missing).
    let df = df!("unique_id" => ["a"], "ds" => [0i64], "y" => ["x"]).unwrap();
    let e = read_err(df, &opts);
    assert!(
        e.to_string().contains("`x` as a number in column `y`"),
        "{e}"
    );
    let df = df!("unique_id" => ["a", "a"], "ds" => [0i64, 1], "y" => [" 1.5", "NA"]).unwrap();
    let data = Dataset::read(Source::Frame(df), &opts).unwrap();
    assert_eq!(data.series[0].values[0], 1.5);
    assert_eq!(data.series[0].mask, vec![1, 0]);
    // Wrong type.
    let df = df!("unique_id" => ["a"], "ds" => [0.5f64], "y" => [1.0]).unwrap();
    let e = read_err(df, &opts);
    assert!(
        matches!(&e, IngestError::WrongType { column, .. } if column == "ds"),
        "{e}"
    );
    // Unsorted, with the row.
    let df = long_frame(&["a", "a", "b", "b", "b"], &[0, 1, 0, 2, 1], &[1.0; 5]);
    let e = read_err(df.clone(), &opts);
    assert!(
        matches!(&e, IngestError::Unsorted { series, row: 4, .. } if series == "b"),
        "{e}"
    );
    // ... unless sorting is asked for.
    let data = Dataset::read(Source::Frame(df), &opts.clone().with_sort(true)).unwrap();
    assert_eq!(data.series[1].len(), 3);
    // Duplicate timestamps.
    let df = long_frame(&["a", "a", "a"], &[0, 1, 1], &[1.0; 3]);
    let e = read_err(df, &opts);
    assert!(
        matches!(&e, IngestError::DuplicateTimestamp { row: 2, ds: 1, .. }),
        "{e}"
    );
    // Irregular steps.
    let df = long_frame(&["a"; 5], &[0, 10, 20, 30, 33], &[1.0; 5]);
    let e = read_err(df.clone(), &opts);
    assert!(
        matches!(
            &e,
            IngestError::Irregular {
                row: 4,
                step: 3,
                ..
            }
        ),
        "{e}"
    );
    // ... read as a sequence of rows instead.
    let seq = IngestOptions {
        irregular: Irregular::Sequence,
        ..opts.clone()
    };
    let data = Dataset::read(Source::Frame(df), &seq).unwrap();
    assert_eq!(data.series[0].len(), 5);
    assert_eq!(data.series[0].timestamp(4), 33);
    assert_eq!(data.series[0].timestamp(5), 43);
    // Empty.
    let df = long_frame(&[], &[], &[]);
    assert!(matches!(read_err(df, &opts), IngestError::Empty { .. }));
    // All missing.
    let df = long_frame(&["a", "a"], &[0, 1], &[f64::NAN, f64::INFINITY]);
    assert!(matches!(
        read_err(df.clone(), &opts),
        IngestError::AllMissing { .. }
    ));
    let drop = IngestOptions {
        drop_all_missing: true,
        ..opts.clone()
    };
    let df2 = long_frame(
        &["a", "a", "b"],
        &[0, 1, 0],
        &[f64::NAN, f64::INFINITY, 3.0],
    );
    let data = Dataset::read(Source::Frame(df2), &drop).unwrap();
    assert_eq!(data.series.len(), 1);
    assert_eq!(data.report.dropped_all_missing, 1);
    // Too many gaps.
    let df = long_frame(&["a"; 3], &[0, 1, 100_000], &[1.0; 3]);
    assert!(matches!(
        read_err(df, &opts),
        IngestError::TooManyGaps { .. }
    ));
}

#[test]
fn missing_files_and_directories_are_clear_errors() {
    let opts = nab_opts();
    let e = Dataset::read(Source::path("/nonexistent/file.csv"), &opts).unwrap_err();
    assert!(matches!(e, IngestError::NotFound { .. }), "{e}");
    let e = Dataset::read(Source::path(nab_dir()), &opts).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = Dataset::read(Source::path(nab_dir().join("README.md")), &opts).unwrap_err();
    assert!(matches!(e, IngestError::UnknownFormat { .. }), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let header_only = dir.path().join("h.csv");
    std::fs::write(&header_only, "timestamp,value\n").unwrap();
    let e = Dataset::read(Source::path(&header_only), &opts).unwrap_err();
    assert!(matches!(e, IngestError::Empty { .. }), "{e}");
    let empty = dir.path().join("e.csv");
    std::fs::write(&empty, "").unwrap();
    let e = Dataset::read(Source::path(&empty), &opts).unwrap_err();
    assert!(matches!(e, IngestError::Empty { .. }), "{e}");
}

#[test]
fn gaps_and_non_finite_values_become_masked_steps() {
    let h = 3_600_000_000i64;
    let ds: Vec<i64> = [0, 1, 2, 5, 6].iter().map(|k| k * h).collect();
    let df = df!(
        "unique_id" => ["s"; 5],
        "ds" => ds,
        "y" => [1.0, f64::NAN, 3.0, 6.0, f64::NEG_INFINITY],
    )
    .unwrap();
    let df = df
        .lazy()
        .with_column(col("ds").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
        .collect()
        .unwrap();
    let data = Dataset::read(Source::Frame(df), &IngestOptions::default()).unwrap();
    let s = &data.series[0];
    assert_eq!(s.len(), 7);
    assert_eq!(s.mask, vec![1, 0, 1, 0, 0, 1, 0]);
    assert_eq!(s.values, vec![1.0, 0.0, 3.0, 0.0, 0.0, 6.0, 0.0]);
    assert_eq!(data.report.gaps_filled, 2);
    assert_eq!(data.report.non_finite, 2);
    assert_eq!(s.stats.mean, vec![10.0 / 3.0]);
    assert_eq!(data.schema.frequency_text(), "1h");
}

#[test]
fn wide_layout_reads_m4_style_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.csv");
    std::fs::write(
        &path,
        "\"V1\",\"V2\",\"V3\",\"V4\",\"V5\"\n\"H1\",\"1\",\"2\",\"3\",\"4\"\n\"H2\",\"10\",\"20\",,\n",
    )
    .unwrap();
    let opts = IngestOptions::default().with_layout(Layout::Wide);
    let data = Dataset::read(Source::path(&path), &opts).unwrap();
    assert_eq!(data.series.len(), 2);
    assert_eq!(data.series[0].id, "H1");
    assert_eq!(data.series[0].values, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(data.series[1].values, vec![10.0, 20.0]);
    assert_eq!(data.schema.time_kind, TimeKind::Integer);
    assert!(data.schema.features.calendar.is_empty());
}

#[test]
fn ffi_round_trip_is_lossless_and_zero_copy() {
    let df = df!(
        "id" => [Some("a"), None, Some("ccc")],
        "i" => [Some(1i64), None, Some(-3)],
        "f" => [Some(0.5f64), Some(f64::NAN), None],
        "g" => [1.5f32, 2.5, 3.5],
    )
    .unwrap();
    let df = df
        .lazy()
        .with_column(
            col("i")
                .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
                .alias("t"),
        )
        .collect()
        .unwrap();
    let batch = dataframe_to_record_batch(&df).unwrap();
    assert_eq!(batch.num_rows(), 3);
    let back = record_batch_to_dataframe(&batch).unwrap();
    assert!(back.equals_missing(&df), "{back}\n{df}");
    // Numeric buffers are shared, not copied.
    let polars_ptr = df
        .column("f")
        .unwrap()
        .f64()
        .unwrap()
        .downcast_iter()
        .next()
        .unwrap()
        .values()
        .as_ptr();
    let arrow_ptr = batch
        .column_by_name("f")
        .unwrap()
        .as_primitive::<arrow_array::types::Float64Type>()
        .values()
        .as_ptr();
    assert_eq!(polars_ptr, arrow_ptr);
}

#[test]
fn partitioned_reading_gives_the_same_series_as_in_memory() {
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let mut y = Vec::new();
    // Interleave 40 series of different lengths so buckets must regroup rows.
    for t in 0..60i64 {
        for k in 0..40 {
            if t < 20 + k {
                ids.push(format!("series-{k}"));
                ds.push(t);
                y.push((k * 100) as f64 + t as f64);
            }
        }
    }
    let df = df!("unique_id" => ids, "ds" => ds, "y" => y).unwrap();
    let mem = Dataset::read(Source::Frame(df.clone()), &IngestOptions::default()).unwrap();
    let opts = IngestOptions::default().with_max_rows_in_memory(200);
    let part = Dataset::read(Source::Frame(df), &opts).unwrap();
    assert!(part.report.buckets > 1);
    assert_eq!(mem.report.buckets, 1);
    assert_eq!(part.series.len(), 40);
    // The same series in the same order with the same ordinals, however the input is split.
    for (s, p) in mem.series.iter().zip(&part.series) {
        assert_eq!(s.id, p.id);
        assert_eq!(s.index, p.index);
        assert_eq!(s.values, p.values);
        assert_eq!(s.axis, p.axis);
    }
    assert_eq!(part.report.rows, mem.report.rows);
}

#[test]
fn lags_and_calendar_features_land_in_the_right_slots() {
    let h = 3_600_000_000i64;
    let n = 60;
    let df = df!(
        "unique_id" => vec!["a"; n],
        "ds" => (0..n as i64).map(|k| k * h).collect::<Vec<_>>(),
        "y" => (0..n).map(|k| k as f64).collect::<Vec<_>>(),
        "temp" => (0..n).map(|k| -(k as f64)).collect::<Vec<_>>(),
    )
    .unwrap()
    .lazy()
    .with_column(col("ds").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
    .collect()
    .unwrap();
    let opts = IngestOptions::default().with_lags(vec![1, 24]);
    let data = Dataset::read(Source::Frame(df), &opts).unwrap();
    assert_eq!(data.schema.covariate_cols, vec!["temp".to_string()]);
    let f = &data.schema.features;
    assert_eq!(f.n_features(), 4); // hour, weekday, day of year, temp
    let w = WindowData::of(&data.series[0], 30, 5, f);
    // Slot 0 is step 30 = 1970-01-02 06:00 (a Friday).
    assert_eq!(w.values[0], 30.0);
    assert_eq!(w.covariates[0], 6.0 / 23.0 - 0.5);
    assert_eq!(w.covariates[1], 4.0 / 6.0 - 0.5);
    assert_eq!(w.covariates[2], 1.0 / 365.0 - 0.5);
    assert_eq!(w.covariates[3], -30.0);
    assert_eq!(&w.lags[0..2], &[29.0, 6.0]);
    assert_eq!(&w.lag_mask[0..2], &[1, 1]);
    let early = WindowData::of(&data.series[0], 0, 2, f);
    assert_eq!(early.lag_mask, vec![0, 0, 1, 0]);
}

#[test]
fn short_series_policies() {
    let df = long_frame(&["a", "a", "a", "b"], &[0, 1, 2, 0], &[1.0, 2.0, 3.0, 4.0]);
    let data = Dataset::read(Source::Frame(df), &IngestOptions::default()).unwrap();
    let f = data.schema.features.clone();
    let spec = WindowSpec::new(2, 1).with_stride(1);
    let run = |spec: WindowSpec| {
        WindowStream::new(
            data.series.clone().into_iter().map(Ok),
            spec,
            f.clone(),
            "t",
        )
        .collect::<Result<Vec<_>, _>>()
    };
    assert!(matches!(
        run(spec.clone()),
        Err(IngestError::TooShort { series, .. }) if series == "b"
    ));
    let skip = run(spec.clone().with_short_series(ShortSeries::Skip)).unwrap();
    assert_eq!(skip.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let pad = run(spec.with_short_series(ShortSeries::Pad)).unwrap();
    let b = &pad[0];
    assert_eq!(b.num_rows(), 2);
    let starts = b
        .column_by_name(columns::WINDOW_START)
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(starts.value(1), -2);
    let mask = b
        .column_by_name(columns::MASK)
        .unwrap()
        .as_fixed_size_list()
        .value(1);
    assert_eq!(
        mask.as_primitive::<UInt8Type>().values().to_vec(),
        vec![0, 0, 1]
    );
}

#[test]
fn sampling_is_seeded_and_weighted_by_scale() {
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let mut y = Vec::new();
    for (k, level) in [1.0, 1000.0].iter().enumerate() {
        for t in 0..50i64 {
            ids.push(format!("s{k}"));
            ds.push(t);
            y.push(*level);
        }
    }
    let df = df!("unique_id" => ids, "ds" => ds, "y" => y).unwrap();
    let data = Dataset::read(Source::Frame(df), &IngestOptions::default()).unwrap();
    let spec = WindowSpec::new(8, 2);
    let a = sample_windows(&data.series, &spec, &data.schema.features, 500, 7).unwrap();
    let b = sample_windows(&data.series, &spec, &data.schema.features, 500, 7).unwrap();
    assert_eq!(a, b);
    let ids = a
        .column_by_name(columns::UNIQUE_ID)
        .unwrap()
        .as_string::<i32>();
    let big = ids.iter().filter(|i| *i == Some("s1")).count();
    assert!(
        big > 490,
        "the series with 1000x the scale should dominate: {big}"
    );
}

/// A random set of series: lengths, gaps (dropped rows) and missing values.
fn arb_frame() -> impl Strategy<Value = Vec<(usize, Vec<Option<Option<f64>>>)>> {
    // Each series: a list of steps; None = gap (row absent), Some(None) = NaN value.
    prop::collection::vec(
        prop::collection::vec(
            prop_oneof![
                8 => (-100.0..100.0f64).prop_map(|v| Some(Some(v))),
                1 => Just(Some(None)),
                1 => Just(None),
            ],
            1..40,
        ),
        1..6,
    )
    .prop_map(|series| series.into_iter().enumerate().collect())
}

fn frame_of(series: &[(usize, Vec<Option<Option<f64>>>)]) -> DataFrame {
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let mut y = Vec::new();
    for (k, steps) in series {
        for (t, s) in steps.iter().enumerate() {
            if let Some(v) = s {
                ids.push(format!("s{k}"));
                ds.push(t as i64);
                y.push(v.unwrap_or(f64::NAN));
            }
        }
    }
    df!("unique_id" => ids, "ds" => ds, "y" => y).unwrap()
}

fn list_values<T: arrow_array::ArrowPrimitiveType>(
    b: &RecordBatch,
    name: &str,
    row: usize,
) -> Vec<T::Native> {
    b.column_by_name(name)
        .unwrap()
        .as_fixed_size_list()
        .value(row)
        .as_primitive::<T>()
        .values()
        .to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn windows_hold_the_right_values(
        series in arb_frame(),
        context in 1usize..8,
        horizon in 1usize..4,
        stride in 1usize..5,
        lag in 1usize..6,
        batch in 1usize..7,
    ) {
        let df = frame_of(&series);
        prop_assume!(df.height() > 0);
        // Gaps can make a coarser step look regular (0, 2, 4): pin the frequency the oracle assumes.
        let opts = IngestOptions { drop_all_missing: true, lags: vec![lag], frequency: Some("1".into()), ..Default::default() };
        let data = match Dataset::read(Source::Frame(df), &opts) {
            Ok(d) => d,
            Err(IngestError::TooManyGaps { .. }) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        let spec = WindowSpec::new(context, horizon)
            .with_stride(stride)
            .with_batch_size(batch)
            .with_short_series(ShortSeries::Skip);
        let t_len = spec.len();
        let batches: Vec<RecordBatch> =
            WindowStream::new(data.series.clone().into_iter().map(Ok), spec, data.schema.features.clone(), "p")
                .collect::<Result<_, _>>()
                .unwrap();
        let mut per_series: std::collections::HashMap<String, Vec<i64>> = Default::default();
        for b in &batches {
            prop_assert!(b.num_rows() <= batch && b.num_rows() > 0);
            let ids = b.column_by_name(columns::UNIQUE_ID).unwrap().as_string::<i32>();
            let starts = b.column_by_name(columns::WINDOW_START).unwrap().as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                let id = ids.value(r);
                let s = data.get(id).unwrap();
                let start = starts.value(r);
                per_series.entry(id.to_string()).or_default().push(start);
                let values = list_values::<Float32Type>(b, columns::VALUES, r);
                let mask = list_values::<UInt8Type>(b, columns::MASK, r);
                let lags = list_values::<Float32Type>(b, columns::LAGS, r);
                let lag_mask = list_values::<UInt8Type>(b, columns::LAG_MASK, r);
                prop_assert_eq!(values.len(), t_len);
                for t in 0..t_len {
                    let p = start + t as i64;
                    // The original input: series k's step p, if a row with a finite value.
                    let k: usize = id[1..].parse().unwrap();
                    let t0 = series[k].1.iter().position(|s| s.is_some()).unwrap() as i64;
                    let original = if p < 0 { None } else {
                        series[k].1.get((t0 + p) as usize).cloned().flatten().flatten()
                    };
                    match original {
                        Some(v) => {
                            prop_assert_eq!(mask[t], 1);
                            prop_assert_eq!(values[t], v as f32);
                        }
                        None => {
                            prop_assert_eq!(mask[t], 0);
                            prop_assert_eq!(values[t], 0.0);
                        }
                    }
                    let lagged = s.value(p - lag as i64, 0);
                    prop_assert_eq!(lag_mask[t] == 1, lagged.is_some());
                    prop_assert_eq!(lags[t], lagged.map(|v| v as f32).unwrap_or(0.0));
                }
            }
        }
        for s in &data.series {
            let starts = per_series.get(&s.id).cloned().unwrap_or_default();
            if s.len() < t_len {
                prop_assert!(starts.is_empty());
                continue;
            }
            // Aligned to the end, stride apart, all within the series.
            let expected = (s.len() - t_len) / stride + 1;
            prop_assert_eq!(starts.len(), expected);
            prop_assert_eq!(*starts.last().unwrap(), (s.len() - t_len) as i64);
            prop_assert!(starts.windows(2).all(|w| w[1] - w[0] == stride as i64));
            prop_assert!(starts[0] >= 0);
        }
    }
}

#[test]
fn multivariate_dates_and_lazy_frames() {
    let days = [0i32, 1, 2, 4];
    let lf = df!(
        "id" => [7i64, 7, 7, 7],
        "day" => days,
        "a" => [1.0, 2.0, f64::NAN, 4.0],
        "b" => [10i64, 20, 30, 40],
        "promo" => [0.0, 1.0, 0.0, 1.0],
    )
    .unwrap()
    .lazy()
    .with_column(col("day").cast(DataType::Date));
    let opts = IngestOptions::default()
        .with_id_col("id")
        .with_time_col("day")
        .with_target_cols(["a", "b"]);
    let data = Dataset::read(Source::lazy(lf), &opts).unwrap();
    let s = &data.series[0];
    assert_eq!(s.id, "7");
    assert_eq!(data.schema.time_kind, TimeKind::Date);
    assert_eq!(data.schema.frequency_text(), "1d");
    assert_eq!(data.schema.covariate_cols, vec!["promo".to_string()]);
    assert_eq!(
        data.schema.features.calendar,
        vec![
            CalendarFeature::DayOfWeek,
            CalendarFeature::DayOfMonth,
            CalendarFeature::DayOfYear
        ]
    );
    assert_eq!(s.len(), 5);
    assert_eq!(s.n_targets, 2);
    // Step 2 of `a` is NaN, step 3 is a gap in both.
    assert_eq!(s.mask, vec![1, 1, 1, 1, 0, 1, 0, 0, 1, 1]);
    assert_eq!(s.values[8..], [4.0, 40.0]);
    assert_eq!(s.stats.observed, vec![3, 4]);
    assert_eq!(s.stats.mean_abs, vec![7.0 / 3.0, 25.0]);
    assert_eq!(s.timestamp(5), 5);
    let w = WindowData::of(s, 3, 2, &data.schema.features);
    assert_eq!(w.values, vec![0.0, 0.0, 4.0, 40.0]);
    assert_eq!(w.covariates.len(), 2 * 4);
    assert_eq!(w.covariates[7], 1.0); // promo on day 4
}
