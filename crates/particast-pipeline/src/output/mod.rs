//! The file formats of the stages' outputs, each writer next to its reader:
//!
//! - [`scores`]: `unique_id` (Utf8), `ds` (the input's time type), one Float64 column per
//!   target (the input's names), `particast-nll`, `particast-pit`, `particast-anomaly`
//!   (Float64), `particast-flag` (Boolean); one row per input row, nulls where the value is
//!   missing;
//! - [`forecasts`] (Nixtla naming): `unique_id`, `ds`, `particast` (mean), `particast-median`,
//!   `particast-lo-{level}` and `particast-hi-{level}` per level, and in particle mode
//!   `particast-weight-{k}`, `particast-mu-{k}`, `particast-std-{k}` (and `particast-df-{k}`
//!   for Student-t heads) for k in 0..L, all Float64; read back by
//!   [`forecasts::read_forecasts`];
//! - [`states`]: one row per series with what incremental scoring needs;
//! - [`metrics`]: the evaluation's metrics as JSON.
//!
//! Columns are built as arrow-rs record batches and turned into polars frames
//! ([`to_dataframe`]) that [`crate::sink`] writes (Parquet or Arrow IPC, atomically).

pub mod forecasts;
pub mod metrics;
pub mod scores;
pub mod states;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use particast_ingest::ffi::record_batch_to_dataframe;
use particast_ingest::time::TimeUnit as ITimeUnit;
use particast_ingest::TimeKind;
use polars::prelude::*;
use std::sync::Arc;

use crate::error::{PipelineError, Result};

pub use forecasts::{forecast_batch, read_forecasts};
pub use scores::{read_scores, scores_batch};

pub(crate) fn batch(fields: Vec<(String, ArrayRef)>) -> Result<RecordBatch> {
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

/// A level as written in column names: `95`, `90.5`.
pub fn level_name(l: f64) -> String {
    if l.fract() == 0.0 {
        format!("{}", l as i64)
    } else {
        format!("{l}")
    }
}

/// The time kind of an output's `ds` column (the inverse of [`to_dataframe`]'s cast); `None`
/// for a type no output has.
pub fn time_kind_of(dtype: &DataType) -> Option<TimeKind> {
    Some(match dtype {
        DataType::Datetime(unit, tz) => TimeKind::Datetime {
            unit: match unit {
                TimeUnit::Nanoseconds => ITimeUnit::Ns,
                TimeUnit::Microseconds => ITimeUnit::Us,
                TimeUnit::Milliseconds => ITimeUnit::Ms,
            },
            tz: tz.as_ref().map(|t| t.to_string()),
        },
        DataType::Date => TimeKind::Date,
        DataType::Int64 => TimeKind::Integer,
        _ => return None,
    })
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
            source: e.into(),
        })
}
