//! Size limits, checked before anything is allocated.
//!
//! Each size option has a hard limit far beyond any useful value (so that no product of sizes
//! can overflow), and each stage estimates the memory its settings need, from the product that
//! is actually allocated (series x horizon x samples x particles ..., see [`forecast_bytes`],
//! [`score_bytes`], [`train_bytes`]), and refuses to start when the estimate exceeds
//! [`memory_limit`]: a set of moderate values that would need hundreds of GiB is refused with a
//! message naming the options, instead of aborting in the allocator.
//!
//! | option | limit |
//! |---|---|
//! | `horizon` (forecast and training) | [`MAX_HORIZON`] = 1,000,000 |
//! | `samples` | [`MAX_SAMPLES`] = 1,000,000 |
//! | `levels` | [`MAX_LEVELS`] = 100 entries |
//! | `context` | [`MAX_CONTEXT`] = 1,000,000 |
//! | `batch_size` | [`MAX_BATCH_SIZE`] = 1,048,576 |
//! | `chunk` | [`MAX_CHUNK`] = 1,048,576 |
//! | `long_window`, `smooth`, `suppress`, `refresh` | [`MAX_WINDOW`] = 100,000,000 |
//! | `hidden`, `particles`, `embedding` | `ModelConfig::MAX_DIM` = 1,048,576 (and at most 2^31 parameters) |
//! | estimated memory of a stage | [`memory_limit`]: `PARTICAST_MEMORY_LIMIT` (bytes, or with a `K`/`M`/`G`/`T` suffix) or else the machine's physical memory |

use crate::error::{PipelineError, Result};

/// Largest forecast (and training) horizon.
pub const MAX_HORIZON: usize = 1_000_000;
/// Largest number of sampled paths.
pub const MAX_SAMPLES: usize = 1_000_000;
/// Largest number of interval levels.
pub const MAX_LEVELS: usize = 100;
/// Largest context.
pub const MAX_CONTEXT: usize = 1_000_000;
/// Largest training batch.
pub const MAX_BATCH_SIZE: usize = 1 << 20;
/// Largest scoring chunk.
pub const MAX_CHUNK: usize = 1 << 20;
/// Largest scoring window (`long_window`, `smooth`, `suppress`, `refresh`).
pub const MAX_WINDOW: usize = 100_000_000;

/// Memory used when neither `PARTICAST_MEMORY_LIMIT` nor the physical memory can be read.
const FALLBACK_LIMIT: u64 = 64 << 30;

/// The memory a stage may plan to use: `PARTICAST_MEMORY_LIMIT` when set (`8G`, `512M`,
/// `1073741824`), else the machine's physical memory (`MemTotal` of `/proc/meminfo`), else 64 GiB.
pub fn memory_limit() -> u64 {
    if let Some(v) = std::env::var("PARTICAST_MEMORY_LIMIT")
        .ok()
        .and_then(|v| parse_bytes(&v))
    {
        return v;
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb.saturating_mul(1024))
        })
        .unwrap_or(FALLBACK_LIMIT)
}

/// Parses `123`, `512K`, `8M`, `2G`, `1T` (optionally with `iB`/`B`; powers of 1024).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 10),
        'M' | 'm' => (&t[..t.len() - 1], 20),
        'G' | 'g' => (&t[..t.len() - 1], 30),
        'T' | 't' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| (v * (1u64 << shift) as f64).min(u64::MAX as f64) as u64)
}

/// Bytes as `12.3 GiB`.
pub fn format_bytes(b: u128) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// Refuses `value` above `limit` for `option`.
pub(crate) fn at_most(option: &'static str, value: usize, limit: usize, hint: &str) -> Result<()> {
    if value > limit {
        return Err(PipelineError::Limit {
            option,
            value: value as u64,
            limit: limit as u64,
            hint: if hint.is_empty() {
                String::new()
            } else {
                format!("; {hint}")
            },
        });
    }
    Ok(())
}

/// A product of sizes in u128 (saturating: the limits keep every factor small, so saturation
/// only ever means "far too large").
pub(crate) fn product(factors: &[usize]) -> u128 {
    factors
        .iter()
        .fold(1u128, |acc, &f| acc.saturating_mul(f as u128))
}

/// Refuses an estimate above [`memory_limit`].
pub(crate) fn check_memory(
    what: &'static str,
    bytes: u128,
    detail: String,
    options: &'static str,
) -> Result<()> {
    let limit = memory_limit();
    if bytes > limit as u128 {
        return Err(PipelineError::TooLarge {
            what,
            needed: format_bytes(bytes),
            detail,
            limit: format_bytes(limit as u128),
            options,
        });
    }
    Ok(())
}

/// Sizes that drive a forecast's memory.
#[derive(Clone, Copy, Debug)]
pub struct ForecastSize {
    /// Series forecast.
    pub series: usize,
    /// Steps ahead.
    pub horizon: usize,
    /// Interval levels.
    pub levels: usize,
    /// Sampled paths (0 in particle mode).
    pub samples: usize,
    /// Particles (summed over the models of an ensemble).
    pub particles: usize,
    /// Hidden size (the largest of an ensemble).
    pub hidden: usize,
    /// Network inputs per step.
    pub inputs: usize,
    /// Raw head outputs per particle.
    pub head_width: usize,
    /// Values kept per step besides the mixture (99 for a transformed model's quantile grid).
    pub grid: usize,
    /// Series forecast at once (threads).
    pub in_flight: usize,
}

/// Estimated bytes of a forecast: what is kept per series and step (mean, median, intervals,
/// mixture, samples), the output columns built from it, and the working set of the series in
/// flight (particle states, inputs, head outputs and the paths of every sample and particle).
pub fn forecast_bytes(s: &ForecastSize) -> u128 {
    let per_step = 8 * (2 + 2 * s.levels as u128 + 4 * s.particles as u128)
        + 8 * (s.samples.max(s.grid) as u128)
        + 128;
    let kept = product(&[s.series, s.horizon]).saturating_mul(per_step);
    let rows = s.samples.max(1);
    let working = product(&[rows, s.particles])
        .saturating_mul(4 * (4 * s.hidden + s.inputs + s.head_width) as u128)
        .saturating_add(product(&[rows, s.particles.max(1) + 1, s.horizon]).saturating_mul(8));
    // The kept values, then the output columns made from them.
    kept.saturating_mul(2)
        .saturating_add(working.saturating_mul(s.in_flight.min(s.series).max(1) as u128))
}

/// Estimated bytes of scoring: per input step the scores kept until written (NLL, PIT,
/// anomaly, flag, timestamp, values), and per series in flight the chunk's particle rows and
/// the anomaly windows.
pub fn score_bytes(
    steps: usize,
    targets: usize,
    chunk: usize,
    particles: usize,
    width: usize,
    window: usize,
    in_flight: usize,
) -> u128 {
    let kept = (steps as u128).saturating_mul(8 * (5 + 2 * targets as u128) + 4);
    let working = product(&[chunk, particles, width])
        .saturating_mul(4)
        .saturating_add((window as u128).saturating_mul(16));
    kept.saturating_mul(2)
        .saturating_add(working.saturating_mul(in_flight.max(1) as u128))
}

/// Estimated bytes of a training step: the activations of one batch of windows kept for the
/// backward pass (per window, step and particle: the cell's gates and state, the head's
/// outputs, the inputs), and the parameters with their gradients and Adam moments.
pub fn train_bytes(
    batch: usize,
    window: usize,
    particles: usize,
    per_row: usize,
    parameters: u64,
) -> u128 {
    product(&[batch, window, particles, per_row])
        .saturating_mul(4)
        .saturating_add((parameters as u128).saturating_mul(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("1.5k"), Some(1536));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn a_moderate_forecast_is_small_and_a_huge_one_is_huge() {
        let base = ForecastSize {
            series: 414,
            horizon: 48,
            levels: 2,
            samples: 200,
            particles: 8,
            hidden: 40,
            inputs: 10,
            head_width: 2,
            grid: 0,
            in_flight: 2,
        };
        assert!(forecast_bytes(&base) < 1 << 30);
        let huge = ForecastSize {
            horizon: 100_000,
            samples: 10_000,
            ..base
        };
        assert!(forecast_bytes(&huge) > 1u128 << 40);
    }
}
