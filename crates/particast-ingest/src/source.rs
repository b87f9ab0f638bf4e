//! Inputs (files, globs, polars frames) and their translation to the canonical frame.

use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IngestError, Result};
use crate::options::{IngestOptions, InputFormat};
use crate::series::canon;
use crate::time::{TimeKind, TimeUnit as PTimeUnit};

/// Where series come from.
#[derive(Clone)]
pub enum Source {
    /// A file path or a glob pattern (`data/*.parquet`, `nab/**/*.csv`).
    Path(String),
    /// A lazy polars query from a Rust caller (see [`Source::lazy`]).
    Lazy(Box<LazyFrame>),
    /// An in-memory polars frame from a Rust caller.
    Frame(DataFrame),
    /// Another source shown under another name in messages (standard input, copied to a
    /// temporary file, is `<stdin>`: see [`crate::spool::spool_stdin`]).
    Named {
        /// The name in messages.
        name: String,
        /// What is read.
        inner: Box<Source>,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Source {
    /// A path or glob.
    pub fn path(p: impl AsRef<Path>) -> Self {
        Source::Path(p.as_ref().to_string_lossy().into_owned())
    }

    /// A lazy polars query.
    pub fn lazy(lf: LazyFrame) -> Self {
        Source::Lazy(Box::new(lf))
    }

    /// The name used in messages: the path, or `<lazyframe>` / `<dataframe>`.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.clone(),
            Source::Lazy(_) => "<lazyframe>".into(),
            Source::Frame(_) => "<dataframe>".into(),
            Source::Named { name, .. } => name.clone(),
        }
    }
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// The fixed directory part of a path or glob, stripped from ids built from paths.
pub(crate) fn glob_base(p: &str) -> String {
    let fixed_end = p.find(['*', '?', '[']).unwrap_or(p.len());
    let fixed = &p[..fixed_end];
    match fixed.rfind('/') {
        Some(i) => fixed[..=i].to_string(),
        None => String::new(),
    }
}

/// The concrete format of a file.
enum FileKind {
    Csv,
    Parquet,
    Arrow,
}

fn format_of(path: &str, opt: InputFormat) -> Result<FileKind> {
    match opt {
        InputFormat::Csv => return Ok(FileKind::Csv),
        InputFormat::Parquet => return Ok(FileKind::Parquet),
        InputFormat::Arrow => return Ok(FileKind::Arrow),
        InputFormat::Auto => {}
    }
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".csv") || lower.ends_with(".csv.gz") || lower.ends_with(".tsv") {
        Ok(FileKind::Csv)
    } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
        Ok(FileKind::Parquet)
    } else if lower.ends_with(".arrow") || lower.ends_with(".arrows") || lower.ends_with(".ipc") {
        Ok(FileKind::Arrow)
    } else {
        Err(IngestError::UnknownFormat {
            source_name: path.into(),
        })
    }
}

/// Checks a plain path before polars sees it, for clear messages.
fn check_path(p: &str) -> Result<()> {
    if is_glob(p) {
        return Ok(());
    }
    let path = PathBuf::from(p);
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => IngestError::NotFound {
            source_name: p.into(),
        },
        _ => IngestError::Io {
            path: path.clone(),
            source: e,
        },
    })?;
    if meta.is_dir() {
        return Err(IngestError::read(
            p,
            "is a directory, expected a file or a glob such as dir/*.csv",
        ));
    }
    // Fail early (and with the OS's words) on unreadable files.
    std::fs::File::open(&path).map_err(|e| IngestError::Io { path, source: e })?;
    if meta.len() == 0 {
        return Err(IngestError::Empty {
            source_name: p.into(),
        });
    }
    Ok(())
}

/// Expands a path or glob to the files it names, sorted; the display name of each is its path.
fn expand(p: &str) -> Result<Vec<String>> {
    if !is_glob(p) {
        check_path(p)?;
        return Ok(vec![p.to_string()]);
    }
    let entries =
        glob::glob(p).map_err(|e| IngestError::Options(format!("bad glob {p:?}: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| IngestError::Io {
            path: e.path().to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        if path.is_file() {
            files.push(path.to_string_lossy().into_owned());
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(IngestError::NotFound {
            source_name: p.into(),
        });
    }
    for f in &files {
        check_path(f)?;
    }
    Ok(files)
}

/// Turns polars' "could not parse" error on a CSV target column into one that names the file,
/// column, series and row of the first value that is not a number. Other errors pass through.
/// `shown` is the source's name in messages (the path itself, or `<stdin>` for a copy of it).
pub(crate) fn explain_parse_error(
    err: IngestError,
    path: &str,
    shown: &str,
    opts: &IngestOptions,
) -> IngestError {
    let IngestError::Read { source, .. } = &err else {
        return err;
    };
    let message = source.to_string();
    if !message.contains("could not parse") && !message.contains("conversion from `str`") {
        return err;
    }
    let Ok(files) = expand(path) else {
        return err;
    };
    let is_number = |v: &str| {
        let v = v.trim();
        MISSING_TEXT.contains(&v) || v.parse::<f64>().is_ok()
    };
    for file in files {
        if !matches!(format_of(&file, opts.format), Ok(FileKind::Csv)) {
            continue;
        }
        let Ok(sep) = u8::try_from(opts.separator) else {
            return err;
        };
        let df = LazyCsvReader::new(PlRefPath::new(file.as_str()))
            .with_has_header(true)
            .with_separator(sep)
            .with_infer_schema_length(Some(0))
            .with_glob(false)
            .finish()
            .and_then(|lf| lf.collect());
        let Ok(df) = df else { continue };
        for target in &opts.target_cols {
            let Some(col) = df.column(target).ok().and_then(|c| c.str().ok().cloned()) else {
                continue;
            };
            let Some((row, value)) = col
                .iter()
                .enumerate()
                .find_map(|(i, v)| v.filter(|v| !is_number(v)).map(|v| (i, v.to_string())))
            else {
                continue;
            };
            let series = if opts.id_from_path {
                file.strip_prefix(glob_base(path).as_str())
                    .unwrap_or(&file)
                    .trim_start_matches('/')
                    .to_string()
            } else {
                df.column(&opts.id_col)
                    .ok()
                    .and_then(|c| c.str().ok().and_then(|s| s.get(row).map(str::to_string)))
                    .unwrap_or_default()
            };
            return IngestError::NotANumber {
                source_name: if shown == path {
                    file.clone()
                } else {
                    shown.to_string()
                },
                column: target.clone(),
                series,
                row: row as u64,
                value,
            };
        }
    }
    err
}

/// One input frame: a file (or the caller's frame) and its lazy scan.
pub(crate) struct Input {
    /// Name for messages.
    pub name: String,
    /// Series id when ids come from paths.
    pub path_id: Option<String>,
    /// The scan.
    pub lf: LazyFrame,
}

/// Builds the lazy scans of a source: one per file of a glob.
pub(crate) fn scan(source: &Source, opts: &IngestOptions) -> Result<Vec<Input>> {
    match source {
        Source::Named { name, inner } => {
            let mut inputs = scan(inner, opts)?;
            for input in &mut inputs {
                input.name.clone_from(name);
                // Ids from paths come from the name, not the copy's temporary path.
                if input.path_id.is_some() {
                    let base = glob_base(name);
                    input.path_id = Some(name.strip_prefix(base.as_str()).unwrap_or(name).into());
                }
            }
            Ok(inputs)
        }
        Source::Lazy(_) | Source::Frame(_) if opts.id_from_path => Err(IngestError::Options(
            "id_from_path needs a file or glob input".into(),
        )),
        Source::Lazy(lf) => Ok(vec![Input {
            name: source.name(),
            path_id: None,
            lf: lf.as_ref().clone(),
        }]),
        Source::Frame(df) => Ok(vec![Input {
            name: source.name(),
            path_id: None,
            lf: df.clone().lazy(),
        }]),
        Source::Path(p) => {
            let base = glob_base(p);
            let sep = u8::try_from(opts.separator).map_err(|_| {
                IngestError::Options(format!(
                    "separator {:?} is not a single-byte character",
                    opts.separator
                ))
            })?;
            // Targets (and named covariates) are read as text and parsed by `numeric_text`,
            // so `nan`, `inf` and `1e300` parse, `""`, `NA` and `N/A` are missing, and a
            // column's type never depends on what its first rows hold. In the wide layout
            // every column is text for the same reason (M4-style padding, quoted or not).
            let wide = opts.layout == crate::options::Layout::Wide;
            // The time column is text too: polars' date guessing reads `01/02/2021` as
            // 1 February without a word; `timeparse` tells the shape from the values and
            // refuses what it cannot tell apart.
            let targets_as_text = (!wide).then(|| {
                Arc::new(Schema::from_iter(
                    opts.target_cols
                        .iter()
                        .chain(opts.covariate_columns().iter().flatten())
                        .chain(std::iter::once(&opts.time_col))
                        .map(|t| Field::new(t.as_str().into(), DataType::String)),
                ))
            });
            let mut inputs = Vec::new();
            for file in expand(p)? {
                let lf = match format_of(&file, opts.format)? {
                    FileKind::Csv => LazyCsvReader::new(PlRefPath::new(file.as_str()))
                        .with_dtype_overwrite(targets_as_text.clone())
                        .with_has_header(true)
                        .with_separator(sep)
                        .with_try_parse_dates(false)
                        .with_infer_schema_length(Some(if wide { 0 } else { 10_000 }))
                        .with_glob(false)
                        .finish()
                        .map_err(|e| IngestError::read(&file, e))?,
                    FileKind::Parquet => LazyFrame::scan_parquet(
                        PlRefPath::new(file.as_str()),
                        ScanArgsParquet {
                            glob: false,
                            ..Default::default()
                        },
                    )
                    .map_err(|e| IngestError::read(&file, e))?,
                    FileKind::Arrow => crate::ipc::read_ipc_file(Path::new(&file), &file)?.lazy(),
                };
                let path_id = opts.id_from_path.then(|| {
                    file.strip_prefix(base.as_str())
                        .unwrap_or(&file)
                        .trim_start_matches('/')
                        .to_string()
                });
                inputs.push(Input {
                    name: file,
                    path_id,
                    lf,
                });
            }
            Ok(inputs)
        }
    }
}

/// What the canonical frame looks like, learnt from the input schema.
#[derive(Clone, Debug)]
pub(crate) struct CanonInfo {
    pub time_kind: TimeKind,
    pub covariate_cols: Vec<String>,
    pub id_col: String,
}

fn schema_of(lf: &mut LazyFrame, name: &str) -> Result<SchemaRef> {
    lf.collect_schema().map_err(|e| {
        let msg = e.to_string();
        if msg.to_ascii_lowercase().contains("empty") {
            IngestError::Empty {
                source_name: name.into(),
            }
        } else {
            IngestError::read(name, e)
        }
    })
}

fn require<'a>(schema: &'a Schema, col: &str, name: &str) -> Result<&'a DataType> {
    schema.get(col).ok_or_else(|| IngestError::MissingColumn {
        source_name: name.into(),
        column: col.into(),
        available: schema
            .iter_names()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn numeric_or_null(dt: &DataType) -> bool {
    dt.is_primitive_numeric() || matches!(dt, DataType::Null | DataType::Boolean)
}

fn wrong_type(name: &str, col: &str, expected: &str, found: &DataType) -> IngestError {
    IngestError::WrongType {
        source_name: name.into(),
        column: col.into(),
        expected: expected.into(),
        found: found.to_string(),
    }
}

fn time_kind_of(dt: &DataType) -> Option<TimeKind> {
    Some(match dt {
        DataType::Datetime(unit, tz) => TimeKind::Datetime {
            unit: match unit {
                TimeUnit::Nanoseconds => PTimeUnit::Ns,
                TimeUnit::Microseconds => PTimeUnit::Us,
                TimeUnit::Milliseconds => PTimeUnit::Ms,
            },
            tz: tz.as_ref().map(|t| t.to_string()),
        },
        DataType::Date => TimeKind::Date,
        dt if dt.is_integer() => TimeKind::Integer,
        _ => return None,
    })
}

/// Cells of text columns of numbers read as 1 and 0 (flags such as a holiday column).
const TRUE_TEXT: [&str; 3] = ["TRUE", "True", "true"];
/// See [`TRUE_TEXT`].
const FALSE_TEXT: [&str; 3] = ["FALSE", "False", "false"];

/// Cells that mean "no value" in text columns of numbers (besides a null).
const MISSING_TEXT: [&str; 9] = ["", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "#N/A"];

/// A text column of numbers as Float64: surrounding spaces ignored, [`MISSING_TEXT`] cells
/// missing, `nan`/`inf` as Rust parses them; anything else that is not a number fails the read
/// with "could not parse", and is then reported with its series and row by
/// `explain_parse_error`.
fn numeric_text(name: &str) -> Expr {
    let column = name.to_string();
    col(name).map(
        move |c: Column| {
            let text = c.str()?;
            let mut out: Vec<Option<f64>> = Vec::with_capacity(text.len());
            for v in text.iter() {
                out.push(match v.map(str::trim) {
                    None => None,
                    Some(v) if MISSING_TEXT.contains(&v) => None,
                    Some(v) if TRUE_TEXT.contains(&v) => Some(1.0),
                    Some(v) if FALSE_TEXT.contains(&v) => Some(0.0),
                    Some(v) => Some(v.parse::<f64>().map_err(
                        |_| polars_err!(ComputeError: "could not parse `{v}` as a number in column `{column}`"),
                    )?),
                });
            }
            Ok(
                Float64Chunked::from_iter_options(c.name().clone(), out.into_iter())
                    .into_series()
                    .into_column(),
            )
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::Float64)),
    )
}

/// Column `name` of `schema` as Float64 (text parsed by [`numeric_text`]).
fn to_float(schema: &Schema, name: &str) -> Expr {
    match schema.get(name) {
        Some(DataType::String) => numeric_text(name),
        _ => col(name).cast(DataType::Float64),
    }
}

/// Translates long-layout inputs into one lazy canonical frame (files concatenated in order,
/// each with its own row numbers and file index).
pub(crate) fn canonical_long(
    inputs: Vec<Input>,
    opts: &IngestOptions,
) -> Result<(LazyFrame, CanonInfo)> {
    if opts.target_cols.is_empty() {
        return Err(IngestError::Options(
            "at least one target column is needed".into(),
        ));
    }
    let mut frames = Vec::with_capacity(inputs.len());
    let mut first: Option<(DataType, TimeKind, Vec<String>)> = None;
    for (file_index, input) in inputs.into_iter().enumerate() {
        let Input {
            name,
            path_id,
            mut lf,
        } = input;
        let schema = schema_of(&mut lf, &name)?;
        let id_expr = match &path_id {
            Some(id) => lit(id.as_str()),
            None => {
                let dt = require(&schema, &opts.id_col, &name)?;
                if !(matches!(dt, DataType::String) || dt.is_integer()) {
                    return Err(wrong_type(
                        &name,
                        &opts.id_col,
                        "a string or integer id",
                        dt,
                    ));
                }
                col(opts.id_col.as_str())
            }
        };
        let raw_dt = require(&schema, &opts.time_col, &name)?.clone();
        // Text (and epoch or formatted) time columns become dates or datetimes.
        let (time_source, time_dt) = match crate::timeparse::time_column(&lf, &raw_dt, opts, &name)?
        {
            Some(expr) => {
                let dt = lf
                    .clone()
                    .select([expr.clone().alias(opts.time_col.as_str())])
                    .collect_schema()
                    .map_err(|e| IngestError::read(&name, e))?
                    .get(opts.time_col.as_str())
                    .cloned()
                    .unwrap_or(DataType::Date);
                (expr, dt)
            }
            None => (col(opts.time_col.as_str()), raw_dt),
        };
        let kind = time_kind_of(&time_dt).ok_or_else(|| {
            wrong_type(
                &name,
                &opts.time_col,
                "a datetime, a date or an integer (CSV timestamps like 2024-01-31 13:00:00 are parsed)",
                &time_dt,
            )
        })?;
        for t in &opts.target_cols {
            let dt = require(&schema, t, &name)?;
            if !numeric_or_null(dt) && dt != &DataType::String {
                return Err(wrong_type(&name, t, "a numeric type", dt));
            }
        }
        let named_covariates = opts.covariate_columns();
        let covariate_cols: Vec<String> = match (&named_covariates, &first) {
            (Some(cols), _) => cols.clone(),
            (None, Some((_, _, cols))) => cols.clone(),
            (None, None) => schema
                .iter()
                .filter(|(n, dt)| {
                    let n = n.as_str();
                    n != opts.time_col
                        && (path_id.is_some() || n != opts.id_col)
                        && !opts.target_cols.iter().any(|t| t == n)
                        && dt.is_primitive_numeric()
                })
                .map(|(n, _)| n.to_string())
                .collect(),
        };
        for c in &covariate_cols {
            let dt = require(&schema, c, &name)?;
            let named = named_covariates.is_some();
            if !(numeric_or_null(dt)
                || dt == &DataType::Boolean
                || (named && dt == &DataType::String))
            {
                return Err(wrong_type(&name, c, "a numeric type", dt));
            }
        }
        // Later files must have the first file's kind of time; datetime units are unified.
        let mut time_expr = time_source;
        match &first {
            None => first = Some((time_dt.clone(), kind.clone(), covariate_cols.clone())),
            Some((first_dt, first_kind, _)) => {
                let same_kind = std::mem::discriminant(first_kind) == std::mem::discriminant(&kind);
                if !same_kind {
                    return Err(wrong_type(
                        &name,
                        &opts.time_col,
                        &format!("{first_dt} like the first file"),
                        &time_dt,
                    ));
                }
                if &time_dt != first_dt {
                    time_expr = time_expr.cast(first_dt.clone());
                }
            }
        }
        let mut exprs = vec![
            id_expr.cast(DataType::String).alias(canon::ID),
            time_expr.cast(DataType::Int64).alias(canon::DS),
        ];
        for (i, t) in opts.target_cols.iter().enumerate() {
            exprs.push(to_float(&schema, t).alias(canon::target(i)));
        }
        for (i, c) in covariate_cols.iter().enumerate() {
            exprs.push(to_float(&schema, c).alias(canon::covariate(i)));
        }
        exprs.push(col(canon::ROW).cast(DataType::UInt64));
        exprs.push(lit(file_index as u32).alias(canon::FILE));
        frames.push(lf.with_row_index(canon::ROW, None).select(exprs));
    }
    let Some((_, time_kind, covariate_cols)) = first else {
        return Err(IngestError::Options("no input".into()));
    };
    let lf = if frames.len() == 1 {
        frames.pop().unwrap_or_default()
    } else {
        concat(frames, UnionArgs::default()).map_err(|e| IngestError::read("<inputs>", e))?
    };
    let id_col = if opts.id_from_path {
        "<path>".to_string()
    } else {
        opts.id_col.clone()
    };
    Ok((
        lf,
        CanonInfo {
            time_kind,
            covariate_cols,
            id_col,
        },
    ))
}

/// Translates a wide-layout input (collected: one row per series) into the canonical long frame:
/// `ds` is the step counter, trailing empty cells are padding and dropped.
pub(crate) fn canonical_wide(input: Input, opts: &IngestOptions) -> Result<(DataFrame, CanonInfo)> {
    let Input { name, mut lf, .. } = input;
    let schema = schema_of(&mut lf, &name)?;
    let id_col = if schema.get(&opts.id_col).is_some() {
        opts.id_col.clone()
    } else {
        // M4 files call the id column V1: the id is the first column unless named.
        schema
            .iter_names()
            .next()
            .map(|n| n.to_string())
            .ok_or_else(|| IngestError::Empty {
                source_name: name.clone(),
            })?
    };
    let value_cols: Vec<String> = schema
        .iter()
        .filter(|(n, _)| n.as_str() != id_col)
        .map(|(n, dt)| {
            if numeric_or_null(dt) || dt == &DataType::String {
                Ok(n.to_string())
            } else {
                Err(wrong_type(&name, n, "a numeric type (wide layout)", dt))
            }
        })
        .collect::<Result<_>>()?;
    let df = lf
        .select(
            std::iter::once(col(id_col.as_str()).cast(DataType::String))
                .chain(value_cols.iter().map(|c| to_float(&schema, c)))
                .collect::<Vec<_>>(),
        )
        .collect()
        .map_err(|e| IngestError::read(&name, e))?;
    if df.height() == 0 {
        return Err(IngestError::Empty { source_name: name });
    }
    let ids = df
        .column(&id_col)
        .and_then(|c| c.str().cloned())
        .map_err(|e| IngestError::read(&name, e))?;
    let value_series: Vec<Float64Chunked> = value_cols
        .iter()
        .map(|c| df.column(c).and_then(|c| c.f64().cloned()))
        .collect::<PolarsResult<_>>()
        .map_err(|e| IngestError::read(&name, e))?;
    let mut out_id: Vec<Option<String>> = Vec::new();
    let mut out_ds: Vec<i64> = Vec::new();
    let mut out_y: Vec<Option<f64>> = Vec::new();
    let mut out_row: Vec<u64> = Vec::new();
    for r in 0..df.height() {
        let last = (0..value_series.len())
            .rev()
            .find(|&c| value_series[c].get(r).is_some())
            .map(|c| c + 1)
            .unwrap_or(0);
        let id = ids.get(r).map(str::to_string);
        for (c, col) in value_series.iter().enumerate().take(last.max(1)) {
            out_id.push(id.clone());
            out_ds.push(c as i64);
            out_y.push(col.get(r));
            out_row.push(r as u64);
        }
    }
    let n = out_ds.len();
    let canon_df = DataFrame::new(
        n,
        vec![
            Column::new(canon::ID.into(), out_id),
            Column::new(canon::DS.into(), out_ds),
            Column::new(canon::target(0).into(), out_y),
            Column::new(canon::ROW.into(), out_row),
        ],
    )
    .map_err(|e| IngestError::read(&name, e))?;
    Ok((
        canon_df,
        CanonInfo {
            time_kind: TimeKind::Integer,
            covariate_cols: Vec::new(),
            id_col,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_base_keeps_the_fixed_directory() {
        assert_eq!(glob_base("nab/data/*/*.csv"), "nab/data/");
        assert_eq!(glob_base("/x/y/file.csv"), "/x/y/");
        assert_eq!(glob_base("file.csv"), "");
    }
}
