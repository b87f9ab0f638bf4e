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
        for row in out[..rows * g].chunks_exact_mut(g) {
            for (o, b) in row.iter_mut().zip(self.b_ih) {
                *o += *b;
            }
        }
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
        for row in out[..rows * p].chunks_exact_mut(p) {
            for (o, b) in row.iter_mut().zip(self.head_b) {
                *o += *b;
            }
        }
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
        mut cache: Option<&mut [T]>,
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
        let one = T::one();
        for row in 0..rows {
            let x = &xproj[x_of(row)..x_of(row) + g];
            let e = &eproj[(row % l) * g..(row % l + 1) * g];
            let ghr = &gh[row * g..(row + 1) * g];
            let hp = &h_prev[row * hd..(row + 1) * hd];
            let hn = &mut h_next[row * hd..(row + 1) * hd];
            let eps_row = eps.map(|e| &e[row * hd..(row + 1) * hd]);
            match self.cfg.cell {
                Cell::Gru => {
                    let c = cache
                        .as_deref_mut()
                        .map(|c| &mut c[row * 4 * hd..(row + 1) * 4 * hd]);
                    let mut c = c;
                    for j in 0..hd {
                        let r = sigmoid(x[j] + e[j] + ghr[j] + self.b_hh[j]);
                        let z = sigmoid(x[hd + j] + e[hd + j] + ghr[hd + j] + self.b_hh[hd + j]);
                        let ghn = ghr[2 * hd + j] + self.b_hh[2 * hd + j];
                        let n = (x[2 * hd + j] + e[2 * hd + j] + r * ghn).tanh();
                        let mut v = (one - z) * n + z * hp[j];
                        if let Some(er) = eps_row {
                            v += self.sigma[j] * er[j];
                        }
                        hn[j] = v;
                        if let Some(c) = c.as_deref_mut() {
                            c[j] = r;
                            c[hd + j] = z;
                            c[2 * hd + j] = n;
                            c[3 * hd + j] = ghn;
                        }
                    }
                }
                Cell::Tanh => {
                    let mut c = cache
                        .as_deref_mut()
                        .map(|c| &mut c[row * hd..(row + 1) * hd]);
                    for j in 0..hd {
                        let th = (x[j] + e[j] + ghr[j] + self.b_hh[j]).tanh();
                        let mut v = th;
                        if let Some(er) = eps_row {
                            v += self.sigma[j] * er[j];
                        }
                        hn[j] = v;
                        if let Some(c) = c.as_deref_mut() {
                            c[j] = th;
                        }
                    }
                }
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
