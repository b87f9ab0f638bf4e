//! The scoring state file ([`save_states`], [`load_states`]): one row per series with its id,
//! steps, last timestamp, and list columns for the scale, location, particle states,
//! log-weights, the lag history and the anomaly method's memory.

use crate::error::{PipelineError, Result};
use crate::score::SeriesState;

/// A list column of `inner` values, one list per state. Typed even with no rows (an empty list
/// of series would be a Null column), so an empty state table reads back.
fn list_column(
    name: &str,
    items: Vec<polars::prelude::Series>,
    inner: polars::prelude::DataType,
) -> polars::prelude::Column {
    use polars::prelude::*;
    let list = Series::new(name.into(), items);
    // Casting a list of `inner` lists (or an empty Null column) to List(inner) cannot fail.
    list.cast(&DataType::List(Box::new(inner)))
        .unwrap_or(list)
        .into_column()
}

fn list_f64(name: &str, rows: impl Iterator<Item = Vec<f64>>) -> polars::prelude::Column {
    use polars::prelude::*;
    let items = rows.map(|v| Series::new("".into(), v)).collect();
    list_column(name, items, DataType::Float64)
}

fn list_f32(name: &str, rows: impl Iterator<Item = Vec<f32>>) -> polars::prelude::Column {
    use polars::prelude::*;
    let items = rows.map(|v| Series::new("".into(), v)).collect();
    list_column(name, items, DataType::Float32)
}

/// Writes per-series scoring states as a Parquet file (atomically): one row per series with its
/// id, steps, last timestamp, and list columns for the scale, location, particle states, log-weights, the
/// lag history and the recent anomaly scores.
pub fn save_states(states: &[SeriesState], path: &std::path::Path) -> Result<()> {
    crate::sink::write_parquet(&mut states_to_frame(states)?, path)
}

/// The states as the table a state file holds (one row per series).
pub fn states_to_frame(states: &[SeriesState]) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let n = states.len();
    let columns = vec![
        Column::new(
            "unique_id".into(),
            states.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "steps".into(),
            states.iter().map(|s| s.steps as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "last_ds".into(),
            states.iter().map(|s| s.last_ds).collect::<Vec<_>>(),
        ),
        list_f64("scale", states.iter().map(|s| s.scale.clone())),
        list_f64("loc", states.iter().map(|s| s.loc.clone())),
        list_f32("h", states.iter().map(|s| s.h.clone())),
        list_f32("log_w", states.iter().map(|s| s.log_w.clone())),
        list_f64("tail_values", states.iter().map(|s| s.tail_values.clone())),
        list_f64(
            "tail_mask",
            states
                .iter()
                .map(|s| s.tail_mask.iter().map(|&m| m as f64).collect()),
        ),
        list_f32(
            "tail_covariates",
            states.iter().map(|s| s.tail_covariates.clone()),
        ),
        list_f64(
            "tail_present",
            states
                .iter()
                .map(|s| s.tail_present.iter().map(|&m| m as f64).collect()),
        ),
        Column::new(
            "min_value".into(),
            states.iter().map(|s| s.min_value).collect::<Vec<_>>(),
        ),
        list_f32("adapted", states.iter().map(|s| s.adapted.clone())),
        list_f64(
            "recent_scores",
            states.iter().map(|s| s.recent_scores.clone()),
        ),
        list_f64("recent_calm", states.iter().map(|s| s.recent_calm.clone())),
        list_f64(
            "recent_anomaly",
            states.iter().map(|s| s.recent_anomaly.clone()),
        ),
        list_f64("recent_raw", states.iter().map(|s| s.recent_raw.clone())),
        list_f64("recent_mean", states.iter().map(|s| s.recent_mean.clone())),
        list_f64(
            "surprise_fit",
            states.iter().map(|s| s.surprise_fit.clone()),
        ),
        list_f64(
            "recent_values",
            states.iter().map(|s| s.recent_values.clone()),
        ),
    ];
    DataFrame::new(n, columns).map_err(|e| PipelineError::Polars {
        context: "building the state table".into(),
        source: e.into(),
    })
}

/// The states as the bytes of a state file (Parquet), for front ends that keep them in memory
/// or ship them between processes.
pub fn states_to_bytes(states: &[SeriesState]) -> Result<Vec<u8>> {
    use polars::prelude::*;
    let mut df = states_to_frame(states)?;
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .finish(&mut df)
        .map_err(|e| PipelineError::Polars {
            context: "writing the state table".into(),
            source: e.into(),
        })?;
    Ok(out)
}

/// Reads a state file written by [`save_states`].
pub fn load_states(path: &std::path::Path) -> Result<Vec<SeriesState>> {
    let bytes = crate::model_dir::read_file(path)?;
    states_from_bytes(&bytes, path)
}

/// Reads states from the bytes of a state file ([`states_to_bytes`]); `name` names them in
/// messages.
pub fn states_from_bytes(bytes: &[u8], name: &std::path::Path) -> Result<Vec<SeriesState>> {
    use polars::prelude::*;
    let path = name;
    let df = ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .map_err(|e| PipelineError::format(path, format!("not a state file: {e}")))?;
    states_from_frame(&df, path)
}

/// The states in a state table ([`states_to_frame`]); `path` names it in messages.
pub fn states_from_frame(
    df: &polars::prelude::DataFrame,
    path: &std::path::Path,
) -> Result<Vec<SeriesState>> {
    use polars::prelude::*;
    let bad = |m: String| PipelineError::format(path, m);
    let col = |name: &str| {
        df.column(name)
            .map_err(|_| bad(format!("state file has no `{name}` column")))
    };
    let ids = col("unique_id")?
        .str()
        .map_err(|e| bad(e.to_string()))?
        .clone();
    let steps = col("steps")?.u64().map_err(|e| bad(e.to_string()))?.clone();
    let last = col("last_ds")?
        .i64()
        .map_err(|e| bad(e.to_string()))?
        .clone();
    let lists = |name: &str| -> Result<ListChunked> {
        col(name)?.list().cloned().map_err(|e| bad(e.to_string()))
    };
    let (scale, h, log_w, tv, tm, rs) = (
        lists("scale")?,
        lists("h")?,
        lists("log_w")?,
        lists("tail_values")?,
        lists("tail_mask")?,
        lists("recent_scores")?,
    );
    // State files written before locations existed have no `loc` column: location 0.
    let loc = df.column("loc").ok().and_then(|c| c.list().ok().cloned());
    // Written before forecasting from states: no covariates or rows of the tail, no minimum.
    let optional_list = |name: &str| df.column(name).ok().and_then(|c| c.list().ok().cloned());
    let recent_anomaly = optional_list("recent_anomaly");
    let (tail_cov, tail_present, adapted, recent_calm) = (
        optional_list("tail_covariates"),
        optional_list("tail_present"),
        // Written before online adaptation: the model's own weights.
        optional_list("adapted"),
        // Written before the calm score: its memory starts empty.
        optional_list("recent_calm"),
    );
    // Written before the surprise method and the novelty rule: their memory starts empty.
    let (recent_raw, recent_mean, surprise_fit, recent_values) = (
        optional_list("recent_raw"),
        optional_list("recent_mean"),
        optional_list("surprise_fit"),
        optional_list("recent_values"),
    );
    let min_value = df
        .column("min_value")
        .ok()
        .and_then(|c| c.cast(&DataType::Float64).ok())
        .and_then(|c| c.f64().ok().cloned());
    let f64s = |l: &ListChunked, i: usize| -> Result<Vec<f64>> {
        let s = l
            .get_as_series(i)
            .ok_or_else(|| bad(format!("row {i}: missing list")))?;
        let s = s.cast(&DataType::Float64).map_err(|e| bad(e.to_string()))?;
        let ca = s.f64().map_err(|e| bad(e.to_string()))?;
        ca.iter()
            .map(|v| v.ok_or_else(|| bad(format!("row {i}: null in a list"))))
            .collect()
    };
    // An optional list column of row i: empty when the file predates it.
    let opt_f64s = |l: &Option<ListChunked>, i: usize| -> Result<Vec<f64>> {
        l.as_ref().map_or(Ok(Vec::new()), |l| f64s(l, i))
    };
    let opt_f32s = |l: &Option<ListChunked>, i: usize| -> Result<Vec<f32>> {
        Ok(opt_f64s(l, i)?.into_iter().map(|v| v as f32).collect())
    };
    (0..df.height())
        .map(|i| {
            Ok(SeriesState {
                id: ids
                    .get(i)
                    .ok_or_else(|| bad(format!("row {i}: null id")))?
                    .to_string(),
                steps: steps.get(i).unwrap_or(0) as usize,
                last_ds: last
                    .get(i)
                    .ok_or_else(|| bad(format!("row {i}: null last_ds")))?,
                scale: f64s(&scale, i)?,
                loc: match &loc {
                    Some(l) => f64s(l, i)?,
                    None => vec![0.0; f64s(&scale, i)?.len()],
                },
                h: f64s(&h, i)?.into_iter().map(|v| v as f32).collect(),
                log_w: f64s(&log_w, i)?.into_iter().map(|v| v as f32).collect(),
                tail_values: f64s(&tv, i)?,
                tail_mask: f64s(&tm, i)?
                    .into_iter()
                    .map(|v| u8::from(v != 0.0))
                    .collect(),
                tail_covariates: opt_f32s(&tail_cov, i)?,
                tail_present: opt_f64s(&tail_present, i)?
                    .into_iter()
                    .map(|v| u8::from(v != 0.0))
                    .collect(),
                min_value: min_value.as_ref().and_then(|m| m.get(i)),
                adapted: opt_f32s(&adapted, i)?,
                recent_scores: f64s(&rs, i)?,
                recent_calm: opt_f64s(&recent_calm, i)?,
                recent_anomaly: opt_f64s(&recent_anomaly, i)?,
                recent_raw: opt_f64s(&recent_raw, i)?,
                recent_mean: opt_f64s(&recent_mean, i)?,
                surprise_fit: opt_f64s(&surprise_fit, i)?,
                recent_values: opt_f64s(&recent_values, i)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_state_table_reads_back() {
        let bytes = states_to_bytes(&[]).unwrap();
        let back = states_from_bytes(&bytes, std::path::Path::new("<states>")).unwrap();
        assert!(back.is_empty());
        let df = states_to_frame(&[]).unwrap();
        assert!(states_from_frame(&df, std::path::Path::new("<states>"))
            .unwrap()
            .is_empty());
    }
}
