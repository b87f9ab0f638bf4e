//! The model loader on arbitrary bytes: the first two bytes (little endian) give the length of
//! the `config.json` part, the rest is `model.safetensors`. Loading must return a model or an
//! error; it must never panic or allocate what the weights cannot back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use particast::pipeline::TrainedModel;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = u16::from_le_bytes([data[0], data[1]]) as usize;
    let rest = &data[2..];
    let (config, weights) = rest.split_at(n.min(rest.len()));
    let _ = TrainedModel::from_bytes(config, weights, Path::new("fuzz-model"));
});
