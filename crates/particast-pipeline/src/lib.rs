//! particast-pipeline
