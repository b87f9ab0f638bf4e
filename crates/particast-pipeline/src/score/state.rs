//! The state of a series' scoring, and its check against a model: what incremental scoring
//! (`--state-in` / `--state-out`) saves between calls. The file format is in
//! [`crate::output::states`].

use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};
use crate::inputs::Affine;
use crate::model_dir::TrainedModel;

/// Where scoring of one series stands: enough to continue it exactly with new data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    /// Series id.
    pub id: String,
    /// Steps scored so far.
    pub steps: usize,
    /// Timestamp of the last step scored (physical value).
    pub last_ds: i64,
    /// Scale per target dimension.
    pub scale: Vec<f64>,
    /// Location per target dimension (0 under mean-|y| scaling).
    pub loc: Vec<f64>,
    /// `[L][H]` particle states.
    pub h: Vec<f32>,
    /// `[L]` log-weights for the next step.
    pub log_w: Vec<f32>,
    /// The last `max lag` steps' values (`[steps][D]`, 0 where missing), for lag features.
    pub tail_values: Vec<f64>,
    /// Their observed flags.
    pub tail_mask: Vec<u8>,
    /// The last raw values the anomaly method keeps (tail scores, or NLLs).
    pub recent_scores: Vec<f64>,
    /// The last anomaly scores before suppression (for [`crate::ScoreConfig::suppress`]).
    pub recent_anomaly: Vec<f64>,
}

impl SeriesState {
    /// The series' affine map (its scale and location).
    pub fn affine(&self) -> Affine {
        Affine {
            loc: self.loc.clone(),
            scale: self.scale.clone(),
        }
    }
}

/// Checks a loaded state against the model (particle and hidden sizes, targets).
pub fn check_state(tm: &TrainedModel, state: &SeriesState) -> Result<()> {
    let c = &tm.model.config;
    if state.h.len() != c.particles * c.hidden
        || state.log_w.len() != c.particles
        || state.scale.len() != c.targets
        || state.loc.len() != c.targets
        || state.scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
        || state.loc.iter().any(|l| !l.is_finite())
    {
        return Err(PipelineError::SchemaMismatch(format!(
            "the state of series `{}` does not fit the model (L={}, H={}, D={})",
            state.id, c.particles, c.hidden, c.targets
        )));
    }
    Ok(())
}
