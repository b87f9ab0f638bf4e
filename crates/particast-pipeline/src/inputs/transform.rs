//! Value transforms applied before scaling ([`Transform`]): `ln(y + offset)` or none, with
//! their inverse and log-Jacobian so likelihoods stay exact in original units.

use particast_ingest::PreparedSeries;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use crate::error::{PipelineError, Result};

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

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transform::None => write!(f, "none"),
            Transform::Log { offset } if *offset == 0.0 => write!(f, "log"),
            Transform::Log { offset } => write!(f, "log(y + {offset})"),
        }
    }
}

impl std::str::FromStr for Transform {
    type Err = String;
    /// The words of the command line: `none` or `log`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(Transform::None),
            "log" => Ok(Transform::Log { offset: 0.0 }),
            _ => Err(format!("`{s}`: expected none or log")),
        }
    }
}
