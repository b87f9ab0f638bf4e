//! # particast-pipeline
//!
//! The stages that turn windows into models and models into numbers: training (scaling, Adam,
//! early stopping, checkpoints), anomaly scoring by exact predictive log-likelihood, and
//! probabilistic forecasting, each emitting Arrow columns. It sits between the command line and
//! the two lower crates: it reads series through `particast-ingest` and runs the particle RNN of
//! `particast-kernels`.
//!
//! The stages are not written yet; this crate currently only fixes the dependency shape of the
//! workspace (`particast` -> `particast-pipeline` -> {`particast-ingest`, `particast-kernels`}).
#![deny(missing_docs)]

pub use particast_ingest as ingest;
pub use particast_kernels as kernels;
