//! Time axes: what `ds` is (datetime, date, integer), series frequency, and calendar features.

use chrono::{DateTime, Datelike, Months, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

/// The unit of a datetime column's physical `i64` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Nanoseconds since the Unix epoch.
    Ns,
    /// Microseconds since the Unix epoch.
    Us,
    /// Milliseconds since the Unix epoch.
    Ms,
}

impl TimeUnit {
    /// Ticks of this unit in one second.
    pub fn per_second(self) -> i64 {
        match self {
            TimeUnit::Ns => 1_000_000_000,
            TimeUnit::Us => 1_000_000,
            TimeUnit::Ms => 1_000,
        }
    }
}

/// What the time column holds. Timestamps are kept as their physical `i64` value throughout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TimeKind {
    /// A datetime with a unit and an optional time zone (features use the UTC wall clock).
    Datetime {
        /// Physical unit.
        unit: TimeUnit,
        /// Time zone name, if the column has one.
        tz: Option<String>,
    },
    /// A calendar date: days since 1970-01-01.
    Date,
    /// A plain integer step counter (also used for wide inputs, where `ds` is 0..n).
    Integer,
}

impl TimeKind {
    /// Converts a physical value to a naive UTC datetime, if this kind is temporal.
    pub fn to_datetime(&self, v: i64) -> Option<NaiveDateTime> {
        match self {
            TimeKind::Datetime { unit, .. } => {
                let per = unit.per_second();
                let secs = v.div_euclid(per);
                let sub = v.rem_euclid(per);
                let nanos = (sub as i128 * 1_000_000_000 / per as i128) as u32;
                DateTime::from_timestamp(secs, nanos).map(|d| d.naive_utc())
            }
            TimeKind::Date => {
                DateTime::from_timestamp(v.checked_mul(86_400)?, 0).map(|d| d.naive_utc())
            }
            TimeKind::Integer => None,
        }
    }

    /// Converts a naive UTC datetime back to this kind's physical value.
    pub fn from_datetime(&self, dt: NaiveDateTime) -> Option<i64> {
        let utc = dt.and_utc();
        match self {
            TimeKind::Datetime { unit, .. } => match unit {
                TimeUnit::Ns => utc.timestamp_nanos_opt(),
                TimeUnit::Us => Some(utc.timestamp_micros()),
                TimeUnit::Ms => Some(utc.timestamp_millis()),
            },
            TimeKind::Date => Some(utc.timestamp().div_euclid(86_400)),
            TimeKind::Integer => None,
        }
    }

    /// Seconds in one physical tick, for temporal kinds.
    fn seconds_per_tick(&self) -> Option<f64> {
        match self {
            TimeKind::Datetime { unit, .. } => Some(1.0 / unit.per_second() as f64),
            TimeKind::Date => Some(86_400.0),
            TimeKind::Integer => None,
        }
    }

    /// Renders a physical value for messages and reports.
    pub fn render(&self, v: i64) -> String {
        match self.to_datetime(v) {
            Some(dt) if matches!(self, TimeKind::Date) => dt.date().to_string(),
            Some(dt) => dt.to_string(),
            None => v.to_string(),
        }
    }
}

/// The step between consecutive observations of a regular series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    /// A fixed step in physical units of the time column.
    Fixed(i64),
    /// A step of whole calendar months (1 monthly, 3 quarterly, 12 yearly).
    Months(u32),
}

impl Frequency {
    /// Parses a frequency such as `30min`, `1h`, `1d`, `1w`, `1mo`, `1q`, `1y` (for temporal
    /// columns) or a plain integer step (for integer columns).
    pub fn parse(text: &str, kind: &TimeKind) -> Option<Frequency> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (num, unit) = text.split_at(split);
        let n: i64 = if num.is_empty() { 1 } else { num.parse().ok()? };
        if n <= 0 {
            return None;
        }
        if unit.is_empty() {
            return matches!(kind, TimeKind::Integer).then_some(Frequency::Fixed(n));
        }
        let months = match unit {
            "mo" => Some(1),
            "q" => Some(3),
            "y" => Some(12),
            _ => None,
        };
        if let Some(m) = months {
            // A huge count must not wrap around to a zero step.
            let months = u32::try_from(n).ok()?.checked_mul(m)?;
            return kind.seconds_per_tick().map(|_| Frequency::Months(months));
        }
        let seconds: i64 = match unit {
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return None,
        };
        let total = n.checked_mul(seconds)?;
        match kind {
            TimeKind::Datetime { unit, .. } => {
                Some(Frequency::Fixed(total.checked_mul(unit.per_second())?))
            }
            TimeKind::Date => (total % 86_400 == 0).then_some(Frequency::Fixed(total / 86_400)),
            TimeKind::Integer => None,
        }
    }

    /// A human description (`30min`, `1h`, `1d`, `1mo`, or the integer step).
    pub fn describe(&self, kind: &TimeKind) -> String {
        match *self {
            Frequency::Months(m) if m % 12 == 0 => format!("{}y", m / 12),
            Frequency::Months(m) => format!("{m}mo"),
            Frequency::Fixed(step) => match kind.seconds_per_tick() {
                None => step.to_string(),
                Some(spt) => {
                    let secs = step as f64 * spt;
                    for (unit, size) in [
                        ("w", 604_800.0),
                        ("d", 86_400.0),
                        ("h", 3_600.0),
                        ("min", 60.0),
                        ("s", 1.0),
                    ] {
                        if secs >= size && (secs / size).fract() == 0.0 {
                            return format!("{}{unit}", (secs / size) as i64);
                        }
                    }
                    format!("{secs}s")
                }
            },
        }
    }

    /// The step in seconds (months count as 30.44 days), for temporal kinds.
    pub fn approx_seconds(&self, kind: &TimeKind) -> Option<f64> {
        match *self {
            Frequency::Fixed(step) => kind.seconds_per_tick().map(|s| s * step as f64),
            Frequency::Months(m) => Some(m as f64 * 30.436_875 * 86_400.0),
        }
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Position of a timestamp on a regular axis.
pub(crate) fn month_index(dt: &NaiveDateTime) -> i64 {
    dt.year() as i64 * 12 + dt.month0() as i64
}

fn is_month_end(dt: &NaiveDateTime) -> bool {
    dt.date()
        .succ_opt()
        .is_some_and(|d| d.month() != dt.month())
}

/// A regular time axis: the timestamp of step `i` of a series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeAxis {
    /// What the timestamps are.
    pub kind: TimeKind,
    /// Physical timestamp of step 0.
    pub start: i64,
    /// The step.
    pub frequency: Frequency,
}

impl TimeAxis {
    /// Physical timestamp of step `i` (which may be negative or past the end of the data).
    pub fn at(&self, i: i64) -> i64 {
        match self.frequency {
            Frequency::Fixed(step) => self.start.saturating_add(i.saturating_mul(step)),
            Frequency::Months(m) => {
                let Some(dt) = self.kind.to_datetime(self.start) else {
                    return self.start;
                };
                let month_end = is_month_end(&dt);
                let delta = i * m as i64;
                let moved = if delta >= 0 {
                    dt.checked_add_months(Months::new(delta as u32))
                } else {
                    dt.checked_sub_months(Months::new((-delta) as u32))
                };
                let moved = match (moved, month_end) {
                    (Some(d), true) => {
                        // Keep month-end anchors at the month's end (Jan 31 -> Feb 28 -> Mar 31).
                        let mut d = d;
                        while let Some(n) = d.date().succ_opt() {
                            if n.month() != d.month() {
                                break;
                            }
                            d = n.and_time(d.time());
                        }
                        Some(d)
                    }
                    (d, _) => d,
                };
                moved
                    .and_then(|d| self.kind.from_datetime(d))
                    .unwrap_or(self.start)
            }
        }
    }
}

/// The most common positive difference between consecutive timestamps (ties go to the smaller),
/// or `None` when there is none.
pub fn mode_step(ds: &[i64]) -> Option<i64> {
    let mut diffs: Vec<i64> = ds
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    diffs.sort_unstable();
    let mut best: Option<(usize, i64)> = None;
    let mut i = 0;
    while i < diffs.len() {
        let mut j = i;
        while j < diffs.len() && diffs[j] == diffs[i] {
            j += 1;
        }
        if best.is_none_or(|b| j - i > b.0) {
            best = Some((j - i, diffs[i]));
        }
        i = j;
    }
    best.map(|b| b.1)
}

/// Infers the frequency of strictly increasing timestamps, or says where they are irregular.
///
/// The candidate step is the most common difference (ties go to the smaller); the series is
/// regular when every difference is a whole multiple of it (the multiples are gaps). Temporal
/// series whose days differ (months, quarters, years) are tried as calendar months, anchored on
/// the same day-of-month and time, or on month ends.
///
/// Returns `Err(i)` with the index of the first timestamp that breaks the pattern.
pub fn infer_frequency(ds: &[i64], kind: &TimeKind) -> Result<Option<Frequency>, usize> {
    let Some(step) = mode_step(ds) else {
        return Ok(None);
    };
    let first_bad = ds.windows(2).position(|w| (w[1] - w[0]) % step != 0);
    let Some(bad) = first_bad else {
        return Ok(Some(Frequency::Fixed(step)));
    };
    // Many gaps can make a multiple of the true step the most common one (0, 2, 4, 5): the
    // greatest common divisor of the steps is the frequency then, unless it is much smaller
    // than the common step (jittery timestamps are irregular, not finely sampled).
    let g = ds.windows(2).fold(0i64, |g, w| gcd(g, w[1] - w[0]));
    if g > 0 && g * 4 >= step {
        return Ok(Some(Frequency::Fixed(g)));
    }
    // Try calendar months.
    let dts: Option<Vec<NaiveDateTime>> = ds.iter().map(|&v| kind.to_datetime(v)).collect();
    let Some(dts) = dts else {
        return Err(bad + 1);
    };
    let first = dts[0];
    let month_end = dts.iter().all(is_month_end);
    let anchored =
        |d: &NaiveDateTime| d.time() == first.time() && (month_end || d.day() == first.day());
    if let Some(p) = dts.iter().position(|d| !anchored(d)) {
        return Err(p.max(1));
    }
    let months: Vec<i64> = dts.iter().map(month_index).collect();
    let mdiffs: Vec<i64> = months.windows(2).map(|w| w[1] - w[0]).collect();
    let mut counts = std::collections::BTreeMap::new();
    for d in &mdiffs {
        *counts.entry(*d).or_insert(0usize) += 1;
    }
    let mstep = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(d, _)| *d)
        .unwrap_or(1);
    if mstep <= 0 {
        return Err(1);
    }
    match mdiffs.iter().position(|d| d % mstep != 0) {
        Some(p) => Err(p + 1),
        None => Ok(Some(Frequency::Months(mstep as u32))),
    }
}

/// Index of each timestamp on the regular axis that starts at `ds[0]`.
pub(crate) fn axis_positions(ds: &[i64], kind: &TimeKind, freq: Frequency) -> Vec<i64> {
    match freq {
        Frequency::Fixed(step) => ds.iter().map(|v| (v - ds[0]) / step).collect(),
        Frequency::Months(m) => {
            let m0 = kind
                .to_datetime(ds[0])
                .map(|d| month_index(&d))
                .unwrap_or(0);
            ds.iter()
                .map(|&v| {
                    kind.to_datetime(v)
                        .map(|d| (month_index(&d) - m0) / m as i64)
                        .unwrap_or(0)
                })
                .collect()
        }
    }
}

/// A calendar feature derived from `ds`, encoded in [-0.5, 0.5].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarFeature {
    /// Minute of the hour (0..59).
    MinuteOfHour,
    /// Hour of the day (0..23).
    HourOfDay,
    /// Day of the week (Monday 0 .. Sunday 6).
    DayOfWeek,
    /// Day of the month (1..31).
    DayOfMonth,
    /// Day of the year (1..366).
    DayOfYear,
    /// ISO week of the year (1..53).
    WeekOfYear,
    /// Month of the year (1..12).
    MonthOfYear,
}

impl CalendarFeature {
    /// The column name used in schemas and reports.
    pub fn name(self) -> &'static str {
        match self {
            CalendarFeature::MinuteOfHour => "minute_of_hour",
            CalendarFeature::HourOfDay => "hour_of_day",
            CalendarFeature::DayOfWeek => "day_of_week",
            CalendarFeature::DayOfMonth => "day_of_month",
            CalendarFeature::DayOfYear => "day_of_year",
            CalendarFeature::WeekOfYear => "week_of_year",
            CalendarFeature::MonthOfYear => "month_of_year",
        }
    }

    /// The encoded value at `dt` (GluonTS convention: `index / (count - 1) - 0.5`).
    pub fn value(self, dt: &NaiveDateTime) -> f32 {
        let (index, max) = match self {
            CalendarFeature::MinuteOfHour => (dt.minute(), 59),
            CalendarFeature::HourOfDay => (dt.hour(), 23),
            CalendarFeature::DayOfWeek => (dt.weekday().num_days_from_monday(), 6),
            CalendarFeature::DayOfMonth => (dt.day0(), 30),
            CalendarFeature::DayOfYear => (dt.ordinal0(), 365),
            CalendarFeature::WeekOfYear => (dt.iso_week().week0(), 52),
            CalendarFeature::MonthOfYear => (dt.month0(), 11),
        };
        index as f32 / max as f32 - 0.5
    }

    /// The features that vary within a season for a series of this frequency (none for
    /// integer time columns).
    pub fn for_frequency(kind: &TimeKind, freq: Option<Frequency>) -> Vec<CalendarFeature> {
        use CalendarFeature::*;
        let Some(freq) = freq else { return Vec::new() };
        if matches!(kind, TimeKind::Integer) {
            return Vec::new();
        }
        if let Frequency::Months(m) = freq {
            return if m < 12 {
                vec![MonthOfYear]
            } else {
                Vec::new()
            };
        }
        let Some(secs) = freq.approx_seconds(kind) else {
            return Vec::new();
        };
        if secs < 3_600.0 {
            vec![MinuteOfHour, HourOfDay, DayOfWeek, DayOfYear]
        } else if secs < 86_400.0 {
            vec![HourOfDay, DayOfWeek, DayOfYear]
        } else if secs < 604_800.0 {
            vec![DayOfWeek, DayOfMonth, DayOfYear]
        } else if secs < 28.0 * 86_400.0 {
            vec![WeekOfYear]
        } else {
            vec![MonthOfYear]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: TimeKind = TimeKind::Datetime {
        unit: TimeUnit::Us,
        tz: None,
    };

    #[test]
    fn fixed_frequency_with_gaps() {
        let h = 3_600_000_000;
        let ds = [0, h, 2 * h, 5 * h, 6 * h];
        assert_eq!(infer_frequency(&ds, &US), Ok(Some(Frequency::Fixed(h))));
        assert_eq!(
            axis_positions(&ds, &US, Frequency::Fixed(h)),
            vec![0, 1, 2, 5, 6]
        );
        assert_eq!(Frequency::Fixed(h).describe(&US), "1h");
        assert_eq!(Frequency::parse("1h", &US), Some(Frequency::Fixed(h)));
        assert_eq!(
            Frequency::parse("30min", &US),
            Some(Frequency::Fixed(h / 2))
        );
    }

    #[test]
    fn irregular_step_is_reported() {
        let ds = [0, 10, 20, 30, 33, 43];
        assert_eq!(infer_frequency(&ds, &TimeKind::Integer), Err(4));
        // Jitter of one unit on a step of 300 is irregular, not a 1-unit frequency.
        let ds = [0, 300, 600, 901, 1200];
        assert_eq!(infer_frequency(&ds, &TimeKind::Integer), Err(3));
    }

    #[test]
    fn many_gaps_do_not_hide_the_step() {
        let ds = [0, 2, 4, 5, 7, 9];
        assert_eq!(
            infer_frequency(&ds, &TimeKind::Integer),
            Ok(Some(Frequency::Fixed(1)))
        );
    }

    #[test]
    fn monthly_and_month_end() {
        let d = |y, m, day| {
            chrono::NaiveDate::from_ymd_opt(y, m, day)
                .unwrap()
                .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                .num_days()
        };
        let ds = [
            d(2020, 1, 31),
            d(2020, 2, 29),
            d(2020, 3, 31),
            d(2020, 5, 31),
        ];
        assert_eq!(
            infer_frequency(&ds, &TimeKind::Date),
            Ok(Some(Frequency::Months(1)))
        );
        let axis = TimeAxis {
            kind: TimeKind::Date,
            start: ds[0],
            frequency: Frequency::Months(1),
        };
        assert_eq!(axis.at(1), ds[1]);
        assert_eq!(axis.at(2), ds[2]);
        assert_eq!(axis.at(4), ds[3]);
        assert_eq!(
            axis_positions(&ds, &TimeKind::Date, Frequency::Months(1)),
            vec![0, 1, 2, 4]
        );
    }

    #[test]
    fn calendar_encoding_is_in_range() {
        let dt = chrono::NaiveDate::from_ymd_opt(2024, 12, 31)
            .unwrap()
            .and_hms_opt(23, 59, 0)
            .unwrap();
        for f in [
            CalendarFeature::MinuteOfHour,
            CalendarFeature::HourOfDay,
            CalendarFeature::DayOfWeek,
            CalendarFeature::DayOfMonth,
            CalendarFeature::DayOfYear,
            CalendarFeature::WeekOfYear,
            CalendarFeature::MonthOfYear,
        ] {
            let v = f.value(&dt);
            assert!((-0.5..=0.5).contains(&v), "{f:?} {v}");
        }
        assert_eq!(CalendarFeature::HourOfDay.value(&dt), 0.5);
    }
}
