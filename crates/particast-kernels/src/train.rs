//! Training: the batched forward pass and exact backpropagation through time.

use faer::Par;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::cell::{cache_width, View};
use crate::error::KernelError;
use crate::head::row_log_density;
use crate::model::{Cell, Gate, Model, ModelConfig};
use crate::real::{gemm, logsumexp, sigmoid, Operand, Real};

/// A batch of B windows of T steps, window-major (`[B][T][...]`).
///
/// Targets are in scaled units; `log_scale` holds each window's log scale per dimension so that
/// likelihoods can be reported in original units.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, T> {
    /// Windows B.
    pub windows: usize,
    /// Steps T.
    pub steps: usize,
    /// `[B][T][C]` inputs (the previous scaled target, its mask, features).
    pub inputs: &'a [T],
    /// `[B][T][D]` scaled targets.
    pub targets: &'a [T],
    /// `[B][T][D]` 1 = observed, 0 = missing.
    pub mask: &'a [T],
    /// `[B][D]` log of each window's scale.
    pub log_scale: &'a [T],
    /// Leading steps that condition the particles but add no loss.
    pub burn_in: usize,
}

impl<T: Real> Batch<'_, T> {
    /// Checks the buffer sizes against the model.
    pub fn validate(&self, cfg: &ModelConfig) -> Result<(), KernelError> {
        let (b, t, c, d) = (self.windows, self.steps, cfg.inputs, cfg.targets);
        let check = |name: &str, len: usize, want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(KernelError::Shape(format!(
                    "{name} has {len} values, expected {want} (B={b}, T={t}, C={c}, D={d})"
                )))
            }
        };
        check("inputs", self.inputs.len(), b * t * c)?;
        check("targets", self.targets.len(), b * t * d)?;
        check("mask", self.mask.len(), b * t * d)?;
        check("log_scale", self.log_scale.len(), b * d)
    }

    fn observations(&self, d: usize) -> usize {
        let mut n = 0;
        for b in 0..self.windows {
            for t in self.burn_in..self.steps {
                let m = &self.mask[(b * self.steps + t) * d..(b * self.steps + t + 1) * d];
                n += m.iter().filter(|&&v| v != T::zero()).count();
            }
        }
        n
    }
}

/// How a training step runs.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Seed of the transition noise; `None` runs without noise even if the model has it.
    pub noise_seed: Option<u64>,
    /// Particle rows per work chunk (windows are never split). Chunks are fixed by this number,
    /// not by the thread count, so results are identical with any number of threads.
    pub chunk_rows: usize,
    /// Run chunks on the rayon pool (each chunk's products run sequentially).
    pub parallel: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            noise_seed: None,
            chunk_rows: 128,
            parallel: true,
        }
    }
}

/// What a forward pass measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossReport {
    /// Mean negative log-likelihood per observed value after burn-in, scaled units (the loss).
    pub nll: f64,
    /// The same in original units (the log scales subtracted).
    pub nll_original: f64,
    /// Observed values after burn-in.
    pub observations: usize,
    /// Mean effective number of particles `1 / sum w^2` of the predictive weights.
    pub effective_particles: f64,
}

struct ChunkOut<T> {
    nll: f64,
    nll_orig: f64,
    ess: f64,
    ess_n: usize,
    grad: Vec<T>,
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

/// Adds the column sums of a `[rows x cols]` matrix (row stride `stride`) to `out`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
fn add_col_sums<T: Real>(out: &mut [T], m: &[T], rows: usize, cols: usize, stride: usize) {
    let out = &mut out[..cols];
    for r in 0..rows {
        for (o, v) in out.iter_mut().zip(&m[r * stride..r * stride + cols]) {
            *o += *v;
        }
    }
}

/// `a += b`, elementwise.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
fn add_assign<T: Real>(a: &mut [T], b: &[T]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += *y;
    }
}

/// Multiplies row `i` of a `[rows x cols]` matrix by `k[i]`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
fn scale_rows<T: Real>(m: &mut [T], cols: usize, k: &[T]) {
    for (row, &k) in m.chunks_exact_mut(cols).zip(k) {
        row.iter_mut().for_each(|x| *x *= k);
    }
}

#[allow(clippy::too_many_arguments)]
fn chunk<T: Real>(
    v: &View<'_, T>,
    total_params: usize,
    batch: &Batch<'_, T>,
    b0: usize,
    bc: usize,
    inv_n: T,
    noise_seed: Option<u64>,
    want_grad: bool,
) -> ChunkOut<T> {
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

    // Forward through the recurrence.
    let mut xproj = vec![T::zero(); bc * tt * g];
    v.project_inputs(inp, bc * tt, &mut xproj);
    let eproj = v.project_embedding();
    let mut hs = vec![T::zero(); (tt + 1) * r * hd];
    for row in 0..r {
        let li = row % l;
        hs[row * hd..(row + 1) * hd].copy_from_slice(&v.h0[li * hd..(li + 1) * hd]);
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

    // Emissions of all steps at once.
    let mut out = vec![T::zero(); tt * r * p];
    v.head(&hs[r * hd..], tt * r, &mut out);
    let mut lp = vec![T::zero(); tt * r];
    let mut dout = vec![T::zero(); if want_grad { tt * r * p } else { 0 }];
    let mut observed = vec![false; tt * bc];
    for t in 0..tt {
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
                    row_log_density(cfg.head, &out[idx * p..(idx + 1) * p], y, m, v.floor, grad);
            }
        }
    }

    // Mixture gate, forward.
    let log_l = T::c((l as f64).ln());
    let a = v.share;
    let mut lw = vec![-log_l; (tt + 1) * bc * l];
    let mut post = vec![T::zero(); tt * bc * l];
    let mut s = vec![T::zero(); l];
    let (mut nll, mut nll_orig, mut ess, mut ess_n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for t in 0..tt {
        for bl in 0..bc {
            let cur = (t * bc + bl) * l;
            let nxt = ((t + 1) * bc + bl) * l;
            if !observed[t * bc + bl] {
                let (head, tail) = lw.split_at_mut(nxt);
                tail[..l].copy_from_slice(&head[cur..cur + l]);
                continue;
            }
            for li in 0..l {
                s[li] = lw[cur + li] + lp[t * r + bl * l + li];
            }
            let ll = logsumexp(&s);
            for li in 0..l {
                post[cur + li] = (s[li] - ll).exp();
            }
            if t >= batch.burn_in {
                let o = ((b0 + bl) * tt + t) * d;
                let log_scale: f64 = (0..d)
                    .filter(|&k| batch.mask[o + k] != T::zero())
                    .map(|k| batch.log_scale[(b0 + bl) * d + k].f())
                    .sum();
                nll -= ll.f();
                nll_orig += -ll.f() + log_scale;
                let sum_sq: f64 = (0..l).map(|li| (2.0 * lw[cur + li].f()).exp()).sum();
                ess += 1.0 / sum_sq;
                ess_n += 1;
            }
            for li in 0..l {
                lw[nxt + li] = match cfg.gate {
                    Gate::Uniform => -log_l,
                    Gate::Bayes => s[li] - ll,
                    Gate::FixedShare => ((T::one() - a) * post[cur + li] + a / T::c(l as f64)).ln(),
                };
            }
        }
    }
    let mut result = ChunkOut {
        nll,
        nll_orig,
        ess,
        ess_n,
        grad: Vec::new(),
    };
    if !want_grad {
        return result;
    }

    // Mixture gate, backward: adjoints of log p and of the share rate.
    let mut grad = vec![T::zero(); total_params];
    let mut dlp = vec![T::zero(); tt * r];
    let mut dlw_next = vec![T::zero(); bc * l];
    let mut da = T::zero();
    let mut dpi = vec![T::zero(); l];
    let inv_l = T::one() / T::c(l as f64);
    for t in (0..tt).rev() {
        let coeff = if t >= batch.burn_in { inv_n } else { T::zero() };
        for bl in 0..bc {
            if !observed[t * bc + bl] {
                continue; // weights carried: the adjoint passes through unchanged
            }
            let cur = (t * bc + bl) * l;
            let pi = &post[cur..cur + l];
            let dn = &mut dlw_next[bl * l..(bl + 1) * l];
            for li in 0..l {
                s[li] = -coeff * pi[li];
            }
            match cfg.gate {
                Gate::Uniform => {}
                Gate::Bayes => {
                    let sum: T = dn.iter().copied().sum();
                    for li in 0..l {
                        s[li] += dn[li] - pi[li] * sum;
                    }
                }
                Gate::FixedShare => {
                    let mut inner = T::zero();
                    for li in 0..l {
                        let q = (T::one() - a) * pi[li] + a * inv_l;
                        let dq = dn[li] / q;
                        dpi[li] = (T::one() - a) * dq;
                        da += dq * (inv_l - pi[li]);
                        inner += pi[li] * dpi[li];
                    }
                    for li in 0..l {
                        s[li] += pi[li] * (dpi[li] - inner);
                    }
                }
            }
            for li in 0..l {
                dlp[t * r + bl * l + li] = s[li];
                dn[li] = if cfg.gate == Gate::Uniform {
                    T::zero()
                } else {
                    s[li]
                };
            }
        }
    }
    if cfg.gate == Gate::FixedShare {
        grad[v.off.share.start] += da * a * (T::one() - a);
    }

    // Head, backward.
    scale_rows(&mut dout, p, &dlp);
    gemm(
        &mut grad[v.off.head_w.clone()],
        hd,
        true,
        Operand::new(&dout, tt * r, p).t(),
        Operand::new(&hs[r * hd..], tt * r, hd),
        T::one(),
        Par::Seq,
    );
    add_col_sums(&mut grad[v.off.head_b.clone()], &dout, tt * r, p, p);
    let mut dh_head = vec![T::zero(); tt * r * hd];
    gemm(
        &mut dh_head,
        hd,
        false,
        Operand::new(&dout, tt * r, p),
        Operand::new(v.head_w, p, hd),
        T::one(),
        Par::Seq,
    );
    drop(dout);

    // Backpropagation through time.
    let mut dh = vec![T::zero(); r * hd];
    let mut dprev = vec![T::zero(); r * hd];
    let mut dxproj = vec![T::zero(); bc * tt * g];
    let mut deproj = vec![T::zero(); l * g];
    let mut dsig = vec![T::zero(); hd];
    let one = T::one();
    for t in (0..tt).rev() {
        add_assign(&mut dh, &dh_head[t * r * hd..(t + 1) * r * hd]);
        if let Some(e) = &eps {
            let e = &e[t * r * hd..(t + 1) * r * hd];
            for row in 0..r {
                for j in 0..hd {
                    dsig[j] += dh[row * hd + j] * e[row * hd + j];
                }
            }
        }
        let h_prev = &hs[t * r * hd..(t + 1) * r * hd];
        let cache_t = &mut cache[t * r * cw..(t + 1) * r * cw];
        match cfg.cell {
            Cell::Gru => gru_backward(
                r,
                hd,
                l,
                tt,
                t,
                &dh,
                h_prev,
                cache_t,
                &mut dprev,
                &mut dxproj,
                &mut deproj,
            ),
            Cell::Tanh => tanh_backward(
                r,
                hd,
                l,
                tt,
                t,
                &dh,
                cache_t,
                &mut dprev,
                &mut dxproj,
                &mut deproj,
            ),
        }
        // dh_prev += dgh * W_hh, dgh being the first G columns of the cache rows.
        gemm(
            &mut dprev,
            hd,
            true,
            Operand::strided(cache_t, r, g, cw),
            Operand::new(v.w_hh, g, hd),
            one,
            Par::Seq,
        );
        std::mem::swap(&mut dh, &mut dprev);
    }
    for row in 0..r {
        let li = row % l;
        let gh0 = &mut grad[v.off.h0.start + li * hd..v.off.h0.start + (li + 1) * hd];
        for (a, b) in gh0.iter_mut().zip(&dh[row * hd..(row + 1) * hd]) {
            *a += *b;
        }
    }
    // Weight gradients as single products over all steps.
    gemm(
        &mut grad[v.off.w_hh.clone()],
        hd,
        true,
        Operand::strided(&cache, tt * r, g, cw).t(),
        Operand::new(&hs[..tt * r * hd], tt * r, hd),
        one,
        Par::Seq,
    );
    add_col_sums(&mut grad[v.off.b_hh.clone()], &cache, tt * r, g, cw);
    gemm(
        &mut grad[v.off.w_ih.clone()],
        c,
        true,
        Operand::new(&dxproj, bc * tt, g).t(),
        Operand::new(inp, bc * tt, c),
        one,
        Par::Seq,
    );
    add_col_sums(&mut grad[v.off.b_ih.clone()], &dxproj, bc * tt, g, g);
    let e = cfg.embedding;
    gemm(
        &mut grad[v.off.w_eh.clone()],
        e,
        true,
        Operand::new(&deproj, l, g).t(),
        Operand::new(v.emb, l, e),
        one,
        Par::Seq,
    );
    gemm(
        &mut grad[v.off.emb.clone()],
        e,
        true,
        Operand::new(&deproj, l, g),
        Operand::new(v.w_eh, g, e),
        one,
        Par::Seq,
    );
    if eps.is_some() {
        let raw = v.off.noise.clone();
        for j in 0..hd {
            // d softplus(x) / dx = sigmoid(x), with x the raw parameter.
            let x = v.noise_raw[j];
            grad[raw.start + j] += dsig[j] * sigmoid(x);
        }
    }
    result.grad = grad;
    result
}

/// The GRU's elementwise backward step over all rows: from `dh` (adjoint of the new states) and
/// the cache `[r, z, n, W_hn h + b_hn]`, writes `dh * z` into `dprev`, overwrites the cache rows
/// with `[dr, dz, dn * r, dn]` (pre-activation adjoints; the first 3H are the recurrent
/// product's adjoint) and accumulates the input and embedding adjoints.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
#[allow(clippy::too_many_arguments)]
fn gru_backward<T: Real>(
    rows: usize,
    hd: usize,
    l: usize,
    tt: usize,
    t: usize,
    dh: &[T],
    h_prev: &[T],
    cache_t: &mut [T],
    dprev: &mut [T],
    dxproj: &mut [T],
    deproj: &mut [T],
) {
    let g = 3 * hd;
    let one = T::one();
    for row in 0..rows {
        let li = row % l;
        let xo = ((row / l) * tt + t) * g;
        let dhr = &dh[row * hd..(row + 1) * hd];
        let hp = &h_prev[row * hd..(row + 1) * hd];
        let dpr = &mut dprev[row * hd..(row + 1) * hd];
        let cr = &mut cache_t[row * 4 * hd..(row + 1) * 4 * hd];
        let (c_r, rest) = cr.split_at_mut(hd);
        let (c_z, rest) = rest.split_at_mut(hd);
        let (c_n, c_g) = rest.split_at_mut(hd);
        for j in 0..hd {
            let (rg, z, n, ghn) = (c_r[j], c_z[j], c_n[j], c_g[j]);
            let dhj = dhr[j];
            let dz = dhj * (hp[j] - n);
            let dan = dhj * (one - z) * (one - n * n);
            let dar = dan * ghn * rg * (one - rg);
            let daz = dz * z * (one - z);
            dpr[j] = dhj * z;
            c_r[j] = dar;
            c_z[j] = daz;
            c_n[j] = dan * rg;
            c_g[j] = dan;
        }
        let dx = &mut dxproj[xo..xo + g];
        let de = &mut deproj[li * g..(li + 1) * g];
        for ((x, e), &v) in dx[..2 * hd]
            .iter_mut()
            .zip(&mut de[..2 * hd])
            .zip(&cr[..2 * hd])
        {
            *x += v;
            *e += v;
        }
        for ((x, e), &v) in dx[2 * hd..]
            .iter_mut()
            .zip(&mut de[2 * hd..])
            .zip(&cr[3 * hd..])
        {
            *x += v;
            *e += v;
        }
    }
}

/// The tanh cell's elementwise backward step: the cache rows `tanh(a)` become `da`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
#[allow(clippy::too_many_arguments)]
fn tanh_backward<T: Real>(
    rows: usize,
    hd: usize,
    l: usize,
    tt: usize,
    t: usize,
    dh: &[T],
    cache_t: &mut [T],
    dprev: &mut [T],
    dxproj: &mut [T],
    deproj: &mut [T],
) {
    let one = T::one();
    for row in 0..rows {
        let li = row % l;
        let xo = ((row / l) * tt + t) * hd;
        let dhr = &dh[row * hd..(row + 1) * hd];
        let cr = &mut cache_t[row * hd..(row + 1) * hd];
        for (c, &d) in cr.iter_mut().zip(dhr) {
            *c = d * (one - *c * *c);
        }
        dprev[row * hd..(row + 1) * hd]
            .iter_mut()
            .for_each(|v| *v = T::zero());
        let dx = &mut dxproj[xo..xo + hd];
        let de = &mut deproj[li * hd..(li + 1) * hd];
        for ((x, e), &v) in dx.iter_mut().zip(de.iter_mut()).zip(cr.iter()) {
            *x += v;
            *e += v;
        }
    }
}

/// Mean NLL per observation of a batch and, when `grad` is given, its exact gradient with respect
/// to every parameter (written into `grad`, which must have the model's parameter count).
pub fn loss_and_grad<T: Real>(
    model: &Model<T>,
    batch: &Batch<'_, T>,
    opts: &TrainOptions,
    grad: Option<&mut [T]>,
) -> Result<LossReport, KernelError> {
    let cfg = &model.config;
    batch.validate(cfg)?;
    if let Some(g) = &grad {
        if g.len() != model.params.len() {
            return Err(KernelError::Shape(format!(
                "gradient buffer has {} values, the model {}",
                g.len(),
                model.params.len()
            )));
        }
    }
    let want_grad = grad.is_some();
    let n_obs = batch.observations(cfg.targets);
    let inv_n = if n_obs > 0 {
        T::c(1.0 / n_obs as f64)
    } else {
        T::zero()
    };
    let v = View::new(model);
    let per_chunk = (opts.chunk_rows / cfg.particles).max(1);
    let chunks: Vec<(usize, usize)> = (0..batch.windows)
        .step_by(per_chunk)
        .map(|b0| (b0, per_chunk.min(batch.windows - b0)))
        .collect();
    let run = |&(b0, bc): &(usize, usize)| {
        chunk(
            &v,
            model.params.len(),
            batch,
            b0,
            bc,
            inv_n,
            opts.noise_seed,
            want_grad,
        )
    };
    let outs: Vec<ChunkOut<T>> = if opts.parallel {
        chunks.par_iter().map(run).collect()
    } else {
        chunks.iter().map(run).collect()
    };
    let mut report = LossReport {
        observations: n_obs,
        ..Default::default()
    };
    let (mut ess, mut ess_n) = (0.0, 0usize);
    if let Some(g) = grad {
        g.iter_mut().for_each(|x| *x = T::zero());
        for o in &outs {
            for (a, b) in g.iter_mut().zip(&o.grad) {
                *a += *b;
            }
        }
    }
    for o in &outs {
        report.nll += o.nll;
        report.nll_original += o.nll_orig;
        ess += o.ess;
        ess_n += o.ess_n;
    }
    if n_obs > 0 {
        report.nll /= n_obs as f64;
        report.nll_original /= n_obs as f64;
    }
    report.effective_particles = if ess_n > 0 {
        ess / ess_n as f64
    } else {
        cfg.particles as f64
    };
    Ok(report)
}
