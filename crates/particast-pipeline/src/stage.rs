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
use particast_ingest::{
    Dataset, IngestOptions, Layout, PreparedSeries, SeriesStream, Source, TimeKind,
};
use particast_kernels::Head;
use polars::prelude::DataFrame;
use std::collections::HashMap;
use std::path::Path;
use tracing::info_span;

use crate::cv::{Backtest, CvConfig};
use crate::error::{PipelineError, Result};
use crate::forecast::{
    forecast_ensemble_for_output, forecast_ensemble_future, future_columns, ForecastConfig,
    FutureCovariates, Mode, SeriesForecast,
};
use crate::metrics::Metrics;
use crate::model_dir::TrainedModel;
use crate::output::forecasts::ForecastReader;
use crate::output::{forecast_batch, read_forecasts, scores_batch, states, to_dataframe};
use crate::score::{check_state, score_some, ScoreConfig, SeriesScores, SeriesState};
use crate::settings::Overrides;
use crate::sink::{write_frame, write_frames, OutputFormat};

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
    // The schema is checked before any series is read.
    Ok(Dataset::collect(open_for_model(model, source, input)?)?)
}

/// [`read_for_model`] as a stream: the series come bucket by bucket (see
/// [`particast_ingest::SeriesStream`]), so a large input is never whole in memory. Pass it to
/// [`score_to`] or [`forecast_to`].
pub fn open_for_model(
    model: &TrainedModel,
    source: impl Fn() -> Source,
    input: &Overrides,
) -> Result<SeriesStream> {
    let _s = info_span!("open").entered();
    let stream = model.open_data(source, input)?;
    model.check_schema(stream.schema())?;
    Ok(stream)
}

/// Reads a future frame for `model`: one row per series and step to forecast, with the
/// model's id and time columns and its future covariate columns ([`future_columns`]), read
/// with the model's reading options (`input` on top) and its frequency. Extra columns are
/// ignored; rows before the forecast origin are allowed (a frame of all known covariates). For
/// a model with ids from file paths, the frame has a `unique_id` column of those ids.
pub fn read_future(
    model: &TrainedModel,
    source: Source,
    input: &Overrides,
) -> Result<FutureCovariates> {
    let _s = info_span!("read_future").entered();
    let name = source.name();
    let columns = future_columns(model);
    if columns.is_empty() {
        return Err(PipelineError::Config(format!(
            "{name}: the model has no future covariates, so it needs no future frame"
        )));
    }
    let mut opts = input.apply(&model.meta.ingest)?;
    if opts.layout != Layout::Long {
        return Err(PipelineError::Config(format!(
            "{name}: a future frame is a long table (one row per series and step)"
        )));
    }
    // A model whose ids come from file paths: the future frame names the series in an id
    // column (`unique_id` unless `input` names another), with the ids the forecasts carry.
    let from_paths = opts.id_from_path;
    if from_paths {
        opts.id_from_path = false;
        if !input.keys().any(|k| k == "id_col") {
            opts.id_col = "unique_id".into();
        }
    }
    opts.target_cols = columns.clone();
    opts.covariate_cols = Some(Vec::new());
    opts.futr_exog.clear();
    opts.hist_exog.clear();
    opts.stat_exog.clear();
    opts.calendar = false;
    opts.lags.clear();
    if let Some(f) = model.meta.data.frequency {
        opts.frequency = Some(f.describe(&model.meta.data.time_kind));
    }
    let data = Dataset::read(source, &opts).map_err(|e| match e {
        particast_ingest::IngestError::MissingColumn { .. } if from_paths => {
            PipelineError::Config(format!(
                "{name}: a future frame for a model with ids from file paths names each series \
                 in a `{}` column (the ids the forecasts carry): {e}",
                opts.id_col
            ))
        }
        e => e.into(),
    })?;
    if std::mem::discriminant(&data.schema.time_kind)
        != std::mem::discriminant(&model.meta.data.time_kind)
    {
        return Err(PipelineError::SchemaMismatch(format!(
            "{name}: time column kinds differ: model {:?}, future frame {:?}",
            model.meta.data.time_kind, data.schema.time_kind
        )));
    }
    Ok(FutureCovariates::from_targets(&data.series, columns, &name))
}

/// Rolling-origin cross-validation ([`crate::cv`]): trains on every series of `data` up to
/// its first cutoff into `dir` (with `cv.refit`, one model per window into `dir/window-K`)
/// and forecasts every window. Returns the backtest and the model(s) trained.
pub fn cross_validate(
    data: &Dataset,
    opts: &IngestOptions,
    train_cfg: &crate::settings::TrainConfig,
    fc: &ForecastConfig,
    cv: &CvConfig,
    dir: &Path,
    reporter: &mut dyn crate::train::Reporter,
) -> Result<(Backtest, Vec<TrainedModel>)> {
    let _s = info_span!("cv", series = data.series.len(), windows = cv.n_windows).entered();
    cv.validate(fc.horizon)?;
    fc.validate()?;
    let h = fc.horizon;
    let cut = |k: usize| -> Dataset {
        let mut d = data.clone();
        d.series = data
            .series
            .iter()
            .filter_map(|s| Some(s.head(cv.cutoffs(s.len(), h)?[k])))
            .collect();
        d
    };
    if !cv.refit {
        let model = crate::train::train(&cut(0), opts, train_cfg, dir, false, reporter)?;
        let bt = crate::cv::backtest(std::slice::from_ref(&model), &data.series, fc, cv, None)?;
        return Ok((bt, vec![model]));
    }
    let mut models = Vec::with_capacity(cv.n_windows);
    let mut out: Option<Backtest> = None;
    for k in 0..cv.n_windows {
        let sub = dir.join(format!("window-{}", k + 1));
        let model = crate::train::train(&cut(k), opts, train_cfg, &sub, false, reporter)?;
        let bt = crate::cv::backtest(std::slice::from_ref(&model), &data.series, fc, cv, Some(k))?;
        match &mut out {
            Some(o) => o.extend(bt),
            None => out = Some(bt),
        }
        models.push(model);
    }
    let bt = out.ok_or_else(|| PipelineError::Config("no window".into()))?;
    Ok((bt, models))
}

/// The series that saved score states continue ([`crate::score::state_series`]), checked
/// against `model`: what `forecast --state-in` forecasts from.
pub fn state_series_of(
    model: &TrainedModel,
    states: &[SeriesState],
) -> Result<Vec<PreparedSeries>> {
    states
        .iter()
        .map(|s| crate::score::state_series(model, s))
        .collect()
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
    /// Scores, one entry per series scored, in input order.
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
    let mut saved = saved_states(model, resume)?;
    let states = series.iter().map(|s| saved.remove(&s.id)).collect();
    let (scores, mut states): (Vec<_>, Vec<_>) =
        score_some(model, series, states, cfg)?.into_iter().unzip();
    states.extend(unseen(saved));
    Ok(Scored {
        scores,
        states,
        schema: schema.clone(),
    })
}

/// Saved states by series id, each checked against `model`.
fn saved_states(
    model: &TrainedModel,
    resume: Vec<SeriesState>,
) -> Result<HashMap<String, SeriesState>> {
    for s in &resume {
        check_state(model, s)?;
    }
    Ok(resume.into_iter().map(|s| (s.id.clone(), s)).collect())
}

/// The states of series not seen this time, kept in the order of their ids.
fn unseen(saved: HashMap<String, SeriesState>) -> Vec<SeriesState> {
    let mut rest: Vec<SeriesState> = saved.into_values().collect();
    rest.sort_by(|a, b| a.id.cmp(&b.id));
    rest
}

/// Input steps per part of a streamed run: series are gathered until they hold this many
/// steps (or one series holds more), then computed in parallel and written.
pub const PART_STEPS: usize = 1 << 18;

/// Series per part of a streamed forecast (its output grows with series, not steps).
pub const PART_SERIES: usize = 2048;

/// How far a streamed stage has got, after each part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Series done.
    pub series: usize,
    /// Input rows done.
    pub rows: usize,
}

impl Progress {
    /// Counts a finished part and tells `on_part`.
    fn advance(
        &mut self,
        part: &[PreparedSeries],
        on_part: &mut Option<Box<dyn FnMut(Progress) + '_>>,
    ) {
        self.series += part.len();
        self.rows += part.iter().map(|s| s.stats.rows).sum::<usize>();
        if let Some(f) = on_part.as_mut() {
            f(*self);
        }
    }
}

/// Pulls series until they hold `steps` steps or `max_series` series, or none are left.
fn next_part(
    series: &mut dyn Iterator<Item = particast_ingest::Result<PreparedSeries>>,
    steps: usize,
    max_series: usize,
) -> Result<Vec<PreparedSeries>> {
    let mut part = Vec::new();
    let mut held = 0;
    while held < steps && part.len() < max_series {
        match series.next() {
            Some(s) => {
                let s = s?;
                held += s.len();
                part.push(s);
            }
            None => break,
        }
    }
    Ok(part)
}

/// One step of a part-by-part iterator: a batch, or the end (after the last part or an error).
fn next_batch(part: Result<Option<RecordBatch>>, done: &mut bool) -> Option<Result<RecordBatch>> {
    let out = part.transpose();
    *done = !matches!(out, Some(Ok(_)));
    out
}

/// What a streamed scoring run produced besides its rows ([`score_to`]).
#[derive(Clone, Debug, Default)]
pub struct ScoreSummary {
    /// Series scored.
    pub series: usize,
    /// Output rows: one per input row.
    pub rows: usize,
    /// Rows flagged as anomalous.
    pub flagged: usize,
    /// The end states of the series scored (input order), then the untouched saved states
    /// of the others (by id); empty unless asked for ([`ScoreBatches::keep_states`]).
    pub states: Vec<SeriesState>,
}

/// Scores series as they come, one Arrow batch of score rows per part of [`PART_STEPS`]
/// input steps (the series of a part in parallel): memory holds one part, never the whole
/// input. The batches joined are [`Scored::batch`] of the same series. A series with a saved
/// state continues it. After the last batch, [`ScoreBatches::finish`] gives the summary.
pub struct ScoreBatches<'a, I> {
    model: &'a TrainedModel,
    series: I,
    schema: particast_ingest::DataSchema,
    cfg: ScoreConfig,
    saved: HashMap<String, SeriesState>,
    keep_states: bool,
    summary: ScoreSummary,
    progress: Progress,
    on_part: Option<Box<dyn FnMut(Progress) + 'a>>,
    started: bool,
    done: bool,
}

impl<'a, I> ScoreBatches<'a, I>
where
    I: Iterator<Item = particast_ingest::Result<PreparedSeries>>,
{
    /// Scoring of `series` (read with `schema`) by `model`, continuing the series in `resume`.
    pub fn new(
        model: &'a TrainedModel,
        series: I,
        schema: &particast_ingest::DataSchema,
        cfg: &ScoreConfig,
        resume: Vec<SeriesState>,
    ) -> Result<Self> {
        cfg.validate()?;
        Ok(ScoreBatches {
            model,
            series,
            schema: schema.clone(),
            cfg: cfg.clone(),
            saved: saved_states(model, resume)?,
            keep_states: false,
            summary: ScoreSummary::default(),
            progress: Progress::default(),
            on_part: None,
            started: false,
            done: false,
        })
    }

    /// Keeps every series' end state for [`ScoreSummary::states`] (memory grows with the
    /// number of series).
    pub fn keep_states(mut self) -> Self {
        self.keep_states = true;
        self
    }

    /// Calls `f` after every part.
    pub fn on_part(mut self, f: impl FnMut(Progress) + 'a) -> Self {
        self.on_part = Some(Box::new(f));
        self
    }

    fn part(&mut self) -> Result<Option<RecordBatch>> {
        let part = next_part(&mut self.series, PART_STEPS, usize::MAX)?;
        if part.is_empty() {
            if self.started {
                return Ok(None);
            }
            // No series at all: one empty batch still carries the columns.
            self.started = true;
            return scores_batch(&[], &self.schema).map(Some);
        }
        self.started = true;
        let _s = info_span!("score.part", series = part.len()).entered();
        let states = part.iter().map(|s| self.saved.remove(&s.id)).collect();
        let (scores, states): (Vec<_>, Vec<_>) = score_some(self.model, &part, states, &self.cfg)?
            .into_iter()
            .unzip();
        let scored = Scored {
            scores,
            states: Vec::new(),
            schema: self.schema.clone(),
        };
        self.summary.series += part.len();
        self.summary.rows += scored.rows();
        self.summary.flagged += scored.flagged();
        if self.keep_states {
            self.summary.states.extend(states);
        }
        self.progress.advance(&part, &mut self.on_part);
        scored.batch().map(Some)
    }

    /// The summary: counts, and the states when kept (with the unseen saved ones).
    pub fn finish(mut self) -> ScoreSummary {
        if self.keep_states {
            let rest = unseen(std::mem::take(&mut self.saved));
            self.summary.states.extend(rest);
        }
        self.summary
    }
}

impl<I> Iterator for ScoreBatches<'_, I>
where
    I: Iterator<Item = particast_ingest::Result<PreparedSeries>>,
{
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        next_batch(self.part(), &mut self.done)
    }
}

/// Scores series as they come and writes the score rows to `path` (`-`: standard output) part
/// by part ([`ScoreBatches`], [`write_frames`]): peak memory is one part's, whatever the input's
/// size, and the file is the same bytes as [`Scored::write`] of the same series.
pub fn score_to<'a, I>(
    batches: ScoreBatches<'a, I>,
    path: &Path,
    format: OutputFormat,
) -> Result<ScoreSummary>
where
    I: Iterator<Item = particast_ingest::Result<PreparedSeries>>,
{
    let time_kind = batches.schema.time_kind.clone();
    let mut batches = batches;
    let frames = batches
        .by_ref()
        .map(|b| b.and_then(|b| to_dataframe(&b, &time_kind)));
    write_frames(path, format, frames)?;
    Ok(batches.finish())
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
    forecast_with_future(models, series, time_kind, cfg, None)
}

/// [`forecast_series_of`] with the future values of covariates ([`read_future`]), which a
/// model with future covariates needs.
pub fn forecast_with_future(
    models: &[TrainedModel],
    series: &[PreparedSeries],
    time_kind: &TimeKind,
    cfg: &ForecastConfig,
    future: Option<&FutureCovariates>,
) -> Result<Forecasts> {
    let _s = info_span!("forecast", series = series.len()).entered();
    let out = forecast_ensemble_future(models, series, cfg, future)?;
    Ok(Forecasts {
        series: out,
        levels: cfg.levels.clone(),
        mode: cfg.mode,
        particles: models.iter().map(|m| m.model.config.particles).sum(),
        student_t: models.iter().any(|m| m.model.config.head == Head::StudentT),
        time_kind: time_kind.clone(),
    })
}

/// Forecasts series as they come, one Arrow batch of forecast rows per part (at most
/// [`PART_SERIES`] series or [`PART_STEPS`] input steps, in parallel): memory holds one part.
/// The batches joined are [`Forecasts::batch`] of the same series (every series' random
/// stream is fixed by its ordinal in the input, not by the part it falls in).
pub struct ForecastBatches<'a, I> {
    models: &'a [TrainedModel],
    future: Option<&'a FutureCovariates>,
    series: I,
    cfg: ForecastConfig,
    time_kind: TimeKind,
    progress: Progress,
    on_part: Option<Box<dyn FnMut(Progress) + 'a>>,
    started: bool,
    done: bool,
}

impl<'a, I> ForecastBatches<'a, I>
where
    I: Iterator<Item = particast_ingest::Result<PreparedSeries>>,
{
    /// Forecasts of `series` (of time type `time_kind`) by `models` (more than one: their
    /// ensemble).
    pub fn new(
        models: &'a [TrainedModel],
        series: I,
        time_kind: &TimeKind,
        cfg: &ForecastConfig,
    ) -> Result<Self> {
        if models.is_empty() {
            return Err(PipelineError::Config(
                "an ensemble needs at least one model".into(),
            ));
        }
        cfg.validate()?;
        Ok(ForecastBatches {
            models,
            future: None,
            series,
            cfg: cfg.clone(),
            time_kind: time_kind.clone(),
            progress: Progress::default(),
            on_part: None,
            started: false,
            done: false,
        })
    }

    /// Calls `f` after every part.
    pub fn on_part(mut self, f: impl FnMut(Progress) + 'a) -> Self {
        self.on_part = Some(Box::new(f));
        self
    }

    /// Forecasts with the future values of covariates ([`read_future`]).
    pub fn with_future(mut self, future: Option<&'a FutureCovariates>) -> Self {
        self.future = future;
        self
    }

    /// Series forecast so far.
    pub fn series_done(&self) -> usize {
        self.progress.series
    }

    fn forecasts(&self, series: Vec<SeriesForecast>) -> Forecasts {
        Forecasts {
            series,
            levels: self.cfg.levels.clone(),
            mode: self.cfg.mode,
            particles: self.models.iter().map(|m| m.model.config.particles).sum(),
            student_t: self
                .models
                .iter()
                .any(|m| m.model.config.head == Head::StudentT),
            time_kind: self.time_kind.clone(),
        }
    }

    fn part(&mut self) -> Result<Option<RecordBatch>> {
        let part = next_part(&mut self.series, PART_STEPS, PART_SERIES)?;
        if part.is_empty() {
            if self.started {
                return Ok(None);
            }
            self.started = true;
            return self.forecasts(Vec::new()).batch().map(Some);
        }
        self.started = true;
        let _s = info_span!("forecast.part", series = part.len()).entered();
        let out = forecast_ensemble_for_output(self.models, &part, &self.cfg, self.future)?;
        self.progress.advance(&part, &mut self.on_part);
        self.forecasts(out).batch().map(Some)
    }
}

impl<I> Iterator for ForecastBatches<'_, I>
where
    I: Iterator<Item = particast_ingest::Result<PreparedSeries>>,
{
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        next_batch(self.part(), &mut self.done)
    }
}

/// Forecasts series as they come and writes the rows to `path` (`-`: standard output) part by
/// part ([`ForecastBatches`]); the file is the same bytes as [`Forecasts::write`] of the same
/// series. Returns the number of series forecast.
pub fn forecast_to<I>(
    mut batches: ForecastBatches<'_, I>,
    path: &Path,
    format: OutputFormat,
) -> Result<usize>
where
    I: Iterator<Item = particast_ingest::Result<PreparedSeries>>,
{
    let time_kind = batches.time_kind.clone();
    let frames = batches
        .by_ref()
        .map(|b| b.and_then(|b| to_dataframe(&b, &time_kind)));
    write_frames(path, format, frames)?;
    Ok(batches.series_done())
}

/// Reads a forecast file (Parquet or Arrow IPC, told from its first bytes) written by
/// [`Forecasts::write`]; `name` names it in messages. Returns the forecasts and their levels.
pub fn read_forecast_file(path: &Path, name: &str) -> Result<(Vec<SeriesForecast>, Vec<f64>)> {
    let df = particast_ingest::ipc::read_table(path, name)?;
    read_forecasts(&df, name)
}

/// Opens a forecast file (see [`read_forecast_file`]) to read part by part: its forecasts
/// come one series at a time, in bounded memory ([`ForecastReader`]).
pub fn open_forecast_file(path: &Path, name: &str) -> Result<ForecastReader> {
    ForecastReader::open(path, name)
}

/// The metrics of a forecast file against `actuals` (read with `actuals_opts`), scaled by the
/// series of `history` (a stream: only each series' scale is kept), reading the forecasts part
/// by part: [`evaluate_against`] for files of any size.
pub fn evaluate_file(
    forecasts: ForecastReader,
    actuals: &Dataset,
    actuals_opts: &IngestOptions,
    history: impl Iterator<Item = particast_ingest::Result<PreparedSeries>>,
    season: usize,
) -> Result<Metrics> {
    let _s = info_span!("evaluate").entered();
    let scales = crate::evaluate::history_scales(history, season)?;
    let levels = forecasts.levels().to_vec();
    crate::evaluate::evaluate_stream(
        forecasts,
        &levels,
        actuals,
        &scales,
        by_position(actuals_opts),
    )
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
