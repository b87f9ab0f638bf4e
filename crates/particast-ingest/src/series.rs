//! Validated, gap-filled series and their statistics, built from canonical Arrow batches.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::error::{IngestError, Result};
use crate::options::Duplicates;
use crate::time::{
    axis_positions, infer_frequency, mode_step, CalendarFeature, Frequency, TimeAxis, TimeKind,
};

/// Column names of the canonical frame every input is brought to before series are built.
pub(crate) mod canon {
    pub const ID: &str = "unique_id";
    pub const DS: &str = "ds";
    pub const ROW: &str = "__particast_row";
    pub const FILE: &str = "__particast_file";
    pub fn target(i: usize) -> String {
        format!("__particast_y{i}")
    }
    pub fn covariate(i: usize) -> String {
        format!("__particast_x{i}")
    }
}

/// Per-series statistics needed downstream (scaling, reports, forecasting).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesStats {
    /// Steps after gap filling.
    pub len: usize,
    /// Rows read for this series.
    pub rows: usize,
    /// Observed (finite, non-null) values per target dimension.
    pub observed: Vec<usize>,
    /// Mean of the observed values per dimension.
    pub mean: Vec<f64>,
    /// Mean absolute observed value per dimension (the DeepAR-style scale).
    pub mean_abs: Vec<f64>,
    /// Missing steps inserted to fill gaps.
    pub gaps_filled: usize,
    /// Non-finite values (NaN, +-inf) treated as missing.
    pub non_finite: usize,
    /// Rows merged into another row of the same timestamp (the `duplicates` policy).
    #[serde(default)]
    pub duplicates_merged: usize,
    /// First timestamp (physical value).
    pub first_ds: i64,
    /// Last timestamp (physical value).
    pub last_ds: i64,
    /// Inferred (or given) frequency; `None` for a single-row series without an override.
    pub frequency: Option<Frequency>,
    /// Smallest observed value over every dimension (`None` when nothing is observed, and in
    /// statistics written before this field); a series rebuilt from a saved tail keeps the
    /// minimum of its whole history here.
    #[serde(default)]
    pub min: Option<f64>,
}

/// The smallest observed value of `values` (`mask` 1), if any.
pub fn observed_min(values: &[f64], mask: &[u8]) -> Option<f64> {
    values
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m == 1)
        .map(|(v, _)| *v)
        .reduce(f64::min)
}

/// One validated series on a regular time axis: values, mask and covariates in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedSeries {
    /// Series id.
    pub id: String,
    /// Ordinal of this series in the input (order of first appearance, bucket by bucket).
    pub index: usize,
    /// Timestamps of the steps (and beyond the end, for forecasts).
    pub axis: TimeAxis,
    /// The real timestamp of every step, kept when the series is read as a sequence of rows
    /// ([`crate::Irregular::Sequence`]); `None` for regular series, whose axis says it all.
    pub timestamps: Option<Vec<i64>>,
    /// Number of target dimensions D.
    pub n_targets: usize,
    /// `len * D` values, `values[t * D + d]`; 0 where missing.
    pub values: Vec<f64>,
    /// `len * D` flags, 1 where observed.
    pub mask: Vec<u8>,
    /// `len` flags: true where the input had a row for the step (false for filled gaps).
    pub present: Vec<bool>,
    /// `len * C` exogenous covariates, `covariates[t * C + c]`; 0 where missing.
    pub covariates: Vec<f32>,
    /// Number of covariates C.
    pub n_covariates: usize,
    /// Statistics.
    pub stats: SeriesStats,
}

impl PreparedSeries {
    /// Steps after gap filling.
    pub fn len(&self) -> usize {
        self.stats.len
    }
    /// True when the series has no steps (never produced by the reader).
    pub fn is_empty(&self) -> bool {
        self.stats.len == 0
    }
    /// Value at step `t`, dimension `d`, or `None` when missing or out of range.
    pub fn value(&self, t: i64, d: usize) -> Option<f64> {
        if t < 0 || t as usize >= self.len() {
            return None;
        }
        let i = t as usize * self.n_targets + d;
        (self.mask[i] == 1).then_some(self.values[i])
    }
    /// Physical timestamp of step `i` (before the start and past the end it steps on at the
    /// series frequency).
    pub fn timestamp(&self, i: i64) -> i64 {
        match &self.timestamps {
            None => self.axis.at(i),
            Some(ts) if ts.is_empty() => self.axis.at(i),
            Some(ts) => {
                let last = ts.len() as i64 - 1;
                if i < 0 {
                    self.axis.at(i)
                } else if i <= last {
                    ts[i as usize]
                } else {
                    TimeAxis {
                        start: ts[last as usize],
                        ..self.axis.clone()
                    }
                    .at(i - last)
                }
            }
        }
    }
    /// The first `n` steps of this series (all of it when `n >= len`), with statistics
    /// recomputed for the prefix: a training view that holds out the tail.
    pub fn head(&self, n: usize) -> PreparedSeries {
        let n = n.min(self.len());
        let (d_n, c_n) = (self.n_targets, self.n_covariates);
        let values = self.values[..n * d_n].to_vec();
        let mask = self.mask[..n * d_n].to_vec();
        let mut observed = vec![0usize; d_n];
        let mut sum = vec![0.0f64; d_n];
        let mut sum_abs = vec![0.0f64; d_n];
        for t in 0..n {
            for d in 0..d_n {
                if mask[t * d_n + d] == 1 {
                    observed[d] += 1;
                    sum[d] += values[t * d_n + d];
                    sum_abs[d] += values[t * d_n + d].abs();
                }
            }
        }
        let avg = |s: &[f64]| -> Vec<f64> {
            (0..d_n)
                .map(|d| {
                    if observed[d] > 0 {
                        s[d] / observed[d] as f64
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let timestamps = self.timestamps.as_ref().map(|ts| ts[..n].to_vec());
        let stats = SeriesStats {
            len: n,
            rows: self.present[..n].iter().filter(|p| **p).count(),
            observed: observed.clone(),
            mean: avg(&sum),
            mean_abs: avg(&sum_abs),
            gaps_filled: 0,
            non_finite: 0,
            duplicates_merged: 0,
            first_ds: self.stats.first_ds,
            last_ds: if n == 0 {
                self.stats.first_ds
            } else {
                self.timestamp(n as i64 - 1)
            },
            frequency: self.stats.frequency,
            min: observed_min(&values, &mask),
        };
        PreparedSeries {
            id: self.id.clone(),
            index: self.index,
            axis: self.axis.clone(),
            timestamps,
            n_targets: d_n,
            values,
            mask,
            present: self.present[..n].to_vec(),
            covariates: self.covariates[..n * c_n].to_vec(),
            n_covariates: c_n,
            stats,
        }
    }

    /// The scale of dimension `d` (mean |y| over observed values), for reports and sampling.
    pub fn scale(&self, d: usize) -> f64 {
        self.stats.mean_abs.get(d).copied().unwrap_or(0.0)
    }
}

/// Which features every window carries, fixed for a dataset (a model is trained on one set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Target dimensions D.
    pub n_targets: usize,
    /// Calendar features, in column order.
    pub calendar: Vec<CalendarFeature>,
    /// Exogenous covariates C (after the calendar features in the covariates column).
    pub n_covariates: usize,
    /// Target lags in steps.
    pub lags: Vec<usize>,
}

impl FeatureSpec {
    /// Features per step in the `covariates` column: calendar features then covariates.
    pub fn n_features(&self) -> usize {
        // Saturating: the counts may come from a damaged model file.
        self.calendar.len().saturating_add(self.n_covariates)
    }
    /// Feature names in column order.
    pub fn feature_names(&self, covariate_cols: &[String]) -> Vec<String> {
        self.calendar
            .iter()
            .map(|c| c.name().to_string())
            .chain(covariate_cols.iter().cloned())
            .collect()
    }
}

/// What a model needs to know about the data it was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSchema {
    /// Id column (or `<path>` when ids come from file paths).
    pub id_col: String,
    /// Time column.
    pub time_col: String,
    /// Target columns.
    pub target_cols: Vec<String>,
    /// Covariate columns.
    pub covariate_cols: Vec<String>,
    /// What `ds` holds.
    pub time_kind: TimeKind,
    /// The dataset frequency (that of the first series with one, or the override).
    pub frequency: Option<Frequency>,
    /// Features carried by windows.
    pub features: FeatureSpec,
}

impl DataSchema {
    /// The frequency as text (`1h`, `30min`, ...), or `unknown`.
    pub fn frequency_text(&self) -> String {
        self.frequency
            .map(|f| f.describe(&self.time_kind))
            .unwrap_or_else(|| "unknown".into())
    }
}

/// Counts gathered while reading, for the end-of-stage summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Rows read.
    pub rows: usize,
    /// Series produced.
    pub series: usize,
    /// Observed values over all series and dimensions.
    pub observed: usize,
    /// Missing steps inserted to fill gaps.
    pub gaps_filled: usize,
    /// Non-finite values treated as missing.
    pub non_finite: usize,
    /// Series dropped because nothing was observed.
    pub dropped_all_missing: usize,
    /// Rows merged into another row of the same timestamp (the `duplicates` policy).
    pub duplicates_merged: usize,
    /// Buckets the input was partitioned into (1 when it fit in memory).
    pub buckets: usize,
    /// Rows of the input, counted when it was opened (known before any series is read, for
    /// progress; `rows` grows as series are read).
    #[serde(default)]
    pub input_rows: usize,
}

impl IngestReport {
    pub(crate) fn add(&mut self, s: &SeriesStats) {
        self.series += 1;
        self.rows += s.rows;
        self.observed += s.observed.iter().sum::<usize>();
        self.gaps_filled += s.gaps_filled;
        self.non_finite += s.non_finite;
        self.duplicates_merged += s.duplicates_merged;
    }
}

/// Largest magnitude accepted for a target value. The model computes in f32 (largest finite
/// value 3.4e38); values beyond this bound are almost always sentinels or corrupt data, and
/// silently treating them as missing would lose data, so they are an error.
pub const MAX_ABS_VALUE: f64 = 1e30;

/// Context for building series from one canonical batch.
pub(crate) struct BuildContext<'a> {
    pub source_name: &'a str,
    /// File names when the input is several files (the canonical frame then has a file index).
    pub files: &'a [String],
    pub time_col: &'a str,
    pub id_col: &'a str,
    pub time_kind: &'a TimeKind,
    pub n_targets: usize,
    /// Target column names (for messages).
    pub target_cols: &'a [String],
    pub n_covariates: usize,
    pub sort: bool,
    pub sequence: bool,
    pub duplicates: Duplicates,
    pub frequency: Option<Frequency>,
    pub max_gap_ratio: f64,
    pub drop_all_missing: bool,
}

/// String values of an id column, whatever string flavour arrow gives.
fn string_column<'a>(array: &'a ArrayRef, column: &str) -> Result<Vec<Option<&'a str>>> {
    Ok(match array.data_type() {
        DataType::Utf8View => array.as_string_view().iter().collect(),
        DataType::Utf8 => array.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        other => {
            return Err(IngestError::Arrow {
                column: column.into(),
                source: format!("expected strings, got {other}").into(),
            })
        }
    })
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| IngestError::Arrow {
            column: name.into(),
            source: "column missing from canonical batch".into(),
        })
}

fn row_numbers(batch: &RecordBatch) -> Result<Vec<u64>> {
    let a = column(batch, canon::ROW)?;
    Ok(match a.data_type() {
        DataType::UInt32 => a
            .as_primitive::<UInt32Type>()
            .values()
            .iter()
            .map(|&v| v as u64)
            .collect(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().values().to_vec(),
        other => {
            return Err(IngestError::Arrow {
                column: canon::ROW.into(),
                source: format!("unexpected row index type {other}").into(),
            })
        }
    })
}

/// Groups the rows of a canonical batch by series id (order of first appearance) and builds one
/// [`PreparedSeries`] per id. Dropped all-missing series are counted in `report`.
pub(crate) fn build_series_from_batch(
    batch: &RecordBatch,
    ctx: &BuildContext<'_>,
    first_index: usize,
    report: &mut IngestReport,
) -> Result<Vec<PreparedSeries>> {
    let ids = string_column(column(batch, canon::ID)?, ctx.id_col)?;
    let rows = row_numbers(batch)?;
    let file_of: Vec<u32> = match batch.column_by_name(canon::FILE) {
        Some(a) if !ctx.files.is_empty() => match a.data_type() {
            DataType::UInt32 => a.as_primitive::<UInt32Type>().values().to_vec(),
            DataType::UInt64 => a
                .as_primitive::<UInt64Type>()
                .values()
                .iter()
                .map(|&v| v as u32)
                .collect(),
            DataType::Int32 => a
                .as_primitive::<arrow_array::types::Int32Type>()
                .values()
                .iter()
                .map(|&v| v as u32)
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let source_of = |i: usize| -> &str {
        file_of
            .get(i)
            .and_then(|&f| ctx.files.get(f as usize))
            .map(String::as_str)
            .unwrap_or(ctx.source_name)
    };
    let ds = column(batch, canon::DS)?.as_primitive::<Int64Type>();
    let targets: Vec<_> = (0..ctx.n_targets)
        .map(|i| column(batch, &canon::target(i)).map(|a| a.as_primitive::<Float64Type>()))
        .collect::<Result<_>>()?;
    let covs: Vec<_> = (0..ctx.n_covariates)
        .map(|i| column(batch, &canon::covariate(i)).map(|a| a.as_primitive::<Float64Type>()))
        .collect::<Result<_>>()?;

    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(id) = id else {
            return Err(IngestError::NullId {
                source_name: source_of(i).into(),
                column: ctx.id_col.into(),
                row: rows[i],
            });
        };
        groups
            .entry(id)
            .or_insert_with(|| {
                order.push(id);
                Vec::new()
            })
            .push(i as u32);
    }

    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let idx = &groups[id];
        let display_id = id;
        let source_name = source_of(idx[0] as usize);
        match build_one(
            display_id,
            source_name,
            idx,
            &rows,
            ds,
            &targets,
            &covs,
            ctx,
        )? {
            Some(mut s) => {
                s.index = first_index + out.len();
                report.add(&s.stats);
                out.push(s);
            }
            None => {
                report.dropped_all_missing += 1;
                report.rows += idx.len();
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn build_one(
    id: &str,
    source_name: &str,
    idx: &[u32],
    rows: &[u64],
    ds_col: &arrow_array::PrimitiveArray<Int64Type>,
    targets: &[&arrow_array::PrimitiveArray<Float64Type>],
    covs: &[&arrow_array::PrimitiveArray<Float64Type>],
    ctx: &BuildContext<'_>,
) -> Result<Option<PreparedSeries>> {
    let mut idx: Vec<u32> = idx.to_vec();
    for &i in &idx {
        if ds_col.is_null(i as usize) {
            return Err(IngestError::NullTimestamp {
                source_name: source_name.into(),
                column: ctx.time_col.into(),
                series: id.into(),
                row: rows[i as usize],
            });
        }
    }
    let ts = |i: u32| ds_col.value(i as usize);
    if ctx.sort {
        idx.sort_by_key(|&i| ts(i)); // stable: ties keep input order
    } else if let Some(p) = idx.windows(2).position(|w| ts(w[1]) < ts(w[0])) {
        return Err(IngestError::Unsorted {
            source_name: source_name.into(),
            column: ctx.time_col.into(),
            series: id.into(),
            row: rows[idx[p + 1] as usize],
            ds: ts(idx[p + 1]),
            prev: ts(idx[p]),
        });
    }
    if ctx.sequence {
        let ds: Vec<i64> = idx.iter().map(|&i| ts(i)).collect();
        let frequency = ctx
            .frequency
            .or_else(|| mode_step(&ds).map(Frequency::Fixed));
        let positions = (0..idx.len() as i64).collect();
        let steps: Vec<&[u32]> = idx.chunks(1).collect();
        return fill_values(
            id,
            source_name,
            &steps,
            rows,
            positions,
            frequency,
            true,
            ds_col,
            targets,
            covs,
            ctx,
        );
    }
    // The rows of each timestamp (one, unless the duplicates policy merges several).
    let steps: Vec<&[u32]> = match ctx.duplicates {
        Duplicates::Error => {
            if let Some(p) = idx.windows(2).position(|w| ts(w[1]) == ts(w[0])) {
                return Err(IngestError::DuplicateTimestamp {
                    source_name: source_name.into(),
                    column: ctx.time_col.into(),
                    series: id.into(),
                    row: rows[idx[p + 1] as usize],
                    ds: ts(idx[p + 1]),
                });
            }
            idx.chunks(1).collect()
        }
        policy => idx
            .chunk_by(|a, b| ts(*a) == ts(*b))
            .map(|run| match policy {
                Duplicates::First => &run[..1],
                Duplicates::Last => &run[run.len() - 1..],
                _ => run,
            })
            .collect(),
    };
    let ds: Vec<i64> = steps.iter().map(|run| ts(run[0])).collect();
    let inferred = infer_frequency(&ds, ctx.time_kind).map_err(|bad| IngestError::Irregular {
        source_name: source_name.into(),
        series: id.into(),
        row: rows[idx[bad] as usize],
        step: ds[bad] - ds[bad - 1],
        frequency: match infer_frequency(&ds[..bad], ctx.time_kind) {
            Ok(Some(f)) => f.describe(ctx.time_kind),
            _ => "unknown".into(),
        },
    })?;
    let frequency = ctx.frequency.or(inferred);
    let positions: Vec<i64> = match frequency {
        Some(f) => {
            let pos = axis_positions(&ds, ctx.time_kind, f);
            // With an override, every step must still land on the grid.
            if let Some(bad) = (1..ds.len()).find(|&k| {
                TimeAxis {
                    kind: ctx.time_kind.clone(),
                    start: ds[0],
                    frequency: f,
                }
                .at(pos[k])
                    != ds[k]
            }) {
                return Err(IngestError::Irregular {
                    source_name: source_name.into(),
                    series: id.into(),
                    row: rows[idx[bad] as usize],
                    step: ds[bad] - ds[bad - 1],
                    frequency: f.describe(ctx.time_kind),
                });
            }
            pos
        }
        None => vec![0],
    };
    let len = (*positions.last().unwrap_or(&0) + 1) as usize;
    let limit = (ds.len() as f64 * ctx.max_gap_ratio).max(ds.len() as f64 + 16.0);
    if len as f64 > limit {
        return Err(IngestError::TooManyGaps {
            source_name: source_name.into(),
            series: id.into(),
            observed: ds.len(),
            filled: len,
            frequency: frequency
                .map(|f| f.describe(ctx.time_kind))
                .unwrap_or_default(),
        });
    }
    let merged = idx.len() - steps.len();
    Ok(fill_values(
        id,
        source_name,
        &steps,
        rows,
        positions,
        frequency,
        false,
        ds_col,
        targets,
        covs,
        ctx,
    )?
    .map(|mut s| {
        s.stats.rows += merged;
        s.stats.duplicates_merged = merged;
        s
    }))
}

/// Places the rows of one series at `positions` (the rows of step k are `steps[k]`: one row, or
/// several merged by their mean) and gathers values, mask and statistics.
#[allow(clippy::too_many_arguments)]
fn fill_values(
    id: &str,
    source_name: &str,
    steps: &[&[u32]],
    rows: &[u64],
    positions: Vec<i64>,
    frequency: Option<Frequency>,
    keep_timestamps: bool,
    ds_col: &arrow_array::PrimitiveArray<Int64Type>,
    targets: &[&arrow_array::PrimitiveArray<Float64Type>],
    covs: &[&arrow_array::PrimitiveArray<Float64Type>],
    ctx: &BuildContext<'_>,
) -> Result<Option<PreparedSeries>> {
    let ds: Vec<i64> = steps
        .iter()
        .map(|run| ds_col.value(run[0] as usize))
        .collect();
    let len = (*positions.last().unwrap_or(&0) + 1) as usize;
    let d_n = ctx.n_targets;
    let c_n = ctx.n_covariates;
    let mut values = vec![0.0f64; len * d_n];
    let mut mask = vec![0u8; len * d_n];
    let mut present = vec![false; len];
    let mut covariates = vec![0.0f32; len * c_n];
    let mut observed = vec![0usize; d_n];
    let mut sum = vec![0.0f64; d_n];
    let mut sum_abs = vec![0.0f64; d_n];
    let mut non_finite = 0usize;
    for (k, run) in steps.iter().enumerate() {
        let t = positions[k] as usize;
        present[t] = true;
        for (d, col) in targets.iter().enumerate() {
            // The mean of the run's finite values (the value itself for a single row).
            let (mut total, mut n) = (0.0f64, 0usize);
            for &i in *run {
                if col.is_null(i as usize) {
                    continue;
                }
                let v = col.value(i as usize);
                if !v.is_finite() {
                    non_finite += 1;
                    continue;
                }
                if v.abs() > MAX_ABS_VALUE {
                    return Err(IngestError::OutOfRange {
                        source_name: source_name.into(),
                        column: ctx.target_cols.get(d).cloned().unwrap_or_default(),
                        series: id.into(),
                        row: rows[i as usize],
                        value: v,
                    });
                }
                // The first value as it is (so a single row keeps even the sign of a zero).
                total = if n == 0 { v } else { total + v };
                n += 1;
            }
            if n == 0 {
                continue;
            }
            let v = if n == 1 { total } else { total / n as f64 };
            values[t * d_n + d] = v;
            mask[t * d_n + d] = 1;
            observed[d] += 1;
            sum[d] += v;
            sum_abs[d] += v.abs();
        }
        for (c, col) in covs.iter().enumerate() {
            let (mut total, mut n) = (0.0f64, 0usize);
            for &i in *run {
                if !col.is_null(i as usize) {
                    let v = col.value(i as usize);
                    if v.is_finite() {
                        total = if n == 0 { v } else { total + v };
                        n += 1;
                    }
                }
            }
            if n > 0 {
                covariates[t * c_n + c] = (total / n as f64) as f32;
            }
        }
    }
    if observed.iter().all(|&o| o == 0) {
        if ctx.drop_all_missing {
            return Ok(None);
        }
        return Err(IngestError::AllMissing {
            source_name: source_name.into(),
            series: id.into(),
        });
    }
    let mean = (0..d_n)
        .map(|d| {
            if observed[d] > 0 {
                sum[d] / observed[d] as f64
            } else {
                0.0
            }
        })
        .collect();
    let mean_abs = (0..d_n)
        .map(|d| {
            if observed[d] > 0 {
                sum_abs[d] / observed[d] as f64
            } else {
                0.0
            }
        })
        .collect();
    let stats = SeriesStats {
        len,
        rows: ds.len(),
        observed,
        mean,
        mean_abs,
        gaps_filled: len - ds.len(),
        non_finite,
        duplicates_merged: 0,
        first_ds: ds[0],
        last_ds: *ds.last().unwrap_or(&ds[0]),
        frequency,
        min: observed_min(&values, &mask),
    };
    Ok(Some(PreparedSeries {
        id: id.to_string(),
        index: 0,
        axis: TimeAxis {
            kind: ctx.time_kind.clone(),
            start: ds[0],
            frequency: frequency.unwrap_or(Frequency::Fixed(1)),
        },
        timestamps: keep_timestamps.then(|| ds.clone()),
        n_targets: d_n,
        values,
        mask,
        present,
        covariates,
        n_covariates: c_n,
        stats,
    }))
}
