//! The error type of the pipeline crate.

use std::path::PathBuf;

/// What can go wrong in a stage.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Reading or validating the input failed.
    #[error(transparent)]
    Ingest(#[from] particast_ingest::IngestError),
    /// The kernels refused a configuration or a buffer.
    #[error(transparent)]
    Kernel(#[from] particast_kernels::KernelError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A model directory or state file is damaged or of another format.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The data does not match what the model was trained on.
    #[error("the input does not match the model: {0}")]
    SchemaMismatch(String),
    /// Settings that cannot work.
    #[error("invalid settings: {0}")]
    Config(String),
    /// A settings key a user gave has a bad value, or is unknown ([`crate::settings`]).
    #[error("[{section}] {}{message}", key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
    Setting {
        /// The section (`train`, `score`, ...).
        section: String,
        /// The key, when one is at fault.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An output that must not be written there (an input of the same command, a folder, a
    /// missing folder).
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The output path.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A size option above its documented limit (see [`crate::limits`]).
    #[error("{option} = {value} is above the limit of {limit}{hint}")]
    Limit {
        /// The option (its name in files; on the command line `--` and dashes).
        option: &'static str,
        /// The value asked for.
        value: u64,
        /// The largest value accepted.
        limit: u64,
        /// What to do instead (may be empty).
        hint: String,
    },
    /// Settings whose combination needs more memory than the limit (see [`crate::limits`]).
    #[error("{what} would need about {needed} of memory ({detail}), more than the limit of {limit}; lower {options} (or raise PARTICAST_MEMORY_LIMIT)")]
    TooLarge {
        /// The stage.
        what: &'static str,
        /// Bytes needed, formatted.
        needed: String,
        /// The sizes that make it up.
        detail: String,
        /// The limit, formatted.
        limit: String,
        /// The options that drive it.
        options: &'static str,
    },
    /// polars (or arrow-rs) failed building or writing an output.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: particast_ingest::BoxedError,
    },
    /// A value outside the model's transform's domain (a log transform and a value at or
    /// below minus its offset).
    #[error("series `{series}`, step {step}: value {value} is outside the domain of the transform {transform}")]
    Domain {
        /// Series id.
        series: String,
        /// Step in the series (0-based, after gap filling).
        step: usize,
        /// The value.
        value: f64,
        /// The transform.
        transform: String,
    },
    /// New rows of a series do not continue its saved scoring state (they start before, or
    /// off the grid of, the state's last step).
    #[error("{0}")]
    StateMismatch(String),
    /// No forecast series is in the actuals.
    #[error("no forecast series found in the actuals: the unique_id values of the forecast and the actuals do not overlap")]
    NoOverlap,
    /// Training produced a non-finite loss.
    #[error("training diverged: the loss became {value} at epoch {epoch}, batch {batch}")]
    Diverged {
        /// Epoch.
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
        /// The loss.
        value: f64,
    },
}

/// Result alias for this crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

impl PipelineError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        PipelineError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
    /// True when the error is the user's input (exit code 2), not a runtime failure.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PipelineError::Ingest(e) => e.is_bad_input(),
            PipelineError::Io { .. }
            | PipelineError::Diverged { .. }
            | PipelineError::Polars { .. } => false,
            _ => true,
        }
    }
}
