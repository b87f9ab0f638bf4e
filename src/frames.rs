//! A polars-native API: frames in, frames out, no Arrow by hand; each call is a
//! [`particast_pipeline::stage`] call.
//!
//! ```
//! use particast::frames::{fit, Config};
//! use particast::polars::prelude::*;
//!
//! // Two hourly series with a daily cycle.
//! let n = 24 * 20;
//! let ids: Vec<&str> = (0..2 * n).map(|i| if i < n { "a" } else { "b" }).collect();
//! let ds: Vec<i64> = (0..2 * n).map(|i| (i % n) as i64).collect();
//! let y: Vec<f64> = (0..2 * n)
//!     .map(|i| 10.0 + ((i % n) as f64 * std::f64::consts::TAU / 24.0).sin())
//!     .collect();
//! let lf = df!("unique_id" => ids, "ds" => ds, "y" => y).unwrap().lazy();
//!
//! let mut config = Config::default();
//! config.train.context = Some(48);
//! config.train.horizon = 24;
//! config.train.epochs = Some(2);
//! config.train.batches_per_epoch = Some(5);
//! let dir = tempfile::tempdir().unwrap();
//! let model = fit(lf.clone(), &config, dir.path()).unwrap();
//!
//! // Scores: the input rows with four columns appended.
//! let scored = model.score(lf.clone()).unwrap().collect().unwrap();
//! assert_eq!(scored.height(), 2 * n);
//! assert!(scored.column("particast-anomaly").is_ok());
//!
//! // The same scores part by part, in bounded memory (for inputs larger than memory).
//! let mut parts = 0;
//! for part in model.score_frames(lf.clone(), &Default::default()).unwrap() {
//!     parts += part.unwrap().height();
//! }
//! assert_eq!(parts, 2 * n);
//!
//! // Forecasts: one row per series and step.
//! let fc = model.forecast(lf, 12).unwrap();
//! assert_eq!(fc.height(), 2 * 12);
//! assert!(fc.column("particast-lo-95").is_ok());
//! ```

use particast_ingest::polars::prelude::*;
use particast_ingest::{Dataset, IngestOptions, SeriesStream, Source};
use particast_pipeline::output::to_dataframe;
use particast_pipeline::{
    stage, ForecastConfig, Overrides, ScoreConfig, SeriesState, Silent, TrainConfig, TrainedModel,
};
use std::path::Path;

use crate::error::Error;

/// How to read the frames and train.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Column names and features (the frame's layout).
    pub ingest: IngestOptions,
    /// Training settings.
    pub train: TrainConfig,
}

/// A trained model, used on polars frames.
#[derive(Clone, Debug)]
pub struct Model {
    /// The model and its metadata.
    pub trained: TrainedModel,
    /// How frames are read for it, on top of the options it was trained with (the keys of a
    /// pipeline file's `[input]` section: `sort`, `id_col`, ...); none by default.
    pub input: Overrides,
}

/// Trains a model on a frame and saves it in `dir`.
pub fn fit(lf: LazyFrame, config: &Config, dir: &Path) -> Result<Model, Error> {
    let data = stage::read(Source::lazy(lf), &config.ingest)?;
    let trained = stage::train(
        &data,
        &config.ingest,
        &config.train,
        dir,
        false,
        &mut Silent,
    )?;
    Ok(Model::new(trained))
}

impl Model {
    /// A trained model, reading frames with the options it was trained with.
    pub fn new(trained: TrainedModel) -> Model {
        Model {
            trained,
            input: Overrides::new("input"),
        }
    }

    /// Loads a model directory.
    pub fn load(dir: &Path) -> Result<Model, Error> {
        Ok(Model::new(TrainedModel::load(dir)?))
    }

    /// The options reading frames for this model: its training's with [`Model::input`] on top.
    pub fn reading_options(&self) -> Result<IngestOptions, Error> {
        Ok(self.input.apply(&self.trained.meta.ingest)?)
    }

    fn read(&self, lf: LazyFrame) -> Result<Dataset, Error> {
        Ok(Dataset::collect(self.open(lf)?)?)
    }

    /// The input rows, in the input's order, with `particast-nll`, `particast-pit`,
    /// `particast-anomaly` and `particast-flag` appended (default scoring settings).
    pub fn score(&self, lf: LazyFrame) -> Result<LazyFrame, Error> {
        self.score_with(lf, &ScoreConfig::default())
    }

    /// [`Model::score`] with settings.
    pub fn score_with(&self, lf: LazyFrame, cfg: &ScoreConfig) -> Result<LazyFrame, Error> {
        Ok(self.score_continuing(lf, cfg, Vec::new())?.0)
    }

    /// [`Model::score_with`] continuing the series that have a saved state in `resume` (their
    /// new rows must follow the state's last step; the others start fresh), also giving the
    /// state at the end of every series scored and the untouched states of the rest: scoring
    /// a stream micro-batch by micro-batch this way gives the numbers of one pass over all of
    /// it.
    pub fn score_continuing(
        &self,
        lf: LazyFrame,
        cfg: &ScoreConfig,
        resume: Vec<SeriesState>,
    ) -> Result<(LazyFrame, Vec<SeriesState>), Error> {
        let data = self.read(lf.clone())?;
        let scored = stage::score(&self.trained, &data, cfg, resume)?;
        let df = scored.to_frame()?;
        let opts = &self.reading_options()?;
        let key = "__particast_key";
        // Joined on the instant (nanoseconds since the epoch) for timestamps and dates, so an
        // input whose time type differs from the model's data (a time zone, another unit)
        // still matches its rows.
        let mut lf = lf;
        let input_time = lf
            .collect_schema()
            .ok()
            .and_then(|s| s.get(opts.time_col.as_str()).cloned());
        let time_key = |e: Expr, temporal: bool| {
            if temporal {
                e.dt().timestamp(TimeUnit::Nanoseconds)
            } else {
                e
            }
        };
        let temporal = input_time.as_ref().is_some_and(|t| t.is_temporal());
        let tkey = "__particast_time";
        let scores = df.lazy().select([
            col("unique_id").alias(key),
            time_key(col("ds"), temporal).alias(tkey),
            col("particast-nll"),
            col("particast-pit"),
            col("particast-anomaly"),
            col("particast-flag"),
        ]);
        // The input's row order is kept (polars leaves a join's order open unless asked).
        let mut join_args = JoinArgs::new(JoinType::Left);
        join_args.maintain_order = MaintainOrderJoin::Left;
        let joined = lf
            .with_columns([
                col(opts.id_col.as_str()).cast(DataType::String).alias(key),
                time_key(col(opts.time_col.as_str()), temporal).alias(tkey),
            ])
            .join(
                scores,
                [col(key), col(tkey)],
                [col(key), col(tkey)],
                join_args,
            )
            .drop(by_name([key, tkey], true, false));
        Ok((joined, scored.states))
    }

    /// The score columns (`unique_id`, `ds`, `y`, `particast-nll`, ...: the output of
    /// `particast score`) as frames, one part of the input at a time: the input is read bucket
    /// by bucket and scored part by part, so memory stays bounded however large `lf` is. The
    /// frames stacked are the file `particast score` writes.
    pub fn score_frames(
        &self,
        lf: LazyFrame,
        cfg: &ScoreConfig,
    ) -> Result<impl Iterator<Item = Result<DataFrame, Error>> + '_, Error> {
        let stream = self.open(lf)?;
        let schema = stream.schema().clone();
        let time_kind = schema.time_kind.clone();
        let batches = stage::ScoreBatches::new(&self.trained, stream, &schema, cfg, Vec::new())?;
        Ok(batches.map(move |b| Ok(to_dataframe(&b?, &time_kind)?)))
    }

    /// The forecast rows as frames, part by part (see [`Model::score_frames`]).
    pub fn forecast_frames(
        &self,
        lf: LazyFrame,
        cfg: &ForecastConfig,
    ) -> Result<impl Iterator<Item = Result<DataFrame, Error>> + '_, Error> {
        let stream = self.open(lf)?;
        let time_kind = stream.schema().time_kind.clone();
        let models = std::slice::from_ref(&self.trained);
        let batches = stage::ForecastBatches::new(models, stream, &time_kind, cfg)?;
        Ok(batches.map(move |b| Ok(to_dataframe(&b?, &time_kind)?)))
    }

    fn open(&self, lf: LazyFrame) -> Result<SeriesStream, Error> {
        Ok(stage::open_for_model(
            &self.trained,
            || Source::lazy(lf.clone()),
            &self.input,
        )?)
    }

    /// Forecasts `horizon` steps of every series (the default settings otherwise: sample mode,
    /// 80 and 95% intervals).
    pub fn forecast(&self, lf: LazyFrame, horizon: usize) -> Result<DataFrame, Error> {
        self.forecast_with(
            lf,
            &ForecastConfig {
                horizon,
                ..Default::default()
            },
        )
    }

    /// [`Model::forecast`] with settings.
    pub fn forecast_with(&self, lf: LazyFrame, cfg: &ForecastConfig) -> Result<DataFrame, Error> {
        self.forecast_future(lf, None, cfg)
    }

    /// [`Model::forecast_with`] with a future frame (`future`: one row per series and step of
    /// the horizon with the id, time and future covariate columns; needed by a model with
    /// future covariates, [`stage::read_future`]).
    pub fn forecast_future(
        &self,
        lf: LazyFrame,
        future: Option<LazyFrame>,
        cfg: &ForecastConfig,
    ) -> Result<DataFrame, Error> {
        let data = self.read(lf)?;
        let future = future
            .map(|f| stage::read_future(&self.trained, Source::lazy(f), &self.input))
            .transpose()?;
        let models = std::slice::from_ref(&self.trained);
        Ok(stage::forecast_with_future(
            models,
            &data.series,
            &data.schema.time_kind,
            cfg,
            future.as_ref(),
        )?
        .to_frame()?)
    }
}
