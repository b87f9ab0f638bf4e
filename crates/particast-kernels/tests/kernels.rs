//! Kernel correctness: finite-difference gradient checks in f64 over every cell x head x gate,
//! independent likelihood computations, gate limits, chunked scoring, and the note's central
//! claim on a bimodal series.

#![allow(clippy::needless_range_loop)] // index loops mirror the maths in these checks

use particast_kernels::real::{logsumexp, softplus};
use particast_kernels::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random batch with gaps in the mask (including fully masked steps).
struct Data {
    b: usize,
    t: usize,
    inputs: Vec<f64>,
    targets: Vec<f64>,
    mask: Vec<f64>,
    log_scale: Vec<f64>,
    burn_in: usize,
}

impl Data {
    fn new(b: usize, t: usize, c: usize, d: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let inputs = (0..b * t * c)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let targets = (0..b * t * d)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let mut mask: Vec<f64> = (0..b * t * d)
            .map(|_| if rng.random::<f64>() < 0.2 { 0.0 } else { 1.0 })
            .collect();
        // Step 2 of window 0 is fully masked.
        for k in 0..d {
            mask[2 * d + k] = 0.0;
        }
        let log_scale = (0..b * d).map(|_| rng.random_range(-1.0..2.0)).collect();
        Data {
            b,
            t,
            inputs,
            targets,
            mask,
            log_scale,
            burn_in: 1,
        }
    }
    fn batch(&self) -> Batch<'_, f64> {
        Batch {
            windows: self.b,
            steps: self.t,
            inputs: &self.inputs,
            targets: &self.targets,
            mask: &self.mask,
            log_scale: &self.log_scale,
            burn_in: self.burn_in,
        }
    }
}

fn loss(model: &Model<f64>, data: &Data, opts: &TrainOptions) -> f64 {
    loss_and_grad(model, &data.batch(), opts, None).unwrap().nll
}

/// Largest relative error between the analytic gradient and central differences, with the
/// denominator floored at 1e-3 (absolute agreement below ~1e-9 is all f64 FD can show there).
fn gradient_check(cfg: ModelConfig, d: usize, seed: u64) -> (f64, String) {
    let mut model = Model::<f64>::new(cfg.clone(), seed).unwrap();
    // Perturb so no parameter sits at a special value.
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    for p in model.params.iter_mut() {
        *p += rng.random_range(-0.3..0.3);
    }
    let data = Data::new(3, 6, cfg.inputs, d, seed + 2);
    let opts = TrainOptions {
        noise_seed: Some(11),
        chunk_rows: 4, // several chunks
        chunk_bytes: usize::MAX,
        min_chunks: 2,
        parallel: true,
    };
    let mut grad = vec![0.0; model.params.len()];
    loss_and_grad(&model, &data.batch(), &opts, Some(&mut grad)).unwrap();
    let mut worst = (0.0, String::new());
    let h = 1e-5;
    for i in 0..model.params.len() {
        let orig = model.params[i];
        model.params[i] = orig + h;
        let up = loss(&model, &data, &opts);
        model.params[i] = orig - h;
        let down = loss(&model, &data, &opts);
        model.params[i] = orig;
        let fd = (up - down) / (2.0 * h);
        let rel = (fd - grad[i]).abs() / fd.abs().max(grad[i].abs()).max(1e-3);
        if rel > worst.0 {
            let name = model
                .layout
                .entries
                .iter()
                .find(|e| e.range().contains(&i))
                .map(|e| e.name)
                .unwrap_or("?");
            worst = (
                rel,
                format!("{name}[{i}]: fd {fd:.9e} analytic {:.9e}", grad[i]),
            );
        }
    }
    worst
}

#[test]
fn gradients_match_finite_differences_for_every_configuration() {
    let mut report = Vec::new();
    let mut seed = 100;
    for cell in [Cell::Gru, Cell::Tanh] {
        for head in [Head::Gaussian, Head::StudentT] {
            for gate in [Gate::Uniform, Gate::Bayes, Gate::FixedShare] {
                for noise in [false, true] {
                    for d in [1, 3] {
                        let cfg = ModelConfig {
                            cell,
                            head,
                            gate,
                            noise,
                            hidden: 4,
                            particles: 3,
                            embedding: 2,
                            inputs: 3,
                            targets: d,
                            share_init: 0.3,
                            ..Default::default()
                        };
                        seed += 7;
                        let (err, at) = gradient_check(cfg, d, seed);
                        report.push((
                            err,
                            format!(
                                "{cell:?} {head:?} {gate:?} noise={noise} D={d}: {err:.2e} at {at}"
                            ),
                        ));
                    }
                }
            }
        }
    }
    let worst = report.iter().map(|r| r.0).fold(0.0, f64::max);
    for r in &report {
        eprintln!("{}", r.1);
    }
    assert!(worst < 1e-6, "worst relative gradient error {worst:.3e}");
}

#[test]
fn gradient_check_without_embedding() {
    let cfg = ModelConfig {
        hidden: 5,
        particles: 2,
        embedding: 0,
        inputs: 2,
        gate: Gate::FixedShare,
        ..Default::default()
    };
    let (err, at) = gradient_check(cfg, 1, 3);
    assert!(err < 1e-6, "{err:.3e} at {at}");
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// An independent single-particle GRU negative log-likelihood, scalar loops throughout.
fn plain_gru_nll(model: &Model<f64>, data: &Data) -> f64 {
    let cfg = &model.config;
    let (h, c, e) = (cfg.hidden, cfg.inputs, cfg.embedding);
    let t = |n: &str| model.tensor(n).unwrap().to_vec();
    let (w_ih, b_ih, w_hh, b_hh, w_eh) = (
        t("cell.w_ih"),
        t("cell.b_ih"),
        t("cell.w_hh"),
        t("cell.b_hh"),
        t("cell.w_eh"),
    );
    let (h0, emb, hw, hb) = (
        t("particles.h0"),
        t("particles.embedding"),
        t("head.w"),
        t("head.b"),
    );
    let mut total = 0.0;
    for b in 0..data.b {
        let mut state = h0.clone();
        for s in 0..data.t {
            let u = &data.inputs[(b * data.t + s) * c..(b * data.t + s + 1) * c];
            let pre = |row: usize, w: &[f64], x: &[f64], k: usize| -> f64 {
                (0..k).map(|j| w[row * k + j] * x[j]).sum()
            };
            let mut next = vec![0.0; h];
            for j in 0..h {
                let xr = pre(j, &w_ih, u, c) + b_ih[j] + pre(j, &w_eh, &emb, e);
                let xz = pre(h + j, &w_ih, u, c) + b_ih[h + j] + pre(h + j, &w_eh, &emb, e);
                let xn =
                    pre(2 * h + j, &w_ih, u, c) + b_ih[2 * h + j] + pre(2 * h + j, &w_eh, &emb, e);
                let r = sigmoid(xr + pre(j, &w_hh, &state, h) + b_hh[j]);
                let z = sigmoid(xz + pre(h + j, &w_hh, &state, h) + b_hh[h + j]);
                let n = (xn + r * (pre(2 * h + j, &w_hh, &state, h) + b_hh[2 * h + j])).tanh();
                next[j] = (1.0 - z) * n + z * state[j];
            }
            state = next;
            if s < data.burn_in {
                continue;
            }
            let o = (b * data.t + s) * cfg.targets;
            for k in 0..cfg.targets {
                if data.mask[o + k] == 0.0 {
                    continue;
                }
                let mu = pre(k, &hw, &state, h) + hb[k];
                let sigma = softplus(pre(cfg.targets + k, &hw, &state, h) + hb[cfg.targets + k])
                    + cfg.sigma_floor;
                let y = data.targets[o + k];
                total += 0.5 * (2.0 * std::f64::consts::PI).ln()
                    + sigma.ln()
                    + 0.5 * ((y - mu) / sigma).powi(2);
            }
        }
    }
    total
}

#[test]
fn one_particle_is_the_plain_rnn_likelihood() {
    for d in [1, 2] {
        let cfg = ModelConfig {
            hidden: 6,
            particles: 1,
            embedding: 3,
            inputs: 4,
            targets: d,
            ..Default::default()
        };
        let model = Model::<f64>::new(cfg, 5).unwrap();
        let data = Data::new(4, 9, 4, d, 6);
        for gate in [Gate::Uniform, Gate::Bayes] {
            let mut m = model.clone();
            m.config.gate = gate;
            let r = loss_and_grad(&m, &data.batch(), &TrainOptions::default(), None).unwrap();
            let want = plain_gru_nll(&model, &data);
            let got = r.nll * r.observations as f64;
            assert!(
                (got - want).abs() < 1e-9 * want.abs(),
                "D={d} {gate:?}: {got} vs {want}"
            );
        }
    }
}

fn with_share(cfg: &ModelConfig, logit: f64) -> Model<f64> {
    let mut m = Model::<f64>::new(
        ModelConfig {
            gate: Gate::FixedShare,
            ..cfg.clone()
        },
        9,
    )
    .unwrap();
    m.tensor_mut("gate.share_logit").unwrap()[0] = logit;
    m
}

#[test]
fn fixed_share_limits_are_uniform_and_bayes() {
    let cfg = ModelConfig {
        hidden: 5,
        particles: 4,
        inputs: 2,
        h0_init_std: 2.0,
        ..Default::default()
    };
    let data = Data::new(3, 12, 2, 1, 1);
    let base = with_share(&cfg, 0.0);
    let as_gate = |gate| {
        let mut m = base.clone();
        m.config.gate = gate;
        // Same parameters, minus the share logit the other gates do not have.
        let layout = ParamLayout::new(&m.config);
        let mut params = Vec::new();
        for e in &layout.entries {
            params.extend_from_slice(&base.tensor(e.name).unwrap()[..e.len()]);
        }
        Model::from_params(m.config, params).unwrap()
    };
    let opts = TrainOptions::default();
    let uniform = loss_and_grad(&as_gate(Gate::Uniform), &data.batch(), &opts, None)
        .unwrap()
        .nll;
    let bayes = loss_and_grad(&as_gate(Gate::Bayes), &data.batch(), &opts, None)
        .unwrap()
        .nll;
    let mut near_one = base.clone();
    near_one.tensor_mut("gate.share_logit").unwrap()[0] = 40.0;
    let mut near_zero = base.clone();
    near_zero.tensor_mut("gate.share_logit").unwrap()[0] = -40.0;
    let fs1 = loss_and_grad(&near_one, &data.batch(), &opts, None)
        .unwrap()
        .nll;
    let fs0 = loss_and_grad(&near_zero, &data.batch(), &opts, None)
        .unwrap()
        .nll;
    assert!((fs1 - uniform).abs() < 1e-12, "{fs1} vs uniform {uniform}");
    assert!((fs0 - bayes).abs() < 1e-12, "{fs0} vs bayes {bayes}");
    assert!(
        (uniform - bayes).abs() > 1e-6,
        "the test data must tell the gates apart"
    );
}

#[test]
fn bayes_is_the_mixture_over_particles_chosen_once() {
    let cfg = ModelConfig {
        hidden: 5,
        particles: 4,
        inputs: 2,
        targets: 2,
        gate: Gate::Bayes,
        h0_init_std: 1.5,
        ..Default::default()
    };
    let model = Model::<f64>::new(cfg.clone(), 21).unwrap();
    let mut data = Data::new(2, 10, 2, 2, 22);
    data.burn_in = 0;
    // Per-particle densities come from scoring (the trajectories do not depend on the gate).
    let mut state = ParticleState::new(&model, data.b);
    let out = score(&model, &mut state, &data.batch(), false).unwrap();
    let (l, p, d) = (cfg.particles, cfg.head_width(), cfg.targets);
    let mut direct = 0.0;
    for b in 0..data.b {
        let mut per_particle = vec![0.0; l];
        for t in 0..data.t {
            for (li, acc) in per_particle.iter_mut().enumerate() {
                let raw =
                    &out.raw[((b * data.t + t) * l + li) * p..((b * data.t + t) * l + li + 1) * p];
                for k in 0..d {
                    let o = (b * data.t + t) * d + k;
                    if data.mask[o] == 0.0 {
                        continue;
                    }
                    let e = emission(cfg.head, raw, k, d, cfg.sigma_floor);
                    *acc += log_density(cfg.head, &e, data.targets[o]) - data.log_scale[b * d + k];
                }
            }
        }
        direct += logsumexp(&per_particle) - (l as f64).ln();
    }
    let chained: f64 = out.ll.iter().sum();
    assert!((chained - direct).abs() < 1e-10, "{chained} vs {direct}");
    let r = loss_and_grad(&model, &data.batch(), &TrainOptions::default(), None).unwrap();
    let total = -r.nll_original * r.observations as f64;
    assert!((total - direct).abs() < 1e-9, "{total} vs {direct}");
}

#[test]
fn chunked_scoring_equals_one_pass() {
    for gate in [Gate::Uniform, Gate::Bayes, Gate::FixedShare] {
        let cfg = ModelConfig {
            hidden: 7,
            particles: 3,
            inputs: 3,
            gate,
            head: Head::StudentT,
            ..Default::default()
        };
        let model = Model::<f64>::new(cfg.clone(), 4).unwrap();
        let data = Data::new(5, 40, 3, 1, 8);
        let mut whole_state = ParticleState::new(&model, data.b);
        let whole = score(&model, &mut whole_state, &data.batch(), true).unwrap();
        let mut state = ParticleState::new(&model, data.b);
        let mut ll = vec![Vec::new(); data.b];
        let mut start = 0;
        for len in [7, 13, 20] {
            let sub = |v: &[f64], k: usize| -> Vec<f64> {
                (0..data.b)
                    .flat_map(|b| {
                        v[(b * data.t + start) * k..(b * data.t + start + len) * k].to_vec()
                    })
                    .collect()
            };
            let (inputs, targets, mask) = (
                sub(&data.inputs, 3),
                sub(&data.targets, 1),
                sub(&data.mask, 1),
            );
            let batch = Batch {
                windows: data.b,
                steps: len,
                inputs: &inputs,
                targets: &targets,
                mask: &mask,
                log_scale: &data.log_scale,
                burn_in: 0,
            };
            let out = score(&model, &mut state, &batch, false).unwrap();
            for (b, acc) in ll.iter_mut().enumerate() {
                acc.extend_from_slice(&out.ll[b * len..(b + 1) * len]);
            }
            start += len;
        }
        for b in 0..data.b {
            for t in 0..data.t {
                let (a, c) = (whole.ll[b * data.t + t], ll[b][t]);
                assert!(
                    (a - c).abs() <= 1e-12 * (1.0 + a.abs()),
                    "{gate:?} b={b} t={t}: {a} vs {c}"
                );
            }
        }
        assert_eq!(state, whole_state);
    }
}

#[test]
fn results_do_not_depend_on_threads_or_chunk_parallelism() {
    let cfg = ModelConfig {
        hidden: 16,
        particles: 4,
        inputs: 3,
        noise: true,
        gate: Gate::FixedShare,
        ..Default::default()
    };
    let model = Model::<f32>::new(cfg, 2).unwrap();
    let d = Data::new(20, 15, 3, 1, 3);
    let cast = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (i, t, m, s) = (
        cast(&d.inputs),
        cast(&d.targets),
        cast(&d.mask),
        cast(&d.log_scale),
    );
    let batch = Batch {
        windows: d.b,
        steps: d.t,
        inputs: &i,
        targets: &t,
        mask: &m,
        log_scale: &s,
        burn_in: 2,
    };
    let run = |parallel: bool| {
        let opts = TrainOptions {
            noise_seed: Some(5),
            chunk_rows: 16,
            chunk_bytes: 4 << 20,
            min_chunks: 3,
            parallel,
        };
        let mut g = vec![0.0f32; model.params.len()];
        let r = loss_and_grad(&model, &batch, &opts, Some(&mut g)).unwrap();
        (r.nll, g)
    };
    let (a, ga) = run(true);
    let (b, gb) = run(false);
    assert_eq!(a.to_bits(), b.to_bits());
    assert_eq!(ga, gb);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (c, gc) = pool.install(|| run(true));
    assert_eq!(a.to_bits(), c.to_bits());
    assert_eq!(ga, gc);
}

#[test]
fn step_and_observe_follow_scoring() {
    // Rolling forward with `step` on the true inputs and `observe` on the true targets gives the
    // scoring log-likelihoods.
    let cfg = ModelConfig {
        hidden: 6,
        particles: 3,
        inputs: 2,
        gate: Gate::Bayes,
        ..Default::default()
    };
    let model = Model::<f64>::new(cfg.clone(), 12).unwrap();
    let mut data = Data::new(2, 8, 2, 1, 13);
    data.log_scale = vec![0.0; 2];
    let mut state = ParticleState::new(&model, data.b);
    let scored = score(&model, &mut state, &data.batch(), false).unwrap();
    let mut st = ParticleState::new(&model, data.b);
    // The same rollout with each window's inputs given once (`step_shared`).
    let mut shared_st = ParticleState::new(&model, data.b);
    let (l, p) = (cfg.particles, cfg.head_width());
    for t in 0..data.t {
        let mut inputs = Vec::new();
        let mut window_inputs = Vec::new();
        for b in 0..data.b {
            let x = &data.inputs[(b * data.t + t) * 2..(b * data.t + t + 1) * 2];
            window_inputs.extend_from_slice(x);
            for _ in 0..l {
                inputs.extend_from_slice(x);
            }
        }
        let mut raw = vec![0.0; data.b * l * p];
        step(&model, &mut st, &inputs, &mut raw, false).unwrap();
        let mut shared_raw = vec![0.0; data.b * l * p];
        step_shared(
            &model,
            &mut shared_st,
            &window_inputs,
            &mut shared_raw,
            true,
        )
        .unwrap();
        assert_eq!(shared_raw, raw, "t={t}");
        assert_eq!(shared_st.h, st.h, "t={t}");
        assert!(step_shared(&model, &mut shared_st, &inputs, &mut shared_raw, false).is_err());
        shared_st.log_w.clone_from(&st.log_w);
        let y: Vec<f64> = (0..data.b).map(|b| data.targets[b * data.t + t]).collect();
        let m: Vec<f64> = (0..data.b).map(|b| data.mask[b * data.t + t]).collect();
        let ll = observe(&model, &mut st, &raw, &y, &m).unwrap();
        for b in 0..data.b {
            let want = scored.ll[b * data.t + t];
            assert!(
                (ll[b] - want).abs() < 1e-12,
                "t={t} b={b}: {} vs {want}",
                ll[b]
            );
        }
    }
}

/// Trains on windows of a bimodal series (each value is +1 or -1 at random, plus small noise)
/// and returns the final mean NLL over fresh windows.
fn train_bimodal(particles: usize, seed: u64) -> f64 {
    let cfg = ModelConfig {
        hidden: 8,
        particles,
        embedding: 4,
        inputs: 1,
        gate: Gate::Uniform,
        h0_init_std: 1.0,
        ..Default::default()
    };
    let mut model = Model::<f32>::new(cfg, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1000);
    let (b, t) = (32, 16);
    let make = |rng: &mut ChaCha8Rng| {
        let mut series = vec![0.0f32; b * (t + 1)];
        for v in series.iter_mut() {
            let level = if rng.random::<bool>() { 1.0 } else { -1.0 };
            *v = level + 0.05 * (rng.random::<f32>() - 0.5);
        }
        let mut inputs = Vec::with_capacity(b * t);
        let mut targets = Vec::with_capacity(b * t);
        for w in 0..b {
            for s in 0..t {
                inputs.push(series[w * (t + 1) + s]);
                targets.push(series[w * (t + 1) + s + 1]);
            }
        }
        (inputs, targets)
    };
    let mask = vec![1.0f32; b * t];
    let log_scale = vec![0.0f32; b];
    let mut adam = Adam::new(AdamConfig::default(), model.params.len());
    let mut grad = vec![0.0f32; model.params.len()];
    let opts = TrainOptions::default();
    for _ in 0..600 {
        let (inputs, targets) = make(&mut rng);
        let batch = Batch {
            windows: b,
            steps: t,
            inputs: &inputs,
            targets: &targets,
            mask: &mask,
            log_scale: &log_scale,
            burn_in: 0,
        };
        loss_and_grad(&model, &batch, &opts, Some(&mut grad)).unwrap();
        clip_global_norm(&mut grad, 10.0);
        adam.step(&mut model.params, &grad, 0.02);
    }
    let (inputs, targets) = make(&mut rng);
    let batch = Batch {
        windows: b,
        steps: t,
        inputs: &inputs,
        targets: &targets,
        mask: &mask,
        log_scale: &log_scale,
        burn_in: 0,
    };
    loss_and_grad(&model, &batch, &opts, None).unwrap().nll
}

#[test]
fn particles_capture_a_bimodal_future_that_one_state_cannot() {
    let one = train_bimodal(1, 1);
    let eight = train_bimodal(8, 1);
    eprintln!("bimodal NLL: L=1 {one:.3}, L=8 {eight:.3}");
    // A single Gaussian can do no better than N(0, 1): NLL ~ 1.42. Two modes of width ~0.015
    // give ~ -1.3.
    assert!(one > 1.3, "L=1 {one}");
    assert!(eight < one - 0.5, "L=8 {eight} vs L=1 {one}");
}

#[test]
fn parameter_count_matches_the_layout_and_absurd_sizes_are_refused() {
    for cell in [Cell::Gru, Cell::Tanh] {
        for head in [Head::Gaussian, Head::StudentT] {
            for gate in [Gate::Uniform, Gate::Bayes, Gate::FixedShare] {
                for noise in [false, true] {
                    let cfg = ModelConfig {
                        cell,
                        head,
                        gate,
                        noise,
                        hidden: 7,
                        particles: 3,
                        embedding: 2,
                        inputs: 5,
                        targets: 2,
                        ..Default::default()
                    };
                    let total = particast_kernels::ParamLayout::new(&cfg).total as u64;
                    assert_eq!(cfg.parameter_count(), Some(total), "{cfg:?}");
                    assert!(cfg.validate().is_ok());
                }
            }
        }
    }
    // Sizes from a damaged config: refused with a message, never an overflow or an allocation.
    for (hidden, particles) in [(usize::MAX, 1), (1 << 21, 1), (1 << 20, 1 << 20)] {
        let cfg = ModelConfig {
            hidden,
            particles,
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("limit") || err.contains("parameters"), "{err}");
    }
    let huge = ModelConfig {
        hidden: usize::MAX,
        ..Default::default()
    };
    assert_eq!(huge.parameter_count(), None);
}

#[test]
fn chunks_shrink_for_long_windows_and_split_small_batches() {
    let cfg = |particles| ModelConfig {
        hidden: 40,
        particles,
        inputs: 8,
        ..Default::default()
    };
    let opts = TrainOptions::default();
    // 32 steps: 128 rows (16 windows of 8 particles); 216 steps: the 4 MiB cache budget
    // (216 x (4 x 40 + 40) x 4 bytes per row) allows 24 rows, raised to the 32-row floor.
    assert_eq!(chunk_windows(&cfg(8), 64, 32, &opts, 4), 16);
    assert_eq!(chunk_windows(&cfg(8), 64, 216, &opts, 4), 4);
    // One particle: at least four chunks of a batch of 64.
    assert_eq!(chunk_windows(&cfg(1), 64, 32, &opts, 4), 16);
    // More particles than the floor: one window per chunk, never zero.
    assert_eq!(chunk_windows(&cfg(64), 64, 216, &opts, 4), 1);
    assert_eq!(chunk_windows(&cfg(8), 0, 216, &opts, 4), 1);
}
