//! Kernel benchmark: training-step (forward + backward) time per time step and achieved GFLOP/s
//! of the particle-RNN for H in {32, 40, 64, 128}, L in {1, 8, 32}, B = 64, f32, on 1 and 2 threads,
//! against faer's own GEMM rate on a large square product measured in the same run.
//!
//! Run: `cargo bench --bench kernels`. Prints a table and writes `benches/results/kernels.json`.
//! `PARTICAST_BENCH_QUICK=1` runs fewer repetitions.
//!
//! Profiling: `PARTICAST_BENCH_PROFILE=HIDDEN,PARTICLES` (for example `40,8`) runs only that
//! GRU training step (B = 64, 32 steps) again and again for `PARTICAST_BENCH_SECONDS` (default
//! 20) on `PARTICAST_BENCH_THREADS` threads (default 1), with windows of `PARTICAST_BENCH_STEPS`
//! steps (default 32), and prints its time per step, for a
//! profiler to sample: `perf record -F 999 -g -- target/release/deps/kernels-* --bench`, then
//! `perf report --no-children`.
//!
//! FLOPs counted are those of the matrix products (the standard convention): per time step,
//! forward `2 R H G + 2 B C G + 2 R H P` and backward twice that, with R = B L rows, G = 3H gate
//! columns (GRU), C inputs and P head outputs. Elementwise work (gates, likelihoods, the mixture)
//! is real work that is not counted.
//!
//! The roofline columns: the same run times faer on exactly the products of a training step
//! (the kernels' shapes and chunks, nothing elementwise: `GEMM ms`), so the table shows which
//! share of each step the products take and the ratio to the peak the step would reach if the
//! elementwise work cost nothing (`ceiling`): the limit of these shapes on this machine.

use faer::{Accum, Mat, Par};
use particast_kernels::{
    chunk_windows, loss_and_grad, Batch, Cell, Model, ModelConfig, TrainOptions,
    GRADIENT_BLOCK_ROWS,
};
use std::time::Instant;

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f(); // warm up
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// faer's f32 GEMM rate on an n x n product with `threads` threads: the practical peak.
fn gemm_peak(n: usize, threads: usize, reps: usize) -> f64 {
    let a = Mat::<f32>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f32 * 0.1);
    let b = Mat::<f32>::from_fn(n, n, |i, j| ((i * 5 + j) % 13) as f32 * 0.1);
    let mut c = Mat::<f32>::zeros(n, n);
    let par = if threads == 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    };
    let t = best_of(reps, || {
        faer::linalg::matmul::matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, par);
    });
    2.0 * (n as f64).powi(3) / t / 1e9
}

/// One product `dst (m x n) = lhs (m x k) * rhs (k x n)` of fixed-valued matrices, kept so
/// [`gemm_only`] reruns exactly the shapes of a training step.
struct Product {
    dst: Mat<f32>,
    lhs: Mat<f32>,
    rhs: Mat<f32>,
}

impl Product {
    fn new(m: usize, k: usize, n: usize) -> Self {
        Product {
            dst: Mat::zeros(m, n),
            lhs: Mat::from_fn(m, k, |i, j| ((i + 3 * j) % 7) as f32 * 0.01),
            rhs: Mat::from_fn(k, n, |i, j| ((2 * i + j) % 5) as f32 * 0.01),
        }
    }
    fn run(&mut self) {
        faer::linalg::matmul::matmul(
            self.dst.as_mut(),
            Accum::Add,
            self.lhs.as_ref(),
            self.rhs.as_ref(),
            1.0,
            Par::Seq,
        );
    }
}

/// One chunk's products in [`gemm_only`]: run once, once per step, and once per block of steps
/// (`n_blocks` times).
struct ChunkProducts {
    once: Vec<Product>,
    steps: Vec<Product>,
    blocks: Vec<Product>,
    n_blocks: usize,
}

/// The roofline's GEMM part: the wall time of the matrix products alone of one training step
/// (forward and backward) with the kernels' own shapes and chunking (`chunk_windows`; chunks on
/// the rayon pool, each chunk's products sequential, as `loss_and_grad` runs them), without any
/// of the elementwise work.
fn gemm_only(cfg: &ModelConfig, b: usize, t: usize, reps: usize) -> f64 {
    use rayon::prelude::*;
    let opts = TrainOptions::default();
    let (l, hd, g, p, c) = (
        cfg.particles,
        cfg.hidden,
        cfg.gate_width(),
        cfg.head_width(),
        cfg.inputs,
    );
    let per = chunk_windows(cfg, b, t, &opts, std::mem::size_of::<f32>());
    let chunks: Vec<usize> = (0..b).step_by(per).map(|b0| per.min(b - b0)).collect();
    // Per chunk: products run once (input projection, head, W_ih's gradient), per step (the
    // recurrent product forward, its adjoint and the head's adjoint backward) and per block of
    // about GRADIENT_BLOCK_ROWS rows of steps (W_hh's and the head weights' gradients), as
    // `backward` runs them.
    let work: Vec<(usize, usize)> = chunks.iter().map(|&bc| (bc, bc * l)).collect();
    let mut work: Vec<ChunkProducts> = work
        .iter()
        .map(|&(bc, r)| {
            let once = vec![
                Product::new(bc * t, c, g), // input projection
                Product::new(t * r, hd, p), // head, all steps
                Product::new(g, bc * t, c), // W_ih's gradient
            ];
            let steps = vec![
                Product::new(r, hd, g), // forward: h W_hh^T
                Product::new(r, g, hd), // backward: dgh W_hh
                Product::new(r, p, hd), // backward: the head's adjoint of h
            ];
            let block_steps = (GRADIENT_BLOCK_ROWS / r).max(1).min(t);
            let rows = block_steps * r;
            let blocks = vec![
                Product::new(g, rows, hd), // W_hh's gradient
                Product::new(p, rows, hd), // the head weights' gradient
            ];
            ChunkProducts {
                once,
                steps,
                blocks,
                n_blocks: t.div_ceil(block_steps),
            }
        })
        .collect();
    best_of(reps, || {
        work.par_iter_mut().for_each(|w| {
            for pr in w.once.iter_mut() {
                pr.run();
            }
            for _ in 0..t {
                for pr in w.steps.iter_mut() {
                    pr.run();
                }
            }
            for _ in 0..w.n_blocks {
                for pr in w.blocks.iter_mut() {
                    pr.run();
                }
            }
        });
    })
}

impl Record {
    /// The ratio to the peak the step would reach if only its products took time.
    fn ceiling(&self) -> f64 {
        self.gflops * self.ms_per_step / self.gemm_ms / self.peak
    }
    /// Transcendental activations per time step, forward (the backward reuses them): the
    /// GRU's two sigmoids and one tanh per hidden unit and row, the tanh cell's one.
    fn activations(&self) -> usize {
        let per_unit = if self.cell == "gru" { 3 } else { 1 };
        self.batch * self.particles * self.hidden * per_unit
    }
}

struct Record {
    cell: &'static str,
    hidden: usize,
    particles: usize,
    batch: usize,
    threads: usize,
    ms_per_step: f64,
    gflops: f64,
    peak: f64,
    /// Milliseconds per time step of the products alone ([`gemm_only`]).
    gemm_ms: f64,
}

/// A GRU model and one batch of `b` windows of `t` steps with `c` inputs (fixed values).
fn setup(hidden: usize, particles: usize, cell: Cell, b: usize, t: usize, c: usize) -> Setup {
    let cfg = ModelConfig {
        cell,
        hidden,
        particles,
        inputs: c,
        ..Default::default()
    };
    let model = Model::<f32>::new(cfg.clone(), 1).expect("model");
    let inputs: Vec<f32> = (0..b * t * c)
        .map(|i| ((i % 17) as f32 - 8.0) * 0.05)
        .collect();
    let targets: Vec<f32> = (0..b * t).map(|i| ((i % 5) as f32 - 2.0) * 0.3).collect();
    Setup {
        cfg,
        model,
        inputs,
        targets,
        mask: vec![1.0f32; b * t],
        log_scale: vec![0.0f32; b],
    }
}

struct Setup {
    cfg: ModelConfig,
    model: Model<f32>,
    inputs: Vec<f32>,
    targets: Vec<f32>,
    mask: Vec<f32>,
    log_scale: Vec<f32>,
}

impl Setup {
    fn batch(&self, b: usize, t: usize) -> Batch<'_, f32> {
        Batch {
            windows: b,
            steps: t,
            inputs: &self.inputs,
            targets: &self.targets,
            mask: &self.mask,
            log_scale: &self.log_scale,
            burn_in: 0,
        }
    }
}

/// The profiling loop (see the crate docs).
fn profile(spec: &str) {
    let mut it = spec.split(',').map(|v| v.trim().parse::<usize>());
    let (Some(Ok(hidden)), Some(Ok(particles))) = (it.next(), it.next()) else {
        eprintln!("PARTICAST_BENCH_PROFILE must be HIDDEN,PARTICLES, got {spec:?}");
        std::process::exit(2);
    };
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seconds = env("PARTICAST_BENCH_SECONDS", 20.0);
    let threads = env("PARTICAST_BENCH_THREADS", 1.0) as usize;
    let (b, t, c) = (64usize, env("PARTICAST_BENCH_STEPS", 32.0) as usize, 8usize);
    let s = setup(hidden, particles, Cell::Gru, b, t, c);
    let batch = s.batch(b, t);
    let mut grad = vec![0.0f32; s.model.params.len()];
    let opts = TrainOptions::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let (n, secs, loss) = pool.install(|| {
        let start = Instant::now();
        let mut n = 0usize;
        let mut loss = None;
        while start.elapsed().as_secs_f64() < seconds {
            loss = Some(loss_and_grad(&s.model, &batch, &opts, Some(&mut grad)).expect("step"));
            n += 1;
        }
        (n, start.elapsed().as_secs_f64(), loss)
    });
    // The loss and gradient of the fixed batch, to compare builds' numerics.
    let norm = grad
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt();
    println!(
        "GRU H = {hidden}, L = {particles}, B = {b}, {t} steps, {threads} thread(s): {n} training steps, {:.3} ms per time step; loss {:.9}, gradient norm {norm:.9}",
        secs / n as f64 / t as f64 * 1e3,
        loss.map_or(f64::NAN, |l| l.nll)
    );
}

fn main() {
    if let Ok(spec) = std::env::var("PARTICAST_BENCH_PROFILE") {
        return profile(&spec);
    }
    let quick = std::env::var("PARTICAST_BENCH_QUICK").is_ok();
    let reps = if quick { 2 } else { 5 };
    let (b, t, c) = (64usize, 32usize, 8usize);
    let mut records = Vec::new();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let peak = pool.install(|| gemm_peak(1024, threads, reps + 2));
        for cell in [Cell::Gru, Cell::Tanh] {
            for hidden in [32usize, 40, 64, 128] {
                for particles in [1usize, 8, 32] {
                    let st = setup(hidden, particles, cell, b, t, c);
                    let (cfg, model, batch) = (&st.cfg, &st.model, st.batch(b, t));
                    let mut grad = vec![0.0f32; model.params.len()];
                    let opts = TrainOptions::default();
                    let secs = pool.install(|| {
                        best_of(reps, || {
                            loss_and_grad(model, &batch, &opts, Some(&mut grad)).expect("step");
                        })
                    });
                    let (r, h, g, p) = (
                        (b * particles) as f64,
                        hidden as f64,
                        cfg.gate_width() as f64,
                        cfg.head_width() as f64,
                    );
                    let flops_step =
                        3.0 * (2.0 * r * h * g + 2.0 * b as f64 * c as f64 * g + 2.0 * r * h * p);
                    let per_step = secs / t as f64;
                    let gemm_secs = pool.install(|| gemm_only(cfg, b, t, reps));
                    records.push(Record {
                        cell: if cell == Cell::Gru { "gru" } else { "tanh" },
                        hidden,
                        particles,
                        batch: b,
                        threads,
                        ms_per_step: per_step * 1e3,
                        gflops: flops_step / per_step / 1e9,
                        peak,
                        gemm_ms: gemm_secs / t as f64 * 1e3,
                    });
                }
            }
        }
    }
    println!(
        "{:<5} {:>6} {:>9} {:>5} {:>7} {:>9} {:>8} {:>10} {:>6} {:>9} {:>7} {:>9}",
        "cell",
        "hidden",
        "particles",
        "batch",
        "threads",
        "ms/step",
        "GFLOP/s",
        "GEMM peak",
        "ratio",
        "GEMM ms",
        "GEMM %",
        "ceiling"
    );
    for r in &records {
        println!(
            "{:<5} {:>6} {:>9} {:>5} {:>7} {:>9.3} {:>8.1} {:>10.1} {:>6.2} {:>9.3} {:>6.0}% {:>9.2}",
            r.cell,
            r.hidden,
            r.particles,
            r.batch,
            r.threads,
            r.ms_per_step,
            r.gflops,
            r.peak,
            r.gflops / r.peak,
            r.gemm_ms,
            100.0 * r.gemm_ms / r.ms_per_step,
            r.ceiling()
        );
    }
    println!(
        "GEMM ms: the products alone with the same shapes and chunks; GEMM %: their share of the step; \
         ceiling: the ratio to the peak if all elementwise work were free"
    );
    let json: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "  {{\"cell\": \"{}\", \"hidden\": {}, \"particles\": {}, \"batch\": {}, \"threads\": {}, \"steps\": {t}, \"ms_per_step\": {:.4}, \"gflops\": {:.2}, \"gemm_peak_gflops\": {:.2}, \"ratio\": {:.3}, \"gemm_only_ms_per_step\": {:.4}, \"gemm_share\": {:.3}, \"ceiling_ratio\": {:.3}, \"activations_per_step\": {}}}",
                r.cell, r.hidden, r.particles, r.batch, r.threads, r.ms_per_step, r.gflops, r.peak, r.gflops / r.peak,
                r.gemm_ms, r.gemm_ms / r.ms_per_step, r.ceiling(), r.activations()
            )
        })
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    std::fs::create_dir_all(&dir).expect("results folder");
    let tmp = dir.join("kernels.json.tmp");
    std::fs::write(&tmp, format!("[\n{}\n]\n", json.join(",\n"))).expect("write");
    std::fs::rename(&tmp, dir.join("kernels.json")).expect("rename");
    println!("wrote benches/results/kernels.json (command: cargo bench --bench kernels)");
}
