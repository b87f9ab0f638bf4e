//! The Numenta Anomaly Benchmark's scoring, as in NAB v1.1 (`nab/sweeper.py`, `nab/scorer.py`).
//!
//! Per file of N rows: the first `min(floor(0.15 N), 750)` rows are a probation period and are not
//! scored. Every other row gets a weight from its position relative to the labelled windows with
//! the scaled sigmoid `s(x) = 2 / (1 + e^{5x}) - 1` (`-1` for `x > 3`): inside a window of width
//! `w` whose right edge is row `r`, `x = -(r - i + 1) / w` and a detection there counts
//! `tpWeight * s(x) / s(-1)`; only the earliest detection in a window counts (the largest weight).
//! Outside windows, `x = |r_prev - i| / (w_prev - 1)` after the last window (`s = -1` before any)
//! and a detection costs `fpWeight * s(x)`. Each window with no detection costs `-fnWeight`.
//! The detection threshold is chosen for the whole corpus to maximise the total score, by an
//! exact sweep over the distinct anomaly scores. The normalised score is
//! `100 (S - S_null) / (S_perfect - S_null)` with `S_null = -fnWeight * windows` (no detection)
//! and `S_perfect = tpWeight * windows` (every window detected at its first row).

use serde::{Deserialize, Serialize};

/// A scoring profile: NAB's cost matrix.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Profile name.
    pub name: &'static str,
    /// Weight of a true positive.
    pub tp: f64,
    /// Weight of a false positive.
    pub fp: f64,
    /// Weight of a missed window.
    pub fn_: f64,
}

/// NAB's three profiles (config/profiles.json).
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

/// One data file's detector output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NabFile {
    /// Relative path, e.g. `realKnownCause/nyc_taxi.csv`.
    pub name: String,
    /// Anomaly score of every row, in file order.
    pub scores: Vec<f64>,
    /// Labelled windows as inclusive row ranges.
    pub windows: Vec<(usize, usize)>,
}

/// The corpus result for one profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NabResult {
    /// Profile name.
    pub profile: String,
    /// The threshold that maximises the raw score.
    pub threshold: f64,
    /// Raw score at that threshold.
    pub raw: f64,
    /// Normalised score (null detector 0, perfect detector 100).
    pub normalized: f64,
    /// Windows in the corpus.
    pub windows: usize,
}

/// NAB's probation period of a file of `n` rows.
pub fn probation(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// A scored row: its anomaly score, its window (global index) and its unweighted sweep value.
struct Point {
    score: f64,
    window: Option<usize>,
    unweighted: f64,
}

fn points(files: &[NabFile]) -> (Vec<Point>, usize) {
    let mut out = Vec::new();
    let mut window_base = 0;
    for f in files {
        let n = f.scores.len();
        let prob = probation(n);
        let mut windows = f.windows.clone();
        windows.sort();
        let mut next = 0;
        let mut prev: Option<(usize, usize)> = None; // (right edge, width)
        let mut current: Option<(usize, usize, usize)> = None; // (window index, right, width)
        for i in 0..n {
            if current.is_none() && next < windows.len() && windows[next].0 == i {
                let (l, r) = windows[next];
                current = Some((next, r, r - l + 1));
            }
            let (window, unweighted) = match current {
                Some((w, r, width)) => {
                    let pos = -((r as f64 - i as f64 + 1.0) / width as f64);
                    (Some(window_base + w), scaled_sigmoid(pos))
                }
                None => match prev {
                    None => (None, -1.0),
                    Some((r, width)) => {
                        let pos = (r as f64 - i as f64).abs() / (width as f64 - 1.0);
                        (None, scaled_sigmoid(pos))
                    }
                },
            };
            if i >= prob {
                out.push(Point {
                    score: f.scores[i],
                    window,
                    unweighted,
                });
            }
            if let Some((_, r, width)) = current {
                if i == r {
                    prev = Some((r, width));
                    current = None;
                    next += 1;
                }
            }
        }
        window_base += windows.len();
    }
    (out, window_base)
}

/// Scores a corpus of detector outputs under one profile, with the corpus-optimal threshold.
pub fn score_corpus(files: &[NabFile], profile: &Profile) -> NabResult {
    let (mut pts, n_windows) = points(files);
    pts.sort_by(|a, b| b.score.total_cmp(&a.score));
    let max_tp = scaled_sigmoid(-1.0);
    let mut best_tp: Vec<Option<f64>> = vec![None; n_windows];
    let null = -profile.fn_ * n_windows as f64;
    let mut total = null;
    // No detection at all: a threshold above every score.
    let mut best = (f64::INFINITY, total);
    let mut i = 0;
    while i < pts.len() {
        let threshold = pts[i].score;
        while i < pts.len() && pts[i].score == threshold {
            let p = &pts[i];
            match p.window {
                Some(w) => {
                    let tp = p.unweighted * profile.tp / max_tp;
                    match best_tp[w] {
                        None => {
                            total += profile.fn_ + tp;
                            best_tp[w] = Some(tp);
                        }
                        Some(old) if tp > old => {
                            total += tp - old;
                            best_tp[w] = Some(tp);
                        }
                        Some(_) => {}
                    }
                }
                None => total += p.unweighted * profile.fp,
            }
            i += 1;
        }
        if total > best.1 {
            best = (threshold, total);
        }
    }
    let perfect = profile.tp * n_windows as f64;
    NabResult {
        profile: profile.name.to_string(),
        threshold: best.0,
        raw: best.1,
        normalized: 100.0 * (best.1 - null) / (perfect - null),
        windows: n_windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_null_detectors_score_100_and_0() {
        let windows = vec![(300, 319), (700, 719)];
        let mut perfect = vec![0.0; 1000];
        for (l, _) in &windows {
            perfect[*l] = 1.0;
        }
        let files = [NabFile {
            name: "a".into(),
            scores: perfect,
            windows: windows.clone(),
        }];
        for p in &PROFILES {
            let r = score_corpus(&files, p);
            assert!((r.normalized - 100.0).abs() < 1e-9, "{r:?}");
        }
        let null = [NabFile {
            name: "a".into(),
            scores: vec![0.5; 1000],
            windows,
        }];
        for p in &PROFILES {
            assert!(score_corpus(&null, p).normalized.abs() < 1e-9);
        }
    }

    #[test]
    fn probation_is_15_percent_up_to_750() {
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(22695), 750);
    }
}
