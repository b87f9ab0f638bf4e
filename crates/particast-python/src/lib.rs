//! # particast-python
//!
//! The extension module `particast._particast` under the Python package `particast`
//! (`crates/particast-python/python/particast`): the pure-Python layer gives the user-facing
//! API (`particast.fit`, `Model.forecast`, `Model.score`, `Scorer`, `particast.distributed`);
//! this crate is its bridge to the library, each call a [`particast::frames`] or
//! [`particast_pipeline::stage`] call.
//!
//! - **Data** crosses the boundary through the Arrow PyCapsule stream interface
//!   (`__arrow_c_stream__`, read with `arrow-pyarrow`): anything that exports it (polars,
//!   pyarrow, pandas through pyarrow, duckdb) comes in, whatever its string type (`Utf8`,
//!   `LargeUtf8`, `Utf8View`); results go out as `pyarrow.Table`s, which the Python layer turns
//!   into the caller's frame type. No polars types cross, so the wheel works with any polars.
//! - **Settings** come as JSON objects keyed as in pipeline files (`[train]`, `[score]`,
//!   `[forecast]`, `[input]`), applied by [`particast_pipeline::Overrides`]: unknown keys and
//!   bad values are refused with the key named.
//! - **The GIL is released** while Rust computes; training progress is reported to a Python
//!   `logging.Logger` (and a progress callback when given), attaching only for each report.
//! - **Errors** become `particast.InputError`, `ConfigError`, `ModelError`, `TrainingError`
//!   (all `particast.ParticastError`), with the command line's messages.
//! - `n_threads` runs a call in its own rayon pool of that size (results do not depend on it).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, Table};
use particast::frames::Model as FrameModel;
use particast::Error;
use particast_ingest::ffi::{dataframe_to_record_batch, record_batch_to_dataframe};
use particast_ingest::polars::prelude::*;
use particast_ingest::{IngestOptions, Source};
use particast_pipeline::output::states::{
    states_from_bytes, states_from_frame, states_to_bytes, states_to_frame,
};
use particast_pipeline::recipe::RecipeReport;
use particast_pipeline::{
    stage, EpochReport, ForecastConfig, Overrides, PipelineError, Reporter, ScoreConfig,
    SeriesState, TrainConfig, TrainedModel,
};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// mimalloc, as the command line: the kernels free and allocate their per-chunk buffers every
/// step, which glibc serves with fresh pages; mimalloc reuses them. Only this module's Rust
/// allocations go through it (Python's own allocator is untouched; buffers handed to pyarrow
/// are freed through their release callbacks, here).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    _particast,
    ParticastError,
    PyException,
    "Base class of particast's errors."
);
create_exception!(
    _particast,
    InputError,
    ParticastError,
    "The data are wrong: a missing column, a bad value, unsorted or duplicate timestamps, data that do not match the model."
);
create_exception!(
    _particast,
    ConfigError,
    ParticastError,
    "A setting is unknown, of the wrong type or out of range, or settings that cannot work together."
);
create_exception!(
    _particast,
    ModelError,
    ParticastError,
    "A model (directory, bytes or state table) cannot be read: damaged, truncated or of another format version."
);
create_exception!(
    _particast,
    TrainingError,
    ParticastError,
    "Training failed (the loss diverged)."
);

/// Which Python exception an error becomes.
fn to_py(e: impl Into<Error>) -> PyErr {
    let e: Error = e.into();
    let msg = e.to_string();
    let ingest_kind = |i: &particast_ingest::IngestError| {
        if i.is_bad_input() {
            InputError::new_err(msg.clone())
        } else {
            ParticastError::new_err(msg.clone())
        }
    };
    match &e {
        Error::Pipeline(p) => match p {
            PipelineError::Ingest(i) => ingest_kind(i),
            PipelineError::Format { .. } => ModelError::new_err(msg),
            PipelineError::Config(_) | PipelineError::Setting { .. } => ConfigError::new_err(msg),
            PipelineError::Diverged { .. } => TrainingError::new_err(msg),
            PipelineError::Io { .. } | PipelineError::Polars { .. } | PipelineError::Kernel(_) => {
                ParticastError::new_err(msg)
            }
            _ => InputError::new_err(msg),
        },
        Error::Ingest(i) => ingest_kind(i),
        Error::Spec { .. } | Error::Usage(_) => ConfigError::new_err(msg),
        Error::Io { .. } => ParticastError::new_err(msg),
    }
}

/// Settings of `section` from a JSON object.
fn overrides(section: &str, json: &str) -> PyResult<Overrides> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ConfigError::new_err(format!("{section}: not a JSON object: {e}")))?;
    Overrides::from_table(section, &value).map_err(to_py)
}

/// Reads any object with `__arrow_c_stream__` (or a `pyarrow.RecordBatchReader`) into one
/// polars frame.
fn frame_from_py(obj: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
    let reader = RecordBatchStreamReader::from_pyarrow_bound(obj)?;
    let schema = reader.schema();
    let mut out: Option<DataFrame> = None;
    for batch in reader {
        let batch = batch.map_err(|e| InputError::new_err(format!("reading the input: {e}")))?;
        let df = record_batch_to_dataframe(&batch).map_err(to_py)?;
        match &mut out {
            None => out = Some(df),
            Some(o) => {
                o.vstack_mut_owned(df).map_err(|e| {
                    InputError::new_err(format!("reading the input (joining batches): {e}"))
                })?;
            }
        }
    }
    match out {
        Some(df) => Ok(df),
        None => record_batch_to_dataframe(&RecordBatch::new_empty(schema)).map_err(to_py),
    }
}

/// A polars frame as a `pyarrow.Table`.
fn frame_to_py(py: Python<'_>, df: &DataFrame) -> PyResult<Py<PyAny>> {
    let batch = dataframe_to_record_batch(df).map_err(to_py)?;
    let schema = batch.schema();
    let table = Table::try_new(vec![batch], schema)
        .map_err(|e| ParticastError::new_err(format!("building the output table: {e}")))?;
    Ok(table.into_pyarrow(py)?.unbind())
}

/// Runs `f` in a rayon pool of `n` threads (the global pool when `None`).
fn with_threads<T: Send>(n: Option<usize>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    match n {
        None => Ok(f()),
        Some(0) => Err(ConfigError::new_err("n_threads must be at least 1")),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| ParticastError::new_err(format!("starting {n} threads: {e}")))?;
            Ok(pool.install(f))
        }
    }
}

/// Renames `from` to `to` when they differ and `from` is a column.
fn rename(df: &mut DataFrame, from: &str, to: &str) -> PyResult<()> {
    if from != to && df.column(from).is_ok() {
        df.rename(from, to.into())
            .map_err(|e| ParticastError::new_err(format!("renaming {from} to {to}: {e}")))?;
    }
    Ok(())
}

/// Training reports, to a Python logger and an optional progress callback.
struct PyReporter {
    logger: Option<Py<PyAny>>,
    progress: Option<Py<PyAny>>,
    batches: usize,
    epochs: usize,
}

impl PyReporter {
    fn log(&self, level: &str, msg: String) {
        if let Some(logger) = &self.logger {
            Python::attach(|py| {
                // A failing logger must not fail training; Python reports it as unraisable.
                if let Err(e) = logger.call_method1(py, level, (msg,)) {
                    e.write_unraisable(py, None);
                }
            });
        }
    }
    fn tick(&self, done: usize, total: usize, what: &str) {
        if let Some(cb) = &self.progress {
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (done, total, what)) {
                    e.write_unraisable(py, None);
                }
            });
        }
    }
}

impl Reporter for PyReporter {
    fn on_start(&mut self, epochs: usize, batches_per_epoch: usize, first_epoch: usize) {
        self.batches = batches_per_epoch;
        self.epochs = epochs;
        self.log(
            "info",
            format!("training: {epochs} epochs of {batches_per_epoch} batches (from epoch {first_epoch})"),
        );
    }
    fn on_batch(&mut self, epoch: usize, batch: usize, _loss: f64) {
        let done = epoch.saturating_sub(1) * self.batches + batch;
        self.tick(done, self.epochs * self.batches, "batches");
    }
    fn on_epoch(&mut self, r: &EpochReport) {
        let val = r
            .val_nll
            .map(|v| format!(", validation NLL {v:.4}"))
            .unwrap_or_default();
        self.log(
            "info",
            format!("epoch {}: train NLL {:.4}{val}", r.epoch, r.train_nll),
        );
    }
    fn on_recipe(&mut self, r: &RecipeReport) {
        for d in &r.decisions {
            self.log("debug", format!("recipe: {d:?}"));
        }
    }
    fn on_candidate(&mut self, k: usize, n: usize, name: &str) {
        self.log("info", format!("candidate {k}/{n}: {name}"));
    }
    fn on_selected(&mut self, r: &RecipeReport) {
        for c in &r.candidates {
            self.log("info", format!("compared: {c:?}"));
        }
    }
}

/// Trains a model on `data` (see `particast.fit`).
/// The folder training keeps its checkpoints in: the caller's, or a temporary one (removed
/// when the returned guard drops, once the model is in memory).
fn model_dir(dir: Option<&Path>) -> Result<(Option<tempfile::TempDir>, PathBuf), Error> {
    match dir {
        Some(d) => Ok((None, d.to_path_buf())),
        None => {
            let tmp = tempfile::tempdir().map_err(|e| Error::Io {
                path: std::env::temp_dir(),
                source: e,
            })?;
            let path = tmp.path().to_path_buf();
            Ok((Some(tmp), path))
        }
    }
}

#[pyfunction]
#[pyo3(signature = (data, ingest, train, dir=None, logger=None, progress=None, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    ingest: &str,
    train: &str,
    dir: Option<PathBuf>,
    logger: Option<Py<PyAny>>,
    progress: Option<Py<PyAny>>,
    n_threads: Option<usize>,
) -> PyResult<Model> {
    let df = frame_from_py(data)?;
    let opts: IngestOptions = overrides("input", ingest)?.build().map_err(to_py)?;
    let cfg: TrainConfig = overrides("train", train)?.build().map_err(to_py)?;
    let mut reporter = PyReporter {
        logger,
        progress,
        batches: 0,
        epochs: 0,
    };
    let trained = py.detach(|| {
        with_threads(n_threads, || -> Result<TrainedModel, Error> {
            let (_tmp, dir) = model_dir(dir.as_deref())?;
            let dir: &Path = &dir;
            let data = stage::read(Source::Frame(df), &opts)?;
            Ok(stage::train(&data, &opts, &cfg, dir, false, &mut reporter)?)
        })
    })?;
    Ok(Model {
        inner: FrameModel::new(trained.map_err(to_py)?),
    })
}

/// A trained model (see `particast.Model`).
#[pyclass(module = "particast._particast", frozen, skip_from_py_object)]
struct Model {
    inner: FrameModel,
}

impl Model {
    /// The model reading frames with `input` on top of its own options.
    fn reading(&self, input: &str) -> PyResult<FrameModel> {
        let mut m = self.inner.clone();
        m.input = overrides("input", input)?;
        m.reading_options().map_err(to_py)?;
        Ok(m)
    }
}

#[pymethods]
impl Model {
    /// Loads a model directory written by `save` or `particast train`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
        let m = py.detach(|| FrameModel::load(&path)).map_err(to_py)?;
        Ok(Model { inner: m })
    }

    /// Writes the model directory (`config.json`, `model.safetensors`), atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.trained.save(&path)).map_err(to_py)
    }

    /// The bytes of `config.json` and `model.safetensors`.
    fn to_bytes<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let config = serde_json::to_vec(&self.inner.trained.meta)
            .map_err(|e| ParticastError::new_err(format!("serialising the config: {e}")))?;
        let weights = TrainedModel::weights_bytes(&self.inner.trained.model).map_err(to_py)?;
        Ok((PyBytes::new(py, &config), PyBytes::new(py, &weights)))
    }

    /// A model from the bytes of [`Model::to_bytes`], checked as a directory is.
    #[staticmethod]
    fn from_bytes(config: &[u8], weights: &[u8]) -> PyResult<Model> {
        let trained =
            TrainedModel::from_bytes(config, weights, Path::new("<bytes>")).map_err(to_py)?;
        Ok(Model {
            inner: FrameModel::new(trained),
        })
    }

    /// `config.json` as a JSON string.
    #[getter]
    fn config(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.trained.meta)
            .map_err(|e| ParticastError::new_err(format!("serialising the config: {e}")))
    }

    /// Forecast rows (a `pyarrow.Table`) with the id and time columns named as read; `future`:
    /// the future covariates of the horizon (a frame like `data` without the target).
    #[pyo3(signature = (data, forecast, input, future=None, n_threads=None))]
    fn forecast(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        forecast: &str,
        input: &str,
        future: Option<&Bound<'_, PyAny>>,
        n_threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let m = self.reading(input)?;
        let cfg: ForecastConfig = overrides("forecast", forecast)?.build().map_err(to_py)?;
        let df = frame_from_py(data)?;
        let future = future.map(frame_from_py).transpose()?;
        let mut out = py
            .detach(|| {
                with_threads(n_threads, || {
                    m.forecast_future(df.lazy(), future.map(|f| f.lazy()), &cfg)
                })
            })?
            .map_err(to_py)?;
        let opts = m.reading_options().map_err(to_py)?;
        rename(&mut out, "unique_id", &opts.id_col)?;
        rename(&mut out, "ds", &opts.time_col)?;
        frame_to_py(py, &out)
    }

    /// The input rows with the four score columns (a `pyarrow.Table`), continuing the series
    /// of `states` (state-file bytes), and the end states as bytes when `keep_states`.
    #[pyo3(signature = (data, score, input, states=None, keep_states=false, n_threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn score(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        score: &str,
        input: &str,
        states: Option<&[u8]>,
        keep_states: bool,
        n_threads: Option<usize>,
    ) -> PyResult<(Py<PyAny>, Option<Py<PyAny>>)> {
        let m = self.reading(input)?;
        let cfg: ScoreConfig = overrides("score", score)?.build().map_err(to_py)?;
        let resume = match states {
            Some(b) => states_from_bytes(b, Path::new("<states>")).map_err(to_py)?,
            None => Vec::new(),
        };
        let df = frame_from_py(data)?;
        let (out, states) = score_frame(py, &m, df, &cfg, resume, n_threads)?;
        let states = if keep_states {
            let bytes = states_to_bytes(&states).map_err(to_py)?;
            Some(PyBytes::new(py, &bytes).into_any().unbind())
        } else {
            None
        };
        Ok((frame_to_py(py, &out)?, states))
    }
}

/// Scores `df` with the GIL released.
fn score_frame(
    py: Python<'_>,
    m: &FrameModel,
    df: DataFrame,
    cfg: &ScoreConfig,
    resume: Vec<SeriesState>,
    n_threads: Option<usize>,
) -> PyResult<(DataFrame, Vec<SeriesState>)> {
    py.detach(|| {
        with_threads(n_threads, || -> Result<_, Error> {
            let (lf, states) = m.score_continuing(df.lazy(), cfg, resume)?;
            let out = lf.collect().map_err(|e| PipelineError::Polars {
                context: "joining the scores to the input rows".into(),
                source: e.into(),
            })?;
            Ok((out, states))
        })
    })?
    .map_err(to_py)
}

/// Scores a stream micro-batch by micro-batch, keeping every series' state (see
/// `particast.Scorer`).
#[pyclass(module = "particast._particast", frozen, skip_from_py_object)]
struct Scorer {
    model: FrameModel,
    cfg: ScoreConfig,
    states: Mutex<Vec<SeriesState>>,
}

#[pymethods]
impl Scorer {
    /// A scorer for `model` with score settings `score`, reading with `input`, continuing
    /// `states` (state-file bytes or a state table) when given.
    #[new]
    #[pyo3(signature = (model, score, input, states=None))]
    fn new(
        model: &Model,
        score: &str,
        input: &str,
        states: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Scorer> {
        let m = model.reading(input)?;
        let cfg: ScoreConfig = overrides("score", score)?.build().map_err(to_py)?;
        cfg.validate().map_err(to_py)?;
        let states = match states {
            None => Vec::new(),
            Some(s) => match s.cast::<PyBytes>() {
                Ok(b) => states_from_bytes(b.as_bytes(), Path::new("<states>")).map_err(to_py)?,
                Err(_) => {
                    let df = frame_from_py(s)?;
                    states_from_frame(&df, Path::new("<states table>")).map_err(to_py)?
                }
            },
        };
        Ok(Scorer {
            model: m,
            cfg,
            states: Mutex::new(states),
        })
    }

    /// Scores the new rows (they must follow each series' last scored step) and keeps the
    /// states; on an error the states stay as they were.
    #[pyo3(signature = (data, n_threads=None))]
    fn update(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        n_threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let df = frame_from_py(data)?;
        let mut guard = self
            .states
            .lock()
            .map_err(|_| ParticastError::new_err("the scorer's states were poisoned by a panic"))?;
        let resume = guard.clone();
        let (out, states) = score_frame(py, &self.model, df, &self.cfg, resume, n_threads)?;
        *guard = states;
        frame_to_py(py, &out)
    }

    /// The states as the bytes of a state file (Parquet).
    fn states_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let guard = self
            .states
            .lock()
            .map_err(|_| ParticastError::new_err("the scorer's states were poisoned by a panic"))?;
        let bytes = states_to_bytes(&guard).map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The states as a table (a `pyarrow.Table`, one row per series).
    fn states_table(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let df = {
            let guard = self.states.lock().map_err(|_| {
                ParticastError::new_err("the scorer's states were poisoned by a panic")
            })?;
            states_to_frame(&guard).map_err(to_py)?
        };
        frame_to_py(py, &df)
    }

    /// How many series have a state.
    fn __len__(&self) -> PyResult<usize> {
        Ok(self
            .states
            .lock()
            .map_err(|_| ParticastError::new_err("the scorer's states were poisoned by a panic"))?
            .len())
    }
}

/// Forecast accuracy (see `particast.evaluate`): the metrics as a JSON object.
#[pyfunction]
#[pyo3(signature = (forecasts, actuals, history, ingest, season=1))]
fn evaluate(
    py: Python<'_>,
    forecasts: &Bound<'_, PyAny>,
    actuals: &Bound<'_, PyAny>,
    history: Option<&Bound<'_, PyAny>>,
    ingest: &str,
    season: usize,
) -> PyResult<String> {
    let opts: IngestOptions = overrides("input", ingest)?.build().map_err(to_py)?;
    let mut fc = frame_from_py(forecasts)?;
    rename(&mut fc, &opts.id_col, "unique_id")?;
    rename(&mut fc, &opts.time_col, "ds")?;
    let actuals = frame_from_py(actuals)?;
    let history = history.map(frame_from_py).transpose()?;
    let metrics = py
        .detach(|| -> Result<_, Error> {
            let (forecasts, levels) =
                particast_pipeline::output::read_forecasts(&fc, "<forecasts>")?;
            let actuals = stage::read(Source::Frame(actuals), &opts)?;
            let scales = match history {
                Some(h) => {
                    let h = stage::read(Source::Frame(h), &opts)?;
                    particast_pipeline::evaluate::history_scales(h.series.iter().map(Ok), season)?
                }
                None => Default::default(),
            };
            Ok(particast_pipeline::evaluate::evaluate_stream(
                forecasts.into_iter().map(Ok),
                &levels,
                &actuals,
                &scales,
                stage::by_position(&opts),
            )?)
        })
        .map_err(to_py)?;
    serde_json::to_string(&metrics)
        .map_err(|e| ParticastError::new_err(format!("serialising the metrics: {e}")))
}

/// The version of the library inside.
/// Rolling-origin cross-validation (`particast cv`): trains on every series of `data` up to
/// its first cutoff (or one model per window with `refit`), forecasts every window; returns the
/// windows' rows in Nixtla's layout (a `pyarrow.Table`: id, time, `cutoff`, `y`, the forecast
/// columns) and the report (metrics per window and overall) as JSON.
#[pyfunction]
#[pyo3(signature = (data, ingest, train, forecast, cv, dir=None, logger=None, progress=None, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn cross_validation(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    ingest: &str,
    train: &str,
    forecast: &str,
    cv: &str,
    dir: Option<PathBuf>,
    logger: Option<Py<PyAny>>,
    progress: Option<Py<PyAny>>,
    n_threads: Option<usize>,
) -> PyResult<(Py<PyAny>, String)> {
    let df = frame_from_py(data)?;
    let opts: IngestOptions = overrides("input", ingest)?.build().map_err(to_py)?;
    let cfg: TrainConfig = overrides("train", train)?.build().map_err(to_py)?;
    let fc: ForecastConfig = overrides("forecast", forecast)?.build().map_err(to_py)?;
    let cv: particast_pipeline::cv::CvConfig = overrides("cv", cv)?.build().map_err(to_py)?;
    let mut reporter = PyReporter {
        logger,
        progress,
        batches: 0,
        epochs: 0,
    };
    let out = py.detach(|| {
        with_threads(n_threads, || -> Result<(DataFrame, String), Error> {
            let (_tmp, dir) = model_dir(dir.as_deref())?;
            let dir: &Path = &dir;
            let data = stage::read(Source::Frame(df), &opts)?;
            let (bt, _) = stage::cross_validate(&data, &opts, &cfg, &fc, &cv, dir, &mut reporter)?;
            let frame = bt.frame(&data.series, &data.schema.time_kind)?;
            let report = bt.report(&data, &cv, false)?;
            let json = serde_json::to_string(&report).map_err(|e| {
                Error::Pipeline(PipelineError::Config(format!("the backtest report: {e}")))
            })?;
            Ok((frame, json))
        })
    })?;
    let (mut frame, report) = out.map_err(to_py)?;
    rename(&mut frame, "unique_id", &opts.id_col)?;
    rename(&mut frame, "ds", &opts.time_col)?;
    Ok((frame_to_py(py, &frame)?, report))
}

#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The extension module.
#[pymodule]
fn _particast(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(cross_validation, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_class::<Model>()?;
    m.add_class::<Scorer>()?;
    m.add("ParticastError", py.get_type::<ParticastError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("TrainingError", py.get_type::<TrainingError>())?;
    Ok(())
}
