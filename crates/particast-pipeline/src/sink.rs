//! Where outputs go: the one place every writer (scores, forecasts, states, metrics, models,
//! pictures) goes through.
//!
//! - `-` is standard output ([`STDOUT`]); so is the literal path `/dev/stdout`.
//! - An existing file that is not a regular file (a FIFO, a character device, `/dev/fd/N`, a
//!   symlink to one of them) is written through: opened for writing and filled, never renamed
//!   over, so a pipe a reader is waiting on stays a pipe and a device node stays a device.
//! - Everything else is written atomically: a hidden temporary file in the destination's folder
//!   (the folder of a symlink's target, so the link stays a link), synced, then renamed into place.
//!   A failed write (a full disk, an I/O error, a reader that went away) leaves the previous file
//!   untouched and removes the temporary file.
//! - [`Protected`] refuses, before any work, an output that resolves to a file the same command
//!   reads (its inputs, the model directory's files), and two outputs of one command at the same
//!   place; identity is the file itself (device and inode), so `./x`, `a/../x`, hard links and
//!   symlinks are all recognised.

use polars::prelude::*;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{PipelineError, Result};

/// The output path that means standard output.
pub const STDOUT: &str = "-";

/// True for `-` (standard output).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == STDOUT || path.as_os_str() == "/dev/stdout"
}

/// The format of a data output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OutputFormat {
    /// By extension: `.arrow`, `.arrows` and `.ipc` are Arrow IPC, anything else (and standard
    /// output) Parquet.
    #[default]
    Auto,
    /// Apache Parquet.
    Parquet,
    /// An Arrow IPC stream (`pyarrow.ipc.open_stream`, `polars.read_ipc_stream`).
    Arrow,
}

impl OutputFormat {
    /// The concrete format for `path` (never `Auto`).
    pub fn resolve(self, path: &Path) -> OutputFormat {
        match self {
            OutputFormat::Auto => {
                let ext = path
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                if matches!(ext.as_str(), "arrow" | "arrows" | "ipc") && !is_stdout(path) {
                    OutputFormat::Arrow
                } else {
                    OutputFormat::Parquet
                }
            }
            f => f,
        }
    }
}

/// The identity of an existing file: device and inode on Unix, the canonical path elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg_attr(unix, allow(dead_code))]
    Path(PathBuf),
}

fn file_id(path: &Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileId::Inode(meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        std::fs::canonicalize(path).ok().map(FileId::Path)
    }
}

/// Where a path would be once written: the canonical path of an existing file, else the
/// canonical folder joined with the name.
fn destination_key(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let name = path.file_name()?;
    let parent = parent_of(path);
    std::fs::canonicalize(parent).ok().map(|p| p.join(name))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn refuse(path: &Path, reason: impl Into<String>) -> PipelineError {
    PipelineError::Output {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The files one command reads and the outputs it has claimed: no output may replace one of
/// them, and no two outputs may be the same file.
#[derive(Clone, Debug, Default)]
pub struct Protected {
    inputs: Vec<(PathBuf, FileId)>,
    outputs: Vec<(PathBuf, PathBuf)>,
    stdout_taken: Option<PathBuf>,
}

impl Protected {
    /// Nothing protected yet.
    pub fn new() -> Self {
        Protected::default()
    }

    /// Protects an input: a file, or every file a glob matches. Standard input and paths that
    /// do not exist (yet) need no protection.
    pub fn input(&mut self, path_or_glob: &str) -> &mut Self {
        if path_or_glob == particast_ingest::spool::STDIN_NAME || path_or_glob == "-" {
            return self;
        }
        if path_or_glob.contains(['*', '?', '[']) {
            if let Ok(paths) = glob::glob(path_or_glob) {
                for p in paths.flatten() {
                    self.file(&p);
                }
            }
        } else {
            self.file(Path::new(path_or_glob));
        }
        self
    }

    /// Protects one file (nothing happens when it does not exist).
    pub fn file(&mut self, path: &Path) -> &mut Self {
        if let Some(id) = file_id(path) {
            self.inputs.push((path.to_path_buf(), id));
        }
        self
    }

    /// Protects the files `names` of a folder that the command reads (a model directory:
    /// `Protected::model_dir`).
    pub fn folder_files(&mut self, dir: &Path, names: &[&str]) -> &mut Self {
        for name in names {
            self.file(&dir.join(name));
        }
        self
    }

    /// Checks a folder whose files `names` the command will write: it must be (or become) a
    /// folder, and none of those files may be a protected input; they are claimed as outputs
    /// (a model directory: `Protected::model_outputs`).
    pub fn folder_outputs(&mut self, dir: &Path, names: &[&str]) -> Result<()> {
        check_model_folder(dir)?;
        if dir.is_dir() {
            for name in names {
                self.claim(&dir.join(name))?;
            }
        }
        Ok(())
    }

    /// Checks an output path before any work: it must not resolve to a protected file or to
    /// an output claimed before, its folder must exist, and it must not be a folder. Standard
    /// output may be claimed once.
    pub fn claim(&mut self, path: &Path) -> Result<()> {
        if is_stdout(path) {
            if let Some(first) = &self.stdout_taken {
                return Err(refuse(
                    path,
                    format!(
                        "{} already goes to standard output; only one output can",
                        first.display()
                    ),
                ));
            }
            self.stdout_taken = Some(path.to_path_buf());
            return Ok(());
        }
        check_destination(path)?;
        if let Some(id) = file_id(path) {
            if let Some((input, _)) = self.inputs.iter().find(|(_, i)| *i == id) {
                return Err(refuse(
                    path,
                    if input == path {
                        "it is an input of this command; writing it would destroy the data"
                            .to_string()
                    } else {
                        format!(
                            "it is the same file as the input {}; writing it would destroy the data",
                            input.display()
                        )
                    },
                ));
            }
        }
        if let Some(key) = destination_key(path) {
            if let Some((other, _)) = self.outputs.iter().find(|(_, k)| *k == key) {
                return Err(refuse(
                    path,
                    format!("it is the same file as the output {}", other.display()),
                ));
            }
            self.outputs.push((path.to_path_buf(), key));
        }
        Ok(())
    }
}

/// Refuses an output path that cannot be written: a folder, a missing folder, a folder that is
/// a file. Standard output always passes.
pub fn check_destination(path: &Path) -> Result<()> {
    if is_stdout(path) {
        return Ok(());
    }
    if path.is_dir() {
        return Err(refuse(path, "it is a folder"));
    }
    if path.as_os_str().is_empty() {
        return Err(refuse(path, "the path is empty"));
    }
    let dir = parent_of(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(refuse(path, format!("{} is not a folder", dir.display()))),
        Err(_) => Err(refuse(
            path,
            format!("the folder {} does not exist", dir.display()),
        )),
    }
}

/// Refuses a model folder that cannot be created: one that is a file, or under a file.
pub fn check_model_folder(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(refuse(dir, "it is a file, not a model folder"));
    }
    let mut p = parent_of(dir);
    loop {
        if p.exists() {
            return if p.is_dir() {
                Ok(())
            } else {
                Err(refuse(dir, format!("{} is not a folder", p.display())))
            };
        }
        match p.parent() {
            Some(q) if !q.as_os_str().is_empty() && q != p => p = q.to_path_buf(),
            _ => return Ok(()),
        }
    }
}

/// A writer that remembers the first I/O error it met, so that the cause (a full disk, a closed
/// pipe) survives writers that report errors as text.
struct Recording<W: Write> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Recording<W> {
    fn note<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            if self.error.is_none() {
                self.error = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }
}

impl<W: Write> Write for Recording<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

/// Runs `f` on `w`, flushes, and turns a failure into the I/O error underneath when there was
/// one.
fn fill<W: Write>(path: &Path, w: W, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<W> {
    let mut rec = Recording {
        inner: BufWriter::with_capacity(1 << 16, w),
        error: None,
    };
    let done = f(&mut rec).and_then(|_| rec.flush().map_err(|e| PipelineError::io(path, e)));
    if let Err(e) = done {
        return Err(match rec.error.take() {
            Some(io) => PipelineError::io(path, io),
            None => e,
        });
    }
    let Recording { inner, .. } = rec;
    inner
        .into_inner()
        .map_err(|e| PipelineError::io(path, std::io::Error::new(e.error().kind(), e.to_string())))
}

/// Whether a path names a file descriptor or device (`/dev/...`, `/proc/...`) rather than a
/// file, whatever is behind it.
fn is_descriptor_path(path: &Path) -> bool {
    path.starts_with("/dev/") || path.starts_with("/proc/")
}

/// Writes an output through `f`: to standard output, through to an existing non-regular file,
/// or atomically (see the module docs). On error nothing at `path` has changed (except for a
/// pipe or device, which may have received part of the output).
pub fn write_with(path: &Path, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    if is_stdout(path) {
        let out = std::io::stdout().lock();
        let _unlocked = fill(path, out, f)?;
        return Ok(());
    }
    let meta = std::fs::metadata(path);
    if let Ok(m) = &meta {
        if m.is_dir() {
            return Err(refuse(path, "it is a folder"));
        }
        if !m.is_file() || is_descriptor_path(path) {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| PipelineError::io(path, e))?;
            fill(path, file, f)?;
            return Ok(());
        }
    }
    // A symlink to a regular file: write the target, keep the link.
    let real = match std::fs::symlink_metadata(path) {
        Ok(l) if l.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(_) => {
                return Err(refuse(
                    path,
                    "it is a symbolic link to a file that does not exist",
                ))
            }
        },
        _ => path.to_path_buf(),
    };
    let dir = parent_of(&real);
    if !dir.is_dir() {
        return Err(refuse(
            path,
            format!("the folder {} does not exist", dir.display()),
        ));
    }
    let tmp = temp_builder(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| PipelineError::io(&dir, e))?;
    let file = tmp.reopen().map_err(|e| PipelineError::io(tmp.path(), e))?;
    let file: File = fill(path, file, f)?;
    file.sync_all().map_err(|e| PipelineError::io(path, e))?;
    tmp.persist(&real)
        .map_err(|e| PipelineError::io(path, e.error))?;
    Ok(())
}

/// A temporary-file builder for outputs: hidden `.particast-*` name in the destination folder,
/// and on Unix mode 0644 (tempfile's default 0600 would leave outputs unreadable to the group
/// once renamed into place).
pub(crate) fn temp_builder(suffix: &str) -> tempfile::Builder<'_, '_> {
    let mut b = tempfile::Builder::new();
    b.prefix(".particast-").suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b
}

/// Writes `bytes` to `path` (see [`write_with`]).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| {
        w.write_all(bytes).map_err(|e| PipelineError::io(path, e))
    })
}

/// Rows per Parquet row group and per Arrow IPC batch of a data output (polars' own default
/// row group size). Outputs are cut at fixed row counts, not at the pieces they were produced
/// in, so a file is the same bytes whether it was written whole or streamed.
pub const ROWS_PER_GROUP: usize = 512 * 512;

/// Collects frames and hands them on in pieces of exactly [`ROWS_PER_GROUP`] rows (the last one
/// shorter), each one contiguous chunk.
struct Regroup {
    pending: Vec<DataFrame>,
    rows: usize,
    /// Rows handed on so far.
    emitted: usize,
}

impl Regroup {
    fn push(&mut self, df: DataFrame, mut emit: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
        self.rows += df.height();
        self.pending.push(df);
        while self.rows >= ROWS_PER_GROUP {
            let all = self.take()?;
            emit(all.slice(0, ROWS_PER_GROUP))?;
            self.emitted += ROWS_PER_GROUP;
            let rest = all.slice(ROWS_PER_GROUP as i64, all.height() - ROWS_PER_GROUP);
            self.rows = rest.height();
            if rest.height() > 0 {
                self.pending.push(rest);
            }
        }
        Ok(())
    }

    /// Everything pending as one chunk (possibly empty).
    fn take(&mut self) -> Result<DataFrame> {
        let mut parts = std::mem::take(&mut self.pending).into_iter();
        let mut all = parts.next().unwrap_or_default();
        for p in parts {
            all.vstack_mut_owned(p).map_err(|e| PipelineError::Polars {
                context: "joining output rows".into(),
                source: e.into(),
            })?;
        }
        self.rows = 0;
        all.rechunk_mut_par();
        Ok(all)
    }
}

/// Writes frames as they come, as Parquet or as an Arrow IPC stream (see [`write_with`]): rows
/// are cut into row groups (IPC batches) of [`ROWS_PER_GROUP`], so memory holds one group, and
/// the bytes are those of [`write_frame`] on all the frames joined. Every frame must have the
/// columns of the first; `frames` yields at least one (an empty frame carries the schema of an
/// output without rows). Returns the rows written. An error from `frames` stops the writing and,
/// for a file, leaves its previous content in place.
pub fn write_frames(
    path: &Path,
    format: OutputFormat,
    frames: impl Iterator<Item = Result<DataFrame>>,
) -> Result<usize> {
    let polars = |e: PolarsError| PipelineError::Polars {
        context: format!("writing {}", path.display()),
        source: e.into(),
    };
    let arrow = |e: arrow_schema::ArrowError| PipelineError::Polars {
        context: format!("writing {}", path.display()),
        source: e.into(),
    };
    let format = format.resolve(path);
    let mut total = 0;
    write_with(path, |w| {
        let mut group = Regroup {
            pending: Vec::new(),
            rows: 0,
            emitted: 0,
        };
        let mut parquet: Option<polars::io::parquet::write::BatchedWriter<&mut dyn Write>> = None;
        let mut ipc: Option<arrow_ipc::writer::StreamWriter<&mut dyn Write>> = None;
        let mut w = Some(w);
        let mut emit = |df: DataFrame| -> Result<()> {
            if format == OutputFormat::Arrow {
                let batch = particast_ingest::ffi::dataframe_to_record_batch(&df)?;
                if ipc.is_none() {
                    let out = w
                        .take()
                        .ok_or_else(|| PipelineError::Config("writer gone".into()))?;
                    ipc = Some(
                        arrow_ipc::writer::StreamWriter::try_new(out, &batch.schema())
                            .map_err(arrow)?,
                    );
                }
                if let Some(ipc) = ipc.as_mut() {
                    ipc.write(&batch).map_err(arrow)?;
                }
            } else {
                if parquet.is_none() {
                    let out = w
                        .take()
                        .ok_or_else(|| PipelineError::Config("writer gone".into()))?;
                    parquet = Some(
                        ParquetWriter::new(out)
                            .batched(df.schema())
                            .map_err(polars)?,
                    );
                }
                if let Some(pq) = parquet.as_mut() {
                    if df.height() > 0 {
                        pq.write_batch(&df).map_err(polars)?;
                    }
                }
            }
            Ok(())
        };
        let mut any = false;
        for df in frames {
            any = true;
            group.push(df?, &mut emit)?;
        }
        if !any {
            return Err(PipelineError::Config(format!(
                "no rows and no columns to write to {}",
                path.display()
            )));
        }
        // The last group; an output without rows still gets its schema.
        let rest = group.take()?;
        total = group.emitted + rest.height();
        if rest.height() > 0 || group.emitted == 0 {
            emit(rest)?;
        }
        if let Some(pq) = parquet {
            pq.finish().map_err(polars)?;
        }
        if let Some(mut ipc) = ipc {
            ipc.finish().map_err(arrow)?;
        }
        Ok(())
    })?;
    Ok(total)
}

/// Writes a frame as Parquet or as an Arrow IPC stream (see [`write_with`]): [`write_frames`]
/// with one frame.
pub fn write_frame(df: &mut DataFrame, path: &Path, format: OutputFormat) -> Result<()> {
    write_frames(path, format, std::iter::once(Ok(df.clone()))).map(|_| ())
}

/// True when `e` is, underneath, a write to a pipe whose reader has gone (`EPIPE`): the reader
/// stopped early, which is not particast's failure.
pub fn is_broken_pipe(e: &PipelineError) -> bool {
    matches!(e, PipelineError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writes a frame as Parquet: [`write_frame`] with [`OutputFormat::Parquet`].
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_frame(df, path, OutputFormat::Parquet)
}
