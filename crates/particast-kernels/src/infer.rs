//! Inference: teacher-forced scoring in chunks that carry particle states and log-weights, and
//! the step function used by forecasting rollouts.

use rayon::prelude::*;

use crate::cell::View;
use crate::error::KernelError;
use crate::head::row_log_density;
use crate::model::{Gate, Model};
use crate::real::{logsumexp, Real};
use crate::train::Batch;

/// The particle states and predictive log-weights of B windows (series) between calls.
///
/// A fresh state holds the learned initial vectors and uniform weights. Scoring a series in
/// chunks with one state gives the same numbers as scoring it in one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticleState<T> {
    /// Windows B.
    pub windows: usize,
    /// Particles L.
    pub particles: usize,
    /// Hidden units H.
    pub hidden: usize,
    /// `[B][L][H]` hidden states after the last step seen.
    pub h: Vec<T>,
    /// `[B][L]` log-weights for the next step.
    pub log_w: Vec<T>,
}

impl<T: Real> ParticleState<T> {
    /// The initial state of `windows` windows.
    pub fn new(model: &Model<T>, windows: usize) -> Self {
        let cfg = &model.config;
        let (l, hd) = (cfg.particles, cfg.hidden);
        let h0 = model.tensor("particles.h0").unwrap_or(&[]);
        let mut h = Vec::with_capacity(windows * l * hd);
        for _ in 0..windows {
            h.extend_from_slice(h0);
        }
        ParticleState {
            windows,
            particles: l,
            hidden: hd,
            h,
            log_w: vec![-T::c((l as f64).ln()); windows * l],
        }
    }

    /// A state made of the given windows of this one (repeats allowed: sample paths).
    pub fn select(&self, windows: &[usize]) -> Self {
        let (l, hd) = (self.particles, self.hidden);
        let mut h = Vec::with_capacity(windows.len() * l * hd);
        let mut log_w = Vec::with_capacity(windows.len() * l);
        for &w in windows {
            h.extend_from_slice(&self.h[w * l * hd..(w + 1) * l * hd]);
            log_w.extend_from_slice(&self.log_w[w * l..(w + 1) * l]);
        }
        ParticleState {
            windows: windows.len(),
            particles: l,
            hidden: hd,
            h,
            log_w,
        }
    }

    /// Mean over windows of the mean pairwise Euclidean distance between particle states (a
    /// measure of particle diversity; 0 when the particles have collapsed into one).
    pub fn mean_pairwise_distance(&self) -> f64 {
        let (l, hd) = (self.particles, self.hidden);
        if l < 2 || self.windows == 0 {
            return 0.0;
        }
        let mut total = 0.0;
        for w in 0..self.windows {
            let hw = &self.h[w * l * hd..(w + 1) * l * hd];
            let mut sum = 0.0;
            for i in 0..l {
                for j in i + 1..l {
                    let d2: f64 = (0..hd)
                        .map(|k| (hw[i * hd + k].f() - hw[j * hd + k].f()).powi(2))
                        .sum();
                    sum += d2.sqrt();
                }
            }
            total += sum / (l * (l - 1) / 2) as f64;
        }
        total / self.windows as f64
    }

    fn check(&self, model: &Model<T>) -> Result<(), KernelError> {
        let cfg = &model.config;
        if self.particles != cfg.particles
            || self.hidden != cfg.hidden
            || self.h.len() != self.windows * cfg.particles * cfg.hidden
            || self.log_w.len() != self.windows * cfg.particles
        {
            return Err(KernelError::Shape(format!(
                "particle state (B={}, L={}, H={}) does not fit the model (L={}, H={})",
                self.windows, self.particles, self.hidden, cfg.particles, cfg.hidden
            )));
        }
        Ok(())
    }
}

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

/// Updates one window's log-weights after an observation with per-particle log densities `lp`;
/// returns the log-likelihood (scaled units) of the observation under the mixture.
fn gate_update<T: Real>(gate: Gate, share: T, log_w: &mut [T], lp: &[T], s: &mut [T]) -> T {
    let l = log_w.len();
    for i in 0..l {
        s[i] = log_w[i] + lp[i];
    }
    let ll = logsumexp(&s[..l]);
    let inv_l = T::one() / T::c(l as f64);
    for i in 0..l {
        log_w[i] = match gate {
            Gate::Uniform => -T::c((l as f64).ln()),
            Gate::Bayes => s[i] - ll,
            Gate::FixedShare => ((T::one() - share) * (s[i] - ll).exp() + share * inv_l).ln(),
        };
    }
    ll
}

/// Chunks of windows for the rayon pool: fixed by `rows`, never by the thread count.
fn window_chunks(windows: usize, particles: usize, rows: usize) -> Vec<(usize, usize)> {
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
    let (hd, g, l, d, p, c) = (
        cfg.hidden,
        cfg.gate_width(),
        cfg.particles,
        cfg.targets,
        cfg.head_width(),
        cfg.inputs,
    );
    let tt = batch.steps;
    let eproj = v.project_embedding();
    let chunks = window_chunks(batch.windows, l, 256);
    let run = |(b0, bc): (usize, usize), h: &mut [T], log_w: &mut [T]| {
        let r = bc * l;
        let mut ll = vec![T::zero(); bc * tt];
        let mut observed = vec![false; bc * tt];
        let mut lw_out = vec![T::zero(); bc * tt * l];
        let mut raw_out = vec![T::zero(); bc * tt * l * p];
        let mut xin = vec![T::zero(); bc * c];
        let mut xproj = vec![T::zero(); bc * g];
        let mut gh = vec![T::zero(); r * g];
        let mut h_next = vec![T::zero(); r * hd];
        let mut raw = vec![T::zero(); r * p];
        let mut lp = vec![T::zero(); l];
        let mut s = vec![T::zero(); l];
        for t in 0..tt {
            for bl in 0..bc {
                let o = ((b0 + bl) * tt + t) * c;
                xin[bl * c..(bl + 1) * c].copy_from_slice(&batch.inputs[o..o + c]);
            }
            v.project_inputs(&xin, bc, &mut xproj);
            v.step(
                r,
                h,
                &mut h_next,
                &mut gh,
                &xproj,
                |row| (row / l) * g,
                &eproj,
                None,
                None,
            );
            h.copy_from_slice(&h_next);
            v.head(h, r, &mut raw);
            for bl in 0..bc {
                let o = ((b0 + bl) * tt + t) * d;
                let y = &batch.targets[o..o + d];
                let m = &batch.mask[o..o + d];
                let out_t = bl * tt + t;
                lw_out[out_t * l..(out_t + 1) * l].copy_from_slice(&log_w[bl * l..(bl + 1) * l]);
                raw_out[out_t * l * p..(out_t + 1) * l * p]
                    .copy_from_slice(&raw[bl * l * p..(bl + 1) * l * p]);
                if !m.iter().any(|&v| v != T::zero()) {
                    continue;
                }
                for li in 0..l {
                    let row = bl * l + li;
                    lp[li] = row_log_density(
                        cfg.head,
                        &raw[row * p..(row + 1) * p],
                        y,
                        m,
                        v.floor,
                        None,
                    );
                }
                let lls = gate_update(
                    cfg.gate,
                    v.share,
                    &mut log_w[bl * l..(bl + 1) * l],
                    &lp,
                    &mut s,
                );
                let log_scale: T = (0..d)
                    .filter(|&k| m[k] != T::zero())
                    .map(|k| batch.log_scale[(b0 + bl) * d + k])
                    .sum();
                ll[out_t] = lls - log_scale;
                observed[out_t] = true;
            }
        }
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

/// One rollout step: advances every particle row with its own inputs (`[B][L][C]`) and writes
/// the raw head outputs of the new states into `raw` (`[B][L][P]`). The weights do not move
/// (nothing is observed); call [`observe`] to condition on a drawn value.
pub fn step<T: Real>(
    model: &Model<T>,
    state: &mut ParticleState<T>,
    inputs: &[T],
    raw: &mut [T],
    parallel: bool,
) -> Result<(), KernelError> {
    let cfg = &model.config;
    state.check(model)?;
    let (hd, g, l, p, c) = (
        cfg.hidden,
        cfg.gate_width(),
        cfg.particles,
        cfg.head_width(),
        cfg.inputs,
    );
    let rows = state.windows * l;
    if inputs.len() != rows * c || raw.len() != rows * p {
        return Err(KernelError::Shape(format!(
            "step needs {} inputs and {} outputs, got {} and {}",
            rows * c,
            rows * p,
            inputs.len(),
            raw.len()
        )));
    }
    let v = View::new(model);
    let eproj = v.project_embedding();
    let chunks = window_chunks(state.windows, l, 256);
    let mut work = Vec::with_capacity(chunks.len());
    let (mut h_rest, mut raw_rest) = (&mut state.h[..], &mut raw[..]);
    for &(b0, bc) in &chunks {
        let (a, b) = h_rest.split_at_mut(bc * l * hd);
        h_rest = b;
        let (ra, rb) = raw_rest.split_at_mut(bc * l * p);
        raw_rest = rb;
        work.push((b0, bc, a, ra));
    }
    let run = |(b0, bc, h, raw): (usize, usize, &mut [T], &mut [T])| {
        let r = bc * l;
        let mut xproj = vec![T::zero(); r * g];
        v.project_inputs(&inputs[b0 * l * c..(b0 + bc) * l * c], r, &mut xproj);
        let mut gh = vec![T::zero(); r * g];
        let mut h_next = vec![T::zero(); r * hd];
        v.step(
            r,
            h,
            &mut h_next,
            &mut gh,
            &xproj,
            |row| row * g,
            &eproj,
            None,
            None,
        );
        h.copy_from_slice(&h_next);
        v.head(h, r, raw);
    };
    if parallel {
        work.into_par_iter().for_each(run);
    } else {
        work.into_iter().for_each(run);
    }
    Ok(())
}

/// Conditions the weights on an observation `y` (`[B][D]`, scaled, with `mask`) given the raw
/// head outputs of the current step (`[B][L][P]`); returns each window's log-likelihood in
/// scaled units (0 where nothing is observed, and then the weights do not move).
pub fn observe<T: Real>(
    model: &Model<T>,
    state: &mut ParticleState<T>,
    raw: &[T],
    y: &[T],
    mask: &[T],
) -> Result<Vec<T>, KernelError> {
    let cfg = &model.config;
    state.check(model)?;
    let (l, p, d) = (cfg.particles, cfg.head_width(), cfg.targets);
    let b = state.windows;
    if raw.len() != b * l * p || y.len() != b * d || mask.len() != b * d {
        return Err(KernelError::Shape(
            "observe: buffer sizes do not fit the state".into(),
        ));
    }
    let v = View::new(model);
    let mut lp = vec![T::zero(); l];
    let mut s = vec![T::zero(); l];
    let mut out = vec![T::zero(); b];
    for w in 0..b {
        let yw = &y[w * d..(w + 1) * d];
        let mw = &mask[w * d..(w + 1) * d];
        if !mw.iter().any(|&m| m != T::zero()) {
            continue;
        }
        for li in 0..l {
            let row = w * l + li;
            lp[li] = row_log_density(
                cfg.head,
                &raw[row * p..(row + 1) * p],
                yw,
                mw,
                v.floor,
                None,
            );
        }
        out[w] = gate_update(
            cfg.gate,
            v.share,
            &mut state.log_w[w * l..(w + 1) * l],
            &lp,
            &mut s,
        );
    }
    Ok(out)
}
