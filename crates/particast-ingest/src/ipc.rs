//! Arrow IPC inputs and standard input.
//!
//! Arrow IPC streams and files (`.arrow`, `.arrows`, `.ipc`) are read with arrow-rs and handed
//! to polars through the C Data Interface ([`crate::ffi`]); they are read whole into memory.
//! Standard input ([`spool_stdin`]) is copied to a private temporary file first, so that it can
//! be read more than once (a model's reading options may need two passes) and so that large
//! CSV or Parquet inputs still go through the bounded-memory bucketing of a file. Its format is
//! told from its first bytes: `PAR1` is Parquet, an IPC continuation marker or `ARROW1` is
//! Arrow IPC, anything else is CSV.

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::SchemaRef;
use polars::prelude::*;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{IngestError, Result};
use crate::ffi::record_batch_to_dataframe;
use crate::options::InputFormat;
use crate::source::Source;

/// The name standard input goes by in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// Magic bytes at the start of an Arrow IPC file.
const ARROW_FILE_MAGIC: &[u8] = b"ARROW1";
/// The continuation marker that starts every message of an Arrow IPC stream.
const ARROW_STREAM_MARKER: &[u8] = &[0xff, 0xff, 0xff, 0xff];

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
fn read_prefix(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Standard input, copied to a temporary file that lives as long as this value.
#[derive(Debug)]
pub struct Spooled {
    _dir: tempfile::TempDir,
    path: PathBuf,
    name: String,
    format: InputFormat,
}

impl Spooled {
    /// A source that reads the copy under the original's name (`<stdin>` for standard input).
    pub fn source(&self) -> Source {
        Source::Named {
            name: self.name.clone(),
            inner: Box::new(Source::path(&self.path)),
        }
    }
    /// The temporary copy.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The format it was read as (never `auto`).
    pub fn format(&self) -> InputFormat {
        self.format
    }
}

/// Copies standard input to a temporary file (in `spill_dir`, else the system temp folder) and
/// tells its format (`auto`: from its first bytes). An empty input is an error.
pub fn spool_stdin(format: InputFormat, spill_dir: Option<&Path>) -> Result<Spooled> {
    spool(&mut std::io::stdin().lock(), STDIN_NAME, format, spill_dir)
}

/// [`spool_stdin`] for any reader (a FIFO, `/dev/fd/N` from a shell's `<(...)`), shown as `name`.
pub fn spool(
    input: &mut impl Read,
    name: &str,
    format: InputFormat,
    spill_dir: Option<&Path>,
) -> Result<Spooled> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix(".particast-stdin-");
        b
    };
    let dir = match spill_dir {
        Some(d) => builder.tempdir_in(d),
        None => builder.tempdir(),
    }
    .map_err(|e| IngestError::Io {
        path: spill_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir),
        source: e,
    })?;
    let raw = dir.path().join("stdin");
    let mut file = File::create(&raw).map_err(|e| IngestError::Io {
        path: raw.clone(),
        source: e,
    })?;
    let bytes = std::io::copy(input, &mut file).map_err(|e| IngestError::read(name, e))?;
    drop(file);
    if bytes == 0 {
        return Err(IngestError::Empty {
            source_name: name.into(),
        });
    }
    let format = match format {
        InputFormat::Auto => {
            let mut head = [0u8; 6];
            let mut f = File::open(&raw).map_err(|e| IngestError::Io {
                path: raw.clone(),
                source: e,
            })?;
            let n = read_prefix(&mut f, &mut head).map_err(|e| IngestError::read(name, e))?;
            let head = &head[..n];
            if head.starts_with(b"PAR1") {
                InputFormat::Parquet
            } else if head.starts_with(ARROW_STREAM_MARKER) || head.starts_with(ARROW_FILE_MAGIC) {
                InputFormat::Arrow
            } else {
                InputFormat::Csv
            }
        }
        f => f,
    };
    let ext = match format {
        InputFormat::Parquet => "parquet",
        InputFormat::Arrow => "arrow",
        _ => "csv",
    };
    let path = dir.path().join(format!("stdin.{ext}"));
    std::fs::rename(&raw, &path).map_err(|e| IngestError::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(Spooled {
        _dir: dir,
        path,
        name: name.to_string(),
        format,
    })
}
