//! Teacher-forced scoring: per step, the predictive mixture (log-weights and raw head
//! outputs) and the observation's log-likelihood, from a [`ParticleState`] that is advanced
//! to the end of the batch, so a series scored in pieces gives the numbers of one pass.

use rayon::prelude::*;

use crate::batch::Batch;
use crate::cell::View;
use crate::error::KernelError;
use crate::forward::{forward, Start};
use crate::model::Model;
use crate::real::Real;
use crate::state::ParticleState;

/// Per-step predictive mixtures and log-likelihoods from [`score`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreOutput<T> {
    /// Windows B.
    pub windows: usize,
    /// Steps T.
    pub steps: usize,
    /// `[B][T]` log p(x^t | x^{<t}) in original units over the observed dimensions (0 when
    /// nothing was observed).
    pub ll: Vec<T>,
    /// `[B][T]` whether any dimension was observed.
    pub observed: Vec<bool>,
    /// `[B][T][L]` predictive log-weights.
    pub log_w: Vec<T>,
    /// `[B][T][L][P]` raw head outputs (see [`crate::head::emission`]), scaled units.
    pub raw: Vec<T>,
}

/// Chunks of windows for the rayon pool: fixed by `rows`, never by the thread count.
pub(crate) fn window_chunks(windows: usize, particles: usize, rows: usize) -> Vec<(usize, usize)> {
    let per = (rows / particles).max(1);
    (0..windows)
        .step_by(per)
        .map(|b0| (b0, per.min(windows - b0)))
        .collect()
}

/// Teacher-forced scoring of `batch` (its `burn_in` is ignored) from `state`, which is advanced
/// to the end of the batch. Runs without transition noise.
pub fn score<T: Real>(
    model: &Model<T>,
    state: &mut ParticleState<T>,
    batch: &Batch<'_, T>,
    parallel: bool,
) -> Result<ScoreOutput<T>, KernelError> {
    let cfg = &model.config;
    batch.validate(cfg)?;
    state.check(model)?;
    if state.windows != batch.windows {
        return Err(KernelError::Shape(format!(
            "state has {} windows, the batch {}",
            state.windows, batch.windows
        )));
    }
    let v = View::new(model);
    let (hd, l, d, p) = (cfg.hidden, cfg.particles, cfg.targets, cfg.head_width());
    let tt = batch.steps;
    let chunks = window_chunks(batch.windows, l, 256);
    let run = |(b0, bc): (usize, usize), h: &mut [T], log_w: &mut [T]| {
        let r = bc * l;
        let f = forward(&v, batch, b0, bc, Start::Carried { h, log_w }, None, false);
        let mut ll = vec![T::zero(); bc * tt];
        let mut observed = vec![false; bc * tt];
        let mut lw_out = vec![T::zero(); bc * tt * l];
        let mut raw_out = vec![T::zero(); bc * tt * l * p];
        for bl in 0..bc {
            for t in 0..tt {
                let out_t = bl * tt + t;
                let cur = (t * bc + bl) * l;
                lw_out[out_t * l..(out_t + 1) * l].copy_from_slice(&f.lw[cur..cur + l]);
                let ro = (t * r + bl * l) * p;
                raw_out[out_t * l * p..(out_t + 1) * l * p].copy_from_slice(&f.raw[ro..ro + l * p]);
                if !f.observed[t * bc + bl] {
                    continue;
                }
                let o = ((b0 + bl) * tt + t) * d;
                let m = &batch.mask[o..o + d];
                let log_scale: T = (0..d)
                    .filter(|&k| m[k] != T::zero())
                    .map(|k| batch.log_scale[(b0 + bl) * d + k])
                    .sum();
                ll[out_t] = f.ll[t * bc + bl] - log_scale;
                observed[out_t] = true;
            }
        }
        h.copy_from_slice(&f.hs[tt * r * hd..(tt + 1) * r * hd]);
        log_w.copy_from_slice(&f.lw[tt * bc * l..(tt + 1) * bc * l]);
        (ll, observed, lw_out, raw_out)
    };
    // Split the state into per-chunk slices so chunks run independently.
    let mut h_parts: Vec<&mut [T]> = Vec::with_capacity(chunks.len());
    let mut w_parts: Vec<&mut [T]> = Vec::with_capacity(chunks.len());
    let (mut h_rest, mut w_rest) = (&mut state.h[..], &mut state.log_w[..]);
    for &(_, bc) in &chunks {
        let (a, b) = h_rest.split_at_mut(bc * l * hd);
        h_parts.push(a);
        h_rest = b;
        let (a, b) = w_rest.split_at_mut(bc * l);
        w_parts.push(a);
        w_rest = b;
    }
    let work: Vec<_> = chunks.into_iter().zip(h_parts).zip(w_parts).collect();
    let outs: Vec<_> = if parallel {
        work.into_par_iter()
            .map(|((ch, h), w)| run(ch, h, w))
            .collect()
    } else {
        work.into_iter().map(|((ch, h), w)| run(ch, h, w)).collect()
    };
    let mut out = ScoreOutput {
        windows: batch.windows,
        steps: tt,
        ll: Vec::with_capacity(batch.windows * tt),
        observed: Vec::with_capacity(batch.windows * tt),
        log_w: Vec::with_capacity(batch.windows * tt * l),
        raw: Vec::with_capacity(batch.windows * tt * l * p),
    };
    for (ll, obs, lw, raw) in outs {
        out.ll.extend(ll);
        out.observed.extend(obs);
        out.log_w.extend(lw);
        out.raw.extend(raw);
    }
    Ok(out)
}
