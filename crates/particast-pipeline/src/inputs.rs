//! From ingested windows to the kernels' buffers: scaling and the per-step input vector.
//!
//! Per step t the model sees, in this order (C = 2 K D + D + F inputs):
//! 1. the lagged targets `y[t - lag_k] / scale` for every lag (lag 1 first: the previous value),
//!    0 where missing (K D values);
//! 2. their observed flags (K D values);
//! 3. `ln(1 + scale)` per dimension (D values), so the model knows the level it works at;
//! 4. the calendar features and covariates of step t (F values).
//!
//! Targets are `y[t] / scale`. The scale of a window is computed from its context steps only.
//! Scaled lag inputs are clamped to `[-INPUT_CLAMP, INPUT_CLAMP]` so that a value far outside
//! the context's range (a spike after a flat start) cannot saturate the network's state; targets
//! are never clamped, so likelihoods stay exact.

/// Bound of the scaled lag inputs (in units of the window's scale).
pub const INPUT_CLAMP: f32 = 100.0;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, UInt8Type};
use arrow_array::RecordBatch;
use particast_ingest::{columns, FeatureSpec, WindowData};
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};

/// How each window (or scored series) is scaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scaling {
    /// DeepAR's rule: the mean |y| of the observed context values, floored at `floor`.
    MeanAbs {
        /// Smallest scale.
        floor: f64,
    },
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling::MeanAbs { floor: 1e-6 }
    }
}

impl Scaling {
    /// The scale per dimension from `T x D` values and mask, looking at the first `steps`.
    pub fn scale(&self, values: &[f32], mask: &[u8], d: usize, steps: usize) -> Vec<f64> {
        let Scaling::MeanAbs { floor } = *self;
        let mut sum = vec![0.0f64; d];
        let mut n = vec![0usize; d];
        for t in 0..steps.min(values.len() / d.max(1)) {
            for k in 0..d {
                if mask[t * d + k] == 1 {
                    sum[k] += (values[t * d + k] as f64).abs();
                    n[k] += 1;
                }
            }
        }
        (0..d)
            .map(|k| {
                if n[k] > 0 && sum[k] > 0.0 {
                    (sum[k] / n[k] as f64).max(floor)
                } else {
                    // Nothing observed, or only zeros: work in the data's own units.
                    1.0
                }
            })
            .collect()
    }
}

/// What the model's inputs are made of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Features of the windows (its lags start with 1).
    pub features: FeatureSpec,
    /// Scaling rule.
    pub scaling: Scaling,
}

/// Kernel buffers for a batch of windows, window-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelBatch {
    /// Windows.
    pub windows: usize,
    /// Steps.
    pub steps: usize,
    /// `[B][T][C]`.
    pub inputs: Vec<f32>,
    /// `[B][T][D]` scaled targets.
    pub targets: Vec<f32>,
    /// `[B][T][D]` 1/0.
    pub mask: Vec<f32>,
    /// `[B][D]` ln scale.
    pub log_scale: Vec<f32>,
    /// `[B][D]` scale.
    pub scale: Vec<f64>,
}

impl KernelBatch {
    /// The kernels' view of this batch.
    pub fn view(&self, burn_in: usize) -> particast_kernels::Batch<'_, f32> {
        particast_kernels::Batch {
            windows: self.windows,
            steps: self.steps,
            inputs: &self.inputs,
            targets: &self.targets,
            mask: &self.mask,
            log_scale: &self.log_scale,
            burn_in,
        }
    }
}

impl InputSpec {
    /// A spec whose lags include 1 (added in front when missing).
    pub fn new(mut features: FeatureSpec, scaling: Scaling) -> Self {
        if !features.lags.contains(&1) {
            features.lags.insert(0, 1);
        } else if features.lags[0] != 1 {
            features.lags.retain(|&l| l != 1);
            features.lags.insert(0, 1);
        }
        InputSpec { features, scaling }
    }

    /// Inputs per step C.
    pub fn n_inputs(&self) -> usize {
        let d = self.features.n_targets;
        2 * self.features.lags.len() * d + d + self.features.n_features()
    }

    /// Appends one window's inputs, targets and mask (scaled by `scale`) to `out`.
    pub fn push_window(&self, w: &WindowData, steps: usize, scale: &[f64], out: &mut KernelBatch) {
        let d = self.features.n_targets;
        let k = self.features.lags.len();
        let f = self.features.n_features();
        let inv: Vec<f32> = scale.iter().map(|s| (1.0 / s) as f32).collect();
        let log1p: Vec<f32> = scale.iter().map(|s| s.ln_1p() as f32).collect();
        for t in 0..steps {
            for j in 0..k * d {
                let v = w.lags[t * k * d + j] * inv[j % d];
                out.inputs.push(v.clamp(-INPUT_CLAMP, INPUT_CLAMP));
            }
            for j in 0..k * d {
                out.inputs.push(w.lag_mask[t * k * d + j] as f32);
            }
            out.inputs.extend_from_slice(&log1p);
            out.inputs
                .extend_from_slice(&w.covariates[t * f..(t + 1) * f]);
            for j in 0..d {
                out.targets.push(w.values[t * d + j] * inv[j]);
                out.mask.push(w.mask[t * d + j] as f32);
            }
        }
        out.log_scale.extend(scale.iter().map(|s| s.ln() as f32));
        out.scale.extend_from_slice(scale);
        out.windows += 1;
        out.steps = steps;
    }

    /// Kernel buffers for a window batch from the ingestion crate, each window scaled by its
    /// first `context` steps.
    pub fn from_record_batch(&self, batch: &RecordBatch, context: usize) -> Result<KernelBatch> {
        let d = self.features.n_targets;
        let list = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_fixed_size_list_opt())
                .ok_or_else(|| {
                    PipelineError::Config(format!("window batch has no `{name}` list column"))
                })
        };
        let (values, mask, covs, lags, lag_mask) = (
            list(columns::VALUES)?,
            list(columns::MASK)?,
            list(columns::COVARIATES)?,
            list(columns::LAGS)?,
            list(columns::LAG_MASK)?,
        );
        let steps = values.value_length() as usize / d.max(1);
        let mut out = KernelBatch::default();
        let f32s = |a: &arrow_array::FixedSizeListArray, r: usize| -> Vec<f32> {
            a.value(r).as_primitive::<Float32Type>().values().to_vec()
        };
        let u8s = |a: &arrow_array::FixedSizeListArray, r: usize| -> Vec<u8> {
            a.value(r).as_primitive::<UInt8Type>().values().to_vec()
        };
        for r in 0..batch.num_rows() {
            let w = WindowData {
                values: f32s(values, r),
                mask: u8s(mask, r),
                covariates: f32s(covs, r),
                lags: f32s(lags, r),
                lag_mask: u8s(lag_mask, r),
            };
            let scale = self.scaling.scale(&w.values, &w.mask, d, context);
            self.push_window(&w, steps, &scale, &mut out);
        }
        out.steps = steps;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use particast_ingest::CalendarFeature;

    #[test]
    fn inputs_are_laid_out_as_documented() {
        let features = FeatureSpec {
            n_targets: 1,
            calendar: vec![CalendarFeature::HourOfDay],
            n_covariates: 0,
            lags: vec![2],
        };
        let spec = InputSpec::new(features, Scaling::default());
        assert_eq!(spec.features.lags, vec![1, 2]);
        assert_eq!(spec.n_inputs(), 2 * 2 + 1 + 1);
        let w = WindowData {
            values: vec![2.0, 4.0],
            mask: vec![1, 1],
            covariates: vec![0.1, 0.2],
            lags: vec![1.0, 0.0, 2.0, 1.0],
            lag_mask: vec![1, 0, 1, 1],
        };
        let scale = spec.scaling.scale(&w.values, &w.mask, 1, 1);
        assert_eq!(scale, vec![2.0]);
        let mut b = KernelBatch::default();
        spec.push_window(&w, 2, &scale, &mut b);
        let ln = 3f64.ln() as f32;
        assert_eq!(
            b.inputs,
            vec![0.5, 0.0, 1.0, 0.0, ln, 0.1, 1.0, 0.5, 1.0, 1.0, ln, 0.2]
        );
        assert_eq!(b.targets, vec![1.0, 2.0]);
        assert_eq!(b.log_scale, vec![2f32.ln()]);
    }
}
