//! Parquet ingestion of arbitrary bytes (options picked by the first byte, as for CSV): series or
//! an error, never a panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::ingest(data, "parquet");
});
