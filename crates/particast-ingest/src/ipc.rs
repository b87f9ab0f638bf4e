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

/// A Parquet file or Arrow IPC file or stream (told from the first bytes) read in parts of
/// about `rows` rows (Parquet: slices, which read only the row groups they touch; IPC: its
/// batches as written), so that memory holds one part; `name` names it in messages.
pub fn read_table_parts(
    path: &Path,
    name: &str,
    rows: usize,
) -> Result<Box<dyn Iterator<Item = Result<DataFrame>> + Send>> {
    let open = || {
        File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => IngestError::NotFound {
                source_name: name.into(),
            },
            _ => IngestError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })
    };
    let mut file = open()?;
    let mut head = [0u8; 6];
    let n = read_prefix(&mut file, &mut head).map_err(|e| IngestError::read(name, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| IngestError::read(name, e))?;
    let name = name.to_string();
    if head[..n.min(4)] == *b"PAR1" {
        let total = ParquetReader::new(file)
            .num_rows()
            .map_err(|e| IngestError::read(&name, e))?;
        let path = path.to_path_buf();
        let rows = rows.max(1);
        // An empty file still gives one (empty) part: its columns.
        let starts: Vec<usize> = if total == 0 {
            vec![0]
        } else {
            (0..total).step_by(rows).collect()
        };
        return Ok(Box::new(starts.into_iter().map(move |start| {
            let file = File::open(&path).map_err(|e| IngestError::Io {
                path: path.clone(),
                source: e,
            })?;
            ParquetReader::new(file)
                .with_slice(Some((start, rows)))
                .finish()
                .map_err(|e| IngestError::read(&name, e))
        })));
    }
    let part_name = name.clone();
    let to_frames = move |reader: Box<dyn RecordBatchReader + Send>| {
        let schema = reader.schema();
        let name2 = part_name.clone();
        let mut batches = reader.map(move |b| {
            b.map_err(|e| IngestError::read(&name2, e))
                .and_then(|b| record_batch_to_dataframe(&b))
        });
        // A stream without batches still gives its columns.
        let first = batches
            .next()
            .unwrap_or_else(|| record_batch_to_dataframe(&RecordBatch::new_empty(schema)));
        Box::new(std::iter::once(first).chain(batches))
            as Box<dyn Iterator<Item = Result<DataFrame>> + Send>
    };
    if head[..n] == *ARROW_FILE_MAGIC {
        let reader = arrow_ipc::reader::FileReader::try_new(file, None)
            .map_err(|e| IngestError::read(&name, e))?;
        Ok(to_frames(Box::new(reader)))
    } else {
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::BufReader::new(file), None)
            .map_err(|e| IngestError::read(&name, e))?;
        Ok(to_frames(Box::new(reader)))
    }
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
