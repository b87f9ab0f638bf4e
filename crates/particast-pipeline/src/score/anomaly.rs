//! Anomaly scores from the predictive distribution: the recipes ([`AnomalyMethod`]), their
//! score functions, the "too calm" score of runs that are too predictable ([`calm_score`]),
//! and the causal per-series memory they keep (`Tracker`) while a series is scored, saved in
//! its [`SeriesState`] so incremental scoring continues it exactly.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use super::state::SeriesState;
use super::ScoreConfig;

/// The anomaly score's recipe (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AnomalyMethod {
    /// One minus the two-sided tail probability of the observation.
    Tail,
    /// Short-term against long-term surprise (NLL), as a probability.
    Likelihood,
    /// The rank of the recent surprise (mean NLL of the last `smooth` observations) among the
    /// NLLs of the previous `long_window` observations, as a fraction; beyond the largest of
    /// them it keeps rising with the excess (relative to the largest minus the median, on a log
    /// scale), so the most extreme surprises still rank above the others. Unlike a z-score it
    /// does not assume the NLLs are Gaussian: on a spiky series a spike only ranks as high as
    /// it is rare there. The default: ranked per series, a series the model fits poorly does
    /// not flood the top of a pooled ranking (`cargo bench --bench anomaly`).
    #[default]
    Rank,
    /// A calibrated surprise: peaks over threshold. A generalized Pareto distribution is fitted
    /// (by moments, shape in [0, 0.45]) to the excesses of the top 2% of the previous
    /// `long_window` NLLs over their 98% quantile; the score of the recent surprise (as for
    /// `rank`) is one minus its tail probability under that fit, and its rank below the
    /// quantile ([`pot_score`]). Heavy tails per series, like the rank, but with a smooth,
    /// extrapolating tail where the rank only counts the few largest past values.
    Pot,
    /// A calibrated surprise in the spirit of Numenta's anomaly likelihood, over the rank of
    /// each NLL among the previous `long_window` (so the NLLs' own heavy-tailed distribution
    /// calibrates it, per series): the rank `u` raised to [`SURPRISE_POWER`] (near 0 unless the
    /// observation is among the series' most surprising), averaged over the last `smooth`
    /// observations; a Gaussian fitted to the previous `long_window` of those averages (mean at
    /// least [`SURPRISE_MEAN_FLOOR`], variance at least [`SURPRISE_VAR_FLOOR`]) gives the
    /// two-sided tail probability `q` of the current one, and the score is `ln(q + 1e-10) /
    /// ln(1e-10)`, in [0, 1] (0.5 at `q = 1e-5`). Alarm hold-off: while `q` stays below
    /// [`SURPRISE_RED`] after the first step of a run, it counts as [`SURPRISE_HOLD`], so a
    /// sustained surprise raises one alarm ([`surprise_score`]). Fewer than
    /// [`SURPRISE_MIN_FIT`] past averages: 0. `cargo bench --bench nab`: with `smooth = 20`,
    /// `novelty = 0.025` and online adaptation the recipe of `pipelines/nab.toml`.
    Surprise,
}

impl AnomalyMethod {
    /// Whether the method keeps a sorted copy of its window.
    fn keeps_sorted(self) -> bool {
        matches!(
            self,
            AnomalyMethod::Rank | AnomalyMethod::Pot | AnomalyMethod::Surprise
        )
    }
}

/// The power of the rank in the `surprise` method: `u^10` has mean 1/11 for a calibrated
/// series, is 0.35 at the 90th percentile and 0.90 at the 99th.
pub const SURPRISE_POWER: i32 = 10;
/// Fewer past averages than this: the `surprise` method scores 0.
pub const SURPRISE_MIN_FIT: usize = 100;
/// The smallest mean of the `surprise` method's Gaussian (as Numenta's).
pub const SURPRISE_MEAN_FLOOR: f64 = 0.03;
/// The smallest variance of the `surprise` method's Gaussian (as Numenta's).
pub const SURPRISE_VAR_FLOOR: f64 = 3e-4;
/// The `surprise` method's alarm level: a tail probability at or below it is an alarm.
pub const SURPRISE_RED: f64 = 1e-5;
/// The tail probability that a continued alarm counts as (the `surprise` method's hold-off).
pub const SURPRISE_HOLD: f64 = 1e-3;

/// The memory of the `surprise` method: the last `smooth` powered ranks, the last
/// `long_window` of their means with the running sum and sum of squares of those, and the
/// previous tail probability.
#[derive(Clone, Debug, Default)]
struct Surprise {
    raw: VecDeque<f64>,
    means: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    prev_q: f64,
}

impl Surprise {
    /// The score of an observation whose NLL ranks `u` (see [`AnomalyMethod::Surprise`]).
    fn step(&mut self, u: f64, smooth: usize, long_window: usize) -> f64 {
        let r = if u.is_nan() {
            0.0
        } else {
            u.clamp(0.0, 1.0).powi(SURPRISE_POWER)
        };
        self.raw.push_back(r);
        while self.raw.len() > smooth.max(1) {
            self.raw.pop_front();
        }
        let a = self.raw.iter().sum::<f64>() / self.raw.len() as f64;
        let m = self.means.len();
        let q = if m >= SURPRISE_MIN_FIT {
            let mean = self.sum / m as f64;
            let var = (self.sum_sq / m as f64 - mean * mean).max(SURPRISE_VAR_FLOOR);
            Some(gaussian_two_sided_tail(
                a,
                mean.max(SURPRISE_MEAN_FLOOR),
                var.sqrt(),
            ))
        } else {
            None
        };
        let score = surprise_score(q.unwrap_or(1.0), self.prev_q);
        self.prev_q = q.unwrap_or(1.0);
        self.means.push_back(a);
        self.sum += a;
        self.sum_sq += a * a;
        while self.means.len() > long_window.max(1) {
            if let Some(o) = self.means.pop_front() {
                self.sum -= o;
                self.sum_sq -= o * o;
            }
        }
        if q.is_some() {
            score
        } else {
            0.0
        }
    }
}

/// The tail probability of `x` under a Gaussian of `mean` and `sd`, counted from the mean in
/// the direction of `x` (Numenta's `tailProbability`: a value below the mean is reflected).
fn gaussian_two_sided_tail(x: f64, mean: f64, sd: f64) -> f64 {
    use statrs::function::erf::erfc;
    let x = if x < mean { 2.0 * mean - x } else { x };
    0.5 * erfc((x - mean) / sd / std::f64::consts::SQRT_2)
}

/// The `surprise` method's score of a tail probability `q` when the previous step's was
/// `prev_q`: `ln(q' + 1e-10) / ln(1e-10)` clamped to [0, 1], with `q' = SURPRISE_HOLD` when
/// both are at most [`SURPRISE_RED`] (the hold-off of a continued alarm) and `q' = q` otherwise.
pub fn surprise_score(q: f64, prev_q: f64) -> f64 {
    let q = if q <= SURPRISE_RED && prev_q <= SURPRISE_RED {
        SURPRISE_HOLD
    } else {
        q
    };
    ((q + 1e-10).ln() / 1e-10f64.ln()).clamp(0.0, 1.0)
}

/// Whether `v` lies outside the range `[lo, hi]` widened by `tolerance` times its width on
/// each side. A range of zero width flags nothing (Numenta's spatial anomaly).
pub fn is_novel(lo: f64, hi: f64, v: f64, tolerance: f64) -> bool {
    if hi.is_nan() || lo.is_nan() || hi <= lo {
        return false;
    }
    let t = tolerance * (hi - lo);
    v > hi + t || v < lo - t
}

/// Fewer observed values than this in the window: the novelty rule flags nothing.
pub const NOVELTY_MIN_HISTORY: usize = 10;

/// The stuck-sensor score of the value `x` after the `past` values of its series (oldest
/// first, NaN where missing; the last `long_window` rows): with `r` the length of the run of
/// values equal to `x` that `x` ends (`x` included), and the run length of every earlier row
/// of the window (counted within the window), the rank of `r` among those lengths
/// ([`rank_score`]; beyond the longest it keeps rising with the excess, with the window's
/// length in place of the count of earlier rows), so a run is as
/// surprising as it is long for this series; 0 while `r < min_run` or with fewer than
/// [`NOVELTY_MIN_HISTORY`] earlier rows. A stuck sensor repeats one value exactly, which a
/// continuous predictive distribution gives probability 0 however well it forecasts the value;
/// in rounded or count data, where short repeats are ordinary, the series' own past runs set
/// the bar. O(1) unless `r >= min_run`, then O(W).
pub fn stuck_score(past: &VecDeque<f64>, x: f64, min_run: usize) -> f64 {
    if x.is_nan() || min_run == 0 {
        return 0.0;
    }
    // The run's earlier rows at the end of the window.
    let tail = past.iter().rev().take_while(|&&v| v == x).count();
    let r = tail + 1;
    if r < min_run {
        return 0.0;
    }
    let before = past.len() - tail;
    if before < NOVELTY_MIN_HISTORY {
        return 0.0;
    }
    // The earlier rows' run lengths, in one pass without sorting: what `rank_score` reads of
    // them (counts below and at `r`, the maximum, and the median only beyond it).
    let lengths = || {
        let mut run = 0usize;
        let mut prev = f64::NAN;
        past.iter().take(before).map(move |&v| {
            // NaN (missing) equals nothing: it breaks a run.
            run = if v == prev { run + 1 } else { 1 };
            prev = v;
            run
        })
    };
    let (mut below, mut at, mut max) = (0usize, 0usize, 0usize);
    for len in lengths() {
        below += usize::from(len < r);
        at += usize::from(len == r);
        max = max.max(len);
    }
    let m = before as f64;
    if r <= max {
        return (below as f64 + 0.5 * at as f64) / m;
    }
    // The median (the `m / 2`-th smallest) from a histogram of the lengths.
    let mut counts = vec![0usize; max + 1];
    lengths().for_each(|len| counts[len] += 1);
    let mut seen = 0;
    let median = counts
        .iter()
        .position(|&c| {
            seen += c;
            seen > before / 2
        })
        .unwrap_or(max);
    // Beyond the longest earlier run, the whole window counts (rather than its rows before
    // this run, fewer as the run grows), so a longer run never scores lower.
    rank_beyond(r as f64, max as f64, median as f64, past.len())
}

/// The minimum and maximum of the last `window` rows of one target (missing rows: NaN), by
/// monotonic queues: O(1) per row, and exact, so a state rebuilt from the values continues it
/// bit for bit.
#[derive(Clone, Debug, Default)]
struct Range {
    values: VecDeque<f64>,
    mins: VecDeque<(u64, f64)>,
    maxs: VecDeque<(u64, f64)>,
    next: u64,
    observed: usize,
}

impl Range {
    fn push(&mut self, x: f64, window: usize) {
        let i = self.next;
        self.next += 1;
        self.values.push_back(x);
        if !x.is_nan() {
            self.observed += 1;
            while self.mins.back().is_some_and(|&(_, m)| m >= x) {
                self.mins.pop_back();
            }
            self.mins.push_back((i, x));
            while self.maxs.back().is_some_and(|&(_, m)| m <= x) {
                self.maxs.pop_back();
            }
            self.maxs.push_back((i, x));
        }
        while self.values.len() > window.max(1) {
            if self.values.pop_front().is_some_and(|o| !o.is_nan()) {
                self.observed -= 1;
            }
        }
        let first = self.next - self.values.len() as u64;
        while self.mins.front().is_some_and(|&(j, _)| j < first) {
            self.mins.pop_front();
        }
        while self.maxs.front().is_some_and(|&(j, _)| j < first) {
            self.maxs.pop_front();
        }
    }

    /// `(min, max)` of the window, once it holds [`NOVELTY_MIN_HISTORY`] observed values.
    fn bounds(&self) -> Option<(f64, f64)> {
        if self.observed < NOVELTY_MIN_HISTORY {
            return None;
        }
        Some((self.mins.front()?.1, self.maxs.front()?.1))
    }
}

/// The causal memory of the anomaly method of one series: the last raw values (tail scores
/// or NLLs), the rank method's sorted copy of them, the last tail scores of the calm score,
/// and the last scores before suppression.
pub(crate) struct Tracker<'a> {
    cfg: &'a ScoreConfig,
    recent: VecDeque<f64>,
    /// The rank method's sorted copy of `recent` (kept equal to it between steps).
    sorted: Vec<f64>,
    /// The last `long_window + calm` tail scores `1 - p` (only with `calm > 0`).
    recent_calm: VecDeque<f64>,
    recent_anomaly: VecDeque<f64>,
    /// The `surprise` method's memory.
    surprise: Surprise,
    /// The range of each target's last `long_window` rows (novelty).
    ranges: Vec<Range>,
}

impl<'a> Tracker<'a> {
    /// Continues the memory saved in `state`.
    pub(crate) fn resume(cfg: &'a ScoreConfig, state: &SeriesState) -> Self {
        let recent: VecDeque<f64> = state.recent_scores.iter().copied().collect();
        let sorted: Vec<f64> = if cfg.method.keeps_sorted() {
            let mut v: Vec<f64> = recent.iter().copied().collect();
            v.sort_by(f64::total_cmp);
            v
        } else {
            Vec::new()
        };
        Tracker {
            cfg,
            recent,
            sorted,
            recent_calm: state.recent_calm.iter().copied().collect(),
            recent_anomaly: state.recent_anomaly.iter().copied().collect(),
            surprise: Surprise {
                raw: state.recent_raw.iter().copied().collect(),
                means: state.recent_mean.iter().copied().collect(),
                sum: state.surprise_fit.first().copied().unwrap_or(0.0),
                sum_sq: state.surprise_fit.get(1).copied().unwrap_or(0.0),
                prev_q: state.surprise_fit.get(2).copied().unwrap_or(1.0),
            },
            ranges: Self::ranges_of(&state.recent_values, state.scale.len(), cfg.long_window),
        }
    }

    /// The novelty ranges of `d` targets rebuilt from saved `[rows][d]` values (empty: none
    /// yet); only the last `window` rows count.
    fn ranges_of(saved: &[f64], d: usize, window: usize) -> Vec<Range> {
        if d == 0 || saved.is_empty() {
            return Vec::new();
        }
        let rows = (saved.len() / d).min(window.max(1));
        let mut ranges = vec![Range::default(); d];
        for row in saved[saved.len() - rows * d..].chunks(d) {
            for (r, &x) in ranges.iter_mut().zip(row) {
                r.push(x, window);
            }
        }
        ranges
    }

    /// The anomaly score of an observation with two-sided tail probability `p`, NLL `nll` and
    /// values `values` (original units, one per target; `None` where missing).
    pub(crate) fn push(&mut self, p: f64, nll: f64, values: &[Option<f64>]) -> f64 {
        let anomaly = self.push_surprise(p, nll);
        if self.ranges.len() != values.len() {
            self.ranges = vec![Range::default(); values.len()];
        }
        let novel = self.cfg.novelty.is_some_and(|tol| {
            self.ranges
                .iter()
                .zip(values)
                .any(|(r, v)| match (r.bounds(), v) {
                    (Some((lo, hi)), Some(v)) => is_novel(lo, hi, *v, tol),
                    _ => false,
                })
        });
        let anomaly = if self.cfg.stuck == 0 {
            anomaly
        } else {
            // Bonferroni over the targets, as the tail probability's.
            let d = values.len() as f64;
            self.ranges
                .iter()
                .zip(values)
                .filter_map(|(r, v)| v.map(|v| stuck_score(&r.values, v, self.cfg.stuck)))
                .map(|u| (1.0 - d * (1.0 - u)).max(0.0))
                .fold(anomaly, f64::max)
        };
        for (r, v) in self.ranges.iter_mut().zip(values) {
            r.push(v.unwrap_or(f64::NAN), self.cfg.long_window);
        }
        if novel {
            1.0
        } else {
            anomaly
        }
    }

    /// The anomaly score before the novelty rule.
    fn push_surprise(&mut self, p: f64, nll: f64) -> f64 {
        let cfg = self.cfg;
        let recent = &mut self.recent;
        let sorted = &mut self.sorted;
        let (raw_value, keep) = match cfg.method {
            AnomalyMethod::Tail => (1.0 - p, cfg.smooth.max(1)),
            AnomalyMethod::Likelihood => (nll, cfg.long_window.max(cfg.smooth).max(2)),
            // The previous long_window NLLs and this one.
            AnomalyMethod::Rank | AnomalyMethod::Pot | AnomalyMethod::Surprise => {
                (nll, cfg.long_window.max(cfg.smooth).max(1) + 1)
            }
        };
        recent.push_back(raw_value);
        while recent.len() > keep {
            if let Some(old) = recent.pop_front() {
                if cfg.method.keeps_sorted() {
                    // Always present (`sorted` mirrors `recent`); checked all the same.
                    let i = sorted.partition_point(|x| x.total_cmp(&old).is_lt());
                    if i < sorted.len() {
                        sorted.remove(i);
                    }
                }
            }
        }
        let short = cfg.smooth.max(1).min(recent.len());
        let short_mean = recent.iter().rev().take(short).sum::<f64>() / short as f64;
        let anomaly = match cfg.method {
            AnomalyMethod::Tail => short_mean,
            AnomalyMethod::Likelihood => {
                let n = recent.len() as f64;
                if recent.len() < 10 {
                    0.5
                } else {
                    let mean = recent.iter().sum::<f64>() / n;
                    let var = recent.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                    let sd = var.sqrt().max(1e-9 * (1.0 + mean.abs()));
                    likelihood_score((short_mean - mean) / sd)
                }
            }
            AnomalyMethod::Rank | AnomalyMethod::Pot | AnomalyMethod::Surprise => {
                // `sorted` holds the previous NLLs; then this one joins them.
                let score = match cfg.method {
                    AnomalyMethod::Pot => pot_score(sorted, short_mean),
                    // The rank of this NLL; the method smooths the powered ranks itself.
                    AnomalyMethod::Surprise => {
                        self.surprise
                            .step(rank_score(sorted, nll), cfg.smooth, cfg.long_window)
                    }
                    _ => rank_score(sorted, short_mean),
                };
                let i = sorted.partition_point(|x| x.total_cmp(&raw_value).is_lt());
                sorted.insert(i, raw_value);
                score
            }
        };
        let anomaly = if cfg.calm == 0 {
            anomaly
        } else {
            let calm = &mut self.recent_calm;
            calm.push_back(1.0 - p);
            while calm.len() > cfg.long_window + cfg.calm {
                calm.pop_front();
            }
            let all: &[f64] = calm.make_contiguous();
            let k = cfg.calm.min(all.len());
            let (history, window) = all.split_at(all.len() - k);
            anomaly.max(calm_score(history, window))
        };
        if cfg.suppress == 0 {
            return anomaly;
        }
        // O(W) per step; W is a few hundred at most, well under the kernel's cost.
        let onset = self.recent_anomaly.iter().all(|&a| anomaly > a);
        self.recent_anomaly.push_back(anomaly);
        while self.recent_anomaly.len() > cfg.suppress {
            self.recent_anomaly.pop_front();
        }
        if onset {
            anomaly
        } else {
            0.0
        }
    }

    /// Saves the memory into `state`.
    pub(crate) fn save(self, state: &mut SeriesState) {
        state.recent_scores = self.recent.into_iter().collect();
        state.recent_calm = self.recent_calm.into_iter().collect();
        state.recent_anomaly = self.recent_anomaly.into_iter().collect();
        if self.cfg.method == AnomalyMethod::Surprise {
            state.recent_raw = self.surprise.raw.into_iter().collect();
            state.recent_mean = self.surprise.means.into_iter().collect();
            state.surprise_fit = vec![
                self.surprise.sum,
                self.surprise.sum_sq,
                self.surprise.prev_q,
            ];
        }
        // Whole rows of the window, NaN where a value is missing.
        let rows = self
            .ranges
            .iter()
            .map(|r| r.values.len())
            .min()
            .unwrap_or(0);
        state.recent_values = (0..rows)
            .flat_map(|k| {
                self.ranges
                    .iter()
                    .map(move |r| r.values[r.values.len() - rows + k])
            })
            .collect();
    }
}

/// The likelihood method's score of a z-value: `1 - q(z)`, with `q` the upper normal tail
/// probability, while `q >= 1e-6` (z up to 4.75); beyond, `1 - 1e-6 / (1 + ln(1 + log10(1e-6 / q)))`,
/// which continues `1 - q` continuously and strictly increases with z without ever reaching 1,
/// so that ties at 1.0 (Gaussian CDFs round to 1 from z = 8.3) cannot hide the most extreme
/// surprises from a threshold. `log10 q` is exact (erfc) up to z = 30 and asymptotic beyond.
pub fn likelihood_score(z: f64) -> f64 {
    use statrs::function::erf::erfc;
    const Q0: f64 = 1e-6;
    if z.is_nan() {
        return 0.5;
    }
    let q = 0.5 * erfc(z / std::f64::consts::SQRT_2);
    if q >= Q0 {
        return 1.0 - q;
    }
    let log10_q = if z < 30.0 {
        q.log10()
    } else {
        // ln q = -z^2/2 - ln(z sqrt(2 pi)) + O(1/z^2)
        (-0.5 * z * z - (z * (2.0 * std::f64::consts::PI).sqrt()).ln()) / std::f64::consts::LN_10
    };
    if !log10_q.is_finite() {
        return 1.0 - f64::EPSILON;
    }
    1.0 - Q0 / (1.0 + (Q0.log10() - log10_q).ln_1p())
}

/// The rank method's score of `v` among the ascending `sorted` past values: the fraction
/// below it (ties count half) while `v` is at most their maximum; beyond it,
/// `1 - 0.5 / m / (1 + ln(1 + excess / (max - median)))`, which continues the fraction
/// continuously and rises strictly with the excess without reaching 1 (the logarithm keeps even
/// astronomically large excesses below 1 in f64). Fewer than 10 past values: 0.5.
pub fn rank_score(sorted: &[f64], v: f64) -> f64 {
    let m = sorted.len();
    if m < 10 || v.is_nan() {
        return 0.5;
    }
    let max = sorted[m - 1];
    if v > max {
        return rank_beyond(v, max, sorted[m / 2], m);
    }
    let below = sorted.partition_point(|x| *x < v);
    let at_most = sorted.partition_point(|x| *x <= v);
    (below as f64 + 0.5 * (at_most - below) as f64) / m as f64
}

/// [`rank_score`] of `v` beyond the largest of `m` past values, whose median is `median`:
/// `1 - 0.5 / m / (1 + ln(1 + (v - max) / (max - median)))`.
fn rank_beyond(v: f64, max: f64, median: f64, m: usize) -> f64 {
    let spread = (max - median).max(1e-12 * (1.0 + max.abs()));
    1.0 - 0.5 / m as f64 / (1.0 + ((v - max) / spread).ln_1p())
}

/// How much stronger the evidence of a calm run must be than that of a surprise to score the
/// same: the calm score is `1 - CALM_PENALTY * P(Z <= z)`. Both scores are then one minus
/// a p-value, the calm one Bonferroni-weighted. Measured (`cargo bench --bench anomaly`,
/// five dev sets): with 1 the calm test fires as often as a surprise by chance and costs
/// spikes and variance changes up to a fifth of their average precision; with 3 they keep
/// it (within 0.03) and flat lines are still found above both z-score baselines on four of
/// the five sets.
pub const CALM_PENALTY: f64 = 3.0;

/// Fewer past tail scores than this: the calm score compares with a calibrated model's
/// (tail scores uniform on [0, 1], independent).
pub const CALM_MIN_HISTORY: usize = 50;

/// The "too calm" score of the last tail scores `window` (each `1 - p`, `p` the two-sided
/// tail probability) against the earlier ones, `history`: with `z` the z-value of the
/// window's mean against the mean and standard deviation (at least 0.01) of the means of
/// every run of as many consecutive values in the history, `1 - CALM_PENALTY * P(Z <= z)`,
/// continued below 1 as [`likelihood_score`] continues the normal CDF, and at least 0.
/// Runs of the history, not the variance of one value over `k`: tail scores are
/// autocorrelated wherever the model is off for a while, and a run of low ones must be rare
/// for this series, not for a perfect model; and the run must be calm for a calibrated model
/// too (`z` is the larger of the two z-values, the second against the mean of `k` uniform
/// values), so where the model has been off for long a run of ordinary tail scores is not
/// flagged. A stuck sensor, a flat-lined series or a copy of
/// the recent past lands every observation near the centre of its forecast: each tail score
/// is low, no single one is surprising, and only their run is. Empty window: 0.
pub fn calm_score(history: &[f64], window: &[f64]) -> f64 {
    let k = window.len();
    if k == 0 {
        return 0.0;
    }
    let window_mean = window.iter().sum::<f64>() / k as f64;
    // Against a calibrated model (tail scores uniform on [0, 1], independent): the reference
    // of a short history, and a second condition otherwise (where the model has been off for
    // long, every tail score high, a run of ordinary ones is calm only against that history).
    let calibrated = (window_mean - 0.5) / (1.0 / 12.0 / k as f64).sqrt();
    let z = if history.len() < CALM_MIN_HISTORY.max(k) {
        calibrated
    } else {
        // The means of the runs history[i..i + k], by a sliding sum, in one pass (values in
        // [0, 1]: the variance as E[m^2] - E[m]^2 loses nothing that matters next to its
        // floor of 1e-4).
        let runs = (history.len() - k + 1) as f64;
        let mut sum: f64 = history[..k].iter().sum();
        let (mut total, mut sq) = (sum / k as f64, (sum / k as f64).powi(2));
        for i in k..history.len() {
            sum += history[i] - history[i - k];
            let m = sum / k as f64;
            total += m;
            sq += m * m;
        }
        let mean = total / runs;
        let sd = (sq / runs - mean * mean).max(0.0).sqrt().max(1e-2);
        ((window_mean - mean) / sd).max(calibrated)
    };
    // P(Z <= z) = 1 - likelihood_score(-z) while it is above 1e-6.
    (1.0 - CALM_PENALTY * (1.0 - likelihood_score(-z))).max(0.0)
}

/// The fraction of the past values that [`pot_score`]'s tail fit reads.
pub const POT_FRACTION: f64 = 0.02;

/// The `pot` method's score of `v` among the ascending `sorted` past values: with `u` their
/// `1 - POT_FRACTION` quantile, `v <= u` scores its rank (as [`rank_score`]); beyond, one minus
/// the tail probability `P(X > v) = f (1 + xi (v - u) / sigma)^(-1/xi)` of a generalized Pareto
/// fitted by moments to the excesses over `u` (`f` the fraction above `u`; the shape `xi` kept in
/// [0, 0.45], `xi = 0` the exponential). Below a tail probability of 1e-12 the score keeps rising
/// with `-log P` without reaching 1, so extreme surprises stay ordered. Fewer than 100 past
/// values: the rank score.
pub fn pot_score(sorted: &[f64], v: f64) -> f64 {
    let m = sorted.len();
    if m < 100 || v.is_nan() {
        return rank_score(sorted, v);
    }
    let k = ((1.0 - POT_FRACTION) * m as f64) as usize;
    let u = sorted[k.min(m - 1)];
    if v <= u {
        return rank_score(sorted, v);
    }
    let excess = &sorted[k..];
    let n = excess.len() as f64;
    let mean = excess.iter().map(|x| x - u).sum::<f64>() / n;
    let var = excess.iter().map(|x| (x - u - mean).powi(2)).sum::<f64>() / n;
    let floor = 1e-12 * (1.0 + u.abs());
    let mean = mean.max(floor);
    let (xi, sigma) = if var > 0.0 {
        let r = mean * mean / var;
        (
            (0.5 * (1.0 - r)).clamp(0.0, 0.45),
            (0.5 * mean * (r + 1.0)).max(floor),
        )
    } else {
        (0.0, mean)
    };
    let z = (v - u) / sigma;
    let log_p = (n / m as f64).ln() - if xi > 1e-9 { (xi * z).ln_1p() / xi } else { z };
    const LOG_P0: f64 = -27.631_021_115_928_547; // ln 1e-12
    if log_p > LOG_P0 {
        // Continuous with the rank at u (its tail probability there is about n / m).
        1.0 - log_p.exp()
    } else {
        1.0 - 1e-12 / (1.0 + ((LOG_P0 - log_p) / std::f64::consts::LN_10).ln_1p())
    }
}

#[cfg(test)]
mod tests {
    use super::{calm_score, likelihood_score, pot_score, rank_score, CALM_PENALTY};
    use super::{is_novel, surprise_score, Range, Surprise, Tracker, NOVELTY_MIN_HISTORY};
    use super::{stuck_score, SURPRISE_HOLD, SURPRISE_MIN_FIT};
    use std::collections::VecDeque;

    #[test]
    fn surprise_score_is_a_log_scaled_tail_probability_with_a_hold_off() {
        assert!(surprise_score(1.0, 1.0).abs() < 1e-9);
        assert!((surprise_score(1e-5, 1.0) - 0.5).abs() < 1e-4);
        assert_eq!(surprise_score(0.0, 1.0), 1.0);
        // Strictly rising as q falls.
        assert!(surprise_score(1e-3, 1.0) < surprise_score(1e-4, 1.0));
        // A continued alarm (both in the red zone) counts as the hold-off probability only.
        assert_eq!(
            surprise_score(1e-9, 1e-7),
            surprise_score(SURPRISE_HOLD, 1.0)
        );
        assert!(surprise_score(1e-9, 1e-4) > 0.89);
    }

    #[test]
    fn the_surprise_method_raises_one_alarm_for_a_sustained_surprise() {
        let mut s = Surprise {
            prev_q: 1.0,
            ..Default::default()
        };
        // Calibrated ranks (a fixed permutation), then a run of top ranks.
        let calm: Vec<f64> = (0..1000)
            .map(|i| ((i * 263) % 1000) as f64 / 1000.0)
            .collect();
        let scores: Vec<f64> = calm.iter().map(|&u| s.step(u, 20, 500)).collect();
        assert!(scores[..SURPRISE_MIN_FIT].iter().all(|&x| x == 0.0));
        assert!(
            scores.iter().all(|&x| (0.0..0.5).contains(&x)),
            "no alarm in calm data"
        );
        let run: Vec<f64> = (0..30).map(|_| s.step(0.999, 20, 500)).collect();
        // One alarm at the onset (q below 1e-5, score above 0.5), then the hold-off.
        let alarms = run.iter().filter(|&&x| x > 0.5).count();
        assert_eq!(alarms, 1, "{run:?}");
        let held = surprise_score(SURPRISE_HOLD, 1.0);
        assert!(run.iter().rev().take(20).all(|&x| x == held), "{run:?}");
        // The unsmoothed, powered rank: a NaN rank counts as no surprise.
        assert!(s.step(f64::NAN, 20, 500).is_finite());
    }

    #[test]
    fn novelty_is_a_value_beyond_the_widened_range_seen() {
        assert!(!is_novel(0.0, 10.0, 10.4, 0.05));
        assert!(is_novel(0.0, 10.0, 10.6, 0.05));
        assert!(is_novel(0.0, 10.0, -0.6, 0.05));
        assert!(is_novel(0.0, 10.0, 10.01, 0.0));
        // A range of zero width flags nothing.
        assert!(!is_novel(5.0, 5.0, 100.0, 0.05));
    }

    #[test]
    fn the_novelty_range_is_that_of_the_window_and_rebuilds_exactly() {
        let mut r = Range::default();
        let xs: Vec<f64> = (0..200)
            .map(|i| {
                if i % 7 == 3 {
                    f64::NAN
                } else {
                    ((i * 37) % 101) as f64
                }
            })
            .collect();
        for (i, &x) in xs.iter().enumerate() {
            r.push(x, 50);
            let w: Vec<f64> = xs[(i + 1).saturating_sub(50)..=i]
                .iter()
                .copied()
                .filter(|x| !x.is_nan())
                .collect();
            let want = (w.len() >= NOVELTY_MIN_HISTORY).then(|| {
                (
                    w.iter().copied().fold(f64::INFINITY, f64::min),
                    w.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                )
            });
            assert_eq!(r.bounds(), want, "row {i}");
        }
        let rebuilt = Tracker::ranges_of(&r.values.iter().copied().collect::<Vec<_>>(), 1, 50);
        assert_eq!(rebuilt[0].bounds(), r.bounds());
    }

    #[test]
    fn calm_score_flags_a_run_of_central_observations_only() {
        // A calibrated history: tail scores spread over [0, 1] in no order (a fixed
        // pseudo-random permutation).
        let history: Vec<f64> = (0..400)
            .map(|i| ((i * 263) % 400) as f64 / 400.0 + 1.0 / 800.0)
            .collect();
        // A typical window scores 0: no evidence of calm.
        assert_eq!(calm_score(&history, &[0.5, 0.4, 0.7, 0.3, 0.6, 0.5]), 0.0);
        // Surprises are not calm.
        assert_eq!(calm_score(&history, &[0.99; 6]), 0.0);
        // Six observations near the centre of their forecasts, against the runs of six of the
        // history (computed here the slow way).
        let means: Vec<f64> = history
            .windows(6)
            .map(|w| w.iter().sum::<f64>() / 6.0)
            .collect();
        let m = means.iter().sum::<f64>() / means.len() as f64;
        let sd = (means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / means.len() as f64).sqrt();
        // The less calm of that and the calibrated model's reference (mean 1/2, variance
        // 1/72 for six uniform values).
        let z = ((0.25 - m) / sd).max((0.25 - 0.5) * 72f64.sqrt());
        let n = statrs::distribution::Normal::new(0.0, 1.0).unwrap();
        use statrs::distribution::ContinuousCDF;
        let mild = calm_score(&history, &[0.25; 6]);
        assert!(
            (mild - (1.0 - CALM_PENALTY * n.cdf(z))).abs() < 1e-9,
            "{mild} z {z}"
        );
        let s = calm_score(&history, &[0.05; 6]);
        assert!(mild < s && s > 0.99, "{mild} {s}");
        // Calmer is higher, and even a perfectly flat run stays below 1 and ordered.
        let (a, b) = (
            calm_score(&history, &[0.03; 6]),
            calm_score(&history, &[0.0; 6]),
        );
        assert!(s < a && a < b && b < 1.0, "{s} {a} {b}");
        // The same run is not remarkable for a series whose tail scores come in long runs
        // (a model that is off for a while, then right for a while).
        let runs: Vec<f64> = (0..400)
            .map(|i| if (i / 50) % 2 == 0 { 0.05 } else { 0.9 })
            .collect();
        assert!(calm_score(&runs, &[0.05; 6]) < 0.6);
        // A model that has been off for long (every tail score high): a run of ordinary tail
        // scores is calm only against that history, not for a calibrated model, so it scores
        // 0; a run at the centre of the forecasts still scores high.
        let off: Vec<f64> = (0..400).map(|i| 0.9 + 0.1 * history[i]).collect();
        assert_eq!(calm_score(&off, &[0.4, 0.7, 0.6, 0.8, 0.9, 0.5]), 0.0);
        assert!(calm_score(&off, &[0.02; 6]) > 0.99);
        // A short history: the calibrated reference; an empty window: 0.
        assert_eq!(calm_score(&history[..10], &[0.5; 6]), 0.0);
        assert!(calm_score(&history[..10], &[0.0; 6]) > 0.99);
        assert_eq!(calm_score(&history, &[]), 0.0);
    }

    #[test]
    fn pot_score_is_the_rank_below_the_quantile_then_a_rising_tail_probability() {
        // Exponential-looking past values: -ln of evenly spaced probabilities.
        let mut past: Vec<f64> = (1..=1000).map(|i| -(i as f64 / 1001.0).ln()).collect();
        past.sort_by(f64::total_cmp);
        assert_eq!(pot_score(&past, 0.5), rank_score(&past, 0.5));
        // Beyond the quantile the tail fit gives about the exponential's tail probability.
        let s = pot_score(&past, 6.0);
        assert!((1.0 - s - (-6.0f64).exp()).abs() < 1.5e-3, "{s}");
        let mut last = pot_score(&past, 4.0);
        for v in [5.0, 8.0, 20.0, 50.0, 1e3, 1e9, 1e300] {
            let r = pot_score(&past, v);
            assert!(r > last && r < 1.0, "{v}: {r} after {last}");
            last = r;
        }
        // Few past values: the rank; constant past: still ordered.
        assert_eq!(pot_score(&past[..50], 3.0), rank_score(&past[..50], 3.0));
        let flat = vec![1.0; 200];
        assert!(pot_score(&flat, 1.5) > pot_score(&flat, 1.0));
        assert!(pot_score(&flat, 3.0) > pot_score(&flat, 1.5));
    }
    use statrs::distribution::{ContinuousCDF, Normal};

    #[test]
    fn the_likelihood_score_is_the_normal_cdf_then_keeps_rising_below_1() {
        let n = Normal::new(0.0, 1.0).unwrap();
        for z in [-5.0, -1.0, 0.0, 1.0, 2.5, 4.0, 4.7] {
            assert!((likelihood_score(z) - n.cdf(z)).abs() < 1e-12, "z = {z}");
        }
        let zs: Vec<f64> = (0..4000)
            .map(|i| -3.0 + i as f64 * 0.05)
            .chain([1e3, 1e6])
            .collect();
        let s: Vec<f64> = zs.iter().map(|&z| likelihood_score(z)).collect();
        for (w, z) in s.windows(2).zip(&zs[1..]) {
            assert!(
                w[1] > w[0],
                "not increasing at z = {z}: {} then {}",
                w[0],
                w[1]
            );
            assert!(w[1] < 1.0);
        }
        // Continuous where the two pieces meet (q = 1e-6 at z = 4.7534).
        let (a, b) = (likelihood_score(4.7533), likelihood_score(4.7535));
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        assert_eq!(likelihood_score(f64::INFINITY), 1.0 - f64::EPSILON);
    }

    #[test]
    fn rank_score_is_the_fraction_below_then_keeps_rising() {
        let past: Vec<f64> = (1..=20).map(f64::from).collect();
        // Fewer than 10 past values: no opinion.
        assert_eq!(rank_score(&past[..9], 100.0), 0.5);
        // 5 of 20 below 5.5; 4 below and one tie (half) at 5.
        assert_eq!(rank_score(&past, 5.5), 0.25);
        assert_eq!(rank_score(&past, 5.0), 4.5 / 20.0);
        assert_eq!(rank_score(&past, 0.0), 0.0);
        // At the maximum: 19.5 / 20; beyond it, continuous and strictly rising, below 1.
        assert_eq!(rank_score(&past, 20.0), 1.0 - 0.5 / 20.0);
        let mut last = rank_score(&past, 20.0);
        for v in [20.001, 21.0, 30.0, 1e3, 1e9, 1e300] {
            let r = rank_score(&past, v);
            assert!(r > last && r < 1.0, "{v}: {r} after {last}");
            last = r;
        }
        assert!((rank_score(&past, 20.0 + 1e-9) - (1.0 - 0.5 / 20.0)).abs() < 1e-9);
        // Constant past: still ordered beyond it.
        let flat = vec![3.0; 12];
        assert_eq!(rank_score(&flat, 3.0), 0.5);
        assert!(rank_score(&flat, 3.1) > rank_score(&flat, 3.0));
        assert!(rank_score(&flat, 4.0) > rank_score(&flat, 3.1));
    }

    #[test]
    fn stuck_score_ranks_a_run_of_repeats_against_the_series_past_runs() {
        let q = |v: &[f64]| v.iter().copied().collect::<VecDeque<f64>>();
        // No repeats in the past: the second repeat (a run of 3) is beyond every past run.
        let mut past: Vec<f64> = (0..50).map(|i| (i as f64 * 0.7).sin()).collect();
        let x = past[49];
        assert_eq!(
            stuck_score(&q(&past), x, 3),
            0.0,
            "a run of 2 is below min_run"
        );
        past.push(x);
        let first = stuck_score(&q(&past), x, 3);
        assert!(first > 0.99 && first < 1.0, "{first}");
        // A longer run scores higher, below 1.
        past.push(x);
        let second = stuck_score(&q(&past), x, 3);
        assert!(second > first && second < 1.0, "{second} after {first}");
        // Off, a different value, or a missing one: nothing.
        assert_eq!(stuck_score(&q(&past), x, 0), 0.0);
        assert_eq!(stuck_score(&q(&past), x + 1.0, 3), 0.0);
        assert_eq!(stuck_score(&q(&past), f64::NAN, 3), 0.0);
        // Too little history before the run.
        assert_eq!(stuck_score(&q(&[1.0, 2.0, 2.0]), 2.0, 3), 0.0);
        // Count data where runs of 5 zeros are ordinary: a run of 3 is not news.
        let counts: Vec<f64> = (0..60)
            .map(|i| if i % 10 < 5 { 0.0 } else { i as f64 })
            .collect();
        let mut c = counts.clone();
        c.extend([7.0, 7.0]);
        assert!(
            stuck_score(&q(&c), 7.0, 3) < 0.9,
            "{}",
            stuck_score(&q(&c), 7.0, 3)
        );
        // Missing values break runs: [x, NaN, x] is no run.
        let mut m = past[..40].to_vec();
        m.extend([5.0, f64::NAN, 5.0]);
        assert_eq!(stuck_score(&q(&m), 5.0, 3), 0.0);
        // The same as ranking the sorted run lengths, in every case.
        let naive = |past: &[f64], x: f64| {
            let tail = past.iter().rev().take_while(|&&v| v == x).count();
            let mut lengths = Vec::new();
            let mut run = 0.0;
            for (i, &v) in past[..past.len() - tail].iter().enumerate() {
                run = if i > 0 && v == past[i - 1] {
                    run + 1.0
                } else {
                    1.0
                };
                lengths.push(run);
            }
            lengths.sort_by(f64::total_cmp);
            let r = (tail + 1) as f64;
            let max = lengths[lengths.len() - 1];
            if r <= max {
                return rank_score(&lengths, r);
            }
            super::rank_beyond(r, max, lengths[lengths.len() / 2], past.len())
        };
        for (past, x) in [(&c, 7.0), (&past, x)] {
            assert_eq!(stuck_score(&q(past), x, 3), naive(past, x));
        }
        let mut c3 = counts.clone();
        c3.extend([0.0; 3]);
        assert_eq!(stuck_score(&q(&c3), 0.0, 3), naive(&c3, 0.0));
        let mut c9 = counts.clone();
        c9.extend([0.0; 8]);
        assert_eq!(stuck_score(&q(&c9), 0.0, 3), naive(&c9, 0.0));
        assert!(
            stuck_score(&q(&c9), 0.0, 3) > 0.98,
            "a run of 9 where 5 was the longest"
        );
    }
}
