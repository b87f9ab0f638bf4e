//! Windows of series as arrow-rs record batches (schema in the crate docs).

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array, UInt8Array,
};
use arrow_data::ArrayDataBuilder;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{IngestError, Result};
use crate::options::{ShortSeries, Weighting, WindowSpec};
use crate::series::{FeatureSpec, PreparedSeries};

/// Column names of a window batch.
pub mod columns {
    /// Series id (Utf8).
    pub const UNIQUE_ID: &str = "unique_id";
    /// Ordinal of the series in the input (UInt32).
    pub const SERIES_INDEX: &str = "series_index";
    /// Step index of slot 0 in its series (Int64; negative when padded).
    pub const WINDOW_START: &str = "window_start";
    /// Physical timestamp of slot 0 (Int64).
    pub const DS_START: &str = "ds_start";
    /// Target values, `T * D` (`FixedSizeList<Float32>`).
    pub const VALUES: &str = "values";
    /// Observed flags, `T * D` (`FixedSizeList<UInt8>`).
    pub const MASK: &str = "mask";
    /// Calendar features then covariates, `T * C` (`FixedSizeList<Float32>`).
    pub const COVARIATES: &str = "covariates";
    /// Lagged targets, `T * K * D` (`FixedSizeList<Float32>`).
    pub const LAGS: &str = "lags";
    /// Observed flags of the lagged targets, `T * K * D` (`FixedSizeList<UInt8>`).
    pub const LAG_MASK: &str = "lag_mask";
}

fn list_field(name: &str, item: DataType, size: usize) -> Field {
    Field::new(
        name,
        DataType::FixedSizeList(Arc::new(Field::new("item", item, false)), size as i32),
        false,
    )
}

/// The Arrow schema of window batches of `len` steps with these features.
///
/// Schema metadata records `window_len`, `n_targets`, `n_features` and `lags` as text.
pub fn window_schema(len: usize, features: &FeatureSpec) -> SchemaRef {
    use columns::*;
    let d = features.n_targets;
    let c = features.n_features();
    let k = features.lags.len();
    let meta: HashMap<String, String> = [
        ("window_len".to_string(), len.to_string()),
        ("n_targets".to_string(), d.to_string()),
        ("n_features".to_string(), c.to_string()),
        (
            "lags".to_string(),
            features
                .lags
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]
    .into_iter()
    .collect();
    Arc::new(
        Schema::new(vec![
            Field::new(UNIQUE_ID, DataType::Utf8, false),
            Field::new(SERIES_INDEX, DataType::UInt32, false),
            Field::new(WINDOW_START, DataType::Int64, false),
            Field::new(DS_START, DataType::Int64, false),
            list_field(VALUES, DataType::Float32, len * d),
            list_field(MASK, DataType::UInt8, len * d),
            list_field(COVARIATES, DataType::Float32, len * c),
            list_field(LAGS, DataType::Float32, len * k * d),
            list_field(LAG_MASK, DataType::UInt8, len * k * d),
        ])
        .with_metadata(meta),
    )
}

/// A `FixedSizeList` column of `n` rows of `size` items (also for `size = 0`, where the row
/// count cannot be read off the values).
fn fixed_size_list(values: ArrayRef, item: DataType, size: usize, n: usize) -> Result<ArrayRef> {
    let field = Arc::new(Field::new("item", item, false));
    ArrayDataBuilder::new(DataType::FixedSizeList(field, size as i32))
        .len(n)
        .add_child_data(values.to_data())
        .build()
        .map(|data| Arc::new(FixedSizeListArray::from(data)) as ArrayRef)
        .map_err(|e| IngestError::Arrow {
            column: "<window batch>".into(),
            source: e.into(),
        })
}

/// One window's data in flat row-major buffers (the building block of batches, and what the
/// scoring and forecasting stages use to view a stretch of a series).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowData {
    /// `T * D` values, 0 where missing.
    pub values: Vec<f32>,
    /// `T * D` observed flags.
    pub mask: Vec<u8>,
    /// `T * C` calendar features and covariates.
    pub covariates: Vec<f32>,
    /// `T * K * D` lagged values, 0 where missing.
    pub lags: Vec<f32>,
    /// `T * K * D` observed flags of the lags.
    pub lag_mask: Vec<u8>,
}

impl WindowData {
    /// Appends steps `start .. start + len` of `s` (steps outside the series are missing, with
    /// calendar features still computed from the time axis).
    pub fn push_steps(&mut self, s: &PreparedSeries, start: i64, len: usize, f: &FeatureSpec) {
        let d_n = s.n_targets;
        let c_n = s.n_covariates;
        for t in 0..len as i64 {
            let p = start + t;
            for d in 0..d_n {
                match s.value(p, d) {
                    Some(v) => {
                        self.values.push(v as f32);
                        self.mask.push(1);
                    }
                    None => {
                        self.values.push(0.0);
                        self.mask.push(0);
                    }
                }
            }
            if !f.calendar.is_empty() {
                let dt = s.axis.kind.to_datetime(s.timestamp(p));
                for cf in &f.calendar {
                    self.covariates
                        .push(dt.as_ref().map(|dt| cf.value(dt)).unwrap_or(0.0));
                }
            }
            if c_n > 0 {
                if p >= 0 && (p as usize) < s.len() {
                    let row = p as usize * c_n;
                    self.covariates
                        .extend_from_slice(&s.covariates[row..row + c_n]);
                } else {
                    self.covariates.extend(std::iter::repeat_n(0.0, c_n));
                }
            }
            for &lag in &f.lags {
                for d in 0..d_n {
                    match s.value(p - lag as i64, d) {
                        Some(v) => {
                            self.lags.push(v as f32);
                            self.lag_mask.push(1);
                        }
                        None => {
                            self.lags.push(0.0);
                            self.lag_mask.push(0);
                        }
                    }
                }
            }
        }
    }

    /// The window of `len` steps of `s` from `start`.
    pub fn of(s: &PreparedSeries, start: i64, len: usize, f: &FeatureSpec) -> WindowData {
        let mut w = WindowData::default();
        w.push_steps(s, start, len, f);
        w
    }
}

/// Start positions of the windows of one series (aligned so the last window ends on the last
/// step), or the policy's answer for a short series.
pub fn window_starts(s: &PreparedSeries, spec: &WindowSpec, source_name: &str) -> Result<Vec<i64>> {
    let n = s.len();
    let t = spec.len();
    if spec.stride == 0 || t == 0 {
        return Err(IngestError::Options(
            "window length and stride must be positive".into(),
        ));
    }
    if n < t {
        return match spec.short_series {
            ShortSeries::Error => Err(IngestError::TooShort {
                source_name: source_name.into(),
                series: s.id.clone(),
                len: n,
                window: t,
            }),
            ShortSeries::Skip => Ok(Vec::new()),
            ShortSeries::Pad => Ok(vec![n as i64 - t as i64]),
        };
    }
    let last = (n - t) as i64;
    let mut starts: Vec<i64> = (0..=last / spec.stride as i64)
        .map(|k| last - k * spec.stride as i64)
        .collect();
    starts.reverse();
    Ok(starts)
}

/// Accumulates windows and turns them into record batches.
pub struct WindowBatchBuilder {
    len: usize,
    features: FeatureSpec,
    schema: SchemaRef,
    ids: Vec<String>,
    series_index: Vec<u32>,
    starts: Vec<i64>,
    ds_start: Vec<i64>,
    data: WindowData,
}

impl WindowBatchBuilder {
    /// A builder for windows of `len` steps.
    pub fn new(len: usize, features: FeatureSpec) -> Self {
        let schema = window_schema(len, &features);
        WindowBatchBuilder {
            len,
            features,
            schema,
            ids: Vec::new(),
            series_index: Vec::new(),
            starts: Vec::new(),
            ds_start: Vec::new(),
            data: WindowData::default(),
        }
    }

    /// The schema of the batches built.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Windows held so far.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// Adds the window of `s` starting at step `start`.
    pub fn push(&mut self, s: &PreparedSeries, start: i64) {
        self.ids.push(s.id.clone());
        self.series_index.push(s.index as u32);
        self.starts.push(start);
        self.ds_start.push(s.timestamp(start));
        self.data.push_steps(s, start, self.len, &self.features);
    }

    /// Builds a batch of the windows held and empties the builder.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let d = self.features.n_targets;
        let c = self.features.n_features();
        let k = self.features.lags.len();
        let data = std::mem::take(&mut self.data);
        let n = self.ids.len();
        let f32_list = |values: Vec<f32>, size: usize| -> Result<ArrayRef> {
            fixed_size_list(
                Arc::new(Float32Array::from(values)),
                DataType::Float32,
                size,
                n,
            )
        };
        let u8_list = |values: Vec<u8>, size: usize| -> Result<ArrayRef> {
            fixed_size_list(Arc::new(UInt8Array::from(values)), DataType::UInt8, size, n)
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(std::mem::take(&mut self.ids))),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.series_index))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.starts))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.ds_start))),
            f32_list(data.values, self.len * d)?,
            u8_list(data.mask, self.len * d)?,
            f32_list(data.covariates, self.len * c)?,
            f32_list(data.lags, self.len * k * d)?,
            u8_list(data.lag_mask, self.len * k * d)?,
        ];
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| IngestError::Arrow {
            column: "<window batch>".into(),
            source: e.into(),
        })
    }
}

/// Strided windows of a stream of series, `batch_size` windows per record batch. No window
/// crosses two series; memory holds one series and one batch beyond what the input holds.
pub struct WindowStream<I> {
    series: I,
    spec: WindowSpec,
    builder: WindowBatchBuilder,
    source_name: String,
    pending: Option<(PreparedSeries, Vec<i64>, usize)>,
    done: bool,
}

impl<I: Iterator<Item = Result<PreparedSeries>>> WindowStream<I> {
    /// Windows `series` with `spec`; `features` must be the dataset's feature spec.
    pub fn new(series: I, spec: WindowSpec, features: FeatureSpec, source_name: &str) -> Self {
        WindowStream {
            series,
            builder: WindowBatchBuilder::new(spec.len(), features),
            spec,
            source_name: source_name.into(),
            pending: None,
            done: false,
        }
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.builder.schema()
    }
}

impl<I: Iterator<Item = Result<PreparedSeries>>> Iterator for WindowStream<I> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let batch_size = self.spec.batch_size.max(1);
        loop {
            if let Some((s, starts, pos)) = &mut self.pending {
                while *pos < starts.len() && self.builder.rows() < batch_size {
                    self.builder.push(s, starts[*pos]);
                    *pos += 1;
                }
                if *pos == starts.len() {
                    self.pending = None;
                }
                if self.builder.rows() == batch_size {
                    return Some(self.builder.finish());
                }
            }
            match self.series.next() {
                Some(Ok(s)) => match window_starts(&s, &self.spec, &self.source_name) {
                    Ok(starts) => self.pending = Some((s, starts, 0)),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return (self.builder.rows() > 0).then(|| self.builder.finish());
                }
            }
        }
    }
}

/// Draws `n` windows at random (seeded) as (index into `series`, start) pairs: a series with
/// probability proportional to its scale under [`Weighting::Scale`] (mean |y| averaged over
/// dimensions, floored at 1e-3 of the largest; DeepAR's scheme) or uniformly under
/// [`Weighting::Series`], then a start uniformly among its windows. Series too short for a
/// window are drawn only under [`ShortSeries::Pad`] (with their one padded window). Training
/// reads these windows directly ([`WindowData::of`]); [`sample_windows`] is the Arrow form.
pub fn sample_window_starts(
    series: &[PreparedSeries],
    spec: &WindowSpec,
    n: usize,
    seed: u64,
) -> Result<Vec<(usize, i64)>> {
    let t = spec.len();
    let candidates: Vec<usize> = (0..series.len())
        .filter(|&i| series[i].len() >= t || spec.short_series == ShortSeries::Pad)
        .collect();
    if candidates.is_empty() {
        if let (ShortSeries::Error, Some(s)) = (spec.short_series, series.first()) {
            return Err(IngestError::TooShort {
                source_name: "<dataset>".into(),
                series: s.id.clone(),
                len: s.len(),
                window: t,
            });
        }
        return Ok(Vec::new());
    }
    let scale = |s: &PreparedSeries| match spec.weighting {
        Weighting::Scale => s.stats.mean_abs.iter().sum::<f64>() / s.n_targets as f64,
        Weighting::Series => 1.0,
    };
    let max_scale = candidates
        .iter()
        .map(|&i| scale(&series[i]))
        .fold(0.0, f64::max);
    let floor = (max_scale * 1e-3).max(1e-12);
    let mut cumulative = Vec::with_capacity(candidates.len());
    let mut acc = 0.0;
    for &i in &candidates {
        acc += scale(&series[i]).max(floor);
        cumulative.push(acc);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let u: f64 = rng.random::<f64>() * acc;
        let k = cumulative
            .partition_point(|&c| c <= u)
            .min(candidates.len() - 1);
        let i = candidates[k];
        let s = &series[i];
        let start = if s.len() >= t {
            rng.random_range(0..=(s.len() - t) as i64)
        } else {
            s.len() as i64 - t as i64
        };
        out.push((i, start));
    }
    Ok(out)
}

/// [`sample_window_starts`] as an Arrow record batch of windows ([`window_schema`]).
pub fn sample_windows(
    series: &[PreparedSeries],
    spec: &WindowSpec,
    features: &FeatureSpec,
    n: usize,
    seed: u64,
) -> Result<RecordBatch> {
    let mut builder = WindowBatchBuilder::new(spec.len(), features.clone());
    for (i, start) in sample_window_starts(series, spec, n, seed)? {
        builder.push(&series[i], start);
    }
    builder.finish()
}
