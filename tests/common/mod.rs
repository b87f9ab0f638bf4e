//! Helpers shared by the end-to-end test files (each file includes this module; not every file
//! uses every helper).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `particast` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_particast")
}

/// Runs `particast ARGS` in the repository root.
pub fn particast(args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

/// Writes the small training settings file the tests use (3 batches of 8 windows) into `dir`.
pub fn small_config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, "batches_per_epoch = 3\nbatch_size = 8\n").unwrap();
    cfg
}

/// `particast train` of a tiny network (H 4, L 2, context 24, horizon 12, one epoch) on `data`
/// into `model`, with the training settings file `cfg`.
pub fn train_tiny(data: &Path, model: &Path, cfg: &Path) -> Output {
    particast(&[
        "train",
        "--input",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--hidden",
        "4",
        "--particles",
        "2",
        "--context",
        "24",
        "--horizon",
        "12",
        "--epochs",
        "1",
        "-q",
    ])
}
