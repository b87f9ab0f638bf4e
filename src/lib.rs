//! # particast
//!
//! Probabilistic time-series forecasting and anomaly scoring with *particle RNNs* on columnar
//! data. A particle RNN is an RNN whose hidden state is L particles sharing one transition but
//! starting from different learned vectors, so each step's predictive distribution is a mixture
//! over particles (Sohl-Dickstein and Kingma, 2015, "Equivalence Between Recurrent Neural Network
//! Time Series Models and Variational Bayesian Models").
//!
//! This crate is the facade over the workspace:
//! - [`ingest`] (`particast-ingest`): polars reads Parquet/CSV lazily, validates, and windows
//!   series into Arrow record batches with bounded memory;
//! - [`kernels`] (`particast-kernels`): batched particle-RNN forward and backward passes on faer;
//! - [`pipeline`] (`particast-pipeline`): the train, score and forecast stages.
//!
//! and, in this crate, [`frames`] (polars frames in and out), [`run`] and [`spec`] (pipeline
//! files), [`plot`] (fan charts and anomaly views) and [`nab`] (NAB label files). Each is a
//! thin layer over [`pipeline::stage`].
//!
//! The `particast` binary (feature `cli`: `cargo install particast --features cli`) is the
//! command line over the same calls; without the feature the library builds no clap,
//! indicatif or tracing-subscriber.
//!
//! ```
//! use particast::ingest::{Dataset, IngestOptions, Source};
//! use particast::polars::prelude::*;
//!
//! let df = df!("unique_id" => ["a", "a", "a"], "ds" => [1i64, 2, 3], "y" => [1.0, 2.0, 3.0]).unwrap();
//! let data = Dataset::read(Source::Frame(df), &IngestOptions::default()).unwrap();
//! assert_eq!(data.series[0].len(), 3);
//! ```
#![deny(missing_docs)]

mod error;
pub mod frames;
pub mod nab;
pub mod plot;
pub mod run;
pub mod spec;

pub use error::Error;
pub use particast_ingest as ingest;
pub use particast_kernels as kernels;
pub use particast_pipeline as pipeline;
pub use polars;
