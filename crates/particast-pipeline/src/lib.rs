//! # particast-pipeline
//!
//! The stages that turn windows into models and models into numbers. It sits between the command
//! line and the two lower crates: series come from `particast-ingest`, the particle RNN from
//! `particast-kernels`.
//!
//! - [`train()`]: windows sampled from ingestion (seeded, weighted by scale), an optional value
//!   transform ([`Transform`], e.g. `ln y`), per-window scaling ([`Scaling`]), the level or the
//!   change from one season ago as the emission's target ([`Target`], whose lags then enter as
//!   seasonal changes next to their levels, [`LagInputs`]), Adam with global-norm clipping,
//!   learning-rate decay on plateau, early stopping on the NLL of a held-out tail of every series, a checkpoint every epoch and resume. Progress
//!   goes to a [`Reporter`]; the result is a [`TrainedModel`] saved as a model directory
//!   (`model.safetensors` + `config.json`, written atomically, with a format version).
//! - [`score_series`]: per observation the exact one-step predictive NLL under the particle
//!   mixture, the PIT value and an anomaly score (tail probability, z-score or rank of the NLL,
//!   [`AnomalyMethod`]), streaming through each series in chunks that carry the particle state
//!   (optionally re-conditioned on the recent past every few steps); [`score_continued`]
//!   continues from a saved [`SeriesState`].
//! - [`forecast_series`]: `particle` mode (each particle rolls on its own mean; quantiles by
//!   inverting the mixture CDF) or `sample` mode (exact ancestral sampling), censored at zero for
//!   nonnegative series ([`Nonnegative`]); [`forecast_ensemble`] mixes several models.
//! - [`metrics`]: CRPS, wQL, ND, NRMSE, MASE, sMAPE, MSIS, coverage, NLL, with their definitions.
//! - [`output`]: the stages' Arrow columns; [`sink`]: every file written, in one place
//!   (standard output, write-through to pipes and devices, atomic files, outputs that would
//!   replace an input refused); [`limits`]: sizes checked before anything is allocated.
//! - [`nab`]: the Numenta Anomaly Benchmark's scoring (windows, probation, scaled sigmoid,
//!   profiles, corpus-optimal threshold, normalisation).
//!
//! ```no_run
//! use particast_pipeline::{train, Silent, TrainConfig};
//! use particast_ingest::{Dataset, IngestOptions, Source};
//!
//! let opts = IngestOptions::default();
//! let data = Dataset::read(Source::path("train.parquet"), &opts).unwrap();
//! let cfg = TrainConfig { horizon: 48, ..Default::default() }; // every recipe knob auto
//! let model = train(&data, &opts, &cfg, "model".as_ref(), false, &mut Silent).unwrap();
//! println!("{:?}", model.meta.training);
//! ```
#![deny(missing_docs)]
// Index loops over parallel per-step buffers read better than zipped iterators here.
#![allow(clippy::needless_range_loop)]

mod condition;
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
    empirical_quantile, forecast_ensemble, forecast_series, ForecastConfig, Mode, Nonnegative,
    SeriesForecast, StepForecast,
};
pub use inputs::{Affine, InputSpec, KernelBatch, LagInput, LagInputs, Scaling, Target, Transform};
pub use model_dir::{
    write_atomic, EpochReport, ModelMeta, TrainSummary, TrainedModel, FORMAT_VERSION,
};
pub use output::states::{load_states, save_states};
pub use score::{
    check_state, likelihood_score, rank_score, score_continued, score_series, AnomalyMethod,
    ScoreConfig, SeriesScores, SeriesState,
};
pub use settings::{Overrides, TrainConfig};
pub use train::{train, Reporter, Silent, MODEL_FILES};

pub use particast_ingest as ingest;
pub use particast_kernels as kernels;
