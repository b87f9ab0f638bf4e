//! Inputs that can be read only once: standard input, FIFOs and devices (`<(zcat data.csv.gz)`
//! gives `/dev/fd/63`).
//!
//! They are copied to a private temporary file first ([`spool_stdin`], [`spool`]), so that they
//! can be read more than once (a model's reading options may need two passes) and so that large
//! CSV or Parquet inputs still go through the bounded-memory bucketing of a file. The format
//! is told from the first bytes: `PAR1` is Parquet, an IPC continuation marker or `ARROW1` is
//! Arrow IPC, anything else is CSV. [`Input::open`] decides, for a path a user typed, whether
//! it needs copying.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use crate::error::{IngestError, Result};
use crate::ipc::{read_prefix, ARROW_FILE_MAGIC, ARROW_STREAM_MARKER};
use crate::options::InputFormat;
use crate::source::Source;

/// The name standard input goes by in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// An input a user named: a path or glob read in place, or standard input (`-`), a FIFO or
/// a device copied to a temporary file (kept as long as this value lives).
#[derive(Debug)]
pub struct Input {
    path: String,
    spooled: Option<Spooled>,
}

impl Input {
    /// Opens `path`: `-` copies standard input (refused when it is a terminal); a FIFO or a
    /// device is copied; anything else (a file, a glob) is read in place. `format` is the
    /// format asked for (`auto`: told from the name or the first bytes).
    pub fn open(path: &str, format: InputFormat) -> Result<Input> {
        let special =
            path != "-" && std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        if special {
            let mut f = File::open(path).map_err(|e| IngestError::Io {
                path: path.into(),
                source: e,
            })?;
            return Ok(Input {
                path: path.to_string(),
                spooled: Some(spool(&mut f, path, format, None)?),
            });
        }
        if path != "-" {
            return Ok(Input {
                path: path.to_string(),
                spooled: None,
            });
        }
        if std::io::stdin().is_terminal() {
            return Err(IngestError::StdinTerminal);
        }
        Ok(Input {
            path: path.to_string(),
            spooled: Some(spool_stdin(format, None)?),
        })
    }

    /// The source to read.
    pub fn source(&self) -> Source {
        match &self.spooled {
            Some(s) => s.source(),
            None => Source::Path(self.path.clone()),
        }
    }

    /// The name in messages (`<stdin>` for standard input).
    pub fn name(&self) -> String {
        if self.path == "-" {
            STDIN_NAME.into()
        } else {
            self.path.clone()
        }
    }

    /// The copy, when the input was copied.
    pub fn spooled(&self) -> Option<&Spooled> {
        self.spooled.as_ref()
    }
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
