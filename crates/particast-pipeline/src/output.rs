//! Stage outputs as arrow-rs record batches, and Parquet files written atomically through polars.
//!
//! Score columns: `unique_id` (Utf8), `ds` (the input's time type), one Float64 column per target
//! (the input's names), `particast-nll`, `particast-pit`, `particast-anomaly` (Float64),
//! `particast-flag` (Boolean); one row per input row, nulls where the value is missing.
//!
//! Forecast columns (Nixtla naming): `unique_id`, `ds`, `particast` (mean), `particast-median`,
//! `particast-lo-{level}` and `particast-hi-{level}` per level, and in particle mode
//! `particast-weight-{k}`, `particast-mu-{k}`, `particast-std-{k}` (and `particast-df-{k}` for
//! Student-t heads) for k in 0..L. All Float64.

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use particast_ingest::ffi::record_batch_to_dataframe;
use particast_ingest::time::TimeUnit as ITimeUnit;
use particast_ingest::{DataSchema, TimeKind};
use polars::prelude::*;
use std::path::Path;
use std::sync::Arc;

use crate::error::{PipelineError, Result};
use crate::forecast::{Mode, SeriesForecast};
use crate::score::SeriesScores;

fn batch(fields: Vec<(String, ArrayRef)>) -> Result<RecordBatch> {
    let schema = Schema::new(
        fields
            .iter()
            .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        fields.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(|e| PipelineError::Config(format!("building output batch: {e}")))
}

/// The score columns of some series, input rows only.
pub fn scores_batch(scores: &[SeriesScores], schema: &DataSchema) -> Result<RecordBatch> {
    let d = schema.target_cols.len();
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let mut ys: Vec<Vec<Option<f64>>> = vec![Vec::new(); d];
    let (mut nll, mut pit, mut anomaly, mut flag) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in scores {
        for t in 0..s.ds.len() {
            if !s.present[t] {
                continue;
            }
            ids.push(s.id.clone());
            ds.push(s.ds[t]);
            for (k, col) in ys.iter_mut().enumerate() {
                col.push(s.y[t * d + k]);
            }
            nll.push(s.nll[t]);
            pit.push(s.pit[t]);
            anomaly.push(s.anomaly[t]);
            flag.push(s.flag[t]);
        }
    }
    let mut fields: Vec<(String, ArrayRef)> = vec![
        ("unique_id".into(), Arc::new(StringArray::from(ids))),
        ("ds".into(), Arc::new(Int64Array::from(ds))),
    ];
    for (name, col) in schema.target_cols.iter().zip(ys) {
        fields.push((name.clone(), Arc::new(Float64Array::from(col))));
    }
    fields.push(("particast-nll".into(), Arc::new(Float64Array::from(nll))));
    fields.push(("particast-pit".into(), Arc::new(Float64Array::from(pit))));
    fields.push((
        "particast-anomaly".into(),
        Arc::new(Float64Array::from(anomaly)),
    ));
    fields.push(("particast-flag".into(), Arc::new(BooleanArray::from(flag))));
    batch(fields)
}

fn level_name(l: f64) -> String {
    if l.fract() == 0.0 {
        format!("{}", l as i64)
    } else {
        format!("{l}")
    }
}

/// The forecast columns of some series.
pub fn forecast_batch(
    forecasts: &[SeriesForecast],
    levels: &[f64],
    mode: Mode,
    particles: usize,
    student_t: bool,
) -> Result<RecordBatch> {
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let (mut mean, mut median) = (Vec::new(), Vec::new());
    let mut lo: Vec<Vec<f64>> = vec![Vec::new(); levels.len()];
    let mut hi: Vec<Vec<f64>> = vec![Vec::new(); levels.len()];
    // Mixture columns in particle mode, unless no step has a mixture (a transformed model
    // reports quantiles only).
    let per_particle = mode == Mode::Particle
        && forecasts
            .iter()
            .any(|f| f.steps.iter().any(|s| !s.mixture.is_empty()));
    let mut comp: Vec<[Vec<f64>; 4]> = (0..if per_particle { particles } else { 0 })
        .map(|_| [Vec::new(), Vec::new(), Vec::new(), Vec::new()])
        .collect();
    for f in forecasts {
        for s in &f.steps {
            ids.push(f.id.clone());
            ds.push(s.ds);
            mean.push(s.mean);
            median.push(s.median);
            for (i, (a, b)) in s.intervals.iter().enumerate() {
                lo[i].push(*a);
                hi[i].push(*b);
            }
            for (k, c) in comp.iter_mut().enumerate() {
                let m = s.mixture.get(k);
                c[0].push(m.map(|m| m.weight).unwrap_or(f64::NAN));
                c[1].push(m.map(|m| m.mu).unwrap_or(f64::NAN));
                c[2].push(m.map(|m| m.sigma).unwrap_or(f64::NAN));
                c[3].push(m.map(|m| m.nu).unwrap_or(f64::NAN));
            }
        }
    }
    let mut fields: Vec<(String, ArrayRef)> = vec![
        ("unique_id".into(), Arc::new(StringArray::from(ids))),
        ("ds".into(), Arc::new(Int64Array::from(ds))),
        ("particast".into(), Arc::new(Float64Array::from(mean))),
        (
            "particast-median".into(),
            Arc::new(Float64Array::from(median)),
        ),
    ];
    for (i, l) in levels.iter().enumerate() {
        fields.push((
            format!("particast-lo-{}", level_name(*l)),
            Arc::new(Float64Array::from(std::mem::take(&mut lo[i]))),
        ));
        fields.push((
            format!("particast-hi-{}", level_name(*l)),
            Arc::new(Float64Array::from(std::mem::take(&mut hi[i]))),
        ));
    }
    for (k, c) in comp.into_iter().enumerate() {
        let [w, mu, sd, nu] = c;
        fields.push((
            format!("particast-weight-{k}"),
            Arc::new(Float64Array::from(w)),
        ));
        fields.push((
            format!("particast-mu-{k}"),
            Arc::new(Float64Array::from(mu)),
        ));
        fields.push((
            format!("particast-std-{k}"),
            Arc::new(Float64Array::from(sd)),
        ));
        if student_t {
            fields.push((
                format!("particast-df-{k}"),
                Arc::new(Float64Array::from(nu)),
            ));
        }
    }
    batch(fields)
}

/// Converts an output batch to a polars frame, giving `ds` back the input's time type.
pub fn to_dataframe(batch: &RecordBatch, time_kind: &TimeKind) -> Result<DataFrame> {
    let df = record_batch_to_dataframe(batch)?;
    let dtype = match time_kind {
        TimeKind::Datetime { unit, tz } => DataType::Datetime(
            match unit {
                ITimeUnit::Ns => TimeUnit::Nanoseconds,
                ITimeUnit::Us => TimeUnit::Microseconds,
                ITimeUnit::Ms => TimeUnit::Milliseconds,
            },
            tz.as_ref().map(|t| {
                // SAFETY of meaning: the name came from a polars column of this build.
                unsafe { TimeZone::new_unchecked(t.as_str()) }
            }),
        ),
        TimeKind::Date => DataType::Date,
        TimeKind::Integer => DataType::Int64,
    };
    df.lazy()
        .with_column(col("ds").cast(dtype))
        .collect()
        .map_err(|e| PipelineError::Polars {
            context: "converting output".into(),
            message: e.to_string(),
        })
}

/// Writes a frame as Parquet through [`crate::sink::write_with`]: atomically for a file,
/// through for a pipe, device or standard output (`-`); a failed write leaves the previous file.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    crate::sink::write_frame(df, path, crate::sink::OutputFormat::Parquet)
}
