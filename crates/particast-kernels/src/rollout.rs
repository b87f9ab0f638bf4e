//! Forecasting rollouts: one step of every particle row on its own inputs ([`step`]) or on
//! its window's ([`step_shared`]), and
//! conditioning the weights on a drawn or observed value ([`observe`]).

use rayon::prelude::*;

use crate::cell::View;
use crate::error::KernelError;
use crate::gate;
use crate::head::row_log_density;
use crate::model::Model;
use crate::real::Real;
use crate::score::window_chunks;
use crate::state::ParticleState;

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
    rollout_step(model, state, inputs, raw, parallel, Inputs::PerRow)
}

/// [`step`] when every particle of a window sees the same inputs (`[B][C]`, one row per
/// window, as in sampled paths): the input projection and its inputs are computed once per
/// window instead of once per particle row. The same numbers as [`step`] with each window's
/// inputs repeated for its L particles.
pub fn step_shared<T: Real>(
    model: &Model<T>,
    state: &mut ParticleState<T>,
    inputs: &[T],
    raw: &mut [T],
    parallel: bool,
) -> Result<(), KernelError> {
    rollout_step(model, state, inputs, raw, parallel, Inputs::PerWindow)
}

/// Whose inputs a rollout step gets.
#[derive(Clone, Copy, PartialEq)]
enum Inputs {
    /// `[B][L][C]`: each particle row its own.
    PerRow,
    /// `[B][C]`: every particle of a window the window's.
    PerWindow,
}

fn rollout_step<T: Real>(
    model: &Model<T>,
    state: &mut ParticleState<T>,
    inputs: &[T],
    raw: &mut [T],
    parallel: bool,
    kind: Inputs,
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
    // Input rows per window.
    let per = if kind == Inputs::PerRow { l } else { 1 };
    if inputs.len() != state.windows * per * c || raw.len() != rows * p {
        return Err(KernelError::Shape(format!(
            "step needs {} inputs and {} outputs, got {} and {}",
            state.windows * per * c,
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
        let xr = bc * per;
        let mut xproj = vec![T::zero(); xr * g];
        v.project_inputs(&inputs[b0 * per * c..(b0 + bc) * per * c], xr, &mut xproj);
        let mut gh = vec![T::zero(); r * g];
        let mut h_next = vec![T::zero(); r * hd];
        v.step(
            r,
            h,
            &mut h_next,
            &mut gh,
            &xproj,
            |row| (row * per / l) * g,
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
    let mut post = vec![T::zero(); l];
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
        out[w] = gate::observe(
            cfg.gate,
            v.share,
            &mut state.log_w[w * l..(w + 1) * l],
            &lp,
            &mut s,
            &mut post,
        );
    }
    Ok(out)
}
