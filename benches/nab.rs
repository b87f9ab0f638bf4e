//! NAB over several seeds: `pipelines/nab.toml` (one global model trained on every file's
//! probation period, every row of the 58 files scored in order with only the past) run once per
//! seed, then scored with NAB's three profiles (`particast_pipeline::nab`, which reproduces the
//! official numenta scores), next to the published reference points.
//!
//! Every seed's model scores the corpus twice: with the file's `[score]` settings (online
//! adaptation on: `adapted`) and the same with `adapt = 0` (`frozen`), each timed (rows/s).
//!
//! Run: `cargo bench --bench nab`. Prints one row per seed and variant, the mean and standard
//! deviation per profile, and the standard profile per category; writes
//! `benches/results/nab.json`. `PARTICAST_NAB_SEEDS` sets the seeds (default `1,2,3`).
//! Needs NAB where the pipeline file points (`../shared/data/nab`).

mod common;

use particast::ingest::Source;
use particast::pipeline::nab::{score_corpus, NabFile, NabResult, PROFILES};
use particast::pipeline::{stage, ScoreConfig, Silent, TrainedModel};
use particast::run::run_pipeline;
use particast::spec::PipelineSpec;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// NAB's three profiles over `files`, and the standard profile per category (the folder of
/// each file's name).
fn nab_scores(files: &[NabFile]) -> (Vec<NabResult>, BTreeMap<String, f64>) {
    let results: Vec<_> = PROFILES.iter().map(|p| score_corpus(files, p)).collect();
    let mut categories: BTreeMap<String, Vec<NabFile>> = BTreeMap::new();
    for f in files {
        let cat = f.name.split('/').next().unwrap_or("").to_string();
        categories.entry(cat).or_default().push(f.clone());
    }
    let per = categories
        .into_iter()
        .filter(|(_, fs)| fs.iter().any(|f| !f.windows.is_empty()))
        .map(|(c, fs)| (c, score_corpus(&fs, &PROFILES[0]).normalized))
        .collect();
    (results, per)
}

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
    let tuned = base.score.as_ref().expect("[score]").config.clone();
    let variants = [
        ("adapted", tuned.clone()),
        (
            "frozen",
            ScoreConfig {
                adapt: 0,
                ..tuned.clone()
            },
        ),
    ];
    let tmp = tempfile::tempdir().expect("temp dir");
    println!(
        "{:>4} {:<8} {:>9} {:>8} {:>8} {:>8} {:>10} {:>8}",
        "seed", "variant", "standard", "low FP", "low FN", "rows", "rows/s", "train s"
    );
    let mut runs = Vec::new();
    let mut per_profile: BTreeMap<(&str, usize), Vec<f64>> = BTreeMap::new();
    let mut per_category: BTreeMap<(&str, String), Vec<f64>> = BTreeMap::new();
    let mut speed: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for &seed in &seeds {
        let mut spec = base.clone();
        let out = tmp.path().join(format!("seed{seed}"));
        spec.output_dir = out.clone();
        let train = spec.train.as_mut().expect("[train]");
        train.model = out.join("model");
        train.config.seed = seed;
        spec.score = None;
        spec.plot = None;
        let t = Instant::now();
        run_pipeline(&spec, &mut Silent).expect("pipeline run");
        let train_s = t.elapsed().as_secs_f64();
        let model = TrainedModel::load(&out.join("model")).expect("model");
        let data = stage::read(Source::Path(spec.input.path.clone()), &spec.input.options)
            .expect("NAB data");
        for (name, cfg) in &variants {
            let t = Instant::now();
            let scored = stage::score(&model, &data, cfg, Vec::new()).expect("scoring");
            let secs = t.elapsed().as_secs_f64();
            let path = out.join(format!("{name}.parquet"));
            scored
                .write(&path, particast::pipeline::sink::OutputFormat::Parquet)
                .expect("write scores");
            let files = particast::nab::read_scores(&path, &labels).expect("scores file");
            let rows: usize = files.iter().map(|f| f.scores.len()).sum();
            let (results, cats) = nab_scores(&files);
            for (k, r) in results.iter().enumerate() {
                per_profile.entry((name, k)).or_default().push(r.normalized);
            }
            for (c, v) in &cats {
                per_category.entry((name, c.clone())).or_default().push(*v);
            }
            speed.entry(name).or_default().push(rows as f64 / secs);
            println!(
                "{:>4} {:<8} {:>9.2} {:>8.2} {:>8.2} {:>8} {:>10.0} {:>8.1}",
                seed,
                name,
                results[0].normalized,
                results[1].normalized,
                results[2].normalized,
                rows,
                rows as f64 / secs,
                train_s
            );
            runs.push(serde_json::json!({
                "seed": seed,
                "variant": name,
                "results": results,
                "categories": cats,
                "rows": rows,
                "score_seconds": secs,
                "rows_per_second": rows as f64 / secs,
                "train_seconds": train_s,
            }));
        }
    }
    let mut summary = Vec::new();
    for (name, _) in &variants {
        let (sm, _) = common::mean_sd(&speed[name]);
        println!("{name}: {sm:.0} rows/s scored");
        for (k, p) in PROFILES.iter().enumerate() {
            let (m, sd) = common::mean_sd(&per_profile[&(*name, k)]);
            println!("  {:<20} {m:>7.2} ± {sd:.2}", p.name);
            summary.push(
                serde_json::json!({ "variant": name, "profile": p.name, "mean": m, "sd": sd }),
            );
        }
    }
    println!("standard profile per category (mean of the seeds):");
    println!("{:<24} {:>9} {:>9}", "category", "adapted", "frozen");
    let mut categories = serde_json::Map::new();
    let names: Vec<String> = per_category
        .keys()
        .map(|(_, c)| c.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for c in &names {
        let a = common::mean_sd(&per_category[&("adapted", c.clone())]).0;
        let f = common::mean_sd(&per_category[&("frozen", c.clone())]).0;
        println!("{c:<24} {a:>9.2} {f:>9.2}");
        categories.insert(c.clone(), serde_json::json!({ "adapted": a, "frozen": f }));
    }
    println!(
        "reference (standard): ARTime 74.9, Numenta HTM 70.1, CAD OSE 69.9, Random Cut Forest 51.7"
    );
    let json = serde_json::json!({
        "command": "cargo bench --bench nab",
        "pipeline": "pipelines/nab.toml",
        "score": tuned,
        "reference_standard": { "ARTime": 74.9, "numenta_HTM": 70.1, "CAD_OSE": 69.9, "random_cut_forest": 51.7 },
        "runs": runs,
        "summary": summary,
        "categories_standard": categories,
        "rows_per_second": { "adapted": common::mean_sd(&speed["adapted"]).0, "frozen": common::mean_sd(&speed["frozen"]).0 },
    });
    common::write_results("nab", &json);
}
