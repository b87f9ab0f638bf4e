//! The pipeline-file parser on arbitrary text: a spec or an error naming the key, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use particast::spec::PipelineSpec;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PipelineSpec::parse(text, Path::new("/fuzz/pipeline.toml"));
    }
});
