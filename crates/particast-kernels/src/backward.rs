//! The backward pass: exact adjoints of a chunk's [`Forward`] pass, from the loss through the
//! gate, the head and every step of the recurrence (backpropagation through time, masks,
//! burn-in and transition noise included), with the weight gradients as single products over
//! all steps.

use faer::Par;

use crate::batch::Batch;
use crate::cell::{cache_width, View};
use crate::forward::Forward;
use crate::gate;
use crate::model::{Cell, Gate};
use crate::real::{gemm, sigmoid, Operand, Real};

/// Rows (steps x particle rows) per block of the W_hh and head weight gradient products in the
/// backward pass (whole steps, at least one).
pub const GRADIENT_BLOCK_ROWS: usize = 1024;

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

/// The gradient of the chunk's loss (`inv_n` times the NLL of its observations after the
/// burn-in) with respect to every parameter; consumes the forward pass's caches.
pub(crate) fn backward<T: Real>(
    v: &View<'_, T>,
    total_params: usize,
    batch: &Batch<'_, T>,
    b0: usize,
    bc: usize,
    inv_n: T,
    fwd: Forward<T>,
) -> Vec<T> {
    let cfg = v.cfg;
    let (hd, g, l, p, c) = (
        cfg.hidden,
        cfg.gate_width(),
        cfg.particles,
        cfg.head_width(),
        cfg.inputs,
    );
    let tt = batch.steps;
    let r = bc * l;
    let cw = cache_width(cfg);
    let inp = &batch.inputs[b0 * tt * c..(b0 + bc) * tt * c];
    let a = v.share;
    let Forward {
        hs,
        mut cache,
        mut dout,
        observed,
        post,
        eps,
        ..
    } = fwd;

    // Mixture gate, backward: adjoints of log p and of the share rate.
    let mut grad = vec![T::zero(); total_params];
    let mut dlp = vec![T::zero(); tt * r];
    let mut dlw_next = vec![T::zero(); bc * l];
    let mut da = T::zero();
    let mut dpi = vec![T::zero(); l];
    for t in (0..tt).rev() {
        let coeff = if t >= batch.burn_in { inv_n } else { T::zero() };
        for bl in 0..bc {
            if !observed[t * bc + bl] {
                continue; // weights carried: the adjoint passes through unchanged
            }
            let cur = (t * bc + bl) * l;
            gate::observe_backward(
                cfg.gate,
                a,
                &post[cur..cur + l],
                coeff,
                &mut dlw_next[bl * l..(bl + 1) * l],
                &mut dlp[t * r + bl * l..t * r + (bl + 1) * l],
                &mut dpi,
                &mut da,
            );
        }
    }
    if cfg.gate == Gate::FixedShare {
        grad[v.off.share.start] += da * a * (T::one() - a);
    }

    // Head, backward.
    scale_rows(&mut dout, p, &dlp);
    add_col_sums(&mut grad[v.off.head_b.clone()], &dout, tt * r, p, p);

    // Backpropagation through time.
    let mut dh = vec![T::zero(); r * hd];
    let mut dprev = vec![T::zero(); r * hd];
    let mut dxproj = vec![T::zero(); bc * tt * g];
    let mut deproj = vec![T::zero(); l * g];
    let mut dsig = vec![T::zero(); hd];
    // The GRU's b_hn gradient, summed while the backward loop has it at hand.
    let mut dbn = vec![T::zero(); hd];
    let one = T::one();
    // W_hh's and the head's weight gradients are accumulated over blocks of about
    // GRADIENT_BLOCK_ROWS rows (whole steps), each right after the backward pass wrote (or read)
    // it, while the block is still in cache, instead of one product over all steps that reads
    // the whole cache and all states back from memory.
    let block_steps = (GRADIENT_BLOCK_ROWS / r.max(1)).max(1);
    let mut block_end = tt;
    for t in (0..tt).rev() {
        // The head's adjoint of this step's states.
        gemm(
            &mut dh,
            hd,
            true,
            Operand::new(&dout[t * r * p..(t + 1) * r * p], r, p),
            Operand::new(v.head_w, p, hd),
            one,
            Par::Seq,
        );
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
                &mut dbn,
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
        if t == 0 || (block_end - t) == block_steps {
            let rows = (block_end - t) * r;
            // The head weights' gradient over the block's output states (hs one step on).
            gemm(
                &mut grad[v.off.head_w.clone()],
                hd,
                true,
                Operand::new(&dout[t * r * p..block_end * r * p], rows, p).t(),
                Operand::new(&hs[(t + 1) * r * hd..(block_end + 1) * r * hd], rows, hd),
                one,
                Par::Seq,
            );
            gemm(
                &mut grad[v.off.w_hh.clone()],
                hd,
                true,
                Operand::strided(&cache[t * r * cw..], rows, g, cw).t(),
                Operand::new(&hs[t * r * hd..block_end * r * hd], rows, hd),
                one,
                Par::Seq,
            );
            block_end = t;
        }
    }
    for row in 0..r {
        let li = row % l;
        let gh0 = &mut grad[v.off.h0.start + li * hd..v.off.h0.start + (li + 1) * hd];
        for (a, b) in gh0.iter_mut().zip(&dh[row * hd..(row + 1) * hd]) {
            *a += *b;
        }
    }
    // The input weights' gradient as one product over all steps.
    gemm(
        &mut grad[v.off.w_ih.clone()],
        c,
        true,
        Operand::new(&dxproj, bc * tt, g).t(),
        Operand::new(inp, bc * tt, c),
        one,
        Par::Seq,
    );
    if cfg.cell == Cell::Gru {
        // The input biases' adjoint is that of the pre-activations [dr, dz, dn] summed over every
        // row, which `deproj` already holds per particle; b_hh shares dr and dz and has dn * r
        // for its last third (`dbn`). No second pass over the cache or `dxproj`.
        let mut db = vec![T::zero(); g];
        for de in deproj.chunks_exact(g) {
            add_assign(&mut db, de);
        }
        add_assign(&mut grad[v.off.b_ih.clone()], &db);
        let b_hh = &mut grad[v.off.b_hh.clone()];
        add_assign(&mut b_hh[..2 * hd], &db[..2 * hd]);
        add_assign(&mut b_hh[2 * hd..], &dbn);
    } else {
        add_col_sums(&mut grad[v.off.b_hh.clone()], &cache, tt * r, g, cw);
        add_col_sums(&mut grad[v.off.b_ih.clone()], &dxproj, bc * tt, g, g);
    }
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
    grad
}

/// The GRU's elementwise backward step over all rows: from `dh` (adjoint of the new states) and
/// the cache `[r, z, n, W_hn h + b_hn]`, writes `dh * z` into `dprev`, overwrites the cache rows
/// with `[dr, dz, dn * r, dn]` (pre-activation adjoints; the first 3H are the recurrent
/// product's adjoint) and accumulates the input and embedding adjoints and, into `dbn`, the
/// adjoint of b_hn.
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
    dbn: &mut [T],
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
            dbn[j] += dan * rg;
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
