//! The automatic recipe: what training decides from the data for every knob left `auto`.
//!
//! Every recipe knob of [`TrainConfig`] is `auto` by default (`None` in Rust, `"auto"` or an
//! absent key in pipeline files, no flag on the command line). [`plan`] turns the request and
//! the data into concrete settings ([`Plan`]) and one [`Decision`] per knob saying what was
//! chosen and why; training prints them and stores them in the model's `config.json`.
//!
//! | knob | auto rule |
//! |---|---|
//! | seasons | candidates from the frequency (sub-daily: a day and a week of steps; daily: 7, and 365 with three years of history; weekly: 52; monthly: 12; quarterly: 4; yearly: none; integer steps or an unknown frequency: 24 (then 168), 12, 7, 4 and 52 are tried), each kept when at least half of the series long enough to tell (three seasons) have a significant positive autocorrelation of their first differences at that lag (M4's Naive2 test, at 90%, on differences so that a trend does not pass for a season) |
//! | transform | `log` when every observed training value is positive, else none |
//! | target | the change from one (the shortest kept) season ago, else the change from the previous step: a network that has learnt nothing forecasts seasonal naive, or naive |
//! | scaling | seasonal differences at the target's season (the MASE denominator of the context) |
//! | lags | 1 and every kept season (plus any the input options ask for) |
//! | context | two seasons and two horizons (16 steps at least), a weekly cycle of sub-daily data, at most what the median series has before its horizon |
//! | budget | about ten passes over the windows available, between 4 and 100 epochs of at most 50 steps, and at most 25 million window-steps (the size of M4 Hourly's recipe) |
//! | hidden | 32, or 40 above 100,000 windows |
//! | weighting | every series equally often (scale-free metrics count every series alike) |
//!
//! Training then compares alternatives where the data leave the choice open, as AutoETS keeps
//! the model of the smallest AIC: when the evidence for a season is mixed (between a quarter
//! and two thirds of the series pass), the seasonal and the one-step change targets; when no
//! season is kept and a training run is small (under 8 million window-steps), the one-step
//! change and the level. Each candidate is trained on every series but its last `horizon`
//! steps and forecasts them; the lower MASE wins.

use particast_ingest::{Dataset, Frequency, PreparedSeries, TimeKind, Weighting};
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};
use crate::inputs::{Scaling, Target, Transform};
use crate::settings::TrainConfig;

/// Largest season the recipe considers (a week of 5-minute steps).
pub const MAX_SEASON: usize = 2016;

/// One decision of the recipe, as printed by `train` and stored in `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The knob (`seasons`, `transform`, ...).
    pub knob: String,
    /// The value chosen, as text.
    pub value: String,
    /// Whether the recipe chose it (false: the user set it).
    pub auto: bool,
    /// Why.
    pub why: String,
}

/// A candidate recipe compared on the validation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Short name (`seasonal change 12`, `one-step change`).
    pub name: String,
    /// What the emission models.
    pub target: Target,
    /// Scaling rule.
    pub scaling: Scaling,
    /// Best validation NLL per observation (transformed units, teacher-forced), once trained.
    pub val_nll: Option<f64>,
    /// MASE (naive scale) of its median forecast of the held-out tail of every series: the
    /// selection criterion.
    pub holdout_mase: Option<f64>,
    /// Whether this candidate was kept.
    pub chosen: bool,
}

/// What the recipe decided, stored in `config.json` (absent in models written before it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecipeReport {
    /// One decision per knob.
    pub decisions: Vec<Decision>,
    /// The candidates compared on the validation split (empty when there was one).
    pub candidates: Vec<Candidate>,
}

/// The concrete settings of a training run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Seasons kept (shortest first).
    pub seasons: Vec<usize>,
    /// Feature lags (1 and the target's seasonal partners are added by the input spec).
    pub lags: Vec<usize>,
    /// Transform of the values.
    pub transform: Transform,
    /// What the emission models.
    pub target: Target,
    /// Scaling rule.
    pub scaling: Scaling,
    /// Context steps per window.
    pub context: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Windows per gradient step.
    pub batch_size: usize,
    /// Gradient steps per epoch.
    pub batches_per_epoch: usize,
    /// Maximum epochs.
    pub epochs: usize,
    /// How windows are spread over the series.
    pub weighting: Weighting,
    /// Other (target, scaling) pairs to compare on the validation split, with their names.
    pub alternatives: Vec<(String, Target, Scaling)>,
    /// What was decided and why.
    pub report: RecipeReport,
}

/// Seasons worth testing for a frequency, or `None` when it is unknown (integer steps).
fn frequency_seasons(freq: Option<Frequency>, kind: &TimeKind) -> Option<(String, Vec<usize>)> {
    let f = freq?;
    if let Frequency::Months(m) = f {
        return Some(match m {
            1 => ("monthly".into(), vec![12]),
            3 => ("quarterly".into(), vec![4]),
            m if m % 12 == 0 => ("yearly".into(), vec![]),
            m if 12 % m == 0 => (format!("every {m} months"), vec![12 / m as usize]),
            m => (format!("every {m} months"), vec![]),
        });
    }
    let secs = f.approx_seconds(kind)?.round() as i64;
    let name = f.describe(kind);
    const DAY: i64 = 86_400;
    Some(if secs <= 0 {
        (name, vec![])
    } else if secs < DAY && DAY % secs == 0 {
        let day = (DAY / secs) as usize;
        (
            name,
            [day, 7 * day]
                .into_iter()
                .filter(|&m| m > 1 && m <= MAX_SEASON)
                .collect(),
        )
    } else if secs == DAY {
        (name, vec![7, 365])
    } else if secs == 7 * DAY {
        (name, vec![52])
    } else {
        (name, vec![])
    })
}

/// Seasons tried when the frequency says nothing (integer steps), in order of preference.
const INTEGER_CANDIDATES: [usize; 5] = [24, 12, 7, 4, 52];

/// Steps of `s` that training uses: all but the last `horizon` (the validation tail) when the
/// series is longer than `horizon + 1`, else all of them.
pub fn training_len(s: &PreparedSeries, horizon: usize) -> usize {
    if s.len() > horizon + 1 {
        s.len() - horizon
    } else {
        s.len()
    }
}

/// The training part of a series (the validation tail removed) in transformed units, observed
/// values of the first target dimension only, gaps closed.
fn training_values(s: &PreparedSeries, horizon: usize, transform: &Transform) -> Vec<f64> {
    let d = s.n_targets.max(1);
    (0..training_len(s, horizon))
        .filter(|&t| s.mask[t * d] == 1)
        .filter_map(|t| transform.forward(s.values[t * d]))
        .collect()
}

/// Whether `x` (first differences of a series) has a significant positive autocorrelation at
/// lag `m`: `r_m > 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n)` (M4's Naive2 test, one-sided at
/// 90%), with `r_m` a peak (at least `r_{m-1}` and `r_{m+1}`). `None` when the series is
/// shorter than three seasons.
pub fn seasonal_test(levels: &[f64], m: usize) -> Option<bool> {
    if m < 2 || levels.len() < 3 * m + 1 {
        return None;
    }
    let x: Vec<f64> = levels.windows(2).map(|w| w[1] - w[0]).collect();
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let var: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
    if var <= 0.0 || !var.is_finite() {
        return Some(false);
    }
    let r = |k: usize| {
        (0..n - k)
            .map(|t| (x[t] - mean) * (x[t + k] - mean))
            .sum::<f64>()
            / var
    };
    let sum_sq: f64 = (1..m).map(|k| r(k).powi(2)).sum();
    let limit = 1.645 * ((1.0 + 2.0 * sum_sq) / n as f64).sqrt();
    // A cycle of m peaks at m: a smooth trend left after differencing (a log of a line)
    // and the short lags of a smooth cycle are significant without peaking there.
    let rm = r(m);
    Some(rm > limit && rm >= r(m - 1) && rm >= r(m + 1))
}

/// Share of the testable series that pass [`seasonal_test`] at `m`, and how many were testable.
fn season_support(values: &[Vec<f64>], m: usize) -> (f64, usize) {
    let results: Vec<bool> = values.iter().filter_map(|v| seasonal_test(v, m)).collect();
    let tested = results.len();
    let passed = results.iter().filter(|&&b| b).count();
    if tested == 0 {
        (0.0, 0)
    } else {
        (passed as f64 / tested as f64, tested)
    }
}

/// Window-steps of one training run below which a set without a season compares the level
/// and the change targets.
const SELECT_WORK: usize = 8_000_000;

/// Share of series that must pass the test for a season to be kept.
const KEEP_SHARE: f64 = 0.5;
/// Between these shares the evidence is mixed and both targets are compared.
const MIXED_SHARES: (f64, f64) = (0.25, 2.0 / 3.0);

fn percent(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

fn list(v: &[usize]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The median of `v` (0 for an empty slice).
fn median(mut v: Vec<usize>) -> usize {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Decides every `auto` knob of `cfg` from `data` (values before any transform).
pub fn plan(data: &Dataset, cfg: &TrainConfig) -> Result<Plan> {
    let h = cfg.horizon;
    let mut decisions = Vec::new();
    let mut decide = |knob: &str, value: String, auto: bool, why: String| {
        decisions.push(Decision {
            knob: knob.into(),
            value,
            auto,
            why,
        })
    };
    let train_lens: Vec<usize> = data.series.iter().map(|s| training_len(s, h)).collect();

    // Transform first: seasons are tested on the values the model will see.
    let transform = match cfg.transform {
        Some(t) => {
            decide("transform", t.to_string(), false, "set".into());
            t
        }
        None => {
            let mut first_bad = None;
            'outer: for s in &data.series {
                let d = s.n_targets.max(1);
                for t in 0..training_len(s, h) * d {
                    if s.mask[t] == 1 && s.values[t] <= 0.0 {
                        first_bad = Some((s.id.clone(), s.values[t]));
                        break 'outer;
                    }
                }
            }
            match first_bad {
                None => {
                    let t = Transform::Log { offset: 0.0 };
                    decide(
                        "transform",
                        "log".into(),
                        true,
                        "every observed training value is positive".into(),
                    );
                    t
                }
                Some((id, v)) => {
                    decide(
                        "transform",
                        "none".into(),
                        true,
                        format!("series {id} has the value {v} (log needs positive values)"),
                    );
                    Transform::None
                }
            }
        }
    };

    let values: Vec<Vec<f64>> = data
        .series
        .iter()
        .map(|s| training_values(s, h, &transform))
        .collect();

    // Seasons.
    let mut mixed: Option<usize> = None;
    let seasons: Vec<usize> = match &cfg.seasons {
        Some(v) => {
            let mut v: Vec<usize> = v.iter().copied().filter(|&m| m > 1).collect();
            v.sort_unstable();
            v.dedup();
            decide("seasons", list(&v), false, "set".into());
            v
        }
        None => {
            let freq = frequency_seasons(data.schema.frequency, &data.schema.time_kind);
            let (what, candidates, detect) = match freq {
                Some((name, c)) => (format!("{name} data"), c, false),
                None => (
                    "integer steps (no calendar)".to_string(),
                    INTEGER_CANDIDATES.to_vec(),
                    true,
                ),
            };
            let mut kept = Vec::new();
            let mut notes = Vec::new();
            let mut shares = Vec::new();
            for &m in &candidates {
                let (share, tested) = season_support(&values, m);
                if tested == 0 {
                    notes.push(format!("{m}: no series has three seasons of history"));
                    continue;
                }
                notes.push(format!("{m}: {} of {tested} series", percent(share)));
                shares.push((m, share));
            }
            if detect {
                // One cycle: of the candidates that pass, not a multiple of another that
                // passes (monthly data pass at 24 as well as 12), the best supported.
                let pass: Vec<(usize, f64)> = shares
                    .iter()
                    .copied()
                    .filter(|&(_, s)| s >= KEEP_SHARE)
                    .collect();
                // A divisor wins over its multiple when about as well supported.
                let best = pass
                    .iter()
                    .filter(|&&(m, sm)| {
                        !pass
                            .iter()
                            .any(|&(k, sk)| k < m && m % k == 0 && sk >= sm - 0.1)
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                shares = match best {
                    Some(&b) => vec![b],
                    None => shares
                        .iter()
                        .copied()
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .into_iter()
                        .collect(),
                };
            }
            for &(m, share) in &shares {
                if share >= KEEP_SHARE {
                    kept.push(m);
                    if share < MIXED_SHARES.1 && mixed.is_none() {
                        mixed = Some(m);
                    }
                } else if share >= MIXED_SHARES.0 && mixed.is_none() && kept.is_empty() {
                    mixed = Some(m);
                }
            }
            if detect && kept == [24] {
                let (share, tested) = season_support(&values, 168);
                if tested > 0 {
                    notes.push(format!("168: {} of {tested} series", percent(share)));
                    if share >= KEEP_SHARE {
                        kept.push(168);
                    }
                }
            }
            let why = if candidates.is_empty() {
                format!("{what}: no season to test")
            } else {
                format!(
                    "{what}; share of series with a significant autocorrelation of their changes at the lag: {}",
                    notes.join("; ")
                )
            };
            decide("seasons", list(&kept), true, why);
            kept
        }
    };
    // A mixed season only matters when it is the target's season (the first kept) or when
    // nothing was kept but one came close.
    let mixed = mixed.filter(|&m| seasons.first().is_none_or(|&f| f == m));

    // Target and scaling.
    let target = match cfg.target {
        Some(Target::SeasonalChange { season: 0 }) => match seasons.first() {
            Some(&m) => {
                decide(
                    "target",
                    format!("seasonal change {m}"),
                    false,
                    "set; season from the recipe".into(),
                );
                Target::SeasonalChange { season: m }
            }
            None => {
                return Err(PipelineError::Config(
                    "target seasonal_change needs a season: none was kept; give one (--season)"
                        .into(),
                ))
            }
        },
        Some(t) => {
            decide("target", t.to_string(), false, "set".into());
            t
        }
        None => match seasons.first() {
            Some(&m) => {
                decide(
                    "target",
                    format!("seasonal change {m}"),
                    true,
                    format!("a season of {m} was kept: the network corrects seasonal naive"),
                );
                Target::SeasonalChange { season: m }
            }
            None => {
                decide(
                    "target",
                    "one-step change".into(),
                    true,
                    "no season kept: the network corrects naive (the previous value)".into(),
                );
                Target::SeasonalChange { season: 1 }
            }
        },
    };
    let scale_season = |t: &Target| {
        t.season()
            .unwrap_or_else(|| seasons.first().copied().unwrap_or(1))
    };
    let scaling = match &cfg.scaling {
        Some(Scaling::SeasonalDiff { season: 0, floor }) => Scaling::SeasonalDiff {
            season: scale_season(&target),
            floor: *floor,
        },
        Some(s) => s.clone(),
        None => Scaling::SeasonalDiff {
            season: scale_season(&target),
            floor: 1e-4,
        },
    };
    decide(
        "scaling",
        scaling.to_string(),
        cfg.scaling.is_none(),
        if cfg.scaling.is_none() {
            "the mean absolute change at the target's season over the context (scale-free, like MASE)".into()
        } else {
            "set".into()
        },
    );

    // Alternatives compared on the validation split.
    let mut alternatives = Vec::new();
    if cfg.select && cfg.target.is_none() && cfg.scaling.is_none() {
        let seasonal_diff = |season: usize| Scaling::SeasonalDiff {
            season,
            floor: 1e-4,
        };
        if let Some(m) = mixed {
            alternatives.push(if target.season() == Some(m) {
                (
                    "one-step change".to_string(),
                    Target::SeasonalChange { season: 1 },
                    seasonal_diff(1),
                )
            } else {
                (
                    format!("seasonal change {m}"),
                    Target::SeasonalChange { season: m },
                    seasonal_diff(m),
                )
            });
        } else if seasons.is_empty() {
            // Without a season, naive (the change target) suits trending series and the
            // level suits mean-reverting ones; small sets try both.
            alternatives.push(("level".to_string(), Target::Level, seasonal_diff(1)));
        }
    }
    // Lags.
    let mut lags: Vec<usize> = data.schema.features.lags.clone();
    match &cfg.lags {
        Some(v) => {
            lags.extend(v.iter().copied());
        }
        None => lags.extend(seasons.iter().copied()),
    }
    for (_, t, _) in &alternatives {
        lags.extend(t.season());
    }
    lags.extend(target.season());
    lags.retain(|&l| l > 0);
    lags.sort_unstable();
    lags.dedup();
    decide(
        "lags",
        list(&lags),
        cfg.lags.is_none(),
        if cfg.lags.is_none() {
            "the previous value, the seasons and the lags of the input options".into()
        } else {
            "set (with the target's season)".into()
        },
    );

    // Context.
    let m = target
        .season()
        .unwrap_or(1)
        .max(seasons.first().copied().unwrap_or(1));
    let med = median(train_lens.clone());
    let context = match cfg.context {
        Some(c) => {
            decide("context", c.to_string(), false, "set".into());
            c
        }
        None => {
            let mut want = (2 * m).max(2 * h).max(16);
            if let Some(&big) = seasons.iter().find(|&&s| s > want && s <= 7 * m) {
                want = big;
            }
            let room = med.saturating_sub(h).max(h).max(m + 1).max(4);
            let c = want.min(room).min(crate::limits::MAX_CONTEXT);
            decide(
                "context",
                c.to_string(),
                true,
                format!(
                    "two seasons and two horizons (16 at least, a weekly cycle when kept){}",
                    if c < want {
                        format!(", cut to what the median series ({med} steps before its horizon) holds")
                    } else {
                        String::new()
                    }
                ),
            );
            c
        }
    };

    // Budget and size.
    let windows: usize = train_lens
        .iter()
        .map(|&n| n.saturating_sub(h + context).max(1))
        .sum();
    let steps_per_window = context + h;
    let batch_size = cfg.batch_size.unwrap_or(64);
    let batches_per_epoch = cfg
        .batches_per_epoch
        .unwrap_or_else(|| windows.div_ceil(batch_size).clamp(8, 50));
    let per_epoch = batch_size * batches_per_epoch;
    let epochs = cfg.epochs.unwrap_or_else(|| {
        let want = (10 * windows).clamp(3 * per_epoch, 100_000);
        let cap = (25_000_000 / steps_per_window.max(1)).max(per_epoch);
        want.min(cap).div_ceil(per_epoch).clamp(4, 100)
    });
    let budget_auto = cfg.epochs.is_none() || cfg.batches_per_epoch.is_none();
    // Comparing candidates trains each: only where one training run is cheap (about a
    // minute on two cores) unless the season itself is in doubt.
    let work = epochs * per_epoch * steps_per_window;
    if mixed.is_none() && work > SELECT_WORK {
        alternatives.clear();
    }
    decide(
        "budget",
        format!("{epochs} epochs x {batches_per_epoch} steps x {batch_size} windows"),
        budget_auto,
        if budget_auto {
            format!(
                "{windows} windows of {steps_per_window} steps available: about ten passes, at most 25M window-steps, early stopping after {} epochs without progress",
                cfg.patience
            )
        } else {
            "set".into()
        },
    );
    let hidden = match cfg.hidden {
        Some(v) => {
            decide("hidden", v.to_string(), false, "set".into());
            v
        }
        None => {
            let v = if windows > 100_000 { 40 } else { 32 };
            decide(
                "hidden",
                v.to_string(),
                true,
                format!("{windows} windows (40 above 100,000)"),
            );
            v
        }
    };
    let weighting = cfg.weighting.unwrap_or(Weighting::Series);
    decide(
        "weighting",
        match weighting {
            Weighting::Scale => "scale".into(),
            Weighting::Series => "series".into(),
        },
        cfg.weighting.is_none(),
        if cfg.weighting.is_none() {
            "every series equally often: a small series counts as much as a large one".into()
        } else {
            "set".into()
        },
    );
    Ok(Plan {
        seasons,
        lags,
        transform,
        target,
        scaling,
        context,
        hidden,
        batch_size,
        batches_per_epoch,
        epochs,
        weighting,
        alternatives,
        report: RecipeReport {
            decisions,
            candidates: Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_test_finds_a_cycle_and_not_a_trend() {
        let cycle: Vec<f64> = (0..240)
            .map(|t| 10.0 + (t as f64 * std::f64::consts::TAU / 24.0).sin())
            .collect();
        assert_eq!(seasonal_test(&cycle, 24), Some(true));
        let trend: Vec<f64> = (0..240)
            .map(|t| t as f64 * 0.5 + ((t * 7919) % 13) as f64 * 0.01)
            .collect();
        assert_eq!(seasonal_test(&trend, 24), Some(false));
        assert_eq!(seasonal_test(&cycle[..50], 24), None);
    }
}
