//! # particast-kernels
//!
//! Batched forward and backward passes of the *particle RNN*: an RNN whose hidden state is L
//! particles that share one transition f but start from different learned vectors h_l^0, so
//! that each step's predictive distribution is a mixture over particles
//!
//! ```text
//! log p(X) = sum_t log sum_l w_l^t p(x^t | h_l^t),   h_l^t = f(h_l^{t-1}, u^t)
//! ```
//!
//! (Sohl-Dickstein and Kingma, 2015). With L = 1 it is the ordinary RNN likelihood.
//!
//! **The model** ([`ModelConfig`]): a GRU or tanh [`Cell`]; a learned per-particle embedding
//! e_l that f sees at every step (a part of the state carried unchanged; `embedding = 0` gives the
//! note's exact form); a Gaussian or Student-t [`Head`] per particle (diagonal for D > 1); a
//! mixture [`Gate`] in log space (`uniform`, `bayes`, `fixed-share` with a learned rate); and
//! optional learned transition noise for training. Parameters live in one flat buffer with named
//! views ([`ParamLayout`]), so the optimiser ([`Adam`]) is one loop and checkpoints are simple.
//!
//! **The kernels** (one file each): `forward.rs` is the one forward pass, over a chunk of
//! windows: the input projection one product over all steps shared by the L particles, the
//! recurrence (`cell.rs`) one product of shape (rows x H) by (H x 3H) per step over all particle
//! rows, the head (`head.rs`) one product over all steps, then the particles' log densities and
//! the gate (`gate.rs`). [`loss_and_grad`] (`loss.rs`) runs it on a [`Batch`] (`batch.rs`)
//! with `backward.rs`, exact backpropagation through time (masks, burn-in, noise, every gate)
//! with the recurrent and head weight gradients as products over blocks of steps taken while
//! they are still in cache; [`score`] (`score.rs`) runs it teacher-forced from a
//! [`ParticleState`] (`state.rs`) that carries a series between calls; [`step`] /
//! [`step_shared`] / [`observe`] (`rollout.rs`) drive forecasting rollouts. Windows are split
//! into chunks whose size follows from the shapes alone ([`chunk_windows`]: rows per chunk, a
//! cache budget for long windows, at least four chunks per batch) and run on the rayon pool with
//! `Par::Seq` products inside (chunking never depends on the thread count, so results are
//! identical with any number of threads).
//!
//! Everything is generic over [`Real`]: `f32` for speed, `f64` for gradient checks. This crate
//! knows nothing of files, Arrow or polars.
//!
//! ## Example
//! ```
//! use particast_kernels::{loss_and_grad, Batch, Model, ModelConfig, TrainOptions};
//!
//! let cfg = ModelConfig { hidden: 8, particles: 4, inputs: 2, ..Default::default() };
//! let model = Model::<f64>::new(cfg, 42).unwrap();
//! let (b, t) = (3, 5);
//! let inputs = vec![0.1; b * t * 2];
//! let targets = vec![0.5; b * t];
//! let mask = vec![1.0; b * t];
//! let log_scale = vec![0.0; b];
//! let batch = Batch { windows: b, steps: t, inputs: &inputs, targets: &targets,
//!                     mask: &mask, log_scale: &log_scale, burn_in: 1 };
//! let mut grad = vec![0.0; model.params.len()];
//! let report = loss_and_grad(&model, &batch, &TrainOptions::default(), Some(&mut grad)).unwrap();
//! assert_eq!(report.observations, b * (t - 1));
//! assert!(report.nll.is_finite());
//! ```
#![deny(missing_docs)]
// Index loops over several parallel buffers read better than zipped iterators in numeric kernels.
#![allow(clippy::needless_range_loop)]

mod backward;
mod batch;
mod cell;
mod error;
mod forward;
mod gate;
pub mod head;
mod loss;
mod model;
mod optim;
pub mod real;
mod rollout;
mod score;
mod state;

pub use backward::GRADIENT_BLOCK_ROWS;
pub use batch::Batch;
pub use error::KernelError;
pub use head::{emission, log_density, Emission};
pub use loss::{chunk_windows, loss_and_grad, LossReport, TrainOptions};
pub use model::{Cell, Gate, Head, Model, ModelConfig, ParamEntry, ParamLayout};
pub use optim::{clip_global_norm, Adam, AdamConfig};
pub use real::Real;
pub use rollout::{observe, step, step_shared};
pub use score::{score, ScoreOutput};
pub use state::ParticleState;
