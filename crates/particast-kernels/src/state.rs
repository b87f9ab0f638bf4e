//! The particle states and predictive log-weights a series carries between kernel calls.

use crate::error::KernelError;
use crate::model::Model;
use crate::real::Real;

/// The particle states and predictive log-weights of B windows (series) between calls.
///
/// A fresh state holds the learned initial vectors and uniform weights. Scoring a series in
/// chunks with one state gives the same numbers as scoring it in one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticleState<T> {
    /// Windows B.
    pub windows: usize,
    /// Particles L.
    pub particles: usize,
    /// Hidden units H.
    pub hidden: usize,
    /// `[B][L][H]` hidden states after the last step seen.
    pub h: Vec<T>,
    /// `[B][L]` log-weights for the next step.
    pub log_w: Vec<T>,
}

impl<T: Real> ParticleState<T> {
    /// The initial state of `windows` windows.
    pub fn new(model: &Model<T>, windows: usize) -> Self {
        let cfg = &model.config;
        let (l, hd) = (cfg.particles, cfg.hidden);
        let h0 = model.tensor("particles.h0").unwrap_or(&[]);
        let mut h = Vec::with_capacity(windows * l * hd);
        for _ in 0..windows {
            h.extend_from_slice(h0);
        }
        ParticleState {
            windows,
            particles: l,
            hidden: hd,
            h,
            log_w: vec![-T::c((l as f64).ln()); windows * l],
        }
    }

    /// A state made of the given windows of this one (repeats allowed: sample paths).
    pub fn select(&self, windows: &[usize]) -> Self {
        let (l, hd) = (self.particles, self.hidden);
        let mut h = Vec::with_capacity(windows.len() * l * hd);
        let mut log_w = Vec::with_capacity(windows.len() * l);
        for &w in windows {
            h.extend_from_slice(&self.h[w * l * hd..(w + 1) * l * hd]);
            log_w.extend_from_slice(&self.log_w[w * l..(w + 1) * l]);
        }
        ParticleState {
            windows: windows.len(),
            particles: l,
            hidden: hd,
            h,
            log_w,
        }
    }

    /// Mean over windows of the mean pairwise Euclidean distance between particle states (a
    /// measure of particle diversity; 0 when the particles have collapsed into one).
    pub fn mean_pairwise_distance(&self) -> f64 {
        let (l, hd) = (self.particles, self.hidden);
        if l < 2 || self.windows == 0 {
            return 0.0;
        }
        let mut total = 0.0;
        for w in 0..self.windows {
            let hw = &self.h[w * l * hd..(w + 1) * l * hd];
            let mut sum = 0.0;
            for i in 0..l {
                for j in i + 1..l {
                    let d2: f64 = (0..hd)
                        .map(|k| (hw[i * hd + k].f() - hw[j * hd + k].f()).powi(2))
                        .sum();
                    sum += d2.sqrt();
                }
            }
            total += sum / (l * (l - 1) / 2) as f64;
        }
        total / self.windows as f64
    }

    /// Checks the state against the model's sizes.
    pub(crate) fn check(&self, model: &Model<T>) -> Result<(), KernelError> {
        let cfg = &model.config;
        if self.particles != cfg.particles
            || self.hidden != cfg.hidden
            || self.h.len() != self.windows * cfg.particles * cfg.hidden
            || self.log_w.len() != self.windows * cfg.particles
        {
            return Err(KernelError::Shape(format!(
                "particle state (B={}, L={}, H={}) does not fit the model (L={}, H={})",
                self.windows, self.particles, self.hidden, cfg.particles, cfg.hidden
            )));
        }
        Ok(())
    }
}
