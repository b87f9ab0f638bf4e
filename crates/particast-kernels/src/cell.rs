//! The shared transition f: one step for all particle rows, as one GEMM plus a fused loop.

use faer::Par;

use crate::model::{Cell, Gate, Model, ModelConfig, Offsets};
use crate::real::{gemm, sigmoid, softplus, Operand, Real};

/// Views of a model's parameters, resolved once per call.
pub(crate) struct View<'a, T> {
    pub cfg: &'a ModelConfig,
    pub w_ih: &'a [T],
    pub b_ih: &'a [T],
    pub w_hh: &'a [T],
    pub b_hh: &'a [T],
    pub w_eh: &'a [T],
    pub h0: &'a [T],
    pub emb: &'a [T],
    pub head_w: &'a [T],
    pub head_b: &'a [T],
    /// Noise scale per hidden unit (softplus of the raw parameter); empty without noise.
    pub sigma: Vec<T>,
    /// The raw noise parameters.
    pub noise_raw: &'a [T],
    /// Fixed-share rate a (unused by the other gates).
    pub share: T,
    pub floor: T,
    pub off: Offsets,
}

impl<'a, T: Real> View<'a, T> {
    pub fn new(model: &'a Model<T>) -> Self {
        let off = model.layout.offsets();
        let p = &model.params;
        let share = match model.config.gate {
            Gate::FixedShare => sigmoid(p[off.share.start]),
            Gate::Uniform => T::one(),
            Gate::Bayes => T::zero(),
        };
        View {
            cfg: &model.config,
            w_ih: &p[off.w_ih.clone()],
            b_ih: &p[off.b_ih.clone()],
            w_hh: &p[off.w_hh.clone()],
            b_hh: &p[off.b_hh.clone()],
            w_eh: &p[off.w_eh.clone()],
            h0: &p[off.h0.clone()],
            emb: &p[off.emb.clone()],
            head_w: &p[off.head_w.clone()],
            head_b: &p[off.head_b.clone()],
            sigma: p[off.noise.clone()].iter().map(|&v| softplus(v)).collect(),
            noise_raw: &p[off.noise.clone()],
            share,
            floor: T::c(model.config.sigma_floor),
            off,
        }
    }

    /// `[rows x G]` input projections `inputs * W_ih^T + b_ih` for `rows` rows of C inputs.
    pub fn project_inputs(&self, inputs: &[T], rows: usize, out: &mut [T]) {
        let g = self.cfg.gate_width();
        let c = self.cfg.inputs;
        gemm(
            out,
            g,
            false,
            Operand::new(inputs, rows, c),
            Operand::new(self.w_ih, g, c).t(),
            T::one(),
            Par::Seq,
        );
        add_row_bias(&mut out[..rows * g], self.b_ih);
    }

    /// `[L x G]` embedding projections `emb * W_eh^T` (zeros without an embedding).
    pub fn project_embedding(&self) -> Vec<T> {
        let g = self.cfg.gate_width();
        let l = self.cfg.particles;
        let mut out = vec![T::zero(); l * g];
        gemm(
            &mut out,
            g,
            false,
            Operand::new(self.emb, l, self.cfg.embedding),
            Operand::new(self.w_eh, g, self.cfg.embedding).t(),
            T::one(),
            Par::Seq,
        );
        out
    }

    /// Raw head outputs `[rows x P]` for `rows` hidden states.
    pub fn head(&self, h: &[T], rows: usize, out: &mut [T]) {
        let p = self.cfg.head_width();
        let hd = self.cfg.hidden;
        gemm(
            out,
            p,
            false,
            Operand::new(h, rows, hd),
            Operand::new(self.head_w, p, hd).t(),
            T::one(),
            Par::Seq,
        );
        add_row_bias(&mut out[..rows * p], self.head_b);
    }

    /// Advances `rows` particle rows one step: `h_next = f(h_prev, x) (+ sigma * eps)`.
    ///
    /// `x_of(row)` is the offset in `xproj` of the row's G input pre-activations; the particle
    /// of a row is `row % L`. `gh` is `[rows x G]` scratch. `cache`, when given, receives what the
    /// backward pass needs (`[rows x 4H]` r, z, n, W_hn h + b_hn for the GRU; `[rows x H]`
    /// tanh(a) for the tanh cell).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        rows: usize,
        h_prev: &[T],
        h_next: &mut [T],
        gh: &mut [T],
        xproj: &[T],
        x_of: impl Fn(usize) -> usize,
        eproj: &[T],
        cache: Option<&mut [T]>,
        eps: Option<&[T]>,
    ) {
        let hd = self.cfg.hidden;
        let g = self.cfg.gate_width();
        let l = self.cfg.particles;
        gemm(
            gh,
            g,
            false,
            Operand::new(h_prev, rows, hd),
            Operand::new(self.w_hh, g, hd).t(),
            T::one(),
            Par::Seq,
        );
        match self.cfg.cell {
            Cell::Gru => gru_forward(
                rows,
                hd,
                l,
                gh,
                xproj,
                x_of,
                eproj,
                self.b_hh,
                h_prev,
                h_next,
                cache,
                eps,
                &self.sigma,
            ),
            Cell::Tanh => tanh_forward(
                rows,
                hd,
                l,
                gh,
                xproj,
                x_of,
                eproj,
                self.b_hh,
                h_next,
                cache,
                eps,
                &self.sigma,
            ),
        }
    }
}

/// Adds `bias` to every row of `m` (rows of `bias.len()` values), vectorised.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
fn add_row_bias<T: Real>(m: &mut [T], bias: &[T]) {
    if bias.is_empty() {
        return;
    }
    for row in m.chunks_exact_mut(bias.len()) {
        for (o, &b) in row.iter_mut().zip(bias) {
            *o += b;
        }
    }
}

/// The GRU's elementwise step over all rows (after the recurrent product `gh`), compiled for
/// AVX-512 and AVX2 with run-time dispatch so the activation loops vectorise.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
#[allow(clippy::too_many_arguments)]
fn gru_forward<T: Real, F: Fn(usize) -> usize>(
    rows: usize,
    hd: usize,
    l: usize,
    gh: &mut [T],
    xproj: &[T],
    x_of: F,
    eproj: &[T],
    b_hh: &[T],
    h_prev: &[T],
    h_next: &mut [T],
    mut cache: Option<&mut [T]>,
    eps: Option<&[T]>,
    sigma: &[T],
) {
    let g = 3 * hd;
    for row in 0..rows {
        let xo = x_of(row);
        let x = &xproj[xo..xo + g];
        let e = &eproj[(row % l) * g..(row % l + 1) * g];
        let ghr = &mut gh[row * g..(row + 1) * g];
        let hp = &h_prev[row * hd..(row + 1) * hd];
        let hn = &mut h_next[row * hd..(row + 1) * hd];
        let (grz, gn) = ghr.split_at_mut(2 * hd);
        // r and z, in place.
        for (((a, &x), &e), &b) in grz
            .iter_mut()
            .zip(&x[..2 * hd])
            .zip(&e[..2 * hd])
            .zip(&b_hh[..2 * hd])
        {
            *a = (*a + x + e + b).sigm();
        }
        let (gr, gz) = grz.split_at(hd);
        // W_hn h + b_hn (kept for the backward pass) and the candidate n, built in `hn`.
        let (xn, en, bn) = (
            &x[2 * hd..3 * hd],
            &e[2 * hd..3 * hd],
            &b_hh[2 * hd..3 * hd],
        );
        for (g, &b) in gn.iter_mut().zip(bn) {
            *g += b;
        }
        let (gn, hn, gr) = (&gn[..hd], &mut hn[..hd], &gr[..hd]);
        for j in 0..hd {
            hn[j] = (xn[j] + en[j] + gr[j] * gn[j]).tanh_act();
        }
        if let Some(c) = cache.as_deref_mut() {
            let c = &mut c[row * 4 * hd..(row + 1) * 4 * hd];
            c[..hd].copy_from_slice(gr);
            c[hd..2 * hd].copy_from_slice(gz);
            c[2 * hd..3 * hd].copy_from_slice(hn);
            c[3 * hd..].copy_from_slice(gn);
        }
        for ((h, &z), &p) in hn.iter_mut().zip(gz).zip(hp) {
            *h = (T::one() - z) * *h + z * p;
        }
        if let Some(eps) = eps {
            for ((h, &s), &ep) in hn.iter_mut().zip(sigma).zip(&eps[row * hd..(row + 1) * hd]) {
                *h += s * ep;
            }
        }
    }
}

/// The tanh cell's elementwise step over all rows.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
    "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
))]
#[allow(clippy::too_many_arguments)]
fn tanh_forward<T: Real, F: Fn(usize) -> usize>(
    rows: usize,
    hd: usize,
    l: usize,
    gh: &mut [T],
    xproj: &[T],
    x_of: F,
    eproj: &[T],
    b_hh: &[T],
    h_next: &mut [T],
    mut cache: Option<&mut [T]>,
    eps: Option<&[T]>,
    sigma: &[T],
) {
    for row in 0..rows {
        let xo = x_of(row);
        let x = &xproj[xo..xo + hd];
        let e = &eproj[(row % l) * hd..(row % l + 1) * hd];
        let ghr = &gh[row * hd..(row + 1) * hd];
        let hn = &mut h_next[row * hd..(row + 1) * hd];
        for ((((h, &a), &x), &e), &b) in hn.iter_mut().zip(ghr).zip(x).zip(e).zip(b_hh) {
            *h = (a + x + e + b).tanh_act();
        }
        if let Some(c) = cache.as_deref_mut() {
            c[row * hd..(row + 1) * hd].copy_from_slice(hn);
        }
        if let Some(eps) = eps {
            for ((h, &s), &ep) in hn.iter_mut().zip(sigma).zip(&eps[row * hd..(row + 1) * hd]) {
                *h += s * ep;
            }
        }
    }
}

/// Bytes of cache per row and step.
pub(crate) fn cache_width(cfg: &ModelConfig) -> usize {
    match cfg.cell {
        Cell::Gru => 4 * cfg.hidden,
        Cell::Tanh => cfg.hidden,
    }
}
