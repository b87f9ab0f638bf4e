//! Scale benchmark: scoring and forecasting long Parquet files with the `particast` binary,
//! each run in a fresh process, reporting rows/s and peak resident memory.
//!
//! Runs (generated data, hourly, rows in time order so that every row group holds every
//! series and reading must regroup them):
//! - `score 10M`: 2,000 series x 5,000 steps;
//! - `score 50M`: 10,000 series x 5,000 steps (time should be about 5x, memory flat);
//! - `forecast 100k`: 100,000 series x 100 steps, horizon 48, levels 80/95, particle mode;
//! - `evaluate 100k`: those forecasts against the next 48 steps, scaled by the history.
//!
//! Run: `cargo bench --features cli --bench scale`. `PARTICAST_BENCH_SCALE` (default 1.0)
//! multiplies the number of series of every file, for a quick look; `PARTICAST_BENCH_BIN`
//! runs another build of the binary (a before/after comparison); `PARTICAST_BENCH_RUNS`
//! picks runs by name (`score-10m,score-50m,forecast-100k,evaluate-100k`);
//! `PARTICAST_BENCH_NAME` names the results file (default `scale`). Prints a table and writes
//! `benches/results/NAME.json`.

mod common;

use particast::polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const HOUR_US: i64 = 3_600_000_000;
const START_US: i64 = 1_577_836_800_000_000; // 2020-01-01

/// Writes `n_series` hourly series of `steps` values from step `t0` on, in time order (all
/// series at one step, then the next), in row groups of about 262,144 rows.
fn generate(path: &Path, n_series: usize, t0: usize, steps: usize) -> PolarsResult<()> {
    let tmp = path.with_extension("parquet.tmp");
    let mut file = Some(std::fs::File::create(&tmp)?);
    let mut writer: Option<particast::polars::io::parquet::write::BatchedWriter<std::fs::File>> =
        None;
    let per_group = (262_144 / n_series).max(1);
    let ids: Vec<String> = (0..n_series).map(|s| format!("series-{s:06}")).collect();
    for g0 in (t0..t0 + steps).step_by(per_group) {
        let g1 = (g0 + per_group).min(t0 + steps);
        let rows = (g1 - g0) * n_series;
        let mut id = Vec::with_capacity(rows);
        let mut ds = Vec::with_capacity(rows);
        let mut y = Vec::with_capacity(rows);
        for t in g0..g1 {
            for (s, name) in ids.iter().enumerate() {
                // A daily cycle at a per-series level, and deterministic noise.
                let mut h = (s as u64) << 32 | t as u64;
                h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                h ^= h >> 29;
                let noise = (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let level = 10.0 + (s % 97) as f64;
                id.push(name.as_str());
                ds.push(START_US + t as i64 * HOUR_US);
                y.push(
                    level * (1.0 + 0.3 * (t as f64 * std::f64::consts::TAU / 24.0).sin()) + noise,
                );
            }
        }
        let mut df = df!("unique_id" => id, "ds" => ds, "y" => y)?
            .lazy()
            .with_column(col("ds").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
            .collect()?;
        df.rechunk_mut();
        if writer.is_none() {
            let f = file
                .take()
                .ok_or_else(|| polars_err!(ComputeError: "writer"))?;
            writer = Some(ParquetWriter::new(f).batched(df.schema())?);
        }
        if let Some(w) = writer.as_mut() {
            w.write_batch(&df)?;
        }
    }
    if let Some(w) = writer {
        w.finish()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A generated file, made once and reused.
fn data(dir: &Path, name: &str, n_series: usize, t0: usize, steps: usize) -> PathBuf {
    let path = dir.join(format!("{name}-{n_series}x{steps}.parquet"));
    if !path.exists() {
        let t = Instant::now();
        eprintln!("generating {} ...", path.display());
        generate(&path, n_series, t0, steps).expect("generate");
        eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    }
    path
}

/// What one child process took.
struct Measured {
    seconds: f64,
    peak_rss: u64,
}

/// Runs `bin args` to completion and measures its wall time and peak resident memory
/// (`ru_maxrss` of the child, from `wait4`, which also reaps it).
#[allow(clippy::zombie_processes)]
fn measure(bin: &Path, args: &[String]) -> Measured {
    let t = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child's, status and usage point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let seconds = t.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} {} failed (status {status})",
        bin.display(),
        args.join(" ")
    );
    Measured {
        seconds,
        // Linux reports ru_maxrss in KiB.
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Trains a small model on `input` into `dir` (once): the bench measures reading and writing
/// at scale, not accuracy.
fn model(bin: &Path, input: &Path, dir: &Path, context: usize) -> PathBuf {
    if !dir.join("model.safetensors").exists() {
        let mut args = strings(&["train", "--quiet", "--input"]);
        args.push(path_str(input));
        args.extend(strings(&[
            "--epochs",
            "2",
            "--batches-per-epoch",
            "10",
            "--horizon",
            "48",
            "--no-select",
        ]));
        args.extend(["--context".to_string(), context.to_string()]);
        args.extend(["--model".to_string(), path_str(dir)]);
        let m = measure(bin, &args);
        eprintln!("trained {} in {:.1} s", dir.display(), m.seconds);
    }
    dir.to_path_buf()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var("PARTICAST_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_particast")));
    let scale: f64 = std::env::var("PARTICAST_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let runs = common::env_list(
        "PARTICAST_BENCH_RUNS",
        "score-10m,score-50m,forecast-100k,evaluate-100k",
    );
    let name = std::env::var("PARTICAST_BENCH_NAME").unwrap_or_else(|_| "scale".into());
    let dir = std::env::var("PARTICAST_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target").join("bench-data"));
    std::fs::create_dir_all(&dir).expect("bench data folder");
    let n = |k: usize| ((k as f64 * scale).round() as usize).max(1);

    // Models: one for long hourly series, one for short ones; each trained on a slice.
    let long_train = data(&dir, "scale-train-long", 100, 0, 1_000);
    let long_model = model(&bin, &long_train, &dir.join("scale-model-long"), 96);
    let short_train = data(&dir, "scale-train-short", 500, 0, 100);
    let short_model = model(&bin, &short_train, &dir.join("scale-model-short"), 48);

    let out = tempfile::tempdir_in(&dir).expect("output folder");
    let mut rows_out = Vec::new();
    let mut table = Vec::new();
    for run in &runs {
        let (what, input, rows, series, args): (&str, PathBuf, usize, usize, Vec<String>) =
            match run.as_str() {
                "score-10m" | "score-50m" => {
                    let k = if run == "score-10m" { 2_000 } else { 10_000 };
                    let input = data(&dir, "scale-long", n(k), 0, 5_000);
                    let mut a = strings(&["score", "--quiet", "--input"]);
                    a.push(path_str(&input));
                    a.extend(["--model".into(), path_str(&long_model)]);
                    a.extend([
                        "--output".into(),
                        path_str(&out.path().join("scores.parquet")),
                    ]);
                    ("score", input, n(k) * 5_000, n(k), a)
                }
                "forecast-100k" => {
                    let input = data(&dir, "scale-short", n(100_000), 0, 100);
                    let mut a = strings(&["forecast", "--quiet", "--input"]);
                    a.push(path_str(&input));
                    a.extend(["--model".into(), path_str(&short_model)]);
                    a.extend(strings(&[
                        "--horizon",
                        "48",
                        "--levels",
                        "80,95",
                        "--mode",
                        "particle",
                    ]));
                    a.extend([
                        "--output".into(),
                        path_str(&out.path().join("forecast.parquet")),
                    ]);
                    ("forecast", input, n(100_000) * 100, n(100_000), a)
                }
                "evaluate-100k" => {
                    let history = data(&dir, "scale-short", n(100_000), 0, 100);
                    let actuals = data(&dir, "scale-short-next", n(100_000), 100, 48);
                    let fc = out.path().join("forecast.parquet");
                    assert!(
                        fc.exists(),
                        "evaluate-100k needs the forecast-100k run first"
                    );
                    let mut a = strings(&["evaluate", "--quiet", "--json", "--forecast"]);
                    a.push(path_str(&fc));
                    a.extend(["--actuals".into(), path_str(&actuals)]);
                    a.extend(["--history".into(), path_str(&history)]);
                    ("evaluate", history, n(100_000) * 48, n(100_000), a)
                }
                other => panic!("unknown run {other}"),
            };
        let m = measure(&bin, &args);
        let rows_per_s = rows as f64 / m.seconds;
        let size = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
        table.push(format!(
            "{:<14} {:>11} {:>8} {:>9.1} {:>12.0} {:>9.0}",
            run,
            rows,
            series,
            m.seconds,
            rows_per_s,
            m.peak_rss as f64 / (1 << 20) as f64
        ));
        rows_out.push(serde_json::json!({
            "run": run,
            "stage": what,
            "rows": rows,
            "series": series,
            "input_bytes": size,
            "seconds": m.seconds,
            "rows_per_second": rows_per_s,
            "peak_rss_bytes": m.peak_rss,
        }));
    }
    println!(
        "{:<14} {:>11} {:>8} {:>9} {:>12} {:>9}",
        "run", "rows", "series", "seconds", "rows/s", "peak MiB"
    );
    for line in &table {
        println!("{line}");
    }
    let seconds = |r: &str| {
        rows_out
            .iter()
            .find(|v| v["run"] == r)
            .and_then(|v| v["seconds"].as_f64())
    };
    let ratio = match (seconds("score-50m"), seconds("score-10m")) {
        (Some(a), Some(b)) => Some(a / b),
        _ => None,
    };
    if let Some(r) = ratio {
        println!("score 50M / 10M time: {r:.2}x (linear: 5x)");
    }
    common::write_results(
        &name,
        &serde_json::json!({
            "bench": "scale",
            "binary": path_str(&bin),
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "scale": scale,
            "runs": rows_out,
            "score_50m_over_10m_time": ratio,
        }),
    );
}
