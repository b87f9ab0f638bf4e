//! The scores file: one row per input row with the four score columns (see [`super`]).

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use particast_ingest::DataSchema;
use std::sync::Arc;

use super::batch;
use crate::error::Result;
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
