//! Ingestion benchmark: windows a generated long-format Parquet file of at least 50 million rows
//! over 10,000 series with bounded memory, and the M4 Hourly wide CSV.
//!
//! Run: `cargo bench --bench ingest` (`PARTICAST_BENCH_ROWS` scales the generated file down for a
//! quick look). Prints a table and writes `benches/results/ingest.json`.

use particast_ingest::polars::prelude::*;
use particast_ingest::{
    IngestOptions, Layout, SeriesStream, ShortSeries, Source, WindowSpec, WindowStream,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Peak resident set size of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Writes `n_series` hourly series of `steps` rows each (a daily cycle, a trend and noise),
/// 50 series (250,000 rows) per row group, polars' default row-group size, so generation itself stays small in memory.
fn generate(path: &Path, n_series: usize, steps: usize) -> PolarsResult<()> {
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp)?;
    let per_group = 50;
    let mut writer: Option<
        particast_ingest::polars::io::parquet::write::BatchedWriter<std::fs::File>,
    > = None;
    let mut file = Some(file);
    let hour_us = 3_600_000_000i64;
    let start = 1_577_836_800_000_000i64; // 2020-01-01
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for g0 in (0..n_series).step_by(per_group) {
        let g1 = (g0 + per_group).min(n_series);
        let rows = (g1 - g0) * steps;
        let mut ids = Vec::with_capacity(rows);
        let mut ds = Vec::with_capacity(rows);
        let mut y = Vec::with_capacity(rows);
        for s in g0..g1 {
            let id = format!("series-{s:05}");
            let level = 10.0 + (s % 97) as f64;
            for t in 0..steps {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                ids.push(id.clone());
                ds.push(start + t as i64 * hour_us);
                y.push(
                    level * (1.0 + 0.3 * (t as f64 * std::f64::consts::TAU / 24.0).sin()) + noise,
                );
            }
        }
        let mut df = df!("unique_id" => ids, "ds" => ds, "y" => y)?
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

struct Row {
    name: String,
    rows: usize,
    series: usize,
    windows: usize,
    seconds: f64,
    peak_rss: u64,
    buckets: usize,
}

fn window_all(source: Source, opts: &IngestOptions, spec: &WindowSpec) -> Row {
    let t0 = Instant::now();
    let stream = SeriesStream::open(source, opts).expect("open input");
    let features = stream.schema().features.clone();
    // Count series and rows as they pass, without keeping them.
    let counts = std::rc::Rc::new(std::cell::Cell::new((0usize, 0usize)));
    let c2 = counts.clone();
    let series = stream.inspect(move |s| {
        if let Ok(s) = s {
            let (n, r) = c2.get();
            c2.set((n + 1, r + s.stats.rows));
        }
    });
    let mut windows = 0;
    for batch in WindowStream::new(series, spec.clone(), features, "bench") {
        windows += batch.expect("window batch").num_rows();
    }
    let (n_series, rows) = counts.get();
    Row {
        name: String::new(),
        rows,
        series: n_series,
        windows,
        seconds: t0.elapsed().as_secs_f64(),
        peak_rss: peak_rss(),
        buckets: 0,
    }
}

/// Runs one measurement (in a child process) and prints `RESULT rows series windows seconds
/// peak_rss buckets`.
fn child(job: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bucket_rows = std::env::var("PARTICAST_BENCH_BUCKET_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_BUCKET_ROWS);
    let r = if let Some(path) = job.strip_prefix("long:") {
        let opts = IngestOptions::default().with_max_rows_in_memory(bucket_rows);
        let spec = WindowSpec::new(168, 48)
            .with_stride(168)
            .with_batch_size(1024)
            .with_short_series(ShortSeries::Pad);
        let mut r = window_all(Source::path(path), &opts, &spec);
        r.buckets = r.rows.div_ceil(bucket_rows);
        r
    } else {
        let m4 = root.join("../shared/data/m4-hourly/Hourly-train.csv");
        if !m4.exists() {
            eprintln!("skipping M4: {} not found", m4.display());
            return;
        }
        let opts = IngestOptions::default().with_layout(Layout::Wide);
        let spec = WindowSpec::new(168, 48)
            .with_stride(24)
            .with_batch_size(1024)
            .with_short_series(ShortSeries::Pad);
        let mut r = window_all(Source::path(&m4), &opts, &spec);
        r.buckets = 1;
        r
    };
    println!(
        "RESULT {} {} {} {} {} {}",
        r.rows, r.series, r.windows, r.seconds, r.peak_rss, r.buckets
    );
}

const DEFAULT_BUCKET_ROWS: usize = 2_000_000;

fn main() {
    if let Ok(job) = std::env::var("PARTICAST_BENCH_CHILD") {
        child(&job);
        return;
    }
    let rows_target: usize = std::env::var("PARTICAST_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000_000);
    let n_series = 10_000usize;
    let steps = rows_target.div_ceil(n_series);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data_dir = std::env::var("PARTICAST_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target").join("bench-data"));
    std::fs::create_dir_all(&data_dir).expect("bench data folder");
    let path = data_dir.join(format!("long-{n_series}x{steps}.parquet"));
    if !path.exists() {
        eprintln!(
            "generating {} ({} rows)...",
            path.display(),
            n_series * steps
        );
        let t = Instant::now();
        generate(&path, n_series, steps).expect("generate");
        eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());
    }
    let file_size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    // Each measurement runs in a fresh child process, so its peak RSS is its own.
    let mut rows = Vec::new();
    let exe = std::env::current_exe().expect("bench executable");
    for (job, name) in [
        (
            format!("long:{}", path.display()),
            format!("long parquet, {n_series} series, partitioned"),
        ),
        (
            "m4".to_string(),
            "M4 Hourly wide CSV (read + windows)".to_string(),
        ),
    ] {
        let out = std::process::Command::new(&exe)
            .env("PARTICAST_BENCH_CHILD", &job)
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        match text.lines().find_map(|l| l.strip_prefix("RESULT ")) {
            Some(line) => {
                let v: Vec<f64> = line
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                rows.push(Row {
                    name,
                    rows: v[0] as usize,
                    series: v[1] as usize,
                    windows: v[2] as usize,
                    seconds: v[3],
                    peak_rss: v[4] as u64,
                    buckets: v[5] as usize,
                });
            }
            None => eprintln!(
                "{name}: no result ({})",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    println!(
        "{:<48} {:>12} {:>8} {:>10} {:>9} {:>14} {:>10}",
        "input", "rows", "series", "windows", "seconds", "rows/s", "peak RSS"
    );
    for r in &rows {
        println!(
            "{:<48} {:>12} {:>8} {:>10} {:>9.2} {:>14.0} {:>7.0} MiB",
            r.name,
            r.rows,
            r.series,
            r.windows,
            r.seconds,
            r.rows as f64 / r.seconds,
            r.peak_rss as f64 / 1048576.0
        );
    }
    let json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "  {{\"input\": {:?}, \"rows\": {}, \"series\": {}, \"windows\": {}, \"seconds\": {:.3}, \"rows_per_s\": {:.0}, \"peak_rss_bytes\": {}, \"buckets\": {}, \"threads\": {}}}",
                r.name,
                r.rows,
                r.series,
                r.windows,
                r.seconds,
                r.rows as f64 / r.seconds,
                r.peak_rss,
                r.buckets,
                rayon_threads()
            )
        })
        .collect();
    let out = root.join("benches/results");
    std::fs::create_dir_all(&out).expect("results folder");
    let body = format!(
        "{{\n \"command\": \"cargo bench --bench ingest\",\n \"parquet_bytes\": {file_size},\n \"peak_rss_limit_bytes\": {},\n \"results\": [\n{}\n ]\n}}\n",
        1u64 << 30,
        json.join(",\n")
    );
    let tmp = out.join("ingest.json.tmp");
    std::fs::write(&tmp, body).expect("write results");
    std::fs::rename(&tmp, out.join("ingest.json")).expect("rename results");
    println!("wrote benches/results/ingest.json");
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
