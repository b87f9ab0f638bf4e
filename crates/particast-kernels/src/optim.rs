//! Adam with bias correction and decoupled weight decay, and global-norm gradient clipping:
//! one loop over the flat parameter buffer.

use serde::{Deserialize, Serialize};

use crate::real::Real;

/// Adam hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// Step size.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay (AdamW); 0 turns it off.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam's state: the two moment estimates and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// Hyper-parameters.
    pub config: AdamConfig,
    /// First moments.
    pub m: Vec<f64>,
    /// Second moments.
    pub v: Vec<f64>,
    /// Steps taken.
    pub t: u64,
}

impl Adam {
    /// Fresh state for `n` parameters.
    pub fn new(config: AdamConfig, n: usize) -> Self {
        Adam {
            config,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One update of `params` with `grad` (same length) at learning rate `lr`.
    pub fn step<T: Real>(&mut self, params: &mut [T], grad: &[T], lr: f64) {
        self.t += 1;
        let c = &self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t.min(i32::MAX as u64) as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t.min(i32::MAX as u64) as i32);
        for i in 0..params.len() {
            let g = grad[i].f();
            self.m[i] = c.beta1 * self.m[i] + (1.0 - c.beta1) * g;
            self.v[i] = c.beta2 * self.v[i] + (1.0 - c.beta2) * g * g;
            let mhat = self.m[i] / bc1;
            let vhat = self.v[i] / bc2;
            let mut p = params[i].f();
            if c.weight_decay > 0.0 {
                p -= lr * c.weight_decay * p;
            }
            p -= lr * mhat / (vhat.sqrt() + c.eps);
            params[i] = T::c(p);
        }
    }
}

/// Scales `grad` so that its Euclidean norm is at most `max_norm`; returns the norm before
/// clipping. A non-finite norm leaves the gradient unchanged (the caller should skip the step).
pub fn clip_global_norm<T: Real>(grad: &mut [T], max_norm: f64) -> f64 {
    let norm = grad.iter().map(|g| g.f() * g.f()).sum::<f64>().sqrt();
    if norm.is_finite() && norm > max_norm && max_norm > 0.0 {
        let k = T::c(max_norm / norm);
        grad.iter_mut().for_each(|g| *g *= k);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_by_lr_times_sign() {
        // With bias correction the first step is lr * g / (|g| + eps).
        let mut p = vec![1.0f64, -2.0];
        let mut a = Adam::new(AdamConfig::default(), 2);
        a.step(&mut p, &[0.5, -3.0], 0.1);
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
            "{p:?}"
        );
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut p = vec![5.0f64, -3.0];
        let mut a = Adam::new(AdamConfig::default(), 2);
        for _ in 0..3000 {
            let g = vec![2.0 * (p[0] - 1.0), 2.0 * (p[1] + 1.0)];
            a.step(&mut p, &g, 0.05);
        }
        assert!(
            (p[0] - 1.0).abs() < 1e-3 && (p[1] + 1.0).abs() < 1e-3,
            "{p:?}"
        );
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut g = vec![3.0f32, 4.0];
        assert_eq!(clip_global_norm(&mut g, 1.0), 5.0);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
        let mut g = vec![0.3f32, 0.4];
        clip_global_norm(&mut g, 1.0);
        assert_eq!(g, vec![0.3, 0.4]);
    }
}
