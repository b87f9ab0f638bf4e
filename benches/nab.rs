//! NAB over several seeds: `pipelines/nab.toml` (one global model trained on every file's
//! probation period, every row of the 58 files scored in order with only the past) run once per
//! seed, then scored with NAB's three profiles (`particast_pipeline::nab`, which reproduces the
//! official numenta scores), next to the published reference points.
//!
//! Run: `cargo bench --bench nab`. Prints one row per seed and the mean and standard deviation,
//! and writes `benches/results/nab.json`. `PARTICAST_NAB_SEEDS` sets the seeds (default `1,2,3`).
//! Needs NAB where the pipeline file points (`../shared/data/nab`).

mod common;

use particast::pipeline::nab::{score_corpus, PROFILES};
use particast::pipeline::Silent;
use particast::run::run_pipeline;
use particast::spec::PipelineSpec;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let base = PipelineSpec::load(&root.join("pipelines/nab.toml")).expect("pipelines/nab.toml");
    let labels = root.join("../shared/data/nab/labels/combined_windows.json");
    if !labels.exists() {
        eprintln!("skipped: {} not found", labels.display());
        return;
    }
    let seeds: Vec<u64> = std::env::var("PARTICAST_NAB_SEEDS")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .map(|s| s.trim().parse().expect("seed"))
        .collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    println!(
        "{:>4} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "seed", "standard", "low FP", "low FN", "rows", "total s"
    );
    let mut runs = Vec::new();
    let mut per_profile = vec![Vec::new(); PROFILES.len()];
    for &seed in &seeds {
        let mut spec = base.clone();
        let out = tmp.path().join(format!("seed{seed}"));
        spec.output_dir = out.clone();
        let train = spec.train.as_mut().expect("[train]");
        train.model = out.join("model");
        train.config.seed = seed;
        let score = spec.score.as_mut().expect("[score]");
        score.output = out.join("scores.parquet");
        score.state = None;
        spec.plot = None;
        let t = Instant::now();
        let report = run_pipeline(&spec, &mut Silent).expect("pipeline run");
        let total = t.elapsed().as_secs_f64();
        let files =
            particast::nab::read_scores(&out.join("scores.parquet"), &labels).expect("scores file");
        let rows: usize = files.iter().map(|f| f.scores.len()).sum();
        let results: Vec<_> = PROFILES.iter().map(|p| score_corpus(&files, p)).collect();
        for (k, r) in results.iter().enumerate() {
            per_profile[k].push(r.normalized);
        }
        println!(
            "{:>4} {:>10.2} {:>10.2} {:>10.2} {:>8} {:>8.1}",
            seed, results[0].normalized, results[1].normalized, results[2].normalized, rows, total
        );
        runs.push(serde_json::json!({
            "seed": seed,
            "results": results,
            "rows": rows,
            "scored": report.scored.map(|s| s.0),
            "total_seconds": total,
        }));
    }
    let summary: Vec<_> = PROFILES
        .iter()
        .zip(&per_profile)
        .map(|(p, v)| {
            let (m, sd) = common::mean_sd(v);
            println!("{:<20} {m:>7.2} ± {sd:.2}", p.name);
            serde_json::json!({ "profile": p.name, "mean": m, "sd": sd })
        })
        .collect();
    println!(
        "reference (standard): ARTime 74.9, Numenta HTM 70.1, CAD OSE 69.9, Random Cut Forest 51.7"
    );
    let json = serde_json::json!({
        "command": "cargo bench --bench nab",
        "pipeline": "pipelines/nab.toml",
        "reference_standard": { "ARTime": 74.9, "numenta_HTM": 70.1, "CAD_OSE": 69.9, "random_cut_forest": 51.7 },
        "runs": runs,
        "summary": summary,
    });
    common::write_results("nab", &json);
}
