//! Model configuration, the flat parameter buffer with named views, and initialisation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use crate::error::KernelError;
use crate::real::{softplus_inv, Real};

/// The recurrent cell f.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Cell {
    /// Gated recurrent unit (PyTorch convention: `n = tanh(W_in u + b_in + r * (W_hn h + b_hn))`).
    #[default]
    Gru,
    /// `h' = tanh(W h + U u + b)`.
    Tanh,
}

/// The per-particle emission distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Head {
    /// Gaussian: mean and scale = softplus + floor.
    #[default]
    Gaussian,
    /// Student-t: mean, scale = softplus + floor, degrees of freedom = 2 + softplus.
    StudentT,
}

impl Head {
    /// Raw head outputs per target dimension.
    pub fn outputs_per_dim(self) -> usize {
        match self {
            Head::Gaussian => 2,
            Head::StudentT => 3,
        }
    }
}

/// The mixture gate over particles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Gate {
    /// w = 1/L at every step.
    #[default]
    Uniform,
    /// w^t proportional to w^{t-1} p(x^{t-1} | particle): the exact mixture over particles chosen
    /// once per series.
    Bayes,
    /// (1 - a) * posterior + a / L with a learned a in (0, 1).
    FixedShare,
}

/// Everything that fixes the shapes and the maths of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Recurrent cell.
    pub cell: Cell,
    /// Emission head.
    pub head: Head,
    /// Mixture gate.
    pub gate: Gate,
    /// Hidden units H.
    pub hidden: usize,
    /// Particles L.
    pub particles: usize,
    /// Size E of the learned per-particle embedding that f sees at every step (0 turns it off,
    /// giving the note's exact form where particles differ only by their initial state).
    pub embedding: usize,
    /// Input features C per step.
    pub inputs: usize,
    /// Target dimensions D.
    pub targets: usize,
    /// Learned transition noise h = f(.) + sigma * eps during training (sigma = 0 at evaluation).
    pub noise: bool,
    /// Floor added to the emission scale (in scaled units).
    pub sigma_floor: f64,
    /// Initial fixed-share rate a.
    pub share_init: f64,
    /// Standard deviation of the initial particle states h0.
    pub h0_init_std: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            cell: Cell::Gru,
            head: Head::Gaussian,
            gate: Gate::Uniform,
            hidden: 32,
            particles: 8,
            embedding: 4,
            inputs: 1,
            targets: 1,
            noise: false,
            sigma_floor: 1e-3,
            share_init: 0.05,
            h0_init_std: 0.5,
        }
    }
}

impl ModelConfig {
    /// Gate pre-activations per row: 3H for the GRU, H for the tanh cell.
    pub fn gate_width(&self) -> usize {
        match self.cell {
            Cell::Gru => 3 * self.hidden,
            Cell::Tanh => self.hidden,
        }
    }
    /// Raw head outputs per particle row, `P = outputs_per_dim * D`.
    pub fn head_width(&self) -> usize {
        self.head.outputs_per_dim() * self.targets
    }
    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), KernelError> {
        let bad = |m: &str| Err(KernelError::Config(m.to_string()));
        if self.hidden == 0 {
            return bad("hidden must be positive");
        }
        if self.particles == 0 {
            return bad("particles must be positive");
        }
        if self.targets == 0 {
            return bad("targets must be positive");
        }
        if !(self.sigma_floor >= 0.0 && self.sigma_floor.is_finite()) {
            return bad("sigma_floor must be finite and non-negative");
        }
        if !(self.share_init > 0.0 && self.share_init < 1.0) {
            return bad("share_init must be in (0, 1)");
        }
        if !(self.h0_init_std >= 0.0 && self.h0_init_std.is_finite()) {
            return bad("h0_init_std must be finite and non-negative");
        }
        for (name, v) in [
            ("hidden", self.hidden),
            ("particles", self.particles),
            ("embedding", self.embedding),
            ("inputs", self.inputs),
            ("targets", self.targets),
        ] {
            if v > Self::MAX_DIM {
                return Err(KernelError::Config(format!(
                    "{name} = {v} is above the limit of {}",
                    Self::MAX_DIM
                )));
            }
        }
        match self.parameter_count() {
            Some(n) if n <= Self::MAX_PARAMETERS => Ok(()),
            _ => Err(KernelError::Config(format!(
                "the network would have more than {} parameters",
                Self::MAX_PARAMETERS
            ))),
        }
    }

    /// Largest size accepted for any one dimension (hidden, particles, embedding, inputs,
    /// targets): far beyond any useful model, small enough that sizes cannot overflow.
    pub const MAX_DIM: usize = 1 << 20;
    /// Largest number of parameters accepted (2^31 f32 values, 8 GiB).
    pub const MAX_PARAMETERS: u64 = 1 << 31;

    /// The number of scalars in the parameter buffer, computed without overflow (`None` when it
    /// does not fit in a `u64`). Equals [`ParamLayout::new`]`(self).total` when that fits.
    pub fn parameter_count(&self) -> Option<u64> {
        let h = self.hidden as u64;
        let g = match self.cell {
            Cell::Gru => h.checked_mul(3)?,
            Cell::Tanh => h,
        };
        let p = (self.head.outputs_per_dim() as u64).checked_mul(self.targets as u64)?;
        let l = self.particles as u64;
        let e = self.embedding as u64;
        let c = self.inputs as u64;
        let terms = [
            g.checked_mul(c)?,
            g,
            g.checked_mul(h)?,
            g,
            g.checked_mul(e)?,
            l.checked_mul(h)?,
            l.checked_mul(e)?,
            p.checked_mul(h)?,
            p,
            u64::from(self.gate == Gate::FixedShare),
            if self.noise { h } else { 0 },
        ];
        terms.iter().try_fold(0u64, |acc, &t| acc.checked_add(t))
    }
}

/// One named tensor in the flat parameter buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamEntry {
    /// Name, as in checkpoints (`cell.w_hh`, `head.w`, `particles.h0`, ...).
    pub name: &'static str,
    /// Offset in the buffer.
    pub offset: usize,
    /// Shape (row-major).
    pub shape: Vec<usize>,
}

impl ParamEntry {
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True for zero-sized entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The range of this entry in the buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Where each named tensor lives in the flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLayout {
    /// Entries in buffer order.
    pub entries: Vec<ParamEntry>,
    /// Total scalars.
    pub total: usize,
}

/// Offsets of the tensors the kernels use, resolved once.
#[derive(Clone, Debug)]
pub(crate) struct Offsets {
    pub w_ih: std::ops::Range<usize>,
    pub b_ih: std::ops::Range<usize>,
    pub w_hh: std::ops::Range<usize>,
    pub b_hh: std::ops::Range<usize>,
    pub w_eh: std::ops::Range<usize>,
    pub h0: std::ops::Range<usize>,
    pub emb: std::ops::Range<usize>,
    pub head_w: std::ops::Range<usize>,
    pub head_b: std::ops::Range<usize>,
    pub share: std::ops::Range<usize>,
    pub noise: std::ops::Range<usize>,
}

impl ParamLayout {
    /// The layout of a configuration.
    pub fn new(cfg: &ModelConfig) -> Self {
        let g = cfg.gate_width();
        let h = cfg.hidden;
        let mut entries = Vec::new();
        let mut offset = 0;
        let mut push = |name: &'static str, shape: Vec<usize>| {
            let e = ParamEntry {
                name,
                offset,
                shape,
            };
            offset += e.len();
            entries.push(e);
        };
        push("cell.w_ih", vec![g, cfg.inputs]);
        push("cell.b_ih", vec![g]);
        push("cell.w_hh", vec![g, h]);
        push("cell.b_hh", vec![g]);
        push("cell.w_eh", vec![g, cfg.embedding]);
        push("particles.h0", vec![cfg.particles, h]);
        push("particles.embedding", vec![cfg.particles, cfg.embedding]);
        push("head.w", vec![cfg.head_width(), h]);
        push("head.b", vec![cfg.head_width()]);
        push(
            "gate.share_logit",
            vec![usize::from(cfg.gate == Gate::FixedShare)],
        );
        push("noise.sigma_raw", vec![if cfg.noise { h } else { 0 }]);
        ParamLayout {
            entries,
            total: offset,
        }
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    pub(crate) fn offsets(&self) -> Offsets {
        let r = |n: &str| self.get(n).map(|e| e.range()).unwrap_or(0..0);
        Offsets {
            w_ih: r("cell.w_ih"),
            b_ih: r("cell.b_ih"),
            w_hh: r("cell.w_hh"),
            b_hh: r("cell.b_hh"),
            w_eh: r("cell.w_eh"),
            h0: r("particles.h0"),
            emb: r("particles.embedding"),
            head_w: r("head.w"),
            head_b: r("head.b"),
            share: r("gate.share_logit"),
            noise: r("noise.sigma_raw"),
        }
    }
}

/// A particle-RNN: its configuration and its parameters in one flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<T> {
    /// Shapes and maths.
    pub config: ModelConfig,
    /// Named views into `params`.
    pub layout: ParamLayout,
    /// All parameters.
    pub params: Vec<T>,
}

impl<T: Real> Model<T> {
    /// A freshly initialised model (seeded): PyTorch-style uniform(+-1/sqrt(H)) weights (the
    /// head's too, so particles start with distinct predictions),
    /// N(0, h0_init_std) initial states, N(0, 1) embeddings, head biases at mean 0 and scale 1, the share rate at `share_init` and the noise scale at 0.01.
    pub fn new(config: ModelConfig, seed: u64) -> Result<Self, KernelError> {
        config.validate()?;
        let layout = ParamLayout::new(&config);
        let mut params = vec![T::zero(); layout.total];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = 1.0 / (config.hidden as f64).sqrt();
        let uni = Uniform::new_inclusive(-k, k).map_err(|e| KernelError::Config(e.to_string()))?;
        let normal =
            |std: f64| Normal::new(0.0, std).map_err(|e| KernelError::Config(e.to_string()));
        let h0 = normal(config.h0_init_std.max(1e-12))?;
        let std_normal = normal(1.0)?;
        for e in &layout.entries {
            let slot = &mut params[e.range()];
            match e.name {
                "cell.w_ih" | "cell.b_ih" | "cell.w_hh" | "cell.b_hh" | "cell.w_eh" | "head.w" => {
                    slot.iter_mut()
                        .for_each(|v| *v = T::c(uni.sample(&mut rng)))
                }
                "particles.h0" => slot.iter_mut().for_each(|v| *v = T::c(h0.sample(&mut rng))),
                "particles.embedding" => slot
                    .iter_mut()
                    .for_each(|v| *v = T::c(std_normal.sample(&mut rng))),
                "head.b" => {
                    let d = config.targets;
                    // [mu_0..mu_D, s_0..s_D, (v_0..v_D)]: scale starts at 1, dof at 2 + 8.
                    for (i, v) in slot.iter_mut().enumerate() {
                        *v = match i / d {
                            0 => T::zero(),
                            1 => T::c(softplus_inv(1.0 - config.sigma_floor)),
                            _ => T::c(softplus_inv(8.0)),
                        };
                    }
                }
                "gate.share_logit" => {
                    let a = config.share_init;
                    slot.iter_mut()
                        .for_each(|v| *v = T::c((a / (1.0 - a)).ln()));
                }
                "noise.sigma_raw" => slot.iter_mut().for_each(|v| *v = T::c(softplus_inv(0.01))),
                _ => {}
            }
        }
        Ok(Model {
            config,
            layout,
            params,
        })
    }

    /// A model with given parameters (for loading checkpoints).
    pub fn from_params(config: ModelConfig, params: Vec<T>) -> Result<Self, KernelError> {
        config.validate()?;
        let layout = ParamLayout::new(&config);
        if params.len() != layout.total {
            return Err(KernelError::Shape(format!(
                "parameter buffer has {} values, the configuration needs {}",
                params.len(),
                layout.total
            )));
        }
        Ok(Model {
            config,
            layout,
            params,
        })
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&[T]> {
        self.layout.get(name).map(|e| &self.params[e.range()])
    }

    /// The tensor called `name`, mutably.
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut [T]> {
        let r = self.layout.get(name)?.range();
        Some(&mut self.params[r])
    }

    /// The fixed-share rate a (1 for the uniform gate, 0 for bayes).
    pub fn share_rate(&self) -> f64 {
        match self.config.gate {
            Gate::Uniform => 1.0,
            Gate::Bayes => 0.0,
            Gate::FixedShare => {
                let o = self.layout.offsets();
                crate::real::sigmoid(self.params[o.share.start]).f()
            }
        }
    }

    /// Converts the parameters to another precision.
    pub fn cast<U: Real>(&self) -> Model<U> {
        Model {
            config: self.config.clone(),
            layout: self.layout.clone(),
            params: self.params.iter().map(|v| U::c(v.f())).collect(),
        }
    }
}
