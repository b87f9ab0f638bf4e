//! Arrow IPC inputs, and whole-table reads of Parquet or Arrow IPC files.
//!
//! Arrow IPC streams and files (`.arrow`, `.arrows`, `.ipc`) are read with arrow-rs and handed
//! to polars through the C Data Interface ([`crate::ffi`]); they are read whole into memory.
//! Formats are told from the first bytes: `PAR1` is Parquet, an IPC continuation marker or
//! `ARROW1` is Arrow IPC.

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::SchemaRef;
use polars::prelude::*;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{IngestError, Result};
use crate::ffi::record_batch_to_dataframe;

/// Magic bytes at the start of an Arrow IPC file.
pub(crate) const ARROW_FILE_MAGIC: &[u8] = b"ARROW1";
/// The continuation marker that starts every message of an Arrow IPC stream.
pub(crate) const ARROW_STREAM_MARKER: &[u8] = &[0xff, 0xff, 0xff, 0xff];

/// Reads an Arrow IPC file or stream (told apart by the file magic) into one frame.
pub fn read_ipc_file(path: &Path, name: &str) -> Result<DataFrame> {
    let mut file = File::open(path).map_err(|e| IngestError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut head = [0u8; 6];
    let n = read_prefix(&mut file, &mut head).map_err(|e| IngestError::read(name, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| IngestError::read(name, e))?;
    let (schema, batches) = if head[..n] == *ARROW_FILE_MAGIC {
        let reader = arrow_ipc::reader::FileReader::try_new(file, None)
            .map_err(|e| IngestError::read(name, e))?;
        all_batches(reader, name)?
    } else {
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::BufReader::new(file), None)
            .map_err(|e| IngestError::read(name, e))?;
        all_batches(reader, name)?
    };
    let mut out = record_batch_to_dataframe(&RecordBatch::new_empty(schema))?;
    for b in &batches {
        let df = record_batch_to_dataframe(b)?;
        out.vstack_mut(&df)
            .map_err(|e| IngestError::read(name, e))?;
    }
    Ok(out)
}

/// Reads a whole Parquet file or Arrow IPC file or stream (told from the first bytes) into one
/// frame, named `name` in messages.
pub fn read_table(path: &Path, name: &str) -> Result<DataFrame> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => IngestError::NotFound {
            source_name: name.into(),
        },
        _ => IngestError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    let mut head = [0u8; 4];
    let n = read_prefix(&mut file, &mut head).map_err(|e| IngestError::read(name, e))?;
    if head[..n] != *b"PAR1" {
        return read_ipc_file(path, name);
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| IngestError::read(name, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| IngestError::read(name, e))
}

/// The schema and every batch of an IPC reader.
fn all_batches(
    reader: impl RecordBatchReader,
    name: &str,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| IngestError::read(name, e))?;
    Ok((schema, batches))
}

/// Fills `buf` from the start of `r` as far as it goes; returns how many bytes were read.
pub(crate) fn read_prefix(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
