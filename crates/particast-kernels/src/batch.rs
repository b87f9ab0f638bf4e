//! A batch of windows as the kernels read it: flat, window-major buffers.

use crate::error::KernelError;
use crate::model::ModelConfig;
use crate::real::Real;

/// A batch of B windows of T steps, window-major (`[B][T][...]`).
///
/// Targets are in scaled units; `log_scale` holds each window's log scale per dimension so that
/// likelihoods can be reported in original units.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, T> {
    /// Windows B.
    pub windows: usize,
    /// Steps T.
    pub steps: usize,
    /// `[B][T][C]` inputs (the previous scaled target, its mask, features).
    pub inputs: &'a [T],
    /// `[B][T][D]` scaled targets.
    pub targets: &'a [T],
    /// `[B][T][D]` 1 = observed, 0 = missing.
    pub mask: &'a [T],
    /// `[B][D]` log of each window's scale.
    pub log_scale: &'a [T],
    /// Leading steps that condition the particles but add no loss.
    pub burn_in: usize,
}

impl<T: Real> Batch<'_, T> {
    /// Checks the buffer sizes against the model.
    pub fn validate(&self, cfg: &ModelConfig) -> Result<(), KernelError> {
        let (b, t, c, d) = (self.windows, self.steps, cfg.inputs, cfg.targets);
        let check = |name: &str, len: usize, want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(KernelError::Shape(format!(
                    "{name} has {len} values, expected {want} (B={b}, T={t}, C={c}, D={d})"
                )))
            }
        };
        check("inputs", self.inputs.len(), b * t * c)?;
        check("targets", self.targets.len(), b * t * d)?;
        check("mask", self.mask.len(), b * t * d)?;
        check("log_scale", self.log_scale.len(), b * d)
    }

    /// Observed values after the burn-in (the loss's denominator).
    pub(crate) fn observations(&self, d: usize) -> usize {
        let mut n = 0;
        for b in 0..self.windows {
            for t in self.burn_in..self.steps {
                let m = &self.mask[(b * self.steps + t) * d..(b * self.steps + t + 1) * d];
                n += m.iter().filter(|&&v| v != T::zero()).count();
            }
        }
        n
    }
}
