//! Shared by the benchmark binaries that report accuracy and speed runs.

#![allow(dead_code)] // each benchmark uses part of it

use particast::ingest::PreparedSeries;
use particast::pipeline::{empirical_quantile as quantile, SeriesForecast, StepForecast};
use std::path::PathBuf;

/// Writes `benches/results/NAME.json` (temporary file, then rename) and says so.
pub fn write_results(name: &str, json: &serde_json::Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    std::fs::create_dir_all(&dir).expect("results folder");
    let tmp = dir.join(format!("{name}.json.tmp"));
    let text = serde_json::to_string_pretty(json).expect("json") + "\n";
    std::fs::write(&tmp, text).expect("write results");
    std::fs::rename(&tmp, dir.join(format!("{name}.json"))).expect("rename results");
    println!("wrote benches/results/{name}.json");
}

/// A comma-separated list from the environment variable `name` (else `default`).
pub fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, sd)
}

/// Seasonal naive with empirical intervals, the reference for MSIS and coverage (M4 published
/// no interval scores for it): the last season repeated; a step k seasons ahead gets the
/// quantiles of the series' own k-season differences `y[t] - y[t - k m]` as its interval
/// (floored at 0 for series with no negative value, as particast's forecasts are).
pub fn seasonal_naive(
    series: &[PreparedSeries],
    h: usize,
    m: usize,
    levels: &[f64],
) -> Vec<SeriesForecast> {
    series
        .iter()
        .map(|s| {
            let n = s.len() as i64;
            let y = |t: i64| s.value(t, 0);
            let nonneg = (0..n).filter_map(y).all(|v| v >= 0.0);
            let diffs = |lag: i64| -> Vec<f64> {
                let mut d: Vec<f64> = (lag..n).filter_map(|t| Some(y(t)? - y(t - lag)?)).collect();
                d.sort_by(f64::total_cmp);
                d
            };
            let per_season: Vec<Vec<f64>> =
                (1..=h.div_ceil(m)).map(|k| diffs((k * m) as i64)).collect();
            let steps = (0..h)
                .map(|i| {
                    let f = y(n - m as i64 + (i % m) as i64).unwrap_or(0.0);
                    let d = &per_season[i / m];
                    let floor = if nonneg { 0.0 } else { f64::NEG_INFINITY };
                    let intervals = levels
                        .iter()
                        .map(|l| {
                            let a = (1.0 - l / 100.0) / 2.0;
                            (
                                (f + quantile(d, a)).max(floor),
                                (f + quantile(d, 1.0 - a)).max(floor),
                            )
                        })
                        .collect();
                    StepForecast {
                        ds: s.timestamp(n + i as i64),
                        mean: f,
                        median: f,
                        intervals,
                        mixture: Vec::new(),
                        samples: Vec::new(),
                    }
                })
                .collect();
            SeriesForecast {
                id: s.id.clone(),
                steps,
            }
        })
        .collect()
}

/// One CSV line's fields (double-quoted fields allowed).
pub fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The rows of a CSV file after its header, split into fields.
pub fn read_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(fields)
        .collect()
}

/// The command-line flags that read a long CSV written by the benches (`series_id,time,value`).
pub fn long_input(train: &std::path::Path) -> Vec<String> {
    [
        "--input",
        &train.to_string_lossy(),
        "--id-col",
        "series_id",
        "--time-col",
        "time",
        "--target-col",
        "value",
        "--no-covariates",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
