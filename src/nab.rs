//! NAB evaluation of a scores file: reads `unique_id`, `ds` and `particast-anomaly` (the columns
//! `particast score` and `pipelines/nab.toml` write, in file order) and NAB's label windows, and
//! returns the per-file detector output that [`particast_pipeline::nab::score_corpus`] scores.

use particast_ingest::polars::prelude::*;
use particast_ingest::TimeKind;
use particast_pipeline::nab::NabFile;
use std::path::Path;

use crate::error::Error;

fn bad(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Spec {
        file: path.to_path_buf(),
        message: message.to_string().lines().next().unwrap_or("").to_string(),
    }
}

/// Reads a scores file (rows of one file contiguous, in time order) and the labels
/// (`combined_windows.json`), giving each file's scores and its windows as row ranges.
pub fn read_scores(scores: &Path, labels: &Path) -> Result<Vec<NabFile>, Error> {
    let f = std::fs::File::open(scores).map_err(|e| Error::Io {
        path: scores.to_path_buf(),
        source: e,
    })?;
    let df = ParquetReader::new(f).finish().map_err(|e| bad(scores, e))?;
    let col = |c: &str| {
        df.column(c)
            .cloned()
            .map_err(|_| bad(scores, format!("missing column `{c}`")))
    };
    let ids = col("unique_id")?;
    let ids = ids.str().map_err(|e| bad(scores, e))?;
    let kind = match col("ds")?.dtype() {
        DataType::Datetime(unit, _) => TimeKind::Datetime {
            unit: match unit {
                TimeUnit::Nanoseconds => particast_ingest::time::TimeUnit::Ns,
                TimeUnit::Microseconds => particast_ingest::time::TimeUnit::Us,
                TimeUnit::Milliseconds => particast_ingest::time::TimeUnit::Ms,
            },
            tz: None,
        },
        other => return Err(bad(scores, format!("`ds` is {other}, expected a datetime"))),
    };
    let ds = col("ds")?
        .cast(&DataType::Int64)
        .map_err(|e| bad(scores, e))?;
    let ds = ds.i64().map_err(|e| bad(scores, e))?;
    let an = col("particast-anomaly")?;
    let an = an.f64().map_err(|e| bad(scores, e))?;
    let mut files: Vec<NabFile> = Vec::new();
    let mut stamps: Vec<Vec<i64>> = Vec::new();
    for i in 0..df.height() {
        let id = ids.get(i).unwrap_or("");
        if files.last().map(|f| f.name != id).unwrap_or(true) {
            files.push(NabFile {
                name: id.to_string(),
                ..Default::default()
            });
            stamps.push(Vec::new());
        }
        if let (Some(file), Some(st)) = (files.last_mut(), stamps.last_mut()) {
            file.scores.push(an.get(i).unwrap_or(0.0));
            st.push(ds.get(i).unwrap_or(i64::MIN));
        }
    }
    for (file, st) in files.iter_mut().zip(&stamps) {
        let windows = crate::plot::nab_windows(labels, &file.name, &kind)?;
        for (a, b) in windows {
            // NAB's windows start and end on rows of the file.
            let l = st.iter().position(|&t| t >= a);
            let r = st.iter().rposition(|&t| t <= b);
            if let (Some(l), Some(r)) = (l, r) {
                if l <= r {
                    file.windows.push((l, r));
                }
            }
        }
    }
    Ok(files)
}
