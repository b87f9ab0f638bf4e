//! Covariates by what is known when (the Nixtla convention: `futr_exog`, `hist_exog`,
//! `stat_exog`), each standardised by the mean and spread of its training values.
//!
//! | kind | the network sees at step t | when forecasting |
//! |---|---|---|
//! | future | its value at t | from the future frame (`--future`), for every step; a missing value is an error |
//! | historical | its value at t - 1 and a flag (1 = known) | known at the first step (the last observed value), then 0 with the flag 0; training hides them on each window's horizon steps so the model learns that case |
//! | static | its value (constant within a series) | the series' value |
//!
//! Models written before covariate kinds feed every covariate raw at its step (as future
//! covariates); they forecast only with a future frame too.

use particast_ingest::{IngestOptions, PreparedSeries};
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};

/// What is known about a covariate when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CovariateKind {
    /// Known ahead (calendar-like, promotions, weather forecasts).
    #[default]
    Future,
    /// Known only up to now.
    Historical,
    /// One value per series.
    Static,
}

impl std::fmt::Display for CovariateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CovariateKind::Future => "future",
            CovariateKind::Historical => "historical",
            CovariateKind::Static => "static",
        })
    }
}

/// One covariate column of a model: its kind and standardisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Covariate {
    /// Column name.
    pub name: String,
    /// Kind.
    pub kind: CovariateKind,
    /// Mean of the training values.
    pub mean: f64,
    /// Standard deviation of the training values (1 for a constant column).
    pub scale: f64,
}

/// Bound of standardised covariate inputs.
const COVARIATE_CLAMP: f64 = 10.0;

impl Covariate {
    /// The network's input for raw value `v`.
    pub fn standardize(&self, v: f32) -> f32 {
        ((f64::from(v) - self.mean) / self.scale).clamp(-COVARIATE_CLAMP, COVARIATE_CLAMP) as f32
    }

    /// Inputs per step (a historical covariate also has its known flag).
    pub fn width(&self) -> usize {
        match self.kind {
            CovariateKind::Historical => 2,
            _ => 1,
        }
    }
}

/// The raw covariate rows around one step: the step's own and the previous step's (when
/// known).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepRows<'a> {
    /// The step's raw covariates (future and static ones are read here).
    pub cur: &'a [f32],
    /// The previous step's (historical covariates), when known.
    pub prev: Option<&'a [f32]>,
}

/// Appends the inputs of one step for `covs` from the raw rows `rows`. Without kinds (`covs`
/// empty, models written before them) the step's row is appended raw.
pub(crate) fn push_step(covs: &[Covariate], rows: StepRows<'_>, out: &mut Vec<f32>) {
    if covs.is_empty() {
        out.extend_from_slice(rows.cur);
        return;
    }
    for (j, c) in covs.iter().enumerate() {
        match c.kind {
            CovariateKind::Future | CovariateKind::Static => out.push(c.standardize(rows.cur[j])),
            CovariateKind::Historical => match rows.prev {
                Some(p) => out.extend([c.standardize(p[j]), 1.0]),
                None => out.extend([0.0, 0.0]),
            },
        }
    }
}

/// The kinds of the covariate columns `cols` from `opts` (a column named in no list is a
/// future covariate), standardised on the observed rows of `series`; checks that each static
/// covariate is constant within every series.
pub fn fit_covariates(
    cols: &[String],
    opts: &IngestOptions,
    series: &[PreparedSeries],
) -> Result<Vec<Covariate>> {
    let lists = [
        ("futr_exog", &opts.futr_exog, CovariateKind::Future),
        ("hist_exog", &opts.hist_exog, CovariateKind::Historical),
        ("stat_exog", &opts.stat_exog, CovariateKind::Static),
    ];
    let mut kinds = vec![None; cols.len()];
    for (list, names, kind) in lists {
        for name in names.iter() {
            let Some(j) = cols.iter().position(|c| c == name) else {
                return Err(PipelineError::Config(format!(
                    "{list} names `{name}`, which is not a covariate column (covariates: [{}])",
                    cols.join(", ")
                )));
            };
            if let Some(other) = kinds[j] {
                if other != kind {
                    return Err(PipelineError::Config(format!(
                        "covariate `{name}` is listed as both {other} and {kind}"
                    )));
                }
            }
            kinds[j] = Some(kind);
        }
    }
    let c_n = cols.len();
    let (mut n, mut sum, mut sum2) = (vec![0u64; c_n], vec![0.0f64; c_n], vec![0.0f64; c_n]);
    for s in series {
        if s.n_covariates != c_n {
            return Err(PipelineError::Config(format!(
                "series `{}` has {} covariates, the data {c_n}",
                s.id, s.n_covariates
            )));
        }
        let mut first: Vec<Option<(f32, usize)>> = vec![None; c_n];
        for (t, _) in s.present.iter().enumerate().filter(|(_, p)| **p) {
            for j in 0..c_n {
                let v = s.covariates[t * c_n + j];
                n[j] += 1;
                sum[j] += f64::from(v);
                sum2[j] += f64::from(v) * f64::from(v);
                if kinds[j] != Some(CovariateKind::Static) {
                    continue;
                }
                match first[j] {
                    None => first[j] = Some((v, t)),
                    Some((v0, t0)) if v0.to_bits() != v.to_bits() => {
                        return Err(PipelineError::Config(format!(
                            "static covariate `{}` is not constant within series `{}`: {v0} at \
                             {} and {v} at {}",
                            cols[j],
                            s.id,
                            s.timestamp(t0 as i64),
                            s.timestamp(t as i64)
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(cols
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let count = n[j].max(1) as f64;
            let mean = sum[j] / count;
            let var = (sum2[j] / count - mean * mean).max(0.0);
            let sd = var.sqrt();
            Covariate {
                name: name.clone(),
                kind: kinds[j].unwrap_or_default(),
                mean: if mean.is_finite() { mean } else { 0.0 },
                scale: if sd.is_finite() && sd > 1e-9 * mean.abs().max(1.0) {
                    sd
                } else {
                    1.0
                },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(kind: CovariateKind) -> Covariate {
        Covariate {
            name: "x".into(),
            kind,
            mean: 1.0,
            scale: 2.0,
        }
    }

    #[test]
    fn step_layout_by_kind() {
        let covs = [
            cov(CovariateKind::Future),
            cov(CovariateKind::Historical),
            cov(CovariateKind::Static),
        ];
        let rows = |prev| StepRows {
            cur: &[3.0, 5.0, 7.0],
            prev,
        };
        let mut out = Vec::new();
        push_step(&covs, rows(Some(&[9.0, 11.0, 13.0])), &mut out);
        assert_eq!(out, vec![1.0, 5.0, 1.0, 3.0]);
        out.clear();
        push_step(&covs, rows(None), &mut out);
        assert_eq!(out, vec![1.0, 0.0, 0.0, 3.0]);
        out.clear();
        push_step(
            &[],
            StepRows {
                cur: &[3.0, 5.0],
                prev: None,
            },
            &mut out,
        );
        assert_eq!(out, vec![3.0, 5.0]);
        assert_eq!(cov(CovariateKind::Future).standardize(1e9), 10.0);
    }
}
