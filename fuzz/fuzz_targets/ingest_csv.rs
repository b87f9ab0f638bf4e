//! CSV ingestion of arbitrary bytes. The first byte picks the reading options (layout, sorting,
//! ids from the path, irregular handling, calendar features, lags); the rest is the file. Reading
//! must give series or an error, never a panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::ingest(data, "csv");
});
