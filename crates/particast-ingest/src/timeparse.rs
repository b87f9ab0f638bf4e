//! Time columns that arrive as text or as epoch integers: their shape is told from a sample of
//! values (or given with [`IngestOptions::time_format`] / [`IngestOptions::time_unit`]) and
//! turned into a polars expression producing a `Date` or a `Datetime`, lazily, so that the
//! bounded-memory reading still streams.
//!
//! Shapes recognised in text: ISO dates and datetimes (with `Z` or `+hh:mm` offsets: read as
//! UTC), years `1975`, quarters `1984Q1`, months `1990-03` (each the first day of its period;
//! the three may mix within one column, as in the Tourism files), US dates `04/30/2021` and
//! European dates `30.04.2021` (when a day above 12 in the sample tells day from month).

use polars::prelude::*;

use crate::error::{IngestError, Result};
use crate::options::IngestOptions;

/// What the shapes a text time column may have are called in messages.
pub(crate) const SHAPES_TRIED: &str = "ISO dates or datetimes (2024-01-31, 2024-01-31 13:00:00, 2012-01-01T00:00:00+11:00), years (1975), quarters (1984Q1), months (1990-03), US dates (04/30/2021), dotted dates (30.04.2021)";

/// Values looked at to tell a column's shape.
const SAMPLE: u32 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Integers: a step counter (kept as integers).
    Integer,
    /// Years, quarters and months (period starts), possibly mixed.
    Period,
    /// `%m/%d/%Y`.
    Us,
    /// `%d/%m/%Y`.
    DaySlash,
    /// `%d.%m.%Y`.
    Dotted,
    /// Anything polars parses without a format (ISO).
    Iso,
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `(a, b)` of `a/b/YYYY` or `a.b.YYYY`.
fn day_month(s: &str, sep: char) -> Option<(u32, u32)> {
    let mut it = s.split(sep);
    let (a, b, y) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || !digits(a) || !digits(b) || y.len() != 4 || !digits(y) {
        return None;
    }
    if a.len() > 2 || b.len() > 2 {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn is_period(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        4 => digits(s),
        6 => digits(&s[..4]) && b[4] == b'Q' && (b'1'..=b'4').contains(&b[5]),
        7 => {
            digits(&s[..4])
                && b[4] == b'-'
                && digits(&s[5..])
                && (1..=12).contains(&s[5..].parse::<u32>().unwrap_or(0))
        }
        _ => false,
    }
}

fn is_iso(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10 && digits(&s[..4]) && b[4] == b'-' && b[7] == b'-' && digits(&s[5..7])
}

/// Tells the shape of sampled values, or says which value fits none.
fn shape_of(values: &[String], column: &str, source: &str) -> Result<Shape> {
    let unreadable = |v: &str| IngestError::TimeFormat {
        source_name: source.into(),
        column: column.into(),
        value: v.into(),
        tried: SHAPES_TRIED.into(),
    };
    let Some(first) = values.first() else {
        return Ok(Shape::Iso);
    };
    let all = |f: &dyn Fn(&str) -> bool| values.iter().find(|v| !f(v));
    let integer = |v: &str| digits(v.strip_prefix('-').unwrap_or(v));
    // Four-digit integers between 1700 and 2300 are years; other integers count steps.
    let year =
        |v: &str| v.len() == 4 && digits(v) && (1700..=2300).contains(&v.parse().unwrap_or(0));
    if integer(first) && all(&integer).is_none() {
        return Ok(if all(&year).is_none() {
            Shape::Period
        } else {
            Shape::Integer
        });
    }
    if is_period(first) {
        return match all(&is_period) {
            None => Ok(Shape::Period),
            Some(v) => Err(unreadable(v)),
        };
    }
    if is_iso(first) {
        return Ok(Shape::Iso);
    }
    for sep in ['/', '.'] {
        if day_month(first, sep).is_none() {
            continue;
        }
        let mut pairs = Vec::with_capacity(values.len());
        for v in values {
            pairs.push(day_month(v, sep).ok_or_else(|| unreadable(v))?);
        }
        let first_is_day = pairs.iter().any(|(a, _)| *a > 12);
        let second_is_day = pairs.iter().any(|(_, b)| *b > 12);
        return match (sep, first_is_day, second_is_day) {
            ('.', _, false) => Ok(Shape::Dotted),
            ('/', false, true) => Ok(Shape::Us),
            ('/', true, false) => Ok(Shape::DaySlash),
            _ => Err(IngestError::Options(format!(
                "{source}: column `{column}` holds dates like `{first}` whose day and month cannot be told apart from the first {} values; set time_format (--time-format %m/%d/%Y or %d/%m/%Y)",
                values.len()
            ))),
        };
    }
    Err(unreadable(first))
}

/// How each value of a text time column is read.
#[derive(Clone, Debug)]
enum Reader {
    /// Years, quarters, months: the first day of the period.
    Period,
    /// One strftime format; `date` when it has no time of day.
    Format { format: String, date: bool },
    /// ISO dates or datetimes; with `utc`, every value has an offset (`Z`, `+11:00`) and is
    /// converted to UTC, else none has (mixing the two is refused, as a wall-clock time
    /// without an offset is not an instant).
    Iso { date: bool, utc: bool },
}

fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn days(d: chrono::NaiveDate) -> i64 {
    (d - epoch()).num_days()
}

fn micros(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

impl Reader {
    /// Days (dates) or microseconds (datetimes) since the epoch, or `None` when `v` does not fit.
    fn read(&self, v: &str) -> Option<i64> {
        use chrono::{DateTime, NaiveDate, NaiveDateTime};
        let v = v.trim();
        match self {
            Reader::Period => {
                if !is_period(v) {
                    return None;
                }
                let y: i32 = v[..4].parse().ok()?;
                let m = match v.len() {
                    4 => 1,
                    6 => 3 * (v[5..].parse::<u32>().ok()? - 1) + 1,
                    _ => v[5..].parse().ok()?,
                };
                NaiveDate::from_ymd_opt(y, m, 1).map(days)
            }
            Reader::Format { format, date: true } => {
                NaiveDate::parse_from_str(v, format).ok().map(days)
            }
            Reader::Format {
                format,
                date: false,
            } => NaiveDateTime::parse_from_str(v, format)
                .ok()
                .map(micros)
                .or_else(|| {
                    DateTime::parse_from_str(v, format)
                        .ok()
                        .map(|t| t.timestamp_micros())
                }),
            Reader::Iso { date: true, .. } => {
                NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().map(days)
            }
            Reader::Iso { utc: true, .. } => DateTime::parse_from_rfc3339(v)
                .or_else(|_| DateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f%:z"))
                .map(|t| t.timestamp_micros())
                .ok(),
            Reader::Iso { .. } => None
                .or_else(|| {
                    [
                        "%Y-%m-%d %H:%M:%S%.f",
                        "%Y-%m-%dT%H:%M:%S%.f",
                        "%Y-%m-%d %H:%M",
                        "%Y-%m-%dT%H:%M",
                    ]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
                    .map(micros)
                })
                .or_else(|| {
                    NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .ok()
                        .map(|d| days(d) * 86_400_000_000)
                }),
        }
    }

    fn dtype(&self) -> DataType {
        match self {
            Reader::Period | Reader::Format { date: true, .. } | Reader::Iso { date: true, .. } => {
                DataType::Date
            }
            Reader::Iso { utc: true, .. } => {
                DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            }
            _ => DataType::Datetime(TimeUnit::Microseconds, None),
        }
    }

    /// The expression reading column `name` (text, or integers such as years, cast to text).
    fn expr(self, name: &str) -> Expr {
        let dtype = self.dtype();
        let out = dtype.clone();
        let column = name.to_string();
        col(name).cast(DataType::String).map(
            move |c: Column| {
                let text = c.str()?;
                let mut values: Vec<Option<i64>> = Vec::with_capacity(text.len());
                for v in text.iter() {
                    values.push(match v {
                        None => None,
                        Some(v) => Some(self.read(v).ok_or_else(|| {
                            polars_err!(ComputeError: "could not read time `{v}` in column `{column}`")
                        })?),
                    });
                }
                let ints = Int64Chunked::from_iter_options(c.name().clone(), values.into_iter())
                    .into_series();
                let typed = match &dtype {
                    DataType::Date => ints.cast(&DataType::Int32)?.cast(&DataType::Date)?,
                    dt => ints.cast(dt)?,
                };
                Ok(typed.into_column())
            },
            move |_, f| Ok(Field::new(f.name().clone(), out.clone())),
        )
    }
}

/// True when an ISO datetime ends in an offset (`Z`, `+11:00`, `-0500`).
fn has_offset(v: &str) -> bool {
    let time = v.get(10..).unwrap_or("");
    time.ends_with('Z') || time.contains('+') || time.rfind('-').is_some()
}

/// True when a strftime format has a time of day.
fn has_time(format: &str) -> bool {
    ["%H", "%I", "%M", "%S", "%T", "%R", "%s", "%z", "%c", "%+"]
        .iter()
        .any(|t| format.contains(t))
}

/// The expression that reads the time column of `lf`, when the column is text or an
/// options-given format or epoch unit applies; `None` leaves the column as it is.
pub(crate) fn time_column(
    lf: &LazyFrame,
    dtype: &DataType,
    opts: &IngestOptions,
    source: &str,
) -> Result<Option<Expr>> {
    let name = opts.time_col.as_str();
    if let Some(unit) = &opts.time_unit {
        if !dtype.is_integer() && dtype != &DataType::String {
            return Err(IngestError::Options(format!(
                "time_unit {unit:?} is for integer epoch columns; `{name}` is {dtype}"
            )));
        }
        let (factor, tu) = match unit.as_str() {
            "s" => (1000i64, TimeUnit::Milliseconds),
            "ms" => (1, TimeUnit::Milliseconds),
            "us" => (1, TimeUnit::Microseconds),
            "ns" => (1, TimeUnit::Nanoseconds),
            other => {
                return Err(IngestError::Options(format!(
                    "time_unit {other:?} is not one of s, ms, us, ns"
                )))
            }
        };
        let c = col(name).strict_cast(DataType::Int64);
        let c = if factor == 1 { c } else { c * lit(factor) };
        return Ok(Some(c.cast(DataType::Datetime(tu, None))));
    }
    if let Some(format) = &opts.time_format {
        let reader = match format.as_str() {
            "%Y" | "%YQ%q" | "%Y-%m" => Reader::Period,
            f => Reader::Format {
                format: f.to_string(),
                date: !has_time(f),
            },
        };
        return Ok(Some(reader.expr(name)));
    }
    if !matches!(dtype, DataType::String) {
        return Ok(None);
    }
    let sample = lf
        .clone()
        .select([col(name)])
        .drop_nulls(None)
        .limit(SAMPLE)
        .collect()
        .map_err(|e| IngestError::read(source, e))?;
    let values: Vec<String> = sample
        .column(name)
        .and_then(|c| c.str().cloned())
        .map_err(|e| IngestError::read(source, e))?
        .iter()
        .flatten()
        .map(|v| v.trim().to_string())
        .collect();
    let format = |f: &str| Reader::Format {
        format: f.into(),
        date: true,
    };
    let reader = match shape_of(&values, name, source)? {
        Shape::Integer => return Ok(Some(col(name).strict_cast(DataType::Int64))),
        Shape::Period => Reader::Period,
        Shape::Us => format("%m/%d/%Y"),
        Shape::DaySlash => format("%d/%m/%Y"),
        Shape::Dotted => format("%d.%m.%Y"),
        Shape::Iso => Reader::Iso {
            date: values.iter().all(|v| v.len() == 10),
            utc: values.first().is_some_and(|v| has_offset(v)),
        },
    };
    // Every sampled value must read, so the message can name the first that does not.
    if let Some(bad) = values.iter().find(|v| reader.read(v).is_none()) {
        return Err(IngestError::TimeFormat {
            source_name: source.into(),
            column: name.into(),
            value: bad.clone(),
            tried: SHAPES_TRIED.into(),
        });
    }
    Ok(Some(reader.expr(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(values: &[&str]) -> Result<Shape> {
        let v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        shape_of(&v, "ds", "test")
    }

    #[test]
    fn shapes_are_told_from_samples() {
        assert_eq!(shape(&["1975", "1976"]).unwrap(), Shape::Period);
        assert_eq!(shape(&["1", "2", "1975"]).unwrap(), Shape::Integer);
        assert_eq!(shape(&["-9223372036854775808"]).unwrap(), Shape::Integer);
        assert_eq!(
            shape(&["1984Q1", "1984Q2", "1990-03", "2001"]).unwrap(),
            Shape::Period
        );
        assert_eq!(shape(&["04/30/2021", "04/23/2021"]).unwrap(), Shape::Us);
        assert_eq!(
            shape(&["30/04/2021", "01/05/2021"]).unwrap(),
            Shape::DaySlash
        );
        assert_eq!(shape(&["30.04.2021"]).unwrap(), Shape::Dotted);
        assert_eq!(shape(&["2012-01-01T00:00:00+11:00"]).unwrap(), Shape::Iso);
        // Day and month cannot be told apart.
        let e = shape(&["01/02/2021", "03/04/2021"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--time-format"), "{e}");
        // Nothing fits: the error lists what was tried.
        let e = shape(&["next tuesday"]).unwrap_err().to_string();
        assert!(
            e.contains("years (1975)") && e.contains("next tuesday"),
            "{e}"
        );
        let e = shape(&["1984Q1", "1984Q5"]).unwrap_err().to_string();
        assert!(e.contains("1984Q5"), "{e}");
    }

    #[test]
    fn period_starts_and_dates_are_the_right_days() {
        let p = Reader::Period;
        // 1970-04-01 = 90; 1990-03-01 = 7364; 2000-02-01 = 10988; 2024-10-01 = 19997;
        // 1900-01-01 = -25567.
        for (v, d) in [
            ("1970", 0),
            ("1970Q2", 90),
            ("1990-03", 7364),
            ("2000-02", 10988),
            ("2024Q4", 19997),
            ("1900", -25567),
        ] {
            assert_eq!(p.read(v), Some(d), "{v}");
        }
        assert_eq!(p.read("bad"), None);
        assert_eq!(p.read("1990-13"), None);
        let us = Reader::Format {
            format: "%m/%d/%Y".into(),
            date: true,
        };
        assert_eq!(us.read("01/02/1970"), Some(1));
        let utc = Reader::Iso {
            date: false,
            utc: true,
        };
        assert_eq!(utc.read("1970-01-01T11:00:00+11:00"), Some(0));
        assert_eq!(utc.read("1970-01-01 00:00:01"), None);
        let naive = Reader::Iso {
            date: false,
            utc: false,
        };
        assert_eq!(naive.read("1970-01-01 00:00:01"), Some(1_000_000));
        assert_eq!(naive.read("1970-01-01T11:00:00+11:00"), None);
    }
}
