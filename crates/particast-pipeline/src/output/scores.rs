//! The scores file: one row per input row with the four score columns (see [`super`]), its
//! writer ([`scores_batch`]) and its reader ([`read_scores`]).

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use particast_ingest::{DataSchema, TimeKind};
use polars::prelude::{Column, DataFrame, DataType, PolarsError};
use std::path::Path;
use std::sync::Arc;

use super::{batch, time_kind_of};
use crate::error::{PipelineError, Result};
use crate::score::SeriesScores;

/// The score columns of some series, input rows only.
pub fn scores_batch(scores: &[SeriesScores], schema: &DataSchema) -> Result<RecordBatch> {
    let d = schema.target_cols.len();
    let mut ids = Vec::new();
    let mut ds = Vec::new();
    let mut ys: Vec<Vec<Option<f64>>> = vec![Vec::new(); d];
    let (mut nll, mut pit, mut anomaly, mut flag) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in scores {
        for t in 0..s.ds.len() {
            if !s.present[t] {
                continue;
            }
            ids.push(s.id.clone());
            ds.push(s.ds[t]);
            for (k, col) in ys.iter_mut().enumerate() {
                col.push(s.y[t * d + k]);
            }
            nll.push(s.nll[t]);
            pit.push(s.pit[t]);
            anomaly.push(s.anomaly[t]);
            flag.push(s.flag[t]);
        }
    }
    let mut fields: Vec<(String, ArrayRef)> = vec![
        ("unique_id".into(), Arc::new(StringArray::from(ids))),
        ("ds".into(), Arc::new(Int64Array::from(ds))),
    ];
    for (name, col) in schema.target_cols.iter().zip(ys) {
        fields.push((name.clone(), Arc::new(Float64Array::from(col))));
    }
    fields.push(("particast-nll".into(), Arc::new(Float64Array::from(nll))));
    fields.push(("particast-pit".into(), Arc::new(Float64Array::from(pit))));
    fields.push((
        "particast-anomaly".into(),
        Arc::new(Float64Array::from(anomaly)),
    ));
    fields.push(("particast-flag".into(), Arc::new(BooleanArray::from(flag))));
    batch(fields)
}

/// Reads a scores frame back (`name` names it in messages): one [`SeriesScores`] per run of
/// rows with the same `unique_id`, in row order, with the time kind of `ds`. The value
/// columns (the targets) are not read back: `y` is empty.
pub fn read_scores(df: &DataFrame, name: &str) -> Result<(TimeKind, Vec<SeriesScores>)> {
    let path = Path::new(name);
    let fail = |e: PolarsError| {
        PipelineError::format(path, e.to_string().lines().next().unwrap_or("").to_string())
    };
    let need = |c: &str| -> Result<Column> {
        df.column(c).cloned().map_err(|_| {
            PipelineError::format(
                path,
                format!("missing column `{c}` (not a particast scores file?)"),
            )
        })
    };
    let ds_col = need("ds")?;
    let kind = time_kind_of(ds_col.dtype()).ok_or_else(|| {
        PipelineError::format(
            path,
            format!(
                "`ds` is {}, expected a datetime, a date or an integer",
                ds_col.dtype()
            ),
        )
    })?;
    let ids = need("unique_id")?.cast(&DataType::String).map_err(fail)?;
    let ids = ids.str().map_err(fail)?;
    let ds = ds_col.cast(&DataType::Int64).map_err(fail)?;
    let ds = ds.i64().map_err(fail)?;
    let f64s = |c: &str| -> Result<Vec<Option<f64>>> {
        let col = need(c)?.cast(&DataType::Float64).map_err(fail)?;
        Ok(col.f64().map_err(fail)?.iter().collect())
    };
    let (nll, pit, anomaly) = (
        f64s("particast-nll")?,
        f64s("particast-pit")?,
        f64s("particast-anomaly")?,
    );
    let flag = need("particast-flag")?
        .cast(&DataType::Boolean)
        .map_err(fail)?;
    let flag: Vec<Option<bool>> = flag.bool().map_err(fail)?.iter().collect();
    let mut out: Vec<SeriesScores> = Vec::new();
    for i in 0..df.height() {
        let id = ids.get(i).unwrap_or("");
        if out.last().map(|s| s.id != id).unwrap_or(true) {
            out.push(SeriesScores {
                id: id.to_string(),
                ..Default::default()
            });
        }
        if let Some(s) = out.last_mut() {
            s.ds.push(ds.get(i).unwrap_or(i64::MIN));
            s.present.push(true);
            s.nll.push(nll[i]);
            s.pit.push(pit[i]);
            s.anomaly.push(anomaly[i]);
            s.flag.push(flag[i]);
        }
    }
    Ok((kind, out))
}
