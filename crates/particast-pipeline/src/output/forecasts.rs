//! The forecast file: one row per series and step (see [`super`]), its writer
//! ([`forecast_batch`]) and its reader ([`read_forecasts`]).

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use polars::prelude::*;
use std::path::Path;
use std::sync::Arc;

use super::{batch, level_name};
use crate::error::{PipelineError, Result};
use crate::forecast::{Mode, SeriesForecast, StepForecast};
use crate::mixture::Component;

/// The forecast columns of some series.
pub fn forecast_batch(
    forecasts: &[SeriesForecast],
    levels: &[f64],
    mode: Mode,
    particles: usize,
    student_t: bool,
) -> Result<RecordBatch> {
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let (mut mean, mut median) = (Vec::new(), Vec::new());
    let mut lo: Vec<Vec<f64>> = vec![Vec::new(); levels.len()];
    let mut hi: Vec<Vec<f64>> = vec![Vec::new(); levels.len()];
    // Mixture columns in particle mode, unless no step has a mixture (a transformed model
    // reports quantiles only).
    let per_particle = mode == Mode::Particle
        && forecasts
            .iter()
            .any(|f| f.steps.iter().any(|s| !s.mixture.is_empty()));
    let mut comp: Vec<[Vec<f64>; 4]> = (0..if per_particle { particles } else { 0 })
        .map(|_| [Vec::new(), Vec::new(), Vec::new(), Vec::new()])
        .collect();
    for f in forecasts {
        for s in &f.steps {
            ids.push(f.id.clone());
            ds.push(s.ds);
            mean.push(s.mean);
            median.push(s.median);
            for (i, (a, b)) in s.intervals.iter().enumerate() {
                lo[i].push(*a);
                hi[i].push(*b);
            }
            for (k, c) in comp.iter_mut().enumerate() {
                let m = s.mixture.get(k);
                c[0].push(m.map(|m| m.weight).unwrap_or(f64::NAN));
                c[1].push(m.map(|m| m.mu).unwrap_or(f64::NAN));
                c[2].push(m.map(|m| m.sigma).unwrap_or(f64::NAN));
                c[3].push(m.map(|m| m.nu).unwrap_or(f64::NAN));
            }
        }
    }
    let mut fields: Vec<(String, ArrayRef)> = vec![
        ("unique_id".into(), Arc::new(StringArray::from(ids))),
        ("ds".into(), Arc::new(Int64Array::from(ds))),
        ("particast".into(), Arc::new(Float64Array::from(mean))),
        (
            "particast-median".into(),
            Arc::new(Float64Array::from(median)),
        ),
    ];
    for (i, l) in levels.iter().enumerate() {
        fields.push((
            format!("particast-lo-{}", level_name(*l)),
            Arc::new(Float64Array::from(std::mem::take(&mut lo[i]))),
        ));
        fields.push((
            format!("particast-hi-{}", level_name(*l)),
            Arc::new(Float64Array::from(std::mem::take(&mut hi[i]))),
        ));
    }
    for (k, c) in comp.into_iter().enumerate() {
        let [w, mu, sd, nu] = c;
        fields.push((
            format!("particast-weight-{k}"),
            Arc::new(Float64Array::from(w)),
        ));
        fields.push((
            format!("particast-mu-{k}"),
            Arc::new(Float64Array::from(mu)),
        ));
        fields.push((
            format!("particast-std-{k}"),
            Arc::new(Float64Array::from(sd)),
        ));
        if student_t {
            fields.push((
                format!("particast-df-{k}"),
                Arc::new(Float64Array::from(nu)),
            ));
        }
    }
    batch(fields)
}

/// Reads forecasts back from a frame in the forecast format (`name` names it in messages):
/// per-series forecasts in row order (with their mixtures when the columns are there) and the
/// interval levels found, ascending.
pub fn read_forecasts(df: &DataFrame, name: &str) -> Result<(Vec<SeriesForecast>, Vec<f64>)> {
    let path = Path::new(name);
    let fail = |e: PolarsError| {
        PipelineError::format(path, e.to_string().lines().next().unwrap_or("").to_string())
    };
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let need = |c: &str| -> Result<Column> {
        df.column(c).cloned().map_err(|_| {
            PipelineError::format(
                path,
                format!("missing column `{c}` (not a particast forecast file?)"),
            )
        })
    };
    let f64col = |c: &str| -> Result<Vec<f64>> {
        let col = need(c)?.cast(&DataType::Float64).map_err(fail)?;
        Ok(col
            .f64()
            .map_err(fail)?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let ids: Vec<String> = need("unique_id")?
        .cast(&DataType::String)
        .map_err(fail)?
        .str()
        .map_err(fail)?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect();
    let ds: Vec<i64> = need("ds")?
        .cast(&DataType::Int64)
        .map_err(fail)?
        .i64()
        .map_err(fail)?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let mean = f64col("particast")?;
    let median = f64col("particast-median")?;
    let mut levels: Vec<f64> = names
        .iter()
        .filter_map(|n| n.strip_prefix("particast-lo-").and_then(|l| l.parse().ok()))
        .collect();
    levels.sort_by(|a, b| a.total_cmp(b));
    let mut bounds = Vec::new();
    for l in &levels {
        let name = level_name(*l);
        bounds.push((
            f64col(&format!("particast-lo-{name}"))?,
            f64col(&format!("particast-hi-{name}"))?,
        ));
    }
    let particles = (0..)
        .take_while(|k| names.iter().any(|n| n == &format!("particast-weight-{k}")))
        .count();
    let mut comps = Vec::new();
    for k in 0..particles {
        let nu = if names.iter().any(|n| n == &format!("particast-df-{k}")) {
            f64col(&format!("particast-df-{k}"))?
        } else {
            vec![f64::INFINITY; df.height()]
        };
        comps.push((
            f64col(&format!("particast-weight-{k}"))?,
            f64col(&format!("particast-mu-{k}"))?,
            f64col(&format!("particast-std-{k}"))?,
            nu,
        ));
    }
    let mut out: Vec<SeriesForecast> = Vec::new();
    for r in 0..df.height() {
        if out.last().map(|f| f.id != ids[r]).unwrap_or(true) {
            out.push(SeriesForecast {
                id: ids[r].clone(),
                steps: Vec::new(),
            });
        }
        let mixture = comps
            .iter()
            .map(|(w, m, s, nu)| Component {
                weight: w[r],
                mu: m[r],
                sigma: s[r],
                nu: nu[r],
            })
            .collect();
        if let Some(f) = out.last_mut() {
            f.steps.push(StepForecast {
                ds: ds[r],
                mean: mean[r],
                median: median[r],
                intervals: bounds.iter().map(|(lo, hi)| (lo[r], hi[r])).collect(),
                mixture,
                samples: Vec::new(),
            });
        }
    }
    Ok((out, levels))
}

/// A forecast file read part by part ([`particast_ingest::ipc::read_table_parts`]): the
/// forecasts come one series at a time, as [`read_forecasts`] of the whole file would give
/// them (a series whose rows straddle two parts is joined), while memory holds one part.
pub struct ForecastReader {
    parts: Box<dyn Iterator<Item = particast_ingest::Result<DataFrame>> + Send>,
    name: String,
    levels: Vec<f64>,
    /// Rows of the last series of the previous part (it may go on in the next).
    carry: Option<DataFrame>,
    queue: std::collections::VecDeque<SeriesForecast>,
    done: bool,
}

impl ForecastReader {
    /// Opens `path` (`name` in messages) and reads its first part, for the levels.
    pub fn open(path: &Path, name: &str) -> Result<ForecastReader> {
        let parts =
            particast_ingest::ipc::read_table_parts(path, name, crate::sink::ROWS_PER_GROUP)?;
        let mut r = ForecastReader {
            parts,
            name: name.to_string(),
            levels: Vec::new(),
            carry: None,
            queue: Default::default(),
            done: false,
        };
        r.fill()?;
        Ok(r)
    }

    /// The interval levels of the file, ascending.
    pub fn levels(&self) -> &[f64] {
        &self.levels
    }

    /// Reads parts until whole series are queued or the file is done.
    fn fill(&mut self) -> Result<()> {
        while self.queue.is_empty() && !self.done {
            let Some(part) = self.parts.next() else {
                self.done = true;
                if let Some(rest) = self.carry.take() {
                    let (fc, levels) = read_forecasts(&rest, &self.name)?;
                    self.levels = levels;
                    self.queue.extend(fc);
                }
                return Ok(());
            };
            let mut df = part?;
            if let Some(mut c) = self.carry.take() {
                c.vstack_mut_owned(df)
                    .map_err(|e| PipelineError::format(Path::new(&self.name), e.to_string()))?;
                df = c;
            }
            // Keep the last run of one id: its rows may continue in the next part.
            let start = last_run_start(&df, &self.name)?;
            let whole = df.slice(0, start);
            self.carry = Some(df.slice(start as i64, df.height() - start));
            let (fc, levels) = read_forecasts(&whole, &self.name)?;
            self.levels = levels;
            self.queue.extend(fc);
        }
        Ok(())
    }
}

/// The first row of the last run of equal `unique_id`s (0 for an empty frame).
fn last_run_start(df: &DataFrame, name: &str) -> Result<usize> {
    let path = Path::new(name);
    let ids = df
        .column("unique_id")
        .map_err(|_| {
            PipelineError::format(
                path,
                "missing column `unique_id` (not a particast forecast file?)",
            )
        })?
        .cast(&DataType::String)
        .map_err(|e| PipelineError::format(path, e.to_string()))?;
    let ids = ids
        .str()
        .map_err(|e| PipelineError::format(path, e.to_string()))?
        .clone();
    let n = ids.len();
    if n == 0 {
        return Ok(0);
    }
    let last = ids.get(n - 1);
    let mut start = n - 1;
    while start > 0 && ids.get(start - 1) == last {
        start -= 1;
    }
    Ok(start)
}

impl Iterator for ForecastReader {
    type Item = Result<SeriesForecast>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.fill() {
            self.done = true;
            self.queue.clear();
            return Some(Err(e));
        }
        self.queue.pop_front().map(Ok)
    }
}
