//! Decoding the window record batches of ingestion (Arrow list columns) into kernel buffers.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, UInt8Type};
use arrow_array::RecordBatch;
use particast_ingest::{columns, WindowData};

use super::{InputSpec, KernelBatch};
use crate::error::{PipelineError, Result};

impl InputSpec {
    /// Kernel buffers for a window batch from the ingestion crate, each window scaled by its
    /// first `context` steps (historical covariates known on those steps only; the step
    /// before a window is not in the batch, so its first step sees them unknown).
    pub fn from_record_batch(&self, batch: &RecordBatch, context: usize) -> Result<KernelBatch> {
        let d = self.features.n_targets;
        let list = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_fixed_size_list_opt())
                .ok_or_else(|| {
                    PipelineError::Config(format!("window batch has no `{name}` list column"))
                })
        };
        let (values, mask, covs, lags, lag_mask) = (
            list(columns::VALUES)?,
            list(columns::MASK)?,
            list(columns::COVARIATES)?,
            list(columns::LAGS)?,
            list(columns::LAG_MASK)?,
        );
        let steps = values.value_length() as usize / d.max(1);
        let mut out = KernelBatch::default();
        let f32s = |a: &arrow_array::FixedSizeListArray, r: usize| -> Vec<f32> {
            a.value(r).as_primitive::<Float32Type>().values().to_vec()
        };
        let u8s = |a: &arrow_array::FixedSizeListArray, r: usize| -> Vec<u8> {
            a.value(r).as_primitive::<UInt8Type>().values().to_vec()
        };
        for r in 0..batch.num_rows() {
            let w = WindowData {
                values: f32s(values, r),
                mask: u8s(mask, r),
                covariates: f32s(covs, r),
                lags: f32s(lags, r),
                lag_mask: u8s(lag_mask, r),
            };
            let affine = self.scaling.affine(&w.values, &w.mask, d, context);
            self.push_window(&w, steps, &affine, context, None, &mut out);
        }
        out.steps = steps;
        Ok(out)
    }
}
