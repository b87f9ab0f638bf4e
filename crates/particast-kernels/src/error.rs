//! The error type of the kernels crate.

/// What can go wrong in the kernels: bad configurations and buffers of the wrong size.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    /// The model configuration is not usable.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A buffer does not have the size its shape needs.
    #[error("shape mismatch: {0}")]
    Shape(String),
}
