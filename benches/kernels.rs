//! Kernel benchmark: training-step (forward + backward) time per time step and achieved GFLOP/s
//! of the particle-RNN for H in {32, 40, 64, 128}, L in {1, 8, 32}, B = 64, f32, on 1 and 2 threads,
//! against faer's own GEMM rate on a large square product measured in the same run.
//!
//! Run: `cargo bench --bench kernels`. Prints a table and writes `benches/results/kernels.json`.
//! `PARTICAST_BENCH_QUICK=1` runs fewer repetitions.
//!
//! Profiling: `PARTICAST_BENCH_PROFILE=HIDDEN,PARTICLES` (for example `40,8`) runs only that
//! GRU training step (B = 64, 32 steps) again and again for `PARTICAST_BENCH_SECONDS` (default
//! 20) on `PARTICAST_BENCH_THREADS` threads (default 1) and prints its time per step, for a
//! profiler to sample: `perf record -F 999 -g -- target/release/deps/kernels-* --bench`, then
//! `perf report --no-children`.
//!
//! FLOPs counted are those of the matrix products (the standard convention): per time step,
//! forward `2 R H G + 2 B C G + 2 R H P` and backward twice that, with R = B L rows, G = 3H gate
//! columns (GRU), C inputs and P head outputs. Elementwise work (gates, likelihoods, the mixture)
//! is real work that is not counted.

use faer::{Accum, Mat, Par};
use particast_kernels::{loss_and_grad, Batch, Cell, Model, ModelConfig, TrainOptions};
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

struct Record {
    cell: &'static str,
    hidden: usize,
    particles: usize,
    batch: usize,
    threads: usize,
    ms_per_step: f64,
    gflops: f64,
    peak: f64,
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
    let (b, t, c) = (64usize, 32usize, 8usize);
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
                    records.push(Record {
                        cell: if cell == Cell::Gru { "gru" } else { "tanh" },
                        hidden,
                        particles,
                        batch: b,
                        threads,
                        ms_per_step: per_step * 1e3,
                        gflops: flops_step / per_step / 1e9,
                        peak,
                    });
                }
            }
        }
    }
    println!(
        "{:<5} {:>6} {:>9} {:>5} {:>7} {:>12} {:>9} {:>10} {:>7}",
        "cell",
        "hidden",
        "particles",
        "batch",
        "threads",
        "ms/step",
        "GFLOP/s",
        "GEMM peak",
        "ratio"
    );
    for r in &records {
        println!(
            "{:<5} {:>6} {:>9} {:>5} {:>7} {:>12.3} {:>9.1} {:>10.1} {:>7.2}",
            r.cell,
            r.hidden,
            r.particles,
            r.batch,
            r.threads,
            r.ms_per_step,
            r.gflops,
            r.peak,
            r.gflops / r.peak
        );
    }
    let json: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "  {{\"cell\": \"{}\", \"hidden\": {}, \"particles\": {}, \"batch\": {}, \"threads\": {}, \"steps\": {t}, \"ms_per_step\": {:.4}, \"gflops\": {:.2}, \"gemm_peak_gflops\": {:.2}, \"ratio\": {:.3}}}",
                r.cell, r.hidden, r.particles, r.batch, r.threads, r.ms_per_step, r.gflops, r.peak, r.gflops / r.peak
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
