//! The bridge between polars and arrow-rs, through the Arrow C Data Interface.
//!
//! polars keeps its own Arrow implementation (`polars-arrow`) and does not re-export arrow-rs, so
//! the two meet at the C ABI: polars exports an `ArrowArray`/`ArrowSchema` pair and arrow-rs
//! imports it (and the reverse). Both structs are the `#[repr(C)]` structs of the Arrow
//! specification, so the exported value is moved across unchanged; buffers are shared, not copied,
//! for primitive (numeric, temporal) columns and for string views.

use arrow_array::{make_array, ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use polars::prelude::{Column, CompatLevel, DataFrame, IntoColumn, PlSmallStr, Series};
use std::sync::Arc;

use crate::error::{IngestError, Result};

// The two crates' C structs must be the same size, or the moves below would be unsound.
const _: () = {
    assert!(
        std::mem::size_of::<polars_arrow::ffi::ArrowArray>()
            == std::mem::size_of::<arrow_data::ffi::FFI_ArrowArray>()
    );
    assert!(
        std::mem::size_of::<polars_arrow::ffi::ArrowSchema>()
            == std::mem::size_of::<arrow_schema::ffi::FFI_ArrowSchema>()
    );
};

fn arrow_err(column: &str, e: impl Into<crate::error::BoxedError>) -> IngestError {
    IngestError::Arrow {
        column: column.to_string(),
        source: e.into(),
    }
}

/// Converts one polars [`Series`] into an arrow-rs array (zero-copy for numeric columns).
///
/// A series made of several chunks is rechunked first (that one step copies).
pub fn series_to_arrow(series: &Series) -> Result<ArrayRef> {
    let name = series.name().to_string();
    let series = if series.n_chunks() == 1 {
        series.clone()
    } else {
        series.rechunk()
    };
    let array = series.to_arrow(0, CompatLevel::newest());
    let field =
        polars_arrow::datatypes::Field::new(series.name().clone(), array.dtype().clone(), true);
    let c_array = polars_arrow::ffi::export_array_to_c(array);
    let c_schema = polars_arrow::ffi::export_field_to_c(&field);
    // SAFETY: both types are the `#[repr(C)]` ArrowArray / ArrowSchema of the C Data Interface
    // (sizes asserted above); ownership (the release callback) moves with the value.
    let (ffi_array, ffi_schema) = unsafe {
        (
            std::mem::transmute::<polars_arrow::ffi::ArrowArray, arrow_data::ffi::FFI_ArrowArray>(
                c_array,
            ),
            std::mem::transmute::<polars_arrow::ffi::ArrowSchema, arrow_schema::ffi::FFI_ArrowSchema>(
                c_schema,
            ),
        )
    };
    // SAFETY: the pair was produced by a conforming exporter just above.
    let data = unsafe { arrow_array::ffi::from_ffi(ffi_array, &ffi_schema) }
        .map_err(|e| arrow_err(&name, e))?;
    Ok(make_array(data))
}

/// Converts a polars [`DataFrame`] into an arrow-rs [`RecordBatch`] through the C Data Interface.
pub fn dataframe_to_record_batch(df: &DataFrame) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(df.width());
    let mut arrays = Vec::with_capacity(df.width());
    for column in df.columns() {
        let series = column.as_materialized_series();
        let array = series_to_arrow(series)?;
        fields.push(Field::new(
            series.name().as_str(),
            array.data_type().clone(),
            true,
        ));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| arrow_err("<batch>", e))
}

/// Converts one arrow-rs array into a polars [`Series`] named `name` (zero-copy for numeric data).
pub fn arrow_to_series(name: &str, array: &ArrayRef) -> Result<Series> {
    let (ffi_array, ffi_schema) =
        arrow_array::ffi::to_ffi(&array.to_data()).map_err(|e| arrow_err(name, e))?;
    // SAFETY: as above, the structs are the same C ABI type.
    let (c_array, c_schema) = unsafe {
        (
            std::mem::transmute::<arrow_data::ffi::FFI_ArrowArray, polars_arrow::ffi::ArrowArray>(
                ffi_array,
            ),
            std::mem::transmute::<arrow_schema::ffi::FFI_ArrowSchema, polars_arrow::ffi::ArrowSchema>(
                ffi_schema,
            ),
        )
    };
    // SAFETY: produced by arrow-rs' conforming exporter.
    let field = unsafe { polars_arrow::ffi::import_field_from_c(&c_schema) }
        .map_err(|e| arrow_err(name, e))?;
    // SAFETY: the array matches the field just imported.
    let imported = unsafe { polars_arrow::ffi::import_array_from_c(c_array, field.dtype.clone()) }
        .map_err(|e| arrow_err(name, e))?;
    Series::from_arrow(PlSmallStr::from(name), imported).map_err(|e| arrow_err(name, e))
}

/// Converts an arrow-rs [`RecordBatch`] into a polars [`DataFrame`] (the reverse of
/// [`dataframe_to_record_batch`]).
pub fn record_batch_to_dataframe(batch: &RecordBatch) -> Result<DataFrame> {
    let schema = batch.schema();
    let mut columns: Vec<Column> = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        columns.push(arrow_to_series(field.name(), array)?.into_column());
    }
    DataFrame::new(batch.num_rows(), columns).map_err(|e| arrow_err("<batch>", e))
}
