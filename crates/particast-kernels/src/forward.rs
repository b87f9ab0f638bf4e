//! The forward pass, the one every kernel runs: a chunk of windows through the recurrence
//! (the input projection one product over all steps, the cell one product per step over all
//! particle rows), the head over all steps at once, the particles' log densities and the gate.
//! Training ([`crate::loss_and_grad`]) keeps what the backward pass needs; scoring
//! ([`crate::score`]) starts from and returns a [`crate::ParticleState`].

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::batch::Batch;
use crate::cell::{cache_width, View};
use crate::gate;
use crate::head::{gaussian_rows, row_log_density};
use crate::model::Head;
use crate::real::Real;

/// Where a chunk's particles start: their learned initial vectors with uniform weights, or
/// given states and log-weights (`[bc][L][H]` and `[bc][L]`).
pub(crate) enum Start<'a, T> {
    /// The learned initial vectors, uniform weights.
    Learned,
    /// Carried states (scoring a series in pieces).
    Carried {
        /// `[bc][L][H]` states.
        h: &'a [T],
        /// `[bc][L]` log-weights.
        log_w: &'a [T],
    },
}

/// Everything a chunk's forward pass computed, step-major.
pub(crate) struct Forward<T> {
    /// `[T + 1][rows][H]` states: the start, then after each step.
    pub(crate) hs: Vec<T>,
    /// `[T][rows][cache]` what the cells' backward needs (empty without gradients).
    pub(crate) cache: Vec<T>,
    /// `[T][rows][P]` raw head outputs.
    pub(crate) raw: Vec<T>,
    /// `[T][rows][P]` adjoints of the log densities in the raw outputs (empty without
    /// gradients).
    pub(crate) dout: Vec<T>,
    /// `[T][bc]` whether any dimension of the step was observed.
    pub(crate) observed: Vec<bool>,
    /// `[T + 1][bc][L]` log-weights before each step, then after the last.
    pub(crate) lw: Vec<T>,
    /// `[T][bc][L]` posterior weights of each observed step.
    pub(crate) post: Vec<T>,
    /// `[T][bc]` log-likelihood of each observed step, scaled units (0 when unobserved).
    pub(crate) ll: Vec<T>,
    /// `[T][rows][H]` transition noise, when the model has it and a seed was given.
    pub(crate) eps: Option<Vec<T>>,
}

/// Standard-normal noise for windows `b0..b0+bc`, `[T][bc*L][H]`; window b draws from its own
/// ChaCha stream so the noise does not depend on how windows are chunked.
fn noise<T: Real>(seed: u64, b0: usize, bc: usize, steps: usize, l: usize, h: usize) -> Vec<T> {
    let r = bc * l;
    let mut eps = vec![T::zero(); steps * r * h];
    for bl in 0..bc {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream((b0 + bl) as u64);
        for t in 0..steps {
            for li in 0..l {
                let row = bl * l + li;
                for j in 0..h {
                    let v: f64 = StandardNormal.sample(&mut rng);
                    eps[(t * r + row) * h + j] = T::c(v);
                }
            }
        }
    }
    eps
}

/// Runs windows `b0..b0 + bc` of `batch` forward from `start`; with `want_grad`, keeps the
/// cells' caches and the log densities' adjoints for [`crate::backward`]. Transition noise
/// runs only with a seed.
pub(crate) fn forward<T: Real>(
    v: &View<'_, T>,
    batch: &Batch<'_, T>,
    b0: usize,
    bc: usize,
    start: Start<'_, T>,
    noise_seed: Option<u64>,
    want_grad: bool,
) -> Forward<T> {
    let cfg = v.cfg;
    let (hd, g, l, d, p, c) = (
        cfg.hidden,
        cfg.gate_width(),
        cfg.particles,
        cfg.targets,
        cfg.head_width(),
        cfg.inputs,
    );
    let tt = batch.steps;
    let r = bc * l;
    let cw = cache_width(cfg);
    let inp = &batch.inputs[b0 * tt * c..(b0 + bc) * tt * c];

    // Through the recurrence.
    let mut xproj = vec![T::zero(); bc * tt * g];
    v.project_inputs(inp, bc * tt, &mut xproj);
    let eproj = v.project_embedding();
    let mut hs = vec![T::zero(); (tt + 1) * r * hd];
    let log_l = T::c((l as f64).ln());
    let mut lw = vec![-log_l; (tt + 1) * bc * l];
    match start {
        Start::Learned => {
            for row in 0..r {
                let li = row % l;
                hs[row * hd..(row + 1) * hd].copy_from_slice(&v.h0[li * hd..(li + 1) * hd]);
            }
        }
        Start::Carried { h, log_w } => {
            hs[..r * hd].copy_from_slice(&h[..r * hd]);
            lw[..bc * l].copy_from_slice(&log_w[..bc * l]);
        }
    }
    let mut cache = vec![T::zero(); if want_grad { tt * r * cw } else { 0 }];
    let mut gh = vec![T::zero(); r * g];
    let eps = match (noise_seed, cfg.noise) {
        (Some(seed), true) => Some(noise::<T>(seed, b0, bc, tt, l, hd)),
        _ => None,
    };
    for t in 0..tt {
        let (prev, next) = hs.split_at_mut((t + 1) * r * hd);
        let cache_t = if want_grad {
            Some(&mut cache[t * r * cw..(t + 1) * r * cw])
        } else {
            None
        };
        v.step(
            r,
            &prev[t * r * hd..],
            &mut next[..r * hd],
            &mut gh,
            &xproj,
            |row| ((row / l) * tt + t) * g,
            &eproj,
            cache_t,
            eps.as_ref().map(|e| &e[t * r * hd..(t + 1) * r * hd]),
        );
    }

    // Emissions of all steps at once, and each particle's log density of the observation.
    let mut raw = vec![T::zero(); tt * r * p];
    v.head(&hs[r * hd..], tt * r, &mut raw);
    let mut lp = vec![T::zero(); tt * r];
    let mut dout = vec![T::zero(); if want_grad { tt * r * p } else { 0 }];
    let mut observed = vec![false; tt * bc];
    if cfg.head == Head::Gaussian && d == 1 {
        // One target under a Gaussian head: all rows of a step at once (the same numbers).
        let (mut ys, mut ms) = (vec![T::zero(); r], vec![T::zero(); r]);
        for t in 0..tt {
            for bl in 0..bc {
                let o = (b0 + bl) * tt + t;
                let (yv, mv) = (batch.targets[o], batch.mask[o]);
                observed[t * bc + bl] = mv != T::zero();
                ys[bl * l..(bl + 1) * l].iter_mut().for_each(|v| *v = yv);
                ms[bl * l..(bl + 1) * l].iter_mut().for_each(|v| *v = mv);
            }
            let rows = t * r..(t + 1) * r;
            gaussian_rows(
                &raw[rows.start * p..rows.end * p],
                &ys,
                &ms,
                v.floor,
                &mut lp[rows.clone()],
                if want_grad {
                    Some(&mut dout[rows.start * p..rows.end * p])
                } else {
                    None
                },
            );
        }
    }
    for t in 0..tt {
        if cfg.head == Head::Gaussian && d == 1 {
            break;
        }
        for bl in 0..bc {
            let o = ((b0 + bl) * tt + t) * d;
            let y = &batch.targets[o..o + d];
            let m = &batch.mask[o..o + d];
            observed[t * bc + bl] = m.iter().any(|&v| v != T::zero());
            for li in 0..l {
                let idx = t * r + bl * l + li;
                let grad = if want_grad {
                    Some(&mut dout[idx * p..(idx + 1) * p])
                } else {
                    None
                };
                lp[idx] =
                    row_log_density(cfg.head, &raw[idx * p..(idx + 1) * p], y, m, v.floor, grad);
            }
        }
    }

    // The gate: weights carried over unobserved steps, moved by observed ones.
    let mut post = vec![T::zero(); tt * bc * l];
    let mut ll = vec![T::zero(); tt * bc];
    let mut s = vec![T::zero(); l];
    for t in 0..tt {
        for bl in 0..bc {
            let cur = (t * bc + bl) * l;
            let nxt = ((t + 1) * bc + bl) * l;
            let (head, tail) = lw.split_at_mut(nxt);
            tail[..l].copy_from_slice(&head[cur..cur + l]);
            if !observed[t * bc + bl] {
                continue;
            }
            ll[t * bc + bl] = gate::observe(
                cfg.gate,
                v.share,
                &mut tail[..l],
                &lp[t * r + bl * l..t * r + (bl + 1) * l],
                &mut s,
                &mut post[cur..cur + l],
            );
        }
    }
    Forward {
        hs,
        cache,
        raw,
        dout,
        observed,
        lw,
        post,
        ll,
        eps,
    }
}
