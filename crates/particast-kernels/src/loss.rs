//! The training loss: the mean NLL of a batch and its exact gradient, run in chunks of
//! windows on the rayon pool (each chunk a [`forward`] and a [`backward`] pass; chunking never
//! depends on the thread count).

use rayon::prelude::*;

use crate::backward::backward;
use crate::batch::Batch;
use crate::cell::{cache_width, View};
use crate::error::KernelError;
use crate::forward::{forward, Start};
use crate::model::{Model, ModelConfig};
use crate::real::Real;

/// How a training step runs.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Seed of the transition noise; `None` runs without noise even if the model has it.
    pub noise_seed: Option<u64>,
    /// Particle rows per work chunk (windows are never split). Chunks are fixed by this number,
    /// [`TrainOptions::chunk_bytes`] and [`TrainOptions::min_chunks`], never by the thread count,
    /// so results are identical with any number of threads.
    pub chunk_rows: usize,
    /// Keep a chunk's backward cache (cell cache and states, all steps) under about this many
    /// bytes by taking fewer rows for long windows (never fewer than 32 rows or one window):
    /// a cache that spills out of the processor's caches makes the backward pass wait on
    /// memory (216-step windows at H = 40: 12-15% slower per step with 128 rows than with 32).
    pub chunk_bytes: usize,
    /// Split a batch of at least this many windows into at least this many chunks, even when
    /// its rows would fit in fewer (few particles): without it a batch of 64 windows with one
    /// particle is one chunk and runs on one thread.
    pub min_chunks: usize,
    /// Run chunks on the rayon pool (each chunk's products run sequentially).
    pub parallel: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            noise_seed: None,
            chunk_rows: 128,
            chunk_bytes: 4 << 20,
            min_chunks: 4,
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

/// Windows per work chunk of a training step ([`TrainOptions`]): `chunk_rows` particle rows,
/// fewer where the chunk's backward cache would pass `chunk_bytes` (not below 32 rows), at
/// most a `min_chunks`-th of the batch, at least one window. Depends on the shapes only.
pub fn chunk_windows(
    cfg: &ModelConfig,
    windows: usize,
    steps: usize,
    opts: &TrainOptions,
    value_bytes: usize,
) -> usize {
    let row_bytes = steps.max(1) * (cache_width(cfg) + cfg.hidden) * value_bytes;
    let rows = opts
        .chunk_rows
        .min((opts.chunk_bytes / row_bytes.max(1)).max(32));
    (rows / cfg.particles.max(1))
        .min(windows.div_ceil(opts.min_chunks.max(1)))
        .max(1)
}

/// One chunk of windows: the forward pass, its loss sums, and with `want_grad` the backward.
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
    let (l, d) = (cfg.particles, cfg.targets);
    let tt = batch.steps;
    let fwd = forward(v, batch, b0, bc, Start::Learned, noise_seed, want_grad);
    let (mut nll, mut nll_orig, mut ess, mut ess_n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for t in batch.burn_in..tt {
        for bl in 0..bc {
            if !fwd.observed[t * bc + bl] {
                continue;
            }
            let cur = (t * bc + bl) * l;
            let ll = fwd.ll[t * bc + bl].f();
            let o = ((b0 + bl) * tt + t) * d;
            let log_scale: f64 = (0..d)
                .filter(|&k| batch.mask[o + k] != T::zero())
                .map(|k| batch.log_scale[(b0 + bl) * d + k].f())
                .sum();
            nll -= ll;
            nll_orig += -ll + log_scale;
            let sum_sq: f64 = (0..l)
                .map(|li| (T::c(2.0) * fwd.lw[cur + li]).exp_fast().f())
                .sum();
            ess += 1.0 / sum_sq;
            ess_n += 1;
        }
    }
    let grad = if want_grad {
        backward(v, total_params, batch, b0, bc, inv_n, fwd)
    } else {
        Vec::new()
    };
    ChunkOut {
        nll,
        nll_orig,
        ess,
        ess_n,
        grad,
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
    let per_chunk = chunk_windows(cfg, batch.windows, batch.steps, opts, size_of::<T>());
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
