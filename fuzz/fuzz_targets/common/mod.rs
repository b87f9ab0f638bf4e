//! Shared by the ingestion targets: write the bytes to a file, read it with options chosen by
//! the first byte, and window whatever series come out.

use particast::ingest::{
    Dataset, IngestOptions, Irregular, Layout, ShortSeries, Source, WindowSpec, WindowStream,
};
use std::sync::OnceLock;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "."
        };
        tempfile::tempdir_in(base).expect("a scratch folder for the fuzzer")
    })
}

/// Reads `data[1..]` as a file with extension `ext`; `data[0]` picks the options.
pub fn ingest(data: &[u8], ext: &str) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let path = dir().path().join(format!("input.{ext}"));
    if std::fs::write(&path, body).is_err() {
        return;
    }
    let mut opts = IngestOptions::default();
    if sel & 1 != 0 {
        opts.layout = Layout::Wide;
    }
    if sel & 2 != 0 {
        opts.sort = true;
    }
    if sel & 4 != 0 {
        opts.id_from_path = true;
    }
    if sel & 8 != 0 {
        opts.irregular = Irregular::Sequence;
    }
    if sel & 16 != 0 {
        opts.calendar = false;
    }
    if sel & 32 != 0 {
        opts.lags = vec![1, 3];
    }
    if sel & 64 != 0 {
        opts.drop_all_missing = true;
    }
    if sel & 128 != 0 {
        opts.target_cols = vec!["y".into(), "z".into()];
    }
    let Ok(data) = Dataset::read(Source::path(&path), &opts) else {
        return;
    };
    let spec = WindowSpec::new(2, 1)
        .with_stride(1)
        .with_short_series(ShortSeries::Pad);
    let series = data.series.clone().into_iter().map(Ok);
    for batch in WindowStream::new(series, spec, data.schema.features.clone(), "fuzz") {
        if batch.is_err() {
            break;
        }
    }
}
