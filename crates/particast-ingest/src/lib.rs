//! # particast-ingest
//!
//! Reads time series with polars, lazily, validates them, and hands the rest of particast
//! windows as arrow-rs [`RecordBatch`](arrow_array::RecordBatch)es.
//!
//! **Inputs** ([`Source`]): a Parquet, CSV or Arrow IPC file, a glob of them, or a polars
//! `LazyFrame` / `DataFrame`; standard input, a FIFO or a device is copied to a temporary file
//! first and read under its own name ([`spool`]: [`spool::Input::open`] decides for a path a
//! user typed; [`Source::Named`]); [`ipc`] reads Arrow IPC and whole Parquet tables. **Layouts** ([`Layout`]): *long* (`unique_id`, `ds`, `y`, names configurable, several
//! targets for multivariate series, other numeric columns as covariates) and *wide* (M4: one row
//! per series, id first, values padded with empty cells; `ds` becomes 0..n).
//!
//! **Validation** ([`IngestError`], every variant naming file, column, series and row): missing
//! or wrongly typed columns, unsorted (unless [`IngestOptions::sort`]) or duplicate timestamps
//! (unless [`IngestOptions::duplicates`] keeps the first or last row or averages them),
//! irregular steps, null ids, empty input. Each series' frequency is inferred (most common step;
//! calendar months for monthly data); gaps become missing steps (mask 0), non-finite values are
//! treated as missing; both are counted in the [`IngestReport`].
//!
//! **Bounded memory** ([`SeriesStream`]): inputs above [`IngestOptions::max_rows_in_memory`] rows
//! are streamed once through polars' streaming engine into buckets of series on disk (consecutive in order of first appearance), and each
//! bucket is processed on its own. polars hands each bucket to arrow-rs through the Arrow C Data
//! Interface ([`ffi`]), zero-copy for numeric columns.
//!
//! **Features**: calendar features chosen by frequency ([`CalendarFeature`], in [-0.5, 0.5]),
//! exogenous covariates, and target lags ([`IngestOptions::lags`]).
//!
//! ## Window batch schema
//! [`WindowStream`] (strided, aligned to series ends) and [`sample_windows`] (seeded, weighted
//! by scale or by series; [`sample_window_starts`] gives the same draws as positions, which
//! training reads directly) produce batches with `T = context + horizon`, `D` targets, `C` features
//! (calendar then covariates) and `K` lags:
//!
//! | column | Arrow type | contents |
//! |---|---|---|
//! | `unique_id` | Utf8 | series id |
//! | `series_index` | UInt32 | ordinal of the series in the input |
//! | `window_start` | Int64 | step of slot 0 in the series (negative when padded) |
//! | `ds_start` | Int64 | physical timestamp of slot 0 (unit of the time column) |
//! | `values` | FixedSizeList<Float32, T·D> | `y[t][d]` (raw units), 0 where missing |
//! | `mask` | FixedSizeList<UInt8, T·D> | 1 observed, 0 missing |
//! | `covariates` | FixedSizeList<Float32, T·C> | features `[t][c]` |
//! | `lags` | FixedSizeList<Float32, T·K·D> | `y[t - lag_k][d]`, 0 where missing |
//! | `lag_mask` | FixedSizeList<UInt8, T·K·D> | 1 where the lagged value is observed |
//!
//! No window crosses two series. Scaling is left to the model (it is per window).
//!
//! ## Example
//! ```
//! use particast_ingest::{Dataset, IngestOptions, Source, WindowSpec, WindowStream};
//! use polars::prelude::*;
//!
//! let df = df!(
//!     "unique_id" => ["a", "a", "a", "a", "b", "b", "b", "b"],
//!     "ds" => [0i64, 1, 3, 4, 0, 1, 2, 3],
//!     "y" => [1.0, 2.0, 4.0, 5.0, 10.0, 11.0, 12.0, 13.0],
//! ).unwrap();
//! let data = Dataset::read(Source::Frame(df), &IngestOptions::default()).unwrap();
//! assert_eq!(data.report.gaps_filled, 1); // a's step 2 is missing
//! let spec = WindowSpec::new(3, 1).with_stride(1);
//! let series = data.series.clone().into_iter().map(Ok);
//! let batches: Vec<_> = WindowStream::new(series, spec, data.schema.features.clone(), "<df>")
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
//! ```
#![deny(missing_docs)]

mod error;
pub mod ffi;
pub mod ipc;
mod options;
mod reader;
mod series;
mod source;
pub mod spool;
pub mod time;
mod timeparse;
mod window;

pub use error::{BoxedError, IngestError, Result};
pub use options::{
    Duplicates, IngestOptions, InputFormat, Irregular, Layout, ShortSeries, Weighting, WindowSpec,
};
pub use reader::{Dataset, SeriesStream};
pub use series::{
    observed_min, DataSchema, FeatureSpec, IngestReport, PreparedSeries, SeriesStats, MAX_ABS_VALUE,
};
pub use source::Source;
pub use time::{CalendarFeature, Frequency, TimeAxis, TimeKind};
pub use window::{
    columns, sample_window_starts, sample_windows, window_schema, window_starts,
    WindowBatchBuilder, WindowData, WindowStream,
};

/// polars, re-exported so callers build frames with the same version.
pub use polars;
