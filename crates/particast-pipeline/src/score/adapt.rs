//! Causal online adaptation while scoring: every `adapt` steps of a series, a few gradient steps
//! of its own copy of the model on training windows of the observations it has already scored
//! (never the future), so the model keeps learning the series as it streams (after a level shift
//! or a new regime its NLL comes back down instead of staying high).
//!
//! One update at absolute step `t` (a multiple of `adapt`): the `adapt_windows` windows of
//! `context + horizon` steps that end at `t`, `t - stride`, ... with `stride` spreading them over
//! the last `adapt_memory` steps (0: back to back), each scaled by its first `context` steps as a
//! training window is; then `adapt_steps` Adam steps (fresh moments: the first step moves every
//! parameter by about `adapt_lr`, whatever the gradient's scale) on their mean NLL, with the
//! gradient clipped to norm 1, on all weights or on the head only (`adapt_params`). Windows that
//! would start before the series are left out. The adapted weights are part of the series'
//! score state ([`super::SeriesState::adapted`]), and the state's tail keeps the last
//! `adapt_memory` steps, so incremental scoring equals one pass bit for bit.

use particast_ingest::PreparedSeries;
use particast_kernels::{clip_global_norm, loss_and_grad, Adam, AdamConfig, Model, TrainOptions};
use serde::{Deserialize, Serialize};

use super::ScoreConfig;
use crate::error::Result;
use crate::model_dir::TrainedModel;

/// Which weights online adaptation changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AdaptParams {
    /// Every weight of the series' copy of the model.
    #[default]
    All,
    /// The output head only (the map from the particles' states to the predictive), so the
    /// transition stays the trained one.
    Head,
}

impl ScoreConfig {
    /// The steps of training windows one adaptation update reads back from its step: the
    /// window length `len` (context + horizon) when `adapt_memory` is 0 and one window, else
    /// at least `len`. 0 when adaptation is off.
    pub(crate) fn adapt_reach(&self, len: usize) -> usize {
        if self.adapt == 0 {
            return 0;
        }
        if self.adapt_memory == 0 {
            len * self.adapt_windows.max(1)
        } else {
            self.adapt_memory.max(len)
        }
    }
}

/// Start indices (into the series) of the windows of one update at index `t` (exclusive end),
/// oldest first; `first` is the first index the series may use (earlier: before the history).
fn window_starts(cfg: &ScoreConfig, len: usize, t: usize, first: i64) -> Vec<i64> {
    let w = cfg.adapt_windows.max(1);
    let reach = cfg.adapt_reach(len);
    let stride = if w > 1 { (reach - len) / (w - 1) } else { 0 };
    (0..w)
        .rev()
        .map(|k| t as i64 - (k * stride) as i64 - len as i64)
        .filter(|&st| st >= first)
        .collect()
}

/// One adaptation update of `model` (the series' copy) on the windows of `s` (the transformed
/// series) that end by index `t`; `first` is the first index that belongs to the history.
pub(crate) fn update(
    tm: &TrainedModel,
    model: &mut Model<f32>,
    s: &PreparedSeries,
    t: usize,
    first: i64,
    cfg: &ScoreConfig,
) -> Result<()> {
    let ctx = tm.meta.context;
    let len = ctx + tm.meta.horizon.max(1);
    let picks: Vec<(usize, i64)> = window_starts(cfg, len, t, first)
        .into_iter()
        .map(|st| (0, st))
        .collect();
    if picks.is_empty() {
        return Ok(());
    }
    let kb = tm
        .meta
        .inputs
        .windows_batch(std::slice::from_ref(s), &picks, len, ctx);
    let opts = TrainOptions {
        noise_seed: None,
        parallel: false,
        ..Default::default()
    };
    let n = model.params.len();
    let range = |name: &str| model.layout.get(name).map(|e| e.range()).unwrap_or(0..0);
    let head = [range("head.w"), range("head.b")];
    let mut grad = vec![0.0f32; n];
    let mut adam = Adam::new(
        AdamConfig {
            lr: cfg.adapt_lr,
            ..Default::default()
        },
        n,
    );
    for _ in 0..cfg.adapt_steps.max(1) {
        let r = loss_and_grad(model, &kb.view(0), &opts, Some(&mut grad))?;
        if !r.nll.is_finite() || r.observations == 0 {
            break;
        }
        if cfg.adapt_params == AdaptParams::Head {
            for (i, g) in grad.iter_mut().enumerate() {
                if !head.iter().any(|r| r.contains(&i)) {
                    *g = 0.0;
                }
            }
        }
        if !clip_global_norm(&mut grad, 1.0).is_finite() {
            break;
        }
        adam.step(&mut model.params, &grad, cfg.adapt_lr);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::window_starts;
    use crate::ScoreConfig;

    #[test]
    fn windows_end_at_the_update_and_spread_over_the_memory() {
        let mut cfg = ScoreConfig {
            adapt: 10,
            adapt_windows: 3,
            ..Default::default()
        };
        // Back to back by default: reach 3 x 10 steps.
        assert_eq!(cfg.adapt_reach(10), 30);
        assert_eq!(window_starts(&cfg, 10, 100, 0), vec![70, 80, 90]);
        // Spread over 50 steps: stride (50 - 10) / 2.
        cfg.adapt_memory = 50;
        assert_eq!(window_starts(&cfg, 10, 100, 0), vec![50, 70, 90]);
        // Never before the history's first index.
        assert_eq!(window_starts(&cfg, 10, 75, 30), vec![45, 65]);
        assert!(window_starts(&cfg, 10, 9, 0).is_empty());
        cfg.adapt = 0;
        assert_eq!(cfg.adapt_reach(10), 0);
    }
}
