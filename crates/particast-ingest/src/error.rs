//! The one error type of the ingestion crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading, validating and windowing time series.
///
/// Every variant names the input (`source`: a file, a glob, or `<dataframe>`) and, where it
/// applies, the column, the series id and the row (0-based, counted over the rows of the input as
/// read, before any sorting) that caused it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The path or glob does not name any readable input.
    #[error("{source_name}: no such file or no file matches")]
    NotFound {
        /// The path or pattern given.
        source_name: String,
    },
    /// The format could not be told from the file name.
    #[error("{source_name}: cannot tell the format from the extension; use .csv or .parquet, or set the input format")]
    UnknownFormat {
        /// The path given.
        source_name: String,
    },
    /// polars (or the file system, or arrow-rs) failed to read or process the input.
    #[error("{source_name}: cannot read input: {}", first_line(&source.to_string()))]
    Read {
        /// The input being read.
        source_name: String,
        /// The cause (a polars error, most often).
        #[source]
        source: BoxedError,
    },
    /// `-` names standard input, but standard input is a terminal.
    #[error("`-` reads standard input, which is a terminal: pipe the data in (`cat data.csv | particast ...`)")]
    StdinTerminal,
    /// The input has no rows (or no data rows under a header).
    #[error("{source_name}: the input is empty (no data rows)")]
    Empty {
        /// The input.
        source_name: String,
    },
    /// A required column is absent.
    #[error("{source_name}: missing column `{column}` (the input has: {available})")]
    MissingColumn {
        /// The input.
        source_name: String,
        /// The column that was asked for.
        column: String,
        /// The columns that are there, comma separated.
        available: String,
    },
    /// A column has a type that cannot serve its role.
    #[error("{source_name}: column `{column}` has type {found}, expected {expected}")]
    WrongType {
        /// The input.
        source_name: String,
        /// The column.
        column: String,
        /// What the role needs.
        expected: String,
        /// What the input has.
        found: String,
    },
    /// Timestamps of one series go backwards and sorting was not asked for.
    #[error("{source_name}: series `{series}` is not sorted by `{column}` at row {row} ({ds} comes after {prev}); sort the input or set sort = true")]
    Unsorted {
        /// The input.
        source_name: String,
        /// The time column.
        column: String,
        /// The series id.
        series: String,
        /// The row where time goes backwards.
        row: u64,
        /// The timestamp at that row (physical value, in the column's unit).
        ds: i64,
        /// The timestamp before it.
        prev: i64,
    },
    /// A text time column whose values fit none of the shapes particast reads.
    #[error("{source_name}: column `{column}` holds `{value}`, which is none of the time shapes tried: {tried}; set time_format (--time-format, strftime such as %Y-%m-%d %H:%M) or read the column as an integer step")]
    TimeFormat {
        /// The input.
        source_name: String,
        /// The time column.
        column: String,
        /// The first value that fits no shape.
        value: String,
        /// The shapes tried.
        tried: String,
    },
    /// Two rows of one series have the same timestamp.
    #[error("{source_name}: series `{series}` has a duplicate timestamp {ds} in `{column}` at row {row}; set duplicates = \"first\", \"last\" or \"mean\" to merge such rows")]
    DuplicateTimestamp {
        /// The input.
        source_name: String,
        /// The time column.
        column: String,
        /// The series id.
        series: String,
        /// The row of the second occurrence.
        row: u64,
        /// The repeated timestamp (physical value).
        ds: i64,
    },
    /// The steps of a series are not multiples of one frequency.
    #[error("{source_name}: series `{series}` has an irregular step at row {row}: {step} is not a multiple of the inferred frequency {frequency}")]
    Irregular {
        /// The input.
        source_name: String,
        /// The series id.
        series: String,
        /// The row where the odd step ends.
        row: u64,
        /// The step found (physical units).
        step: i64,
        /// The frequency inferred for the series.
        frequency: String,
    },
    /// Filling the gaps of a series would create an unreasonable number of missing steps.
    #[error("{source_name}: series `{series}` would grow from {observed} rows to {filled} steps when its gaps are filled at frequency {frequency}; the timestamps look wrong")]
    TooManyGaps {
        /// The input.
        source_name: String,
        /// The series id.
        series: String,
        /// Rows present.
        observed: usize,
        /// Steps after filling.
        filled: usize,
        /// Frequency used.
        frequency: String,
    },
    /// A null id.
    #[error("{source_name}: null series id in column `{column}` at row {row}")]
    NullId {
        /// The input.
        source_name: String,
        /// The id column.
        column: String,
        /// The row.
        row: u64,
    },
    /// A null timestamp.
    #[error(
        "{source_name}: null or unreadable timestamp in column `{column}` for series `{series}` at row {row}"
    )]
    NullTimestamp {
        /// The input.
        source_name: String,
        /// The time column.
        column: String,
        /// The series id.
        series: String,
        /// The row.
        row: u64,
    },
    /// A series is shorter than a window and the policy says to fail.
    #[error("{source_name}: series `{series}` has {len} steps, fewer than the window of {window} (set short_series = \"skip\" or \"pad\")")]
    TooShort {
        /// The input.
        source_name: String,
        /// The series id.
        series: String,
        /// Its length after gap filling.
        len: usize,
        /// The window length asked for.
        window: usize,
    },
    /// A target value in a text file that is not a number.
    #[error("{source_name}: column `{column}` holds `{value}`, not a number, for series `{series}` at row {row}")]
    NotANumber {
        /// The file.
        source_name: String,
        /// The target column.
        column: String,
        /// The series id (empty when unknown).
        series: String,
        /// The row (0-based, data rows).
        row: u64,
        /// The text found.
        value: String,
    },
    /// A target value too large for the model to represent (see [`crate::MAX_ABS_VALUE`]).
    #[error("{source_name}: value {value:e} in `{column}` for series `{series}` at row {row} is beyond +-1e30, the largest magnitude particast models; rescale the column or mark the value missing")]
    OutOfRange {
        /// The input.
        source_name: String,
        /// The target column.
        column: String,
        /// The series id.
        series: String,
        /// The row.
        row: u64,
        /// The value.
        value: f64,
    },
    /// A series has no observed value at all.
    #[error("{source_name}: series `{series}` has no observed (finite, non-null) value")]
    AllMissing {
        /// The input.
        source_name: String,
        /// The series id.
        series: String,
    },
    /// The options contradict each other or the data.
    #[error("invalid ingestion options: {0}")]
    Options(String),
    /// Conversion between polars and arrow-rs failed.
    #[error("arrow conversion of column `{column}`: {source}")]
    Arrow {
        /// The column.
        column: String,
        /// The cause (an arrow-rs or polars error, or what was unexpected).
        #[source]
        source: BoxedError,
    },
    /// An I/O error on a spill file or an output.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// The cause of a [`IngestError::Read`], kept whole for `Error::source`.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync>;

impl IngestError {
    pub(crate) fn read(source_name: &str, err: impl Into<BoxedError>) -> Self {
        IngestError::Read {
            source_name: source_name.to_string(),
            source: err.into(),
        }
    }

    /// True when the input (or the options) is at fault, false for a failure of the machine
    /// (an I/O error on a readable path, a spill file).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, IngestError::Io { .. })
    }
}

/// polars errors are long and carry backtraces hints; keep the first meaningful line.
fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}
