//! NAB evaluation of a scores file: reads `unique_id`, `ds` and `particast-anomaly` (the columns
//! `particast score` and `pipelines/nab.toml` write, in file order) and NAB's label windows, and
//! returns the per-file detector output that [`particast_pipeline::nab::score_corpus`] scores.

use particast_ingest::polars::prelude::*;
use particast_ingest::TimeKind;
use particast_pipeline::nab::NabFile;
use particast_pipeline::output;
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
    let (kind, series) = output::read_scores(&df, &scores.to_string_lossy())?;
    if !matches!(kind, TimeKind::Datetime { .. }) {
        return Err(bad(
            scores,
            "`ds` is not a datetime (NAB files have timestamps)",
        ));
    }
    let mut files: Vec<NabFile> = Vec::new();
    let mut stamps: Vec<Vec<i64>> = Vec::new();
    for s in series {
        files.push(NabFile {
            name: s.id,
            scores: s.anomaly.iter().map(|a| a.unwrap_or(0.0)).collect(),
            ..Default::default()
        });
        stamps.push(s.ds);
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
