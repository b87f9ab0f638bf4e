//! Anomaly scoring beyond NAB: labelled anomalies of five kinds injected into the dev series of
//! `../shared/data/dev/`, scored with a model trained (default recipe, `particast train`) on
//! each series' clean first half, against two baselines computed here by the same code.
//!
//! For every set the second half of each series receives one kind of anomaly at a time, at
//! seeded random places (at most one per `8 * seg` steps, `seg = clamp(season, 5, 48)`), each
//! with its noise scale `s` = the standard deviation of the training half's first differences:
//! - `spike`: one value moved by `±6 s`;
//! - `level`: every later value moved by `±4 s` (signs alternate), the first `seg` labelled;
//! - `variance`: `seg` values get extra noise of standard deviation `3 s`;
//! - `seasonal`: `seg` values replaced by those half a season earlier (broken pattern; only
//!   sets with a season of 4 or more);
//! - `flat`: `2 seg` values frozen at the one before (a stuck sensor).
//!
//! Scores (pooled over the series of a set, second halves only): `particast score` with its
//! defaults (the NLL's rank among the last 1000 with the calm score of runs of 6 and the
//! stuck-sensor rule from 3 identical values), and the two other recipes for comparison
//! (`tail`: the tail probability without suppression, calm score or stuck rule, the former
//! default; `nab`: `pipelines/nab.toml`'s `[score]` settings, the surprise
//! method with the novelty rule and online adaptation);
//! baselines: `zscore` (|y - mean| / sd of the series' training half) and `rolling` (the same
//! against the last 1000 values, the default `long_window`). Reported: ROC AUC, PR AUC (average
//! precision) and the best F1 over thresholds, per kind, all row by row (a level shift's `seg`
//! labelled rows each count); and event recall at a 1% false-positive rate (`ev@1%`: the
//! fraction of injected events whose highest score at most 1% of the unlabelled rows reach).
//!
//! Run: `cargo bench --bench anomaly --features cli`; writes `benches/results/anomaly.json`.
//! `PARTICAST_ANOMALY_SETS` picks sets (default
//! `aus-retail,tourism-monthly,vic-elec,peyton-manning,us-gasoline`), `PARTICAST_ANOMALY_SEED`
//! the seed of training and injection (default 1), `PARTICAST_ANOMALY_DIR` a folder that keeps
//! the work files (inputs, `<kind>-labels.csv`, scores) instead of a temporary one.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Series (id, values in time order) of `rows` with the id in `id`, the value in `v`, in file
/// order (reversed when `newest_first`).
fn series_of(rows: Vec<Vec<String>>, id: Option<usize>, v: usize) -> Vec<(String, Vec<f64>)> {
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let Some(x) = r.get(v).and_then(|s| s.parse::<f64>().ok()) else {
            continue;
        };
        let key = id.map(|i| r[i].clone()).unwrap_or_else(|| "s".into());
        by.entry(key).or_default().push(x);
    }
    by.into_iter().collect()
}

struct Set {
    name: &'static str,
    season: usize,
    series: Vec<(String, Vec<f64>)>,
}

fn load(name: &str, dev: &Path) -> Option<Set> {
    let (season, series) = match name {
        "aus-retail" => (
            12,
            series_of(
                common::read_rows(&dev.join("aus_retail/csv/aus_retail.csv")),
                Some(2),
                4,
            ),
        ),
        "tourism-monthly" => {
            let rows: Vec<Vec<String>> =
                common::read_rows(&dev.join("tourism/csv/tourism_train.csv"))
                    .into_iter()
                    .filter(|r| r[0].starts_with('M'))
                    .collect();
            (12, series_of(rows, Some(0), 3))
        }
        "vic-elec" => (
            48,
            series_of(
                common::read_rows(&dev.join("vic_elec/csv/vic_elec.csv")),
                None,
                2,
            ),
        ),
        "peyton-manning" => (
            7,
            series_of(
                common::read_rows(
                    &dev.join("peyton_manning_wiki/example_wp_log_peyton_manning.csv"),
                ),
                None,
                1,
            ),
        ),
        "us-gasoline" => {
            let mut s = series_of(
                common::read_rows(&dev.join("us_gasoline/us_gasoline.csv")),
                None,
                1,
            );
            for (_, v) in &mut s {
                v.reverse();
            }
            (52, s)
        }
        _ => return None,
    };
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    Some(Set {
        name,
        season,
        // Long enough to train on half and score the other half.
        series: series.into_iter().filter(|(_, v)| v.len() >= 60).collect(),
    })
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

const KINDS: [&str; 5] = ["spike", "level", "variance", "seasonal", "flat"];

fn sd(v: &[f64]) -> f64 {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt()
}

/// The series with `kind` injected into its second half (from `split`), and the labels.
fn inject(
    v: &[f64],
    split: usize,
    season: usize,
    kind: &str,
    rng: &mut Rng,
) -> (Vec<f64>, Vec<bool>) {
    let seg = season.clamp(5, 48);
    let diffs: Vec<f64> = v[..split].windows(2).map(|w| w[1] - w[0]).collect();
    let s = sd(&diffs).max(1e-9);
    let mut y = v.to_vec();
    let mut label = vec![false; v.len()];
    let slot = 8 * seg;
    let mut at = split + seg;
    let mut sign = 1.0;
    while at + 2 * seg + 1 < v.len() {
        let t = at + (rng.uniform() * (slot - 2 * seg) as f64) as usize;
        if t + 2 * seg >= v.len() {
            break;
        }
        match kind {
            "spike" => {
                y[t] += sign * 6.0 * s;
                label[t] = true;
            }
            "level" => {
                for x in &mut y[t..] {
                    *x += sign * 4.0 * s;
                }
                label[t..t + seg].iter_mut().for_each(|l| *l = true);
            }
            "variance" => {
                for k in t..t + seg {
                    y[k] += 3.0 * s * rng.normal();
                    label[k] = true;
                }
            }
            "seasonal" => {
                let back = season / 2;
                for k in t..t + seg {
                    y[k] = y[k - back];
                    label[k] = true;
                }
            }
            "flat" => {
                for k in t..t + 2 * seg {
                    y[k] = y[t - 1];
                    label[k] = true;
                }
            }
            _ => unreachable!(),
        }
        sign = -sign;
        at += slot;
    }
    (y, label)
}

fn write_csv(path: &Path, rows: &[(String, Vec<f64>)]) {
    let mut text = String::from("series_id,time,value\n");
    for (id, v) in rows {
        for (t, x) in v.iter().enumerate() {
            text.push_str(&format!("{id},{t},{x}\n"));
        }
    }
    std::fs::write(path, text).expect("write csv");
}

fn particast(args: &[String]) -> f64 {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_particast"))
        .args(args)
        .output()
        .expect("run particast");
    if !out.status.success() {
        panic!(
            "particast {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    t.elapsed().as_secs_f64()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The anomaly column of a scores file, per series id, in time order.
fn read_anomaly(path: &Path) -> BTreeMap<String, Vec<f64>> {
    use polars::prelude::SerReader;
    let f = std::fs::File::open(path).expect("scores");
    let df = polars::prelude::ParquetReader::new(f)
        .finish()
        .expect("scores parquet");
    let ids = df
        .column("series_id")
        .or_else(|_| df.column("unique_id"))
        .expect("id")
        .str()
        .expect("str")
        .clone();
    let a = df
        .column("particast-anomaly")
        .expect("anomaly")
        .f64()
        .expect("f64")
        .clone();
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (id, v) in ids.iter().zip(a.iter()) {
        out.entry(id.unwrap_or("").to_string())
            .or_default()
            .push(v.unwrap_or(0.0));
    }
    out
}

/// ROC AUC (ties count half), average precision and the best F1 of scores against labels.
fn metrics(scores: &[f64], labels: &[bool]) -> (f64, f64, f64) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let (mut tp, mut fp, mut auc, mut ap, mut best_f1) = (0.0, 0.0, 0.0, 0.0, 0.0f64);
    let mut i = 0;
    while i < idx.len() {
        // One threshold per distinct score (ties together).
        let mut j = i;
        let (mut dtp, mut dfp) = (0.0, 0.0);
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            if labels[idx[j]] {
                dtp += 1.0;
            } else {
                dfp += 1.0;
            }
            j += 1;
        }
        auc += dfp * (tp + 0.5 * dtp);
        tp += dtp;
        fp += dfp;
        let precision = tp / (tp + fp);
        ap += precision * dtp / pos;
        best_f1 = best_f1.max(2.0 * precision * (tp / pos) / (precision + tp / pos));
        i = j;
    }
    (auc / (pos * neg), ap, best_f1)
}

/// Event recall at a 1% false-positive rate: the fraction of events (runs of labelled rows)
/// whose highest score is reached or beaten by at most 1% of the unlabelled rows (ties count
/// against the event), so a scorer that flags an event's onset alone still finds it.
fn event_recall(scores: &[f64], labels: &[bool]) -> f64 {
    let mut normal: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| !l)
        .map(|(&x, _)| x)
        .collect();
    normal.sort_by(f64::total_cmp);
    let allowed = normal.len() / 100;
    let (mut events, mut found) = (0usize, 0usize);
    let mut i = 0;
    while i < labels.len() {
        if !labels[i] {
            i += 1;
            continue;
        }
        let mut top = f64::NEG_INFINITY;
        while i < labels.len() && labels[i] {
            top = top.max(scores[i]);
            i += 1;
        }
        events += 1;
        // Unlabelled rows scoring at least `top`.
        let at_least = normal.len() - normal.partition_point(|&x| x < top);
        found += usize::from(at_least <= allowed);
    }
    if events == 0 {
        f64::NAN
    } else {
        found as f64 / events as f64
    }
}

fn zscores(v: &[f64], split: usize, window: Option<usize>) -> Vec<f64> {
    let train = &v[..split];
    let n = train.len() as f64;
    let (m, d) = (train.iter().sum::<f64>() / n, sd(train).max(1e-12));
    (split..v.len())
        .map(|t| match window {
            None => (v[t] - m).abs() / d,
            Some(w) => {
                let past = &v[t.saturating_sub(w)..t];
                let pm = past.iter().sum::<f64>() / past.len() as f64;
                (v[t] - pm).abs() / sd(past).max(1e-12)
            }
        })
        .collect()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dev = root.join("../shared/data/dev");
    if !dev.is_dir() {
        eprintln!("skipped: {} not found", dev.display());
        return;
    }
    let sets = common::env_list(
        "PARTICAST_ANOMALY_SETS",
        "aus-retail,tourism-monthly,vic-elec,peyton-manning,us-gasoline",
    );
    let seed: u64 = std::env::var("PARTICAST_ANOMALY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let tmp = tempfile::tempdir().expect("temp dir");
    // PARTICAST_ANOMALY_DIR keeps the work files (inputs, labels, scores) for inspection.
    let keep = std::env::var_os("PARTICAST_ANOMALY_DIR").map(PathBuf::from);
    let work = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    // No onset suppression, calm score or stuck-sensor rule.
    let plain = s(&["--suppress", "0", "--calm", "0", "--stuck", "0"]);
    let recipes: [(&str, Vec<String>); 3] = [
        ("default", Vec::new()),
        ("tail", [s(&["--method", "tail"]), plain.clone()].concat()),
        (
            // pipelines/nab.toml's `[score]` settings (keep them in step).
            "nab",
            [
                s(&[
                    "--method",
                    "surprise",
                    "--long-window",
                    "8640",
                    "--smooth",
                    "20",
                    "--novelty",
                    "0.025",
                    "--adapt",
                    "200",
                    "--adapt-lr",
                    "1e-4",
                    "--adapt-memory",
                    "20000",
                ]),
                plain,
            ]
            .concat(),
        ),
    ];
    let started = Instant::now();
    let mut out = serde_json::Map::new();
    out.insert(
        "command".into(),
        "cargo bench --bench anomaly --features cli".into(),
    );
    out.insert("seed".into(), seed.into());
    println!(
        "{:<16} {:<9} {:<8} {:>7} {:>7} {:>7} {:>7}",
        "set", "kind", "scorer", "ROC", "PR", "F1", "ev@1%"
    );
    for name in &sets {
        let Some(set) = load(name, &dev) else {
            panic!("PARTICAST_ANOMALY_SETS: unknown set {name}");
        };
        let dir = work.join(set.name);
        std::fs::create_dir_all(&dir).expect("dir");
        let splits: Vec<usize> = set.series.iter().map(|(_, v)| v.len() / 2).collect();
        let train: Vec<(String, Vec<f64>)> = set
            .series
            .iter()
            .zip(&splits)
            .map(|((id, v), &k)| (id.clone(), v[..k].to_vec()))
            .collect();
        let train_csv = dir.join("train.csv");
        write_csv(&train_csv, &train);
        let input = |p: &Path| common::long_input(p);
        let model = dir.join("model");
        let mut args = s(&["train", "--quiet"]);
        args.extend(input(&train_csv));
        args.extend(s(&[
            "--model",
            &model.to_string_lossy(),
            "--seed",
            &seed.to_string(),
        ]));
        let train_s = particast(&args);
        let mut set_out = serde_json::Map::new();
        set_out.insert("series".into(), set.series.len().into());
        set_out.insert("train_seconds".into(), train_s.into());
        for (k, kind) in KINDS.iter().enumerate() {
            if *kind == "seasonal" && set.season < 4 {
                continue;
            }
            let mut rng = Rng(seed.wrapping_mul(1000).wrapping_add(k as u64));
            let injected: Vec<(String, Vec<f64>, Vec<bool>)> = set
                .series
                .iter()
                .zip(&splits)
                .map(|((id, v), &sp)| {
                    let (y, l) = inject(v, sp, set.season, kind, &mut rng);
                    (id.clone(), y, l)
                })
                .collect();
            let csv = dir.join(format!("{kind}.csv"));
            write_csv(
                &csv,
                &injected
                    .iter()
                    .map(|(id, y, _)| (id.clone(), y.clone()))
                    .collect::<Vec<_>>(),
            );
            if keep.is_some() {
                let text: String = injected
                    .iter()
                    .flat_map(|(id, _, l)| {
                        l.iter()
                            .enumerate()
                            .map(move |(t, &b)| format!("{id},{t},{}\n", u8::from(b)))
                    })
                    .collect();
                std::fs::write(
                    dir.join(format!("{kind}-labels.csv")),
                    format!("series_id,time,label\n{text}"),
                )
                .expect("write labels");
            }
            let labels: Vec<bool> = injected
                .iter()
                .zip(&splits)
                .flat_map(|((_, _, l), &sp)| l[sp..].to_vec())
                .collect();
            let mut kind_out = serde_json::Map::new();
            let mut report = |scorer: &str, scores: Vec<f64>| {
                let (roc, pr, f1) = metrics(&scores, &labels);
                let ev = event_recall(&scores, &labels);
                println!(
                    "{:<16} {:<9} {:<8} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
                    set.name, kind, scorer, roc, pr, f1, ev
                );
                kind_out.insert(
                    scorer.into(),
                    serde_json::json!({
                        "roc_auc": roc,
                        "pr_auc": pr,
                        "best_f1": f1,
                        "event_recall_1pct": ev,
                    }),
                );
            };
            for (recipe, flags) in &recipes {
                let scores_path = dir.join(format!("{kind}-{recipe}.parquet"));
                let mut args = s(&["score", "--quiet"]);
                args.extend(input(&csv));
                args.extend(s(&[
                    "--model",
                    &model.to_string_lossy(),
                    "--output",
                    &scores_path.to_string_lossy(),
                ]));
                args.extend(flags.iter().cloned());
                particast(&args);
                let a = read_anomaly(&scores_path);
                let scores: Vec<f64> = injected
                    .iter()
                    .zip(&splits)
                    .flat_map(|((id, _, _), &sp)| a[id][sp..].to_vec())
                    .collect();
                report(recipe, scores);
            }
            let z: Vec<f64> = injected
                .iter()
                .zip(&splits)
                .flat_map(|((_, y, _), &sp)| zscores(y, sp, None))
                .collect();
            report("zscore", z);
            let r: Vec<f64> = injected
                .iter()
                .zip(&splits)
                .flat_map(|((_, y, _), &sp)| zscores(y, sp, Some(1000)))
                .collect();
            report("rolling", r);
            set_out.insert(kind.to_string(), serde_json::Value::Object(kind_out));
        }
        out.insert(set.name.into(), serde_json::Value::Object(set_out));
    }
    out.insert(
        "wall_seconds".into(),
        started.elapsed().as_secs_f64().into(),
    );
    common::write_results("anomaly", &serde_json::Value::Object(out));
}
