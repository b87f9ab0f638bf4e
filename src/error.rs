//! The facade's error type.

use std::path::PathBuf;

/// Errors of the facade: those of the stages plus pipeline-file problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stage failed.
    #[error(transparent)]
    Pipeline(#[from] particast_pipeline::PipelineError),
    /// Reading the data failed.
    #[error(transparent)]
    Ingest(#[from] particast_ingest::IngestError),
    /// The pipeline file is wrong.
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
}

impl Error {
    /// True when the user's input is at fault (exit code 2) rather than the machine (1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Pipeline(e) => e.is_bad_input(),
            Error::Ingest(particast_ingest::IngestError::Io { .. }) => false,
            Error::Ingest(_) | Error::Spec { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::InvalidData
            ),
        }
    }
}
