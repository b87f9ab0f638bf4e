//! The stages as one API under every front end (the command line, pipeline files, the polars
//! frame API, the Python package): read, train, score, forecast, evaluate. Each result knows
//! how to become a frame or a file, so a front end is its argument handling plus these calls.
//!
//! ```no_run
//! use particast_pipeline::stage::{self, Scored};
//! use particast_pipeline::{ForecastConfig, ScoreConfig, Silent, TrainConfig};
//! use particast_pipeline::ingest::{IngestOptions, Source};
//! use particast_pipeline::sink::OutputFormat;
//!
//! let opts = IngestOptions::default();
//! let data = stage::read(Source::path("train.parquet"), &opts).unwrap();
//! let model = stage::train(&data, &opts, &TrainConfig::default(), "m".as_ref(), false, &mut Silent).unwrap();
//! let scored: Scored = stage::score(&model, &data, &ScoreConfig::default(), Vec::new()).unwrap();
//! scored.write("scores.parquet".as_ref(), OutputFormat::Auto).unwrap();
//! let fc = stage::forecast(&[model], &data, &ForecastConfig::default()).unwrap();
//! fc.write("forecast.parquet".as_ref(), OutputFormat::Auto).unwrap();
//! ```

use arrow_array::RecordBatch;
use particast_ingest::{Dataset, IngestOptions, Layout, PreparedSeries, Source, TimeKind};
use particast_kernels::Head;
use polars::prelude::DataFrame;
use std::collections::HashMap;
use std::path::Path;
use tracing::info_span;

use crate::error::{PipelineError, Result};
use crate::forecast::{forecast_ensemble, ForecastConfig, Mode, SeriesForecast};
use crate::metrics::Metrics;
use crate::model_dir::TrainedModel;
use crate::output::{forecast_batch, read_forecasts, scores_batch, states, to_dataframe};
use crate::score::{
    check_state, score_continued, score_series, ScoreConfig, SeriesScores, SeriesState,
};
use crate::settings::Overrides;
use crate::sink::{write_frame, OutputFormat};

pub use crate::evaluate::{evaluate_forecasts as evaluate, EvaluateConfig};
pub use crate::train::train;

/// Reads, validates and prepares a dataset.
pub fn read(source: Source, opts: &IngestOptions) -> Result<Dataset> {
    let _s = info_span!("read").entered();
    Ok(Dataset::read(source, opts)?)
}

/// Reads data for `model` with the options it was trained with, `input` on top (a command
/// line's reading flags, say), and checks the schema against the model's.
pub fn read_for_model(
    model: &TrainedModel,
    source: impl Fn() -> Source,
    input: &Overrides,
) -> Result<Dataset> {
    let _s = info_span!("read").entered();
    let data = model.read_data(source, input)?;
    model.check_schema(&data.schema)?;
    Ok(data)
}

/// Every series without its last `h` steps (series of `h` steps or fewer stay whole): the
/// part a model trains on when the tail is held out for evaluation.
pub fn hold_out(series: &[PreparedSeries], h: usize) -> Vec<PreparedSeries> {
    series
        .iter()
        .map(|s| {
            if h > 0 && s.len() > h {
                s.head(s.len() - h)
            } else {
                s.clone()
            }
        })
        .collect()
}

/// The first `fraction` of every series, at most `max_steps` and at least one step (NAB's
/// probation period: the model never sees what it will score after it).
pub fn leading(
    series: &[PreparedSeries],
    fraction: f64,
    max_steps: Option<usize>,
) -> Vec<PreparedSeries> {
    series
        .iter()
        .map(|s| {
            let n = ((s.len() as f64 * fraction).floor() as usize)
                .min(max_steps.unwrap_or(usize::MAX))
                .max(1);
            s.head(n)
        })
        .collect()
}

/// What scoring produced: the scores of every series scored and the states to continue
/// them from (with the saved states of series not seen this time).
#[derive(Clone, Debug)]
pub struct Scored {
    /// Scores, one entry per series scored (continued series first, then fresh ones).
    pub scores: Vec<SeriesScores>,
    /// The state at the end of every series, and the untouched states of the others.
    pub states: Vec<SeriesState>,
    /// The schema of the data scored (target names, time type).
    pub schema: particast_ingest::DataSchema,
}

impl Scored {
    /// Output rows: one per input row.
    pub fn rows(&self) -> usize {
        self.scores
            .iter()
            .map(|s| s.present.iter().filter(|p| **p).count())
            .sum()
    }

    /// Rows flagged as anomalous.
    pub fn flagged(&self) -> usize {
        self.scores
            .iter()
            .flat_map(|s| s.flag.iter().zip(&s.present))
            .filter(|(f, p)| **p && **f == Some(true))
            .count()
    }

    /// The score columns as an Arrow record batch.
    pub fn batch(&self) -> Result<RecordBatch> {
        scores_batch(&self.scores, &self.schema)
    }

    /// The score columns as a polars frame (`ds` in the input's time type).
    pub fn to_frame(&self) -> Result<DataFrame> {
        to_dataframe(&self.batch()?, &self.schema.time_kind)
    }

    /// Writes the scores to `path` (`-`: standard output) in `format`.
    pub fn write(&self, path: &Path, format: OutputFormat) -> Result<()> {
        write_frame(&mut self.to_frame()?, path, format)
    }

    /// Writes the states (see [`crate::output::states`]).
    pub fn write_states(&self, path: &Path) -> Result<()> {
        states::save_states(&self.states, path)
    }
}

/// Scores every series of `data`: a series with a state in `resume` continues it (the new
/// rows must follow its last step), the others start fresh (in parallel).
pub fn score(
    model: &TrainedModel,
    data: &Dataset,
    cfg: &ScoreConfig,
    resume: Vec<SeriesState>,
) -> Result<Scored> {
    score_series_of(model, &data.series, &data.schema, cfg, resume)
}

/// [`score`] for given series of a dataset with `schema` (one series to draw, say).
pub fn score_series_of(
    model: &TrainedModel,
    series: &[PreparedSeries],
    schema: &particast_ingest::DataSchema,
    cfg: &ScoreConfig,
    resume: Vec<SeriesState>,
) -> Result<Scored> {
    let _s = info_span!("score", series = series.len()).entered();
    for s in &resume {
        check_state(model, s)?;
    }
    let mut saved: HashMap<String, SeriesState> =
        resume.into_iter().map(|s| (s.id.clone(), s)).collect();
    let mut scores = Vec::new();
    let mut states = Vec::new();
    let (cont, fresh): (Vec<_>, Vec<_>) = series.iter().partition(|s| saved.contains_key(&s.id));
    for s in cont {
        let mut st = saved
            .remove(&s.id)
            .ok_or_else(|| PipelineError::Config(format!("no state for {}", s.id)))?;
        scores.push(score_continued(model, &mut st, s, cfg)?);
        states.push(st);
    }
    let fresh: Vec<PreparedSeries> = fresh.into_iter().cloned().collect();
    for (sc, st) in score_series(model, &fresh, cfg)? {
        scores.push(sc);
        states.push(st);
    }
    // States of series not seen this time are kept, in the order of their ids.
    let mut rest: Vec<SeriesState> = saved.into_values().collect();
    rest.sort_by(|a, b| a.id.cmp(&b.id));
    states.extend(rest);
    Ok(Scored {
        scores,
        states,
        schema: schema.clone(),
    })
}

/// What forecasting produced, with what its columns need.
#[derive(Clone, Debug)]
pub struct Forecasts {
    /// One forecast per series, in the input's order.
    pub series: Vec<SeriesForecast>,
    /// Interval levels.
    pub levels: Vec<f64>,
    /// The mode.
    pub mode: Mode,
    /// Mixture components per step (particle mode): the particles of all models.
    pub particles: usize,
    /// Whether any component is a Student-t (a degrees-of-freedom column per component).
    pub student_t: bool,
    /// The input's time type.
    pub time_kind: TimeKind,
}

impl Forecasts {
    /// The forecast columns as an Arrow record batch.
    pub fn batch(&self) -> Result<RecordBatch> {
        forecast_batch(
            &self.series,
            &self.levels,
            self.mode,
            self.particles,
            self.student_t,
        )
    }

    /// The forecast columns as a polars frame (`ds` in the input's time type).
    pub fn to_frame(&self) -> Result<DataFrame> {
        to_dataframe(&self.batch()?, &self.time_kind)
    }

    /// Writes the forecasts to `path` (`-`: standard output) in `format`.
    pub fn write(&self, path: &Path, format: OutputFormat) -> Result<()> {
        write_frame(&mut self.to_frame()?, path, format)
    }
}

/// Forecasts every series of `data` `cfg.horizon` steps ahead with `models` (more than one:
/// their equal-weight mixture, [`forecast_ensemble`]).
pub fn forecast(
    models: &[TrainedModel],
    data: &Dataset,
    cfg: &ForecastConfig,
) -> Result<Forecasts> {
    forecast_series_of(models, &data.series, &data.schema.time_kind, cfg)
}

/// [`forecast`] from given series (a held-out part of a dataset, say).
pub fn forecast_series_of(
    models: &[TrainedModel],
    series: &[PreparedSeries],
    time_kind: &TimeKind,
    cfg: &ForecastConfig,
) -> Result<Forecasts> {
    let _s = info_span!("forecast", series = series.len()).entered();
    let out = forecast_ensemble(models, series, cfg)?;
    Ok(Forecasts {
        series: out,
        levels: cfg.levels.clone(),
        mode: cfg.mode,
        particles: models.iter().map(|m| m.model.config.particles).sum(),
        student_t: models.iter().any(|m| m.model.config.head == Head::StudentT),
        time_kind: time_kind.clone(),
    })
}

/// Reads a forecast file (Parquet or Arrow IPC, told from its first bytes) written by
/// [`Forecasts::write`]; `name` names it in messages. Returns the forecasts and their levels.
pub fn read_forecast_file(path: &Path, name: &str) -> Result<(Vec<SeriesForecast>, Vec<f64>)> {
    let df = particast_ingest::ipc::read_table(path, name)?;
    read_forecasts(&df, name)
}

/// Whether outcomes read with `opts` are matched to forecast steps by position (wide files
/// restart their step counter, like M4's test set) rather than by timestamp.
pub fn by_position(opts: &IngestOptions) -> bool {
    opts.layout == Layout::Wide
}

/// The metrics of `forecasts` against `actuals` (read with `actuals_opts`), scaled by the
/// series in `history`: [`evaluate`] with the matching rule of [`by_position`].
pub fn evaluate_against(
    forecasts: &[SeriesForecast],
    levels: &[f64],
    actuals: &Dataset,
    actuals_opts: &IngestOptions,
    history: &[PreparedSeries],
    season: usize,
) -> Result<Metrics> {
    let _s = info_span!("evaluate").entered();
    let positional = by_position(actuals_opts);
    crate::evaluate::evaluate_forecasts(forecasts, levels, actuals, history, positional, season)
}
