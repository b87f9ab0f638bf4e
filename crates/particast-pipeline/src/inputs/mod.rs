//! From ingested windows to the kernels' buffers: the per-step input vector ([`InputSpec`],
//! [`KernelBatch`]), with the value transform ([`Transform`]), the scaling ([`Scaling`]) and
//! the target ([`Target`]) in their own modules and the decoding of Arrow window batches.
//!
//! Per step t the model sees, in this order (C = 2 K D + D + F inputs):
//! 1. the lagged targets `y[t - lag_k] / scale` for every lag (lag 1 first: the previous value),
//!    0 where missing (K D values);
//! 2. their observed flags (K D values);
//! 3. `ln(1 + scale)` per dimension (D values), so the model knows the level it works at;
//! 4. the calendar features of step t, then the covariates by kind ([`covariates`]): a future
//!    or static covariate's value at t, a historical one's value at t - 1 and its known flag,
//!    each standardised by its training mean and spread.
//!
//! Targets are `(y[t] - loc) / scale`, an affine map per target dimension ([`Affine`]) computed
//! from the window's context steps only: `loc = 0` and `scale = mean |y|` for the default
//! [`Scaling::MeanAbs`] (DeepAR's rule), or `loc = mean y` and `scale = mean |y[t] - y[t - m]|`
//! for [`Scaling::SeasonalDiff`] (the MASE denominator of the context), which resolves the small
//! seasonal changes of smooth series that mean scaling leaves far below the emission floor.
//! Likelihoods stay exact in original units: the log-Jacobian is `ln scale` per observation.
//! Scaled lag inputs are clamped to `[-INPUT_CLAMP, INPUT_CLAMP]` so that a value far outside
//! the context's range (a spike after a flat start) cannot saturate the network's state; targets
//! are never clamped, so likelihoods stay exact.

/// Bound of the scaled lag inputs (in units of the window's scale).
pub const INPUT_CLAMP: f32 = 100.0;

mod arrow;
pub mod covariates;
mod scaling;
mod target;
mod transform;

use particast_ingest::{FeatureSpec, PreparedSeries, WindowData};
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};

pub use covariates::{fit_covariates, Covariate, CovariateKind};
pub use scaling::{Affine, Scaling};
pub use target::Target;
pub use transform::Transform;

/// How lagged values enter the network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LagInputs {
    /// Each feature lag's value in model units (models written before this field).
    #[default]
    Level,
    /// For each of `lags` k, the target's own lag, the seasonal change `x[t-k] - x[t-k-m]` in
    /// model units (`m` the target's season; the feature lags hold both k and k + m), then
    /// for each the level `x[t-k]` as under `Level`. Used with [`Target::SeasonalChange`]:
    /// under seasonal-difference scaling a level is `(y - mean) / spread of seasonal
    /// changes`, hundreds of units on a smooth series (clamped, saturating the network), while
    /// the change is of order one by construction; the level still tells where in its range
    /// a series is (near zero, at a peak).
    SeasonalChange {
        /// The lags k fed to the network.
        lags: Vec<usize>,
    },
}

/// One lag input of the network (see [`LagInputs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LagInput {
    /// The value k steps back.
    Level(usize),
    /// The seasonal change k steps back, `x[t-k] - x[t-k-m]`.
    Change(usize),
}

/// What the model's inputs are made of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Features of the windows (its lags start with 1).
    pub features: FeatureSpec,
    /// Scaling rule.
    pub scaling: Scaling,
    /// What the emission models (models written before this field read as the level).
    #[serde(default)]
    pub target: Target,
    /// The transform applied to the values before everything else (models written before
    /// this field read as none).
    #[serde(default)]
    pub transform: Transform,
    /// How lags enter the network (models written before this field read as levels).
    #[serde(default)]
    pub lag_inputs: LagInputs,
    /// The covariate columns by kind, with their standardisation (empty in models written
    /// before covariate kinds: their covariates enter raw, at their own step).
    #[serde(default)]
    pub covariates: Vec<Covariate>,
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
    /// `[B][D]` location.
    pub loc: Vec<f64>,
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
    /// Kernel buffers for the windows `picks` ((index into `series`, start) pairs) of `len`
    /// steps, each scaled by its first `context` steps: what training reads, straight from
    /// the series (the same numbers as the Arrow window batches of ingestion decoded by
    /// [`InputSpec::from_record_batch`]).
    pub fn windows_batch(
        &self,
        series: &[PreparedSeries],
        picks: &[(usize, i64)],
        len: usize,
        context: usize,
    ) -> KernelBatch {
        let d = self.features.n_targets;
        let mut out = KernelBatch::default();
        for &(i, start) in picks {
            let w = WindowData::of(&series[i], start, len, &self.features);
            let affine = self.scaling.affine(&w.values, &w.mask, d, context);
            let before = self.covariates_before(&series[i], start);
            // Historical covariates are known on the context steps only, as when forecasting.
            self.push_window(&w, len, &affine, context, before.as_deref(), &mut out);
        }
        out.steps = len;
        out
    }

    /// A spec whose lags include 1 (added in front when missing), modelling the level.
    pub fn new(features: FeatureSpec, scaling: Scaling) -> Self {
        Self::with_target(features, scaling, Target::Level)
    }

    /// A spec whose lags include 1 (added in front when missing) with the given target; the
    /// caller checks [`InputSpec::validate`] (a seasonal target needs its season among the lags).
    pub fn with_target(features: FeatureSpec, scaling: Scaling, target: Target) -> Self {
        Self::with_transform(features, scaling, target, Transform::None)
    }

    /// [`InputSpec::with_target`] with a value transform.
    pub fn with_transform(
        mut features: FeatureSpec,
        scaling: Scaling,
        target: Target,
        transform: Transform,
    ) -> Self {
        if !features.lags.contains(&1) {
            features.lags.insert(0, 1);
        } else if features.lags[0] != 1 {
            features.lags.retain(|&l| l != 1);
            features.lags.insert(0, 1);
        }
        // A seasonal-change target gets seasonal-change lag inputs: each lag k also needs k + m.
        let lag_inputs = match target.season() {
            Some(m) if m > 0 => {
                let lags = features.lags.clone();
                for &k in &lags {
                    if let Some(km) = k.checked_add(m) {
                        if !features.lags.contains(&km) {
                            features.lags.push(km);
                        }
                    }
                }
                LagInputs::SeasonalChange { lags }
            }
            _ => LagInputs::Level,
        };
        InputSpec {
            features,
            scaling,
            target,
            transform,
            lag_inputs,
            covariates: Vec::new(),
        }
    }

    /// This spec with covariate kinds and standardisation (one per covariate column, in
    /// order; see [`fit_covariates`]).
    pub fn with_covariates(mut self, covariates: Vec<Covariate>) -> Self {
        self.covariates = covariates;
        self
    }

    /// Whether forecasting needs future values of covariates (every model with a future
    /// covariate, and models written before covariate kinds that have covariates at all).
    pub fn needs_future(&self) -> bool {
        if self.covariates.is_empty() {
            self.features.n_covariates > 0
        } else {
            self.covariates
                .iter()
                .any(|c| c.kind == CovariateKind::Future)
        }
    }

    /// The raw covariates of step `start - 1` of `s`, the previous step of a window that
    /// starts at `start` (None before the series, on a gap, or without historical
    /// covariates, whose inputs are the only ones that read it).
    pub fn covariates_before(&self, s: &PreparedSeries, start: i64) -> Option<Vec<f32>> {
        if !self
            .covariates
            .iter()
            .any(|c| c.kind == CovariateKind::Historical)
        {
            return None;
        }
        let t = usize::try_from(start.checked_sub(1)?).ok()?;
        let c = s.n_covariates;
        if c == 0 || !s.present.get(t).copied().unwrap_or(false) {
            return None;
        }
        Some(s.covariates[t * c..(t + 1) * c].to_vec())
    }

    /// Covariate inputs per step.
    fn covariate_width(&self) -> usize {
        if self.covariates.is_empty() {
            self.features.n_covariates
        } else {
            self.covariates.iter().map(Covariate::width).sum()
        }
    }

    /// The network's lag inputs in order (each with a value and an observed flag per target
    /// dimension).
    pub fn lag_slots(&self) -> Vec<LagInput> {
        match &self.lag_inputs {
            LagInputs::Level => self
                .features
                .lags
                .iter()
                .map(|&k| LagInput::Level(k))
                .collect(),
            LagInputs::SeasonalChange { lags } => lags
                .iter()
                .map(|&k| LagInput::Change(k))
                .chain(lags.iter().map(|&k| LagInput::Level(k)))
                .collect(),
        }
    }

    /// The value of one lag input at a step whose values `back(j)` steps back are given in
    /// model units (None when missing).
    pub fn lag_input(&self, slot: LagInput, back: impl Fn(usize) -> Option<f64>) -> Option<f64> {
        match slot {
            LagInput::Level(k) => back(k),
            LagInput::Change(k) => {
                let m = self.target.season()?;
                Some(back(k)? - back(k.checked_add(m)?)?)
            }
        }
    }

    /// Checks the transform, and that a seasonal target's season is one of the lags.
    pub fn validate(&self) -> Result<()> {
        self.transform.validate()?;
        match self.target.season() {
            Some(m) if !self.features.lags.contains(&m) => Err(PipelineError::Config(format!(
                "target seasonal_change with season {m} needs lag {m} among the input lags \
                 (lags are {:?})",
                self.features.lags
            ))),
            Some(0) => Err(PipelineError::Config(
                "target seasonal_change needs season >= 1".into(),
            )),
            _ => self.check_lag_inputs(),
        }
    }

    /// Every lag the network sees is among the feature lags (with `k + m` for seasonal
    /// changes); a damaged model file fails here instead of indexing out of range.
    fn check_lag_inputs(&self) -> Result<()> {
        let LagInputs::SeasonalChange { lags } = &self.lag_inputs else {
            return Ok(());
        };
        let Some(m) = self.target.season() else {
            return Err(PipelineError::Config(
                "seasonal-change lag inputs need a seasonal_change target".into(),
            ));
        };
        match lags.iter().find(|&&k| {
            k.checked_add(m)
                .is_none_or(|km| !self.features.lags.contains(&km))
                || !self.features.lags.contains(&k)
        }) {
            Some(k) => Err(PipelineError::Config(format!(
                "lag input {k} needs lags {k} and {k} + {m} among the feature lags {:?}",
                self.features.lags
            ))),
            None => Ok(()),
        }
    }

    /// Index of the seasonal target's lag in the lag list.
    fn season_lag_index(&self) -> Option<usize> {
        let m = self.target.season()?;
        self.features.lags.iter().position(|&l| l == m)
    }

    /// The base that the target at step `t` of `w` is taken from, in model units, for
    /// dimension `dd`: 0 for the level, `x[t - season]` for the seasonal change (None when
    /// that value is missing).
    pub fn base(&self, w: &WindowData, t: usize, dd: usize, affine: &Affine) -> Option<f64> {
        let Some(i) = self.season_lag_index() else {
            return Some(0.0);
        };
        let (k, d) = (self.features.lags.len(), self.features.n_targets);
        let j = t * k * d + i * d + dd;
        (w.lag_mask[j] == 1).then(|| affine.to_scaled(dd, w.lags[j] as f64))
    }

    /// Inputs per step C.
    pub fn n_inputs(&self) -> usize {
        // Saturating: the counts may come from a damaged model file (which then fails the
        // check against the network's input count).
        let d = self.features.n_targets;
        self.lag_slots()
            .len()
            .saturating_mul(d)
            .saturating_mul(2)
            .saturating_add(d)
            .saturating_add(self.features.calendar.len())
            .saturating_add(self.covariate_width())
    }

    /// Appends one window's inputs, targets and mask (mapped by `affine`) to `out`.
    /// Historical covariates are known on the steps before `known` (their value at step t is
    /// that of t - 1; at the first step `before`, the raw covariates of the step before the
    /// window, [`InputSpec::covariates_before`]).
    pub fn push_window(
        &self,
        w: &WindowData,
        steps: usize,
        affine: &Affine,
        known: usize,
        before: Option<&[f32]>,
        out: &mut KernelBatch,
    ) {
        let d = self.features.n_targets;
        let k = self.features.lags.len();
        let f = self.features.n_features();
        let scale = &affine.scale;
        let log1p: Vec<f32> = scale.iter().map(|s| s.ln_1p() as f32).collect();
        let slots = self.lag_slots();
        // Where each lag sits among the window's lags, by lag (looked up per input and step).
        let max_lag = self.features.lags.iter().copied().max().unwrap_or(0);
        let mut index_of = vec![None; max_lag + 1];
        for (i, &l) in self.features.lags.iter().enumerate() {
            index_of[l] = Some(i);
        }
        let mut masks = Vec::with_capacity(slots.len() * d);
        for t in 0..steps {
            masks.clear();
            for &lag in &slots {
                for dd in 0..d {
                    let back = |b: usize| {
                        let i = (*index_of.get(b)?)?;
                        let j = t * k * d + i * d + dd;
                        (w.lag_mask[j] == 1).then(|| affine.to_scaled(dd, w.lags[j] as f64))
                    };
                    // A missing lag is 0 in model units (the location), flagged by its mask.
                    let v = self.lag_input(lag, back);
                    out.inputs
                        .push((v.unwrap_or(0.0) as f32).clamp(-INPUT_CLAMP, INPUT_CLAMP));
                    masks.push(f32::from(u8::from(v.is_some())));
                }
            }
            out.inputs.extend_from_slice(&masks);
            out.inputs.extend_from_slice(&log1p);
            let cal = self.features.calendar.len();
            out.inputs
                .extend_from_slice(&w.covariates[t * f..t * f + cal]);
            let rows = covariates::StepRows {
                cur: &w.covariates[t * f + cal..(t + 1) * f],
                prev: match t {
                    _ if t > known => None,
                    0 => before,
                    _ => Some(&w.covariates[(t - 1) * f + cal..t * f]),
                },
            };
            covariates::push_step(&self.covariates, rows, &mut out.inputs);
            for j in 0..d {
                let target = match (w.mask[t * d + j] == 1, self.base(w, t, j, affine)) {
                    (true, Some(base)) => {
                        Some(affine.to_scaled(j, w.values[t * d + j] as f64) - base)
                    }
                    _ => None,
                };
                out.targets.push(target.unwrap_or(0.0) as f32);
                out.mask.push(f32::from(u8::from(target.is_some())));
            }
        }
        out.log_scale.extend(scale.iter().map(|s| s.ln() as f32));
        out.scale.extend_from_slice(scale);
        out.loc.extend_from_slice(&affine.loc);
        out.windows += 1;
        out.steps = steps;
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
        let affine = spec.scaling.affine(&w.values, &w.mask, 1, 1);
        assert_eq!(
            affine,
            Affine {
                loc: vec![0.0],
                scale: vec![2.0]
            }
        );
        let mut b = KernelBatch::default();
        spec.push_window(&w, 2, &affine, usize::MAX, None, &mut b);
        let ln = 3f64.ln() as f32;
        assert_eq!(
            b.inputs,
            vec![0.5, 0.0, 1.0, 0.0, ln, 0.1, 1.0, 0.5, 1.0, 1.0, ln, 0.2]
        );
        assert_eq!(b.targets, vec![1.0, 2.0]);
        assert_eq!(b.log_scale, vec![2f32.ln()]);
    }

    #[test]
    fn seasonal_difference_scaling_by_hand() {
        // Season 2: pairs (t, t-2) over 6 steps; step 3 missing.
        let values = [10.0f32, 20.0, 12.0, 0.0, 13.0, 25.0];
        let mask = [1u8, 1, 1, 0, 1, 1];
        let rule = Scaling::SeasonalDiff {
            season: 2,
            floor: 1e-3,
        };
        let a = rule.affine(&values, &mask, 1, 6);
        let mean = (10.0 + 20.0 + 12.0 + 13.0 + 25.0) / 5.0;
        // |12-10|, |13-12| (t=4 vs t=2); t=3 and t=5 (vs t=3) have a missing side.
        assert_eq!(a.loc, vec![mean]);
        assert_eq!(a.scale, vec![(2.0 + 1.0) / 2.0]);
        assert!((a.to_original(0, a.to_scaled(0, 17.5)) - 17.5).abs() < 1e-12);
        // No seasonal pair in a short context: lag 1; a constant context: the relative floor.
        let a = rule.affine(&[4.0, 6.0], &[1, 1], 1, 2);
        assert_eq!(a.scale, vec![2.0]);
        let a = rule.affine(&[5.0; 8], &[1; 8], 1, 8);
        assert_eq!((a.loc[0], a.scale[0]), (5.0, 5e-3));
        // Nothing observed: the identity; an all-zero context: centred at 0, unit scale.
        assert_eq!(rule.affine(&[0.0; 3], &[0; 3], 1, 3), Affine::identity(1));
        assert_eq!(rule.affine(&[0.0; 4], &[1; 4], 1, 4), Affine::identity(1));
    }

    #[test]
    fn seasonal_change_targets_by_hand() {
        let features = FeatureSpec {
            n_targets: 1,
            calendar: vec![],
            n_covariates: 0,
            lags: vec![2],
        };
        let target = Target::SeasonalChange { season: 2 };
        let spec = InputSpec::with_target(features.clone(), Scaling::default(), target);
        spec.validate().unwrap();
        // Lags 1 and 2 are fed as seasonal changes, so 1 + 2 and 2 + 2 are read as well.
        assert_eq!(spec.features.lags, vec![1, 2, 3, 4]);
        assert_eq!(
            spec.lag_slots(),
            vec![
                LagInput::Change(1),
                LagInput::Change(2),
                LagInput::Level(1),
                LagInput::Level(2)
            ]
        );
        assert_eq!(spec.n_inputs(), 4 * 2 + 1);
        // The series h(-4..=2) = 1, 2, (missing), 3, 4, 6, 9; the window is steps 0..3 and the
        // lags of step t are h(t - 1), h(t - 2), h(t - 3), h(t - 4).
        let h = |i: i64| -> Option<f32> {
            [
                Some(1.0),
                Some(2.0),
                None,
                Some(3.0),
                Some(4.0),
                Some(6.0),
                Some(9.0),
            ][(i + 4) as usize]
        };
        let (mut lags, mut lag_mask) = (vec![], vec![]);
        for t in 0..3i64 {
            for k in 1..=4 {
                lags.push(h(t - k).unwrap_or(0.0));
                lag_mask.push(u8::from(h(t - k).is_some()));
            }
        }
        let w = WindowData {
            values: vec![4.0, 6.0, 9.0],
            mask: vec![1, 1, 1],
            covariates: vec![],
            lags,
            lag_mask,
        };
        let affine = Affine {
            loc: vec![1.0],
            scale: vec![2.0],
        };
        assert_eq!(spec.base(&w, 0, 0, &affine), None);
        assert_eq!(spec.base(&w, 2, 0, &affine), Some(1.5));
        let mut b = KernelBatch::default();
        spec.push_window(&w, 3, &affine, usize::MAX, None, &mut b);
        // x = (y - 1) / 2: step 1: x(6) - x(3) = 1.5; step 2: x(9) - x(4) = 2.5; step 0 has no
        // reference (h(-2) is missing).
        assert_eq!(b.targets, vec![0.0, 1.5, 2.5]);
        assert_eq!(b.mask, vec![0.0, 1.0, 1.0]);
        // Inputs per step: the changes at lags 1 and 2, the levels at lags 1 and 2, the four
        // flags, ln(1 + scale). Changes: step 0: (h(-1) - h(-3)) / 2 = 0.5, h(-2) missing;
        // step 1: h(-2) missing, (h(-1) - h(-3)) / 2 = 0.5; step 2: (h(1) - h(-1)) / 2 = 1.5,
        // h(-2) missing. Levels x(3) = 1, x(4) = 1.5, x(6) = 2.5.
        let l = 3f32.ln();
        assert_eq!(
            b.inputs,
            vec![
                0.5, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, l, //
                0.0, 0.5, 1.5, 1.0, 0.0, 1.0, 1.0, 1.0, l, //
                1.5, 0.0, 2.5, 1.5, 1.0, 0.0, 1.0, 1.0, l,
            ]
        );
        // The level target sees all three.
        let level = InputSpec::new(features.clone(), Scaling::default());
        assert_eq!(level.base(&w, 0, 0, &affine), Some(0.0));
        // A season that is not a lag is refused.
        let e = InputSpec::with_target(
            features,
            Scaling::default(),
            Target::SeasonalChange { season: 3 },
        )
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("needs lag 3"), "{e}");
    }

    #[test]
    fn log_transform_by_hand() {
        let t = Transform::Log { offset: 1.0 };
        assert_eq!(t.forward(0.0), Some(0.0));
        assert_eq!(t.forward(-1.0), None);
        assert!((t.inverse(t.forward(41.5).unwrap()) - 41.5).abs() < 1e-12);
        assert!((t.log_jacobian(2.0) + 3f64.ln()).abs() < 1e-15);
        assert_eq!(Transform::None.forward(-5.0), Some(-5.0));
        assert_eq!(Transform::None.log_jacobian(-5.0), 0.0);
        assert!(Transform::Log { offset: -1.0 }.validate().is_err());
        assert!(Transform::Log { offset: f64::NAN }.validate().is_err());
    }
}
