//! From ingested windows to the kernels' buffers: scaling and the per-step input vector.
//!
//! Per step t the model sees, in this order (C = 2 K D + D + F inputs):
//! 1. the lagged targets `y[t - lag_k] / scale` for every lag (lag 1 first: the previous value),
//!    0 where missing (K D values);
//! 2. their observed flags (K D values);
//! 3. `ln(1 + scale)` per dimension (D values), so the model knows the level it works at;
//! 4. the calendar features and covariates of step t (F values).
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

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, UInt8Type};
use arrow_array::RecordBatch;
use particast_ingest::{columns, FeatureSpec, PreparedSeries, WindowData};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use crate::error::{PipelineError, Result};

/// How each window (or scored series) is scaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scaling {
    /// DeepAR's rule: the mean |y| of the observed context values, floored at `floor`; no shift.
    MeanAbs {
        /// Smallest scale.
        floor: f64,
    },
    /// Centre on the mean of the observed context values and divide by the mean absolute
    /// seasonal difference `|y[t] - y[t - season]|` over the context (lag 1 when the context
    /// holds no such pair), floored at `floor` times the mean |y| (and at 1e-12).
    SeasonalDiff {
        /// Season m in steps (24 for hourly data with a daily cycle).
        season: usize,
        /// Smallest scale, relative to the mean |y| of the context.
        floor: f64,
    },
}

/// The affine map of one window or series, per target dimension: `scaled = (y - loc) / scale`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Affine {
    /// Location per dimension (0 under [`Scaling::MeanAbs`]).
    pub loc: Vec<f64>,
    /// Scale per dimension (positive).
    pub scale: Vec<f64>,
}

impl Affine {
    /// The identity map for `d` dimensions.
    pub fn identity(d: usize) -> Self {
        Affine {
            loc: vec![0.0; d],
            scale: vec![1.0; d],
        }
    }
    /// `y` in model units.
    pub fn to_scaled(&self, d: usize, y: f64) -> f64 {
        (y - self.loc[d]) / self.scale[d]
    }
    /// A model-unit value `z` back in original units.
    pub fn to_original(&self, d: usize, z: f64) -> f64 {
        z * self.scale[d] + self.loc[d]
    }
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling::MeanAbs { floor: 1e-6 }
    }
}

impl Scaling {
    /// The affine map per dimension from `T x D` values and mask, looking at the first `steps`.
    pub fn affine(&self, values: &[f32], mask: &[u8], d: usize, steps: usize) -> Affine {
        // Called once per training window: sums only, no allocation per dimension.
        let steps = steps.min(values.len() / d.max(1));
        let obs = |t: usize, k: usize| (mask[t * d + k] == 1).then(|| values[t * d + k] as f64);
        let mut out = Affine::identity(d);
        for k in 0..d {
            let (mut n, mut sum, mut sum_abs) = (0usize, 0.0f64, 0.0f64);
            for v in (0..steps).filter_map(|t| obs(t, k)) {
                n += 1;
                sum += v;
                sum_abs += v.abs();
            }
            if n == 0 {
                continue; // nothing observed: work in the data's own units
            }
            let mean_abs = sum_abs / n as f64;
            match *self {
                Scaling::MeanAbs { floor } => {
                    if mean_abs > 0.0 {
                        out.scale[k] = mean_abs.max(floor);
                    }
                }
                Scaling::SeasonalDiff { season, floor } => {
                    let mean = sum / n as f64;
                    let spread = |lag: usize| {
                        let (mut m, mut s) = (0usize, 0.0f64);
                        for t in lag..steps {
                            if let (Some(a), Some(b)) = (obs(t, k), obs(t - lag, k)) {
                                m += 1;
                                s += (a - b).abs();
                            }
                        }
                        (m > 0).then(|| s / m as f64)
                    };
                    let spread = spread(season.max(1))
                        .or_else(|| spread(1))
                        .unwrap_or_else(|| {
                            (0..steps)
                                .filter_map(|t| obs(t, k))
                                .map(|v| (v - mean).abs())
                                .sum::<f64>()
                                / n as f64
                        });
                    out.loc[k] = mean;
                    // An all-zero context has no size at all: work in the data's own units
                    // (as mean-|y| scaling does) rather than at a vanishing scale that would
                    // turn the next nonzero value into an overflow.
                    let scale = spread.max(floor * mean_abs);
                    out.scale[k] = if scale > 0.0 { scale.max(1e-12) } else { 1.0 };
                }
            }
        }
        out
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        let (floor, ok_season) = match *self {
            Scaling::MeanAbs { floor } => (floor, true),
            Scaling::SeasonalDiff { season, floor } => (floor, season >= 1),
        };
        if !(floor.is_finite() && floor >= 0.0) {
            return Err(PipelineError::Config(format!(
                "scaling floor must be finite and non-negative, got {floor}"
            )));
        }
        if !ok_season {
            return Err(PipelineError::Config(
                "seasonal_diff scaling needs season >= 1".into(),
            ));
        }
        Ok(())
    }
}

/// A fixed, invertible map applied to every target value before scaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// The values as they are.
    #[default]
    None,
    /// `u = ln(y + offset)`: multiplicative seasonality becomes additive and small values
    /// (night hours, troughs) are resolved as finely as large ones; forecasts stay above
    /// `-offset`. Every observed value must exceed `-offset` (a clear error names the first
    /// that does not). Likelihoods stay exact in original units (log-Jacobian `-ln(y + offset)`).
    Log {
        /// Added before the logarithm (0 for positive data, 1 for counts with zeros).
        offset: f64,
    },
}

impl Transform {
    /// `u` for `y`, or None outside the domain.
    pub fn forward(&self, y: f64) -> Option<f64> {
        match *self {
            Transform::None => Some(y),
            Transform::Log { offset } => (y + offset > 0.0).then(|| (y + offset).ln()),
        }
    }
    /// `y` for `u`.
    pub fn inverse(&self, u: f64) -> f64 {
        match *self {
            Transform::None => u,
            Transform::Log { offset } => u.exp() - offset,
        }
    }
    /// `ln |du/dy|` at `y` (0 for the identity).
    pub fn log_jacobian(&self, y: f64) -> f64 {
        match *self {
            Transform::None => 0.0,
            Transform::Log { offset } => -(y + offset).ln(),
        }
    }
    /// Whether this is the identity.
    pub fn is_identity(&self) -> bool {
        matches!(self, Transform::None)
    }
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Transform::Log { offset } if !(offset.is_finite() && offset >= 0.0) => {
                Err(PipelineError::Config(format!(
                    "log transform offset must be finite and >= 0, got {offset}"
                )))
            }
            _ => Ok(()),
        }
    }
    /// `s` with every observed value transformed; an error names the series, step and value
    /// of the first one outside the domain. The identity borrows `s`.
    pub fn apply<'a>(&self, s: &'a PreparedSeries) -> Result<Cow<'a, PreparedSeries>> {
        if self.is_identity() {
            return Ok(Cow::Borrowed(s));
        }
        let mut out = s.clone();
        self.apply_in_place(&mut out)?;
        Ok(Cow::Owned(out))
    }
    /// [`Transform::apply`], but a value outside the domain becomes missing instead of an
    /// error; returns the series and how many values were masked. For models whose transform
    /// the automatic recipe chose from training data that were all positive: a later zero is
    /// a value the model has no density for, not a reason to stop a scoring job.
    pub fn apply_masking<'a>(&self, s: &'a PreparedSeries) -> (Cow<'a, PreparedSeries>, usize) {
        if self.is_identity() {
            return (Cow::Borrowed(s), 0);
        }
        let mut out = s.clone();
        let mut masked = 0;
        for (v, m) in out.values.iter_mut().zip(out.mask.iter_mut()) {
            if *m == 0 {
                continue;
            }
            match self.forward(*v) {
                Some(u) => *v = u,
                None => {
                    *v = 0.0;
                    *m = 0;
                    masked += 1;
                }
            }
        }
        (Cow::Owned(out), masked)
    }
    /// [`Transform::apply`] on a series the caller owns (no copy); on error `s` is left
    /// partly transformed.
    pub fn apply_in_place(&self, s: &mut PreparedSeries) -> Result<()> {
        if self.is_identity() {
            return Ok(());
        }
        let d = s.n_targets.max(1);
        for (i, (v, m)) in s.values.iter_mut().zip(&s.mask).enumerate() {
            if *m == 0 {
                continue;
            }
            *v = self.forward(*v).ok_or_else(|| PipelineError::Domain {
                series: s.id.clone(),
                step: i / d,
                value: *v,
                transform: format!("{self:?}"),
            })?;
        }
        Ok(())
    }
}

/// What the network's emission models at step t, in model units `x = (y - loc) / scale`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// The level `x[t]` itself.
    #[default]
    Level,
    /// The change from one season ago, `x[t] - x[t - season]`: the network predicts a
    /// correction to the seasonal-naive forecast, so that a network that knows nothing still
    /// forecasts as well as seasonal naive. The season must be one of the input lags. A step
    /// whose value one season ago is missing has no target (in training and in scoring); a
    /// forecast whose seasonal reference is missing falls back to the latest observed value a
    /// whole number of seasons earlier, then to the location.
    SeasonalChange {
        /// Season m in steps (24 for hourly data with a daily cycle).
        season: usize,
    },
}

impl Target {
    /// The season whose lag the target subtracts, if any.
    pub fn season(&self) -> Option<usize> {
        match *self {
            Target::Level => None,
            Target::SeasonalChange { season } => Some(season),
        }
    }
}

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

impl std::fmt::Display for Scaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scaling::MeanAbs { floor } => write!(f, "mean |y| of the context (floor {floor:e})"),
            Scaling::SeasonalDiff { season, floor } => write!(
                f,
                "mean absolute {season}-step change of the context (floor {floor:e} x mean |y|)"
            ),
        }
    }
}

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transform::None => write!(f, "none"),
            Transform::Log { offset } if *offset == 0.0 => write!(f, "log"),
            Transform::Log { offset } => write!(f, "log(y + {offset})"),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Level => write!(f, "the level"),
            Target::SeasonalChange { season: 1 } => write!(f, "the change from the previous step"),
            Target::SeasonalChange { season } => {
                write!(f, "the change from {season} steps before")
            }
        }
    }
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
            .saturating_add(self.features.n_features())
    }

    /// Appends one window's inputs, targets and mask (mapped by `affine`) to `out`.
    pub fn push_window(
        &self,
        w: &WindowData,
        steps: usize,
        affine: &Affine,
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
            out.inputs
                .extend_from_slice(&w.covariates[t * f..(t + 1) * f]);
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
            let affine = self.scaling.affine(&w.values, &w.mask, d, context);
            self.push_window(&w, steps, &affine, &mut out);
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
        let affine = spec.scaling.affine(&w.values, &w.mask, 1, 1);
        assert_eq!(
            affine,
            Affine {
                loc: vec![0.0],
                scale: vec![2.0]
            }
        );
        let mut b = KernelBatch::default();
        spec.push_window(&w, 2, &affine, &mut b);
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
        spec.push_window(&w, 3, &affine, &mut b);
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
