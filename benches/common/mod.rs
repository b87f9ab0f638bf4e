//! Shared by the benchmark binaries that report accuracy and speed runs.

#![allow(dead_code)] // each benchmark uses part of it

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
