//! The metrics file: the evaluation's [`Metrics`] as pretty JSON, written atomically.

use std::path::Path;

use crate::error::{PipelineError, Result};
use crate::metrics::Metrics;

/// Writes `metrics` as JSON to `path` (atomically, or through to a pipe).
pub fn write_metrics(metrics: &Metrics, path: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(metrics)
        .map_err(|e| PipelineError::format(path, e.to_string()))?;
    crate::sink::write_bytes(path, &json)
}

/// Reads a metrics file written by [`write_metrics`].
pub fn read_metrics(path: &Path) -> Result<Metrics> {
    let bytes = std::fs::read(path).map_err(|e| PipelineError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| PipelineError::format(path, format!("not a metrics file: {e}")))
}
