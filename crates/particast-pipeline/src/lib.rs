//! # particast-pipeline
//!
//! The stages that turn series into models and models into numbers, between the front ends
//! (the CLI, pipeline files, the polars API, Python) and the two lower crates: series come from
//! `particast-ingest`, the particle RNN from `particast-kernels`. Every front end calls
//! [`stage`]: read, train, score, forecast, evaluate, with results that write themselves.
//!
//! Modules, bottom up (each imports only those above it):
//! - [`sink`] (every file written: standard output, pipes, atomic files, outputs that would
//!   replace an input refused), [`limits`] (sizes checked before allocating);
//! - `inputs`: the network's per-step inputs, with [`Transform`], [`Scaling`] and [`Target`];
//!   [`mixture`]: predictive mixtures built from the kernel's outputs (CDF, quantiles, CRPS);
//!   [`metrics`], [`nab`];
//! - [`settings`]: [`TrainConfig`] and [`Overrides`], the one settings layer (defaults only in
//!   the `Default`s; file sections, flags and keyword arguments are overrides by key);
//!   [`recipe`]: what training decides for every `auto` knob;
//! - `model_dir`: [`TrainedModel`] and its folder ([`ModelMeta`], [`TrainSummary`]);
//!   `condition`: the conditioning step scoring and forecasting share;
//! - [`calibrate`]: conformal interval corrections (what a model directory keeps in
//!   `calibration.json`);
//! - [`score`] (NLL, PIT, [`score::anomaly`] methods, [`score::state`] for incremental
//!   scoring and forecasting from a state), [`forecast`] (particle and sample modes,
//!   ensembles, future covariates), [`evaluate`], [`cv`] (rolling-origin backtests);
//! - `train` (Adam, early stopping, checkpoints and resume, the recipe's candidates);
//! - [`output`]: the file formats of scores, forecasts, states and metrics, each writer next to
//!   its reader; [`stage`]: the API on top.
//!
//! ## Words
//! One meaning each, across the crates:
//! - **series**: one id's values over time; **step**: one position of its time axis (gaps
//!   filled, missing values masked); **target**: the column(s) modelled; **covariate**: other
//!   numeric columns fed as inputs, future (known ahead), historical (known up to now) or
//!   static (one value per series); **cutoff**: the last step of a backtest window's history;
//! - **context**: the steps a window (or a forecast, or a scored series' scale) is conditioned
//!   on; **horizon**: the steps ahead a forecast covers -- training windows are context +
//!   horizon steps, and the validation tail of every series is one horizon; **holdout** (a
//!   pipeline file's `[train] holdout`): steps cut off the end of every series before training,
//!   to evaluate forecasts on;
//! - **window**: context + horizon consecutive steps of one series; **scale** (and location):
//!   the affine map of a window, from its context only ([`Affine`]); **transform**: a fixed map of
//!   the values before scaling; **target** (the network's, [`Target`]): what the emission
//!   models, the level or a change;
//! - **particle**: one of the L hidden trajectories; **gate**: how their weights move;
//!   **recipe**: the training settings, `auto` ones decided from the data;
//! - **stage**: read, train, score, forecast or evaluate; **overrides**: settings a user gave.
//!
//! ```no_run
//! use particast_pipeline::{stage, Silent, TrainConfig};
//! use particast_ingest::{IngestOptions, Source};
//!
//! let opts = IngestOptions::default();
//! let data = stage::read(Source::path("train.parquet"), &opts).unwrap();
//! let cfg = TrainConfig { horizon: 48, ..Default::default() }; // every recipe knob auto
//! let model = stage::train(&data, &opts, &cfg, "model".as_ref(), false, &mut Silent).unwrap();
//! println!("{:?}", model.meta.training);
//! ```
#![deny(missing_docs)]
// Index loops over parallel per-step buffers read better than zipped iterators here.
#![allow(clippy::needless_range_loop)]

pub mod calibrate;
mod condition;
pub mod cv;
mod error;
pub mod evaluate;
pub mod forecast;
mod inputs;
pub mod limits;
pub mod metrics;
pub mod mixture;
mod model_dir;
pub mod nab;
pub mod output;
pub mod recipe;
pub mod score;
pub mod settings;
pub mod sink;
pub mod stage;
mod train;

pub use error::{PipelineError, Result};
pub use forecast::{
    empirical_quantile, forecast_ensemble, forecast_ensemble_future, forecast_series,
    future_columns, ForecastConfig, FutureCovariates, Mode, Nonnegative, SeriesForecast,
    StepForecast,
};
pub use inputs::{
    Affine, Covariate, CovariateKind, InputSpec, KernelBatch, LagInput, LagInputs, Scaling, Target,
    Transform,
};
pub use model_dir::{
    write_atomic, EpochReport, ModelMeta, TrainSummary, TrainedModel, FORMAT_VERSION,
};
pub use output::states::{load_states, save_states};
pub use score::{
    check_state, likelihood_score, rank_score, score_continued, score_series, AdaptParams,
    AnomalyMethod, ScoreConfig, SeriesScores, SeriesState,
};
pub use settings::{Overrides, TrainConfig};
pub use train::{train, Reporter, Silent, MODEL_FILES};

pub use particast_ingest as ingest;
pub use particast_kernels as kernels;
