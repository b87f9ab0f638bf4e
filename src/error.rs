//! The facade's error type, and the one place where an error becomes an exit code.

use std::path::PathBuf;

/// Errors of the facade: those of the stages plus pipeline-file and usage problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stage failed.
    #[error(transparent)]
    Pipeline(#[from] particast_pipeline::PipelineError),
    /// Reading the data failed.
    #[error(transparent)]
    Ingest(#[from] particast_ingest::IngestError),
    /// The pipeline file (or a settings file) is wrong.
    #[error("{file}: {message}")]
    Spec {
        /// The file.
        file: PathBuf,
        /// What is wrong (names the key).
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Arguments that cannot work together (a front end's usage error).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// True when the user's input or usage is at fault rather than the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Pipeline(e) => e.is_bad_input(),
            Error::Ingest(e) => e.is_bad_input(),
            Error::Spec { .. } | Error::Usage(_) => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::InvalidData
            ),
        }
    }

    /// True when the reader of standard output (or of a pipe written through) closed it before
    /// the output was complete: not particast's failure (the reader got a prefix of the
    /// output, as with ripgrep and other filters).
    pub fn is_reader_gone(&self) -> bool {
        matches!(self, Error::Pipeline(p) if particast_pipeline::sink::is_broken_pipe(p))
    }

    /// The process exit code for this error: 0 when the reader went away
    /// ([`Error::is_reader_gone`]), 2 for bad input or usage, 1 for a failure of the machine.
    pub fn exit_code(&self) -> u8 {
        if self.is_reader_gone() {
            0
        } else if self.is_bad_input() {
            2
        } else {
            1
        }
    }

    /// A pipeline-file (or settings-file) error for `file`.
    pub fn spec(file: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Spec {
            file: file.into(),
            message: message.to_string(),
        }
    }
}
