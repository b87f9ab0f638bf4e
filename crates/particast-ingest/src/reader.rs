//! The reader: from a source to validated series, in memory or bucket by bucket.

use polars::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing::{debug, info, info_span};

use crate::error::{IngestError, Result};
use crate::ffi::dataframe_to_record_batch;
use crate::options::{IngestOptions, Irregular, Layout};
use crate::series::{
    build_series_from_batch, canon, BuildContext, DataSchema, FeatureSpec, IngestReport,
    PreparedSeries,
};
use crate::source::{canonical_long, canonical_wide, scan, CanonInfo, Source};
use crate::time::{CalendarFeature, Frequency};

/// All series of an input, in memory, with the schema and the reading report.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The series, in input order.
    pub series: Vec<PreparedSeries>,
    /// The data schema (columns, time kind, frequency, features).
    pub schema: DataSchema,
    /// Counts gathered while reading.
    pub report: IngestReport,
}

impl Dataset {
    /// Reads a whole source into memory (still partitioning through disk when it is large).
    pub fn read(source: Source, opts: &IngestOptions) -> Result<Dataset> {
        Dataset::collect(SeriesStream::open(source, opts)?)
    }

    /// Reads what is left of a stream into memory.
    pub fn collect(mut stream: SeriesStream) -> Result<Dataset> {
        let mut series = Vec::new();
        for s in stream.by_ref() {
            series.push(s?);
        }
        Ok(Dataset {
            series,
            schema: stream.schema().clone(),
            report: stream.report().clone(),
        })
    }

    /// Looks a series up by id.
    pub fn get(&self, id: &str) -> Option<&PreparedSeries> {
        self.series.iter().find(|s| s.id == id)
    }
}

/// Runs polars work, turning a panic inside it into a read error. polars' readers assert on
/// some damaged files (a corrupt Parquet page can fail a bitmap bounds check in a reader
/// thread, found by the `ingest_parquet` fuzz target); such a file must give an error that
/// names it, not bring the caller down.
fn guard<T>(source_name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Err(IngestError::read(
            source_name,
            format!(
                "the reader failed on this input; is the file damaged? ({})",
                what.lines().next().unwrap_or("")
            ),
        ))
    })
}

enum Buckets {
    /// The canonical frame fits in memory: one bucket, taken on first use.
    Memory(Option<DataFrame>),
    /// Buckets of series spilled to Parquet files, read back one at a time.
    Spilled {
        _dir: tempfile::TempDir,
        paths: Vec<PathBuf>,
        next: usize,
    },
}

/// Validated series, produced bucket by bucket so that memory holds one bucket at a time.
///
/// Small inputs (up to [`IngestOptions::max_rows_in_memory`] rows) form a single bucket. Larger
/// long-layout inputs are streamed once through polars' streaming engine and split into bucket
/// files on disk; each bucket is then read, grouped, validated and gap-filled on its own. A
/// bucket holds series that are consecutive in order of first appearance (at most
/// `max_rows_in_memory` rows, unless one series alone has more), so series come out in the
/// same order, with the same ordinals, however the input is split: a large input gives the
/// same stream as it would in memory.
pub struct SeriesStream {
    source_name: String,
    files: Vec<String>,
    opts: IngestOptions,
    info: CanonInfo,
    n_targets: usize,
    override_freq: Option<Frequency>,
    buckets: Buckets,
    queue: VecDeque<PreparedSeries>,
    schema: DataSchema,
    report: IngestReport,
    produced: usize,
    failed: bool,
}

impl SeriesStream {
    /// Opens a source: checks its schema, decides whether to partition, and reads the first
    /// bucket (so that [`SeriesStream::schema`] knows the frequency).
    pub fn open(source: Source, opts: &IngestOptions) -> Result<SeriesStream> {
        let path = match &source {
            Source::Path(p) => Some(p.clone()),
            Source::Named { inner, .. } => match inner.as_ref() {
                Source::Path(p) => Some(p.clone()),
                _ => None,
            },
            _ => None,
        };
        let name = source.name();
        guard(&name, || Self::open_inner(source, opts)).map_err(|e| match &path {
            Some(p) => crate::source::explain_parse_error(e, p, &name, opts),
            None => e,
        })
    }

    fn open_inner(source: Source, opts: &IngestOptions) -> Result<SeriesStream> {
        let source_name = source.name();
        let span = info_span!("ingest.open", source = %source_name);
        let _g = span.enter();
        if opts.max_rows_in_memory == 0 {
            return Err(IngestError::Options(
                "max_rows_in_memory must be positive".into(),
            ));
        }
        let inputs = scan(&source, opts)?;
        let files: Vec<String> = if inputs.len() > 1 {
            inputs.iter().map(|i| i.name.clone()).collect()
        } else {
            Vec::new()
        };
        // Count first: a header-only CSV has no types to check, only emptiness to report.
        let mut rows = 0;
        for input in &inputs {
            let n = count_rows(&input.lf, &input.name)?;
            if n == 0 {
                return Err(IngestError::Empty {
                    source_name: input.name.clone(),
                });
            }
            rows += n;
        }
        let (buckets, info, n_targets) = match opts.layout {
            Layout::Wide => {
                let mut frames = Vec::new();
                let mut info = None;
                for (i, input) in inputs.into_iter().enumerate() {
                    let name = input.name.clone();
                    let (df, inf) = canonical_wide(input, opts)?;
                    let df = df
                        .lazy()
                        .with_column(lit(i as u32).alias(canon::FILE))
                        .collect()
                        .map_err(|e| IngestError::read(&name, e))?;
                    frames.push(df);
                    info.get_or_insert(inf);
                }
                let mut df = frames.remove(0);
                for f in &frames {
                    df.vstack_mut(f)
                        .map_err(|e| IngestError::read(&source_name, e))?;
                }
                let info = info.ok_or_else(|| IngestError::Empty {
                    source_name: source_name.clone(),
                })?;
                (Buckets::Memory(Some(df)), info, 1)
            }
            Layout::Long => {
                let (canon_lf, info) = canonical_long(inputs, opts)?;
                let buckets = if rows <= opts.max_rows_in_memory {
                    let df = canon_lf
                        .collect()
                        .map_err(|e| IngestError::read(&source_name, e))?;
                    Buckets::Memory(Some(df))
                } else {
                    spill(canon_lf, opts, &source_name)?
                };
                (buckets, info, opts.target_cols.len())
            }
        };
        let override_freq = match &opts.frequency {
            Some(text) => Some(Frequency::parse(text, &info.time_kind).ok_or_else(|| {
                IngestError::Options(format!(
                    "frequency {text:?} is not understood for a {:?} time column (try 30min, 1h, 1d, 1w, 1mo, 1q, 1y or an integer)",
                    info.time_kind
                ))
            })?),
            None => None,
        };
        let n_buckets = match &buckets {
            Buckets::Memory(_) => 1,
            Buckets::Spilled { paths, .. } => paths.len(),
        };
        info!(rows, buckets = n_buckets, "input opened");
        let schema = DataSchema {
            id_col: info.id_col.clone(),
            time_col: match opts.layout {
                Layout::Long => opts.time_col.clone(),
                Layout::Wide => "ds".into(),
            },
            target_cols: match opts.layout {
                Layout::Long => opts.target_cols.clone(),
                Layout::Wide => vec!["y".into()],
            },
            covariate_cols: info.covariate_cols.clone(),
            time_kind: info.time_kind.clone(),
            frequency: override_freq,
            features: FeatureSpec {
                n_targets,
                calendar: Vec::new(),
                n_covariates: info.covariate_cols.len(),
                lags: opts.lags.clone(),
            },
        };
        let mut stream = SeriesStream {
            source_name,
            files,
            opts: opts.clone(),
            info,
            n_targets,
            override_freq,
            buckets,
            queue: VecDeque::new(),
            schema,
            report: IngestReport {
                buckets: n_buckets,
                input_rows: rows,
                ..Default::default()
            },
            produced: 0,
            failed: false,
        };
        stream.fill()?;
        if stream.schema.frequency.is_none() {
            stream.schema.frequency = stream.queue.iter().find_map(|s| s.stats.frequency);
        }
        if opts.calendar {
            stream.schema.features.calendar =
                CalendarFeature::for_frequency(&stream.schema.time_kind, stream.schema.frequency);
        }
        Ok(stream)
    }

    /// The data schema. Its frequency is the override, or that of the first series with one.
    pub fn schema(&self) -> &DataSchema {
        &self.schema
    }

    /// Counts so far (complete once the stream is exhausted).
    pub fn report(&self) -> &IngestReport {
        &self.report
    }

    /// Loads buckets until the queue has series or none are left.
    fn fill(&mut self) -> Result<()> {
        while self.queue.is_empty() {
            let df = match &mut self.buckets {
                Buckets::Memory(df) => match df.take() {
                    Some(df) => df,
                    None => return Ok(()),
                },
                Buckets::Spilled { paths, next, .. } => {
                    let Some(path) = paths.get(*next) else {
                        return Ok(());
                    };
                    *next += 1;
                    let _s = info_span!("ingest.bucket", bucket = *next).entered();
                    LazyFrame::scan_parquet(
                        PlRefPath::new(path.to_string_lossy().as_ref()),
                        ScanArgsParquet::default(),
                    )
                    .and_then(|lf| lf.collect())
                    .map_err(|e| IngestError::read(&path.to_string_lossy(), e))?
                }
            };
            if df.height() == 0 {
                continue;
            }
            let batch = dataframe_to_record_batch(&df)?;
            drop(df);
            let ctx = BuildContext {
                source_name: &self.source_name,
                files: &self.files,
                time_col: &self.schema.time_col,
                id_col: &self.info.id_col,
                time_kind: &self.info.time_kind,
                n_targets: self.n_targets,
                target_cols: &self.schema.target_cols,
                n_covariates: self.info.covariate_cols.len(),
                sort: self.opts.sort,
                sequence: self.opts.irregular == Irregular::Sequence,
                duplicates: self.opts.duplicates,
                frequency: self.override_freq,
                max_gap_ratio: self.opts.max_gap_ratio,
                drop_all_missing: self.opts.drop_all_missing,
            };
            let series = build_series_from_batch(&batch, &ctx, self.produced, &mut self.report)?;
            debug!(series = series.len(), "bucket built");
            self.produced += series.len();
            self.queue.extend(series);
        }
        Ok(())
    }
}

impl Iterator for SeriesStream {
    type Item = Result<PreparedSeries>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let name = self.source_name.clone();
        if let Err(e) = guard(&name, || self.fill()) {
            self.failed = true;
            return Some(Err(e));
        }
        let mut s = self.queue.pop_front()?;
        if s.stats.frequency.is_none() {
            // A single-row series takes the dataset frequency so forecasts can continue it.
            if let Some(f) = self.schema.frequency {
                s.axis.frequency = f;
            }
        }
        Some(Ok(s))
    }
}

fn count_rows(lf: &LazyFrame, name: &str) -> Result<usize> {
    let df = lf
        .clone()
        .select([len().alias("n")])
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())
        .map_err(|e| {
            let msg = e.to_string();
            if msg.to_ascii_lowercase().contains("empty") {
                IngestError::Empty {
                    source_name: name.into(),
                }
            } else {
                IngestError::read(name, e)
            }
        })?;
    let n = df
        .column("n")
        .ok()
        .and_then(|c| c.get(0).ok())
        .and_then(|v| v.extract::<u64>())
        .unwrap_or(0);
    Ok(n as usize)
}

/// Rows per frame handed to the spill callback (bounds the streaming engine's buffers).
const SPILL_CHUNK_ROWS: usize = 65_536;

/// Assigns every series of the canonical frame to a bucket: series in order of first
/// appearance (file, then row), cut into runs of at most `max_rows` rows. One streaming pass
/// over the id and position columns; memory grows with the number of series, not of rows.
fn plan_buckets(
    lf: &LazyFrame,
    max_rows: usize,
    name: &str,
) -> Result<(HashMap<String, u32>, usize)> {
    let _s = info_span!("ingest.plan_buckets").entered();
    // One streaming pass in chunks of rows: per series its first (file, row) position and
    // its row count (polars' streaming group-by buffers far more at 50M rows).
    let seen: Arc<Mutex<HashMap<String, (u64, usize)>>> = Arc::default();
    let cb_seen = Arc::clone(&seen);
    let callback = PlanCallback::new(move |df: DataFrame| -> PolarsResult<bool> {
        let ids = df.column(canon::ID)?.str()?.clone();
        let files = df.column(canon::FILE)?.cast(&DataType::UInt64)?;
        let files = files.u64()?.clone();
        let rows = df.column(canon::ROW)?.cast(&DataType::UInt64)?;
        let rows = rows.u64()?.clone();
        let mut seen = cb_seen
            .lock()
            .map_err(|_| polars_err!(ComputeError: "bucket plan lock poisoned"))?;
        for ((id, f), r) in ids.iter().zip(files.iter()).zip(rows.iter()) {
            // Rows per file stay far below 2^40, so (file, row) packs into one sortable key.
            let key = (f.unwrap_or(0) << 40) | r.unwrap_or(0);
            // A null id has no entry; its rows go to the first bucket, whose reading reports them.
            let Some(id) = id else { continue };
            match seen.get_mut(id) {
                Some(e) => {
                    e.0 = e.0.min(key);
                    e.1 += 1;
                }
                None => {
                    seen.insert(id.to_string(), (key, 1));
                }
            }
        }
        Ok(false)
    });
    lf.clone()
        .select([col(canon::ID), col(canon::FILE), col(canon::ROW)])
        .sink_batches(callback, true, NonZeroUsize::new(SPILL_CHUNK_ROWS))
        .and_then(|lf| lf.collect_with_engine(Engine::Streaming))
        .map_err(|e| IngestError::read(name, e))?;
    let seen = std::mem::take(
        &mut *seen
            .lock()
            .map_err(|_| IngestError::Options("bucket plan lock poisoned".into()))?,
    );
    let mut order: Vec<(String, (u64, usize))> = seen.into_iter().collect();
    order.sort_by_key(|(_, (first, _))| *first);
    let mut map = HashMap::with_capacity(order.len());
    let (mut bucket, mut in_bucket) = (0u32, 0usize);
    for (id, (_, n)) in order {
        if in_bucket > 0 && in_bucket + n > max_rows {
            bucket += 1;
            in_bucket = 0;
        }
        in_bucket += n;
        map.insert(id, bucket);
    }
    Ok((map, bucket as usize + 1))
}

/// Streams the canonical frame once and writes each row to the bucket file of its series
/// ([`plan_buckets`]).
fn spill(lf: LazyFrame, opts: &IngestOptions, name: &str) -> Result<Buckets> {
    let (plan, k) = plan_buckets(&lf, opts.max_rows_in_memory, name)?;
    let _s = info_span!("ingest.partition", buckets = k).entered();
    let dir = match &opts.spill_dir {
        Some(d) => tempfile::Builder::new()
            .prefix("particast-buckets")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("particast-buckets")
            .tempdir(),
    }
    .map_err(|e| IngestError::Io {
        path: opts.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
        source: e,
    })?;
    let mut lf = lf;
    let schema = lf
        .collect_schema()
        .map_err(|e| IngestError::read(name, e))?;
    let paths: Vec<PathBuf> = (0..k)
        .map(|i| dir.path().join(format!("bucket-{i:05}.parquet")))
        .collect();
    let mut writers = Vec::with_capacity(k);
    for p in &paths {
        let f = File::create(p).map_err(|e| IngestError::Io {
            path: p.clone(),
            source: e,
        })?;
        let w = ParquetWriter::new(f)
            .with_compression(ParquetCompression::Uncompressed)
            .batched(&schema)
            .map_err(|e| IngestError::read(&p.to_string_lossy(), e))?;
        writers.push(w);
    }
    let writers = Arc::new(Mutex::new(writers));
    let cb_writers = Arc::clone(&writers);
    let callback = PlanCallback::new(move |df: DataFrame| -> PolarsResult<bool> {
        let ids = df.column(canon::ID)?.str()?.clone();
        let mut idx: Vec<Vec<IdxSize>> = vec![Vec::new(); k];
        for (i, id) in ids.iter().enumerate() {
            let b = id.and_then(|id| plan.get(id)).copied().unwrap_or(0) as usize;
            idx[b].push(i as IdxSize);
        }
        let mut writers = cb_writers
            .lock()
            .map_err(|_| polars_err!(ComputeError: "bucket writer lock poisoned"))?;
        for (b, rows) in idx.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = df.take(&IdxCa::from_vec("idx".into(), rows))?;
            writers[b].write_batch(&part)?;
        }
        Ok(false)
    });
    lf.sink_batches(callback, true, NonZeroUsize::new(SPILL_CHUNK_ROWS))
        .and_then(|lf| lf.collect_with_engine(Engine::Streaming))
        .map_err(|e| IngestError::read(name, e))?;
    let writers = Arc::try_unwrap(writers)
        .map_err(|_| IngestError::Options("bucket writers still shared".into()))?
        .into_inner()
        .map_err(|_| IngestError::Options("bucket writer lock poisoned".into()))?;
    for (w, p) in writers.into_iter().zip(&paths) {
        w.finish()
            .map_err(|e| IngestError::read(&p.to_string_lossy(), e))?;
    }
    Ok(Buckets::Spilled {
        _dir: dir,
        paths,
        next: 0,
    })
}
