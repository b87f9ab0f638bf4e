//! Per-window scaling: the affine map `scaled = (y - loc) / scale` of each window or scored
//! series, computed from its context steps only ([`Scaling`], [`Affine`]).

use serde::{Deserialize, Serialize};

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

impl std::str::FromStr for Scaling {
    type Err = String;
    /// The words of the command line: `mean-abs` (floor 1e-6) or `seasonal-diff` (at the
    /// target's season, floor 1e-4).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mean-abs" => Ok(Scaling::default()),
            "seasonal-diff" => Ok(Scaling::SeasonalDiff {
                season: 0,
                floor: 1e-4,
            }),
            _ => Err(format!("`{s}`: expected mean-abs or seasonal-diff")),
        }
    }
}
