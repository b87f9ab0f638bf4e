//! CSV ingestion of arbitrary bytes. The first byte picks the reading options (layout, sorting,
//! ids from the path, irregular handling, calendar features, lags); the rest is the file. Reading
//! must give series or an error, never a panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // The library turns panics inside polars into errors (catch_unwind); only a panic that
    // escapes it is a crash. libfuzzer-sys's own hook would abort on the caught ones too.
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| {
        common::ingest(data, "csv");
    }
);
