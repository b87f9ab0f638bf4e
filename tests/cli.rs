//! End-to-end tests of the `particast` binary.

use std::process::Command;

fn particast() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_particast"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn ingest_demo_reads_the_bundled_nab_files() {
    let out = particast()
        .args([
            "ingest",
            "data/nab/*/*.csv",
            "--id-from-path",
            "--time-col",
            "timestamp",
            "--target-col",
            "value",
            "--context",
            "336",
            "--horizon",
            "48",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("realKnownCause/nyc_taxi.csv"), "{stdout}");
    assert!(stdout.contains("18384 rows, 3 series"), "{stdout}");
}

#[test]
fn a_wrong_column_is_bad_input_with_a_one_line_message() {
    let out = particast()
        .args([
            "ingest",
            "data/nab/realKnownCause/nyc_taxi.csv",
            "--id-from-path",
            "--time-col",
            "when",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{stderr}");
    assert!(first.contains("missing column `when`"), "{stderr}");
    assert!(first.contains("nyc_taxi.csv"), "{stderr}");
}

#[test]
fn a_missing_file_is_bad_input() {
    let out = particast()
        .args(["ingest", "no/such/file.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.csv"));
}

#[test]
fn help_lists_examples() {
    let out = particast().args(["ingest", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
}
