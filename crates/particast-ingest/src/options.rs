//! Plain option structs with defaults, shared by the CLI, pipeline files and the Rust API.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// File format of an input path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum InputFormat {
    /// Tell by extension (`.csv`, `.parquet`/`.pq`).
    #[default]
    Auto,
    /// Comma (or `separator`) separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// An Arrow IPC stream or file (`.arrow`, `.arrows`, `.ipc`), read whole into memory.
    Arrow,
}

/// How series are laid out in the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Layout {
    /// One row per observation: id, time, target(s), covariates (the Nixtla convention).
    #[default]
    Long,
    /// One row per series: the id first, then the values in time order, padded with empty cells
    /// (the M4 convention). `ds` becomes the step counter 0..n.
    Wide,
}

/// What to do with a series shorter than the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ShortSeries {
    /// Fail with [`crate::IngestError::TooShort`].
    #[default]
    Error,
    /// Leave it out (counted in the report).
    Skip,
    /// Emit one window padded at the front with missing steps.
    Pad,
}

/// What to do with timestamps that are not on a regular grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Irregular {
    /// Fail with [`crate::IngestError::Irregular`] (or `DuplicateTimestamp`).
    #[default]
    Error,
    /// Treat the rows of a series as consecutive steps whatever their timestamps (duplicates and
    /// odd steps allowed, no gap filling); the real timestamps are kept per step. This is how
    /// streams with jitter (such as some NAB files) are scored row by row.
    Sequence,
}

/// What to do with several rows of one series at the same timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Duplicates {
    /// Fail with [`crate::IngestError::DuplicateTimestamp`], naming series, timestamp and row.
    #[default]
    Error,
    /// Keep the first row of each timestamp (in input order) and drop the others.
    First,
    /// Keep the last row of each timestamp (in input order).
    Last,
    /// Average the rows of each timestamp, target by target and covariate by covariate, over
    /// the values that are present (missing when none is).
    Mean,
}

impl Duplicates {
    /// The option's name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Duplicates::Error => "error",
            Duplicates::First => "first",
            Duplicates::Last => "last",
            Duplicates::Mean => "mean",
        }
    }
}

/// Options for reading and validating series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestOptions {
    /// File format (by extension when `auto`).
    pub format: InputFormat,
    /// Long or wide table.
    pub layout: Layout,
    /// Series id column (long and wide). Ignored when `id_from_path` is set.
    pub id_col: String,
    /// Use each file's path (relative to the fixed part of the glob) as the series id: one series
    /// per file, as in NAB.
    pub id_from_path: bool,
    /// Time column (long layout).
    pub time_col: String,
    /// Target column(s) (long layout); several make a multivariate series.
    pub target_cols: Vec<String>,
    /// Covariate columns; `None` takes the columns of `futr_exog`, `hist_exog` and
    /// `stat_exog` when any is given, else every other numeric column. A covariate not named
    /// in `hist_exog` or `stat_exog` is a future covariate.
    pub covariate_cols: Option<Vec<String>>,
    /// Future (known-ahead) covariates: calendar-like columns, promotions, weather forecasts.
    /// The model sees the value of the step it predicts; forecasting needs their values for
    /// every step of the horizon (a future frame).
    pub futr_exog: Vec<String>,
    /// Historical covariates, known only up to now: the model sees the previous step's value
    /// (with a flag saying whether it is known), and learns without them on the steps it
    /// forecasts.
    pub hist_exog: Vec<String>,
    /// Static covariates: one value per series (the column must be constant within a series).
    pub stat_exog: Vec<String>,
    /// Sort rows by time within each series instead of failing on unsorted input.
    pub sort: bool,
    /// Timestamps off a regular grid.
    pub irregular: Irregular,
    /// Rows of one series that share a timestamp (long layout; not used with
    /// `irregular = "sequence"`, where every row is its own step).
    pub duplicates: Duplicates,
    /// strftime format of a text time column (`%d/%m/%Y`, `%Y-%m-%d %H:%M`; `%Y`, `%Y-%m` and
    /// `%YQ%q` read years, months and quarters as the first day of their period, also from an
    /// integer column of years); the shape is told from the values when absent.
    pub time_format: Option<String>,
    /// Read an integer time column as a Unix epoch in these units (`s`, `ms`, `us`, `ns`)
    /// instead of a step counter.
    pub time_unit: Option<String>,
    /// Frequency override (`30min`, `1h`, `1d`, `1mo`, or an integer step); inferred when absent.
    pub frequency: Option<String>,
    /// CSV field separator.
    pub separator: char,
    /// Derive calendar features from `ds`.
    pub calendar: bool,
    /// Target lags to add as features, in steps (e.g. `[24, 168]` for hourly data).
    pub lags: Vec<usize>,
    /// Above this many rows the input is partitioned into buckets of series on disk and
    /// processed one bucket at a time, so memory stays bounded.
    pub max_rows_in_memory: usize,
    /// A series may grow by at most this factor when its gaps are filled.
    pub max_gap_ratio: f64,
    /// Leave out series without any observed value instead of failing.
    pub drop_all_missing: bool,
    /// Folder for bucket files (the system temp folder when absent).
    pub spill_dir: Option<PathBuf>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            format: InputFormat::Auto,
            layout: Layout::Long,
            id_col: "unique_id".into(),
            id_from_path: false,
            time_col: "ds".into(),
            target_cols: vec!["y".into()],
            covariate_cols: None,
            futr_exog: Vec::new(),
            hist_exog: Vec::new(),
            stat_exog: Vec::new(),
            sort: false,
            irregular: Irregular::Error,
            duplicates: Duplicates::Error,
            time_format: None,
            time_unit: None,
            frequency: None,
            separator: ',',
            calendar: true,
            lags: Vec::new(),
            max_rows_in_memory: 4_000_000,
            max_gap_ratio: 10.0,
            drop_all_missing: false,
            spill_dir: None,
        }
    }
}

impl IngestOptions {
    /// The covariate columns to read: `covariate_cols`, else the columns of `futr_exog`,
    /// `hist_exog` and `stat_exog` in that order when any is given, else `None` (every other
    /// numeric column).
    pub fn covariate_columns(&self) -> Option<Vec<String>> {
        if let Some(c) = &self.covariate_cols {
            return Some(c.clone());
        }
        let named: Vec<String> = self
            .futr_exog
            .iter()
            .chain(&self.hist_exog)
            .chain(&self.stat_exog)
            .cloned()
            .collect();
        (!named.is_empty()).then_some(named)
    }
    /// Sets the id column.
    pub fn with_id_col(mut self, c: impl Into<String>) -> Self {
        self.id_col = c.into();
        self
    }
    /// Sets the time column.
    pub fn with_time_col(mut self, c: impl Into<String>) -> Self {
        self.time_col = c.into();
        self
    }
    /// Sets the target columns.
    pub fn with_target_cols<S: Into<String>>(mut self, c: impl IntoIterator<Item = S>) -> Self {
        self.target_cols = c.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
    /// Sets the lags.
    pub fn with_lags(mut self, lags: Vec<usize>) -> Self {
        self.lags = lags;
        self
    }
    /// Uses file paths as series ids.
    pub fn with_id_from_path(mut self, on: bool) -> Self {
        self.id_from_path = on;
        self
    }
    /// Sorts within series.
    pub fn with_sort(mut self, on: bool) -> Self {
        self.sort = on;
        self
    }
    /// Sets the policy for duplicate timestamps.
    pub fn with_duplicates(mut self, policy: Duplicates) -> Self {
        self.duplicates = policy;
        self
    }
    /// Sets the in-memory row limit before partitioning.
    pub fn with_max_rows_in_memory(mut self, n: usize) -> Self {
        self.max_rows_in_memory = n;
        self
    }
}

/// How training windows are cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowSpec {
    /// Conditioning steps.
    pub context: usize,
    /// Prediction steps.
    pub horizon: usize,
    /// Distance between window starts. Windows are aligned to the end of each series, so the
    /// last window always ends on the last step.
    pub stride: usize,
    /// Windows per record batch.
    pub batch_size: usize,
    /// Series shorter than `context + horizon`.
    pub short_series: ShortSeries,
    /// How [`crate::sample_windows`] picks the series of each window.
    pub weighting: Weighting,
}

/// How randomly sampled training windows are spread over the series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Weighting {
    /// In proportion to each series' mean |y| (DeepAR's rule: the loud series of a panel get
    /// most of the steps; right when the loss that matters is in original units).
    #[default]
    Scale,
    /// Every series equally often (N-BEATS' and GluonTS' rule: right for scale-free metrics
    /// such as MASE and sMAPE, where a small series counts as much as a large one).
    Series,
}

impl std::str::FromStr for Weighting {
    type Err = String;
    /// `scale` or `series`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "scale" => Ok(Weighting::Scale),
            "series" => Ok(Weighting::Series),
            _ => Err(format!("`{s}`: expected scale or series")),
        }
    }
}

impl Default for WindowSpec {
    fn default() -> Self {
        WindowSpec {
            context: 168,
            horizon: 48,
            stride: 24,
            batch_size: 256,
            short_series: ShortSeries::Error,
            weighting: Weighting::Scale,
        }
    }
}

impl WindowSpec {
    /// A spec with this context and horizon and defaults otherwise.
    pub fn new(context: usize, horizon: usize) -> Self {
        WindowSpec {
            context,
            horizon,
            ..Default::default()
        }
    }
    /// Sets the stride.
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    /// Sets the batch size.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets the short-series policy.
    pub fn with_short_series(mut self, p: ShortSeries) -> Self {
        self.short_series = p;
        self
    }
    /// Window length `context + horizon`.
    pub fn len(&self) -> usize {
        self.context + self.horizon
    }
    /// True when the window has no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
