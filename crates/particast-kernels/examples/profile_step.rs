//! One training step (`loss_and_grad`) of a GRU particle RNN, repeated for a while: the target
//! of a profiler (`perf record -e cpu-clock -- target/release/examples/profile_step 40 8`).
//!
//! Arguments: hidden H, particles L, then optionally windows B (64), steps T (96), inputs C (8),
//! seconds (10), threads (1). Prints the milliseconds per step.

use particast_kernels::{loss_and_grad, Batch, Model, ModelConfig, TrainOptions};
use std::time::Instant;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (h, l, b, t, c, secs, threads) = (
        arg(1, 40),
        arg(2, 8),
        arg(3, 64),
        arg(4, 96),
        arg(5, 8),
        arg(6, 10),
        arg(7, 1),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let cfg = ModelConfig {
        hidden: h,
        particles: l,
        inputs: c,
        ..Default::default()
    };
    let model = Model::<f32>::new(cfg, 1).expect("a model");
    let inputs: Vec<f32> = (0..b * t * c)
        .map(|i| ((i % 17) as f32 - 8.0) * 0.05)
        .collect();
    let targets: Vec<f32> = (0..b * t).map(|i| ((i % 5) as f32 - 2.0) * 0.3).collect();
    let mask = vec![1.0f32; b * t];
    let log_scale = vec![0.0f32; b];
    let batch = Batch {
        windows: b,
        steps: t,
        inputs: &inputs,
        targets: &targets,
        mask: &mask,
        log_scale: &log_scale,
        burn_in: 0,
    };
    let mut grad = vec![0.0f32; model.params.len()];
    let opts = TrainOptions::default();
    let start = Instant::now();
    let mut n = 0usize;
    pool.install(|| {
        while start.elapsed().as_secs() < secs as u64 {
            loss_and_grad(&model, &batch, &opts, Some(&mut grad)).expect("a step");
            n += 1;
        }
    });
    println!(
        "H={h} L={l} B={b} T={t} C={c} threads={threads}: {n} steps, {:.3} ms per step",
        start.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}
