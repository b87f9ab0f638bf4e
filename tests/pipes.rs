//! particast in Unix pipes: `--input -` reads standard input (CSV, Parquet or an Arrow IPC
//! stream, told from the first bytes), `--output -` writes standard output (Parquet, or an Arrow
//! IPC stream with `--output-format arrow`), messages stay on standard error, and a reader that
//! closes early ends the command quietly with exit code 0. Every case runs real processes
//! connected by real pipes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use particast::polars::prelude::*;

mod common;
use common::{bin, particast as run};

/// Runs particast with `stdin` piped in; returns its output.
fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn ok(case: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{case}: {stderr}");
    assert!(!stderr.contains("panicked"), "{case}: {stderr}");
}

/// Three hourly series of `n` steps with a daily cycle, long CSV.
fn csv(n: usize) -> String {
    let mut s = String::from("unique_id,ds,y\n");
    for (k, id) in ["a", "b", "c"].iter().enumerate() {
        for h in 0..n {
            let day = h / 24;
            s += &format!(
                "{id},2020-{:02}-{:02} {:02}:00:00,{:.3}\n",
                day / 28 + 1,
                day % 28 + 1,
                h % 24,
                10.0 * (k + 1) as f64
                    + ((h % 24) as f64 * std::f64::consts::TAU / 24.0).sin()
                    + ((h * 7919) % 13) as f64 * 0.05
            );
        }
    }
    s
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    data: PathBuf,
    model: PathBuf,
}

fn setup(n: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let data = path.join("data.csv");
    std::fs::write(&data, csv(n)).unwrap();
    let cfg = common::small_config(&path);
    let model = path.join("model");
    let out = common::train_tiny(&data, &model, &cfg);
    ok("train", &out);
    Setup {
        _dir: dir,
        dir: path,
        data,
        model,
    }
}

fn read_arrow(bytes: &[u8], dir: &Path) -> DataFrame {
    let f = dir.join("read-back.arrow");
    std::fs::write(&f, bytes).unwrap();
    particast::ingest::ipc::read_ipc_file(&f, "read-back").unwrap()
}

#[test]
fn score_reads_stdin_and_writes_stdout_with_the_same_bytes_as_files() {
    let s = setup(200);
    let m = s.model.to_str().unwrap();
    let data = s.data.to_str().unwrap();
    let csv_bytes = std::fs::read(&s.data).unwrap();
    for (format, file) in [("parquet", "scores.parquet"), ("arrow", "scores.arrow")] {
        let reference = s.dir.join(file);
        let out = run(&[
            "score",
            "--input",
            data,
            "--model",
            m,
            "--output",
            reference.to_str().unwrap(),
        ]);
        ok("score to a file", &out);
        let want = std::fs::read(&reference).unwrap();
        let piped = run_with_stdin(
            &[
                "score",
                "--input",
                "-",
                "--model",
                m,
                "--output",
                "-",
                "--output-format",
                format,
            ],
            &csv_bytes,
        );
        ok(format, &piped);
        assert_eq!(piped.stdout, want, "{format}: stdout differs from the file");
        // The summary went to stderr, not into the data.
        let stderr = String::from_utf8_lossy(&piped.stderr);
        assert!(stderr.contains("scored     600 observations"), "{stderr}");
        assert!(stderr.contains("standard output"), "{stderr}");
    }
    let df = read_arrow(&std::fs::read(s.dir.join("scores.arrow")).unwrap(), &s.dir);
    assert_eq!(df.height(), 600);
    for c in ["unique_id", "ds", "y", "particast-nll", "particast-flag"] {
        assert!(df.column(c).is_ok(), "{c}");
    }
    assert!(matches!(
        df.column("ds").unwrap().dtype(),
        DataType::Datetime(..)
    ));
}

#[test]
fn stdin_may_be_parquet_or_an_arrow_stream_and_a_fifo_input_works() {
    let s = setup(200);
    let m = s.model.to_str().unwrap();
    let reference = s.dir.join("ref.parquet");
    ok(
        "reference",
        &run(&[
            "score",
            "--input",
            s.data.to_str().unwrap(),
            "--model",
            m,
            "--output",
            reference.to_str().unwrap(),
        ]),
    );
    let want = std::fs::read(&reference).unwrap();
    // The same rows as Parquet and as an Arrow IPC stream.
    let mut df = CsvReadOptions::default()
        .with_parse_options(CsvParseOptions::default().with_try_parse_dates(true))
        .try_into_reader_with_file_path(Some(s.data.clone()))
        .unwrap()
        .finish()
        .unwrap();
    let pq = s.dir.join("data.parquet");
    let arrow = s.dir.join("data.arrow");
    particast::pipeline::sink::write_frame(
        &mut df,
        &pq,
        particast::pipeline::sink::OutputFormat::Parquet,
    )
    .unwrap();
    particast::pipeline::sink::write_frame(
        &mut df,
        &arrow,
        particast::pipeline::sink::OutputFormat::Arrow,
    )
    .unwrap();
    for file in [&pq, &arrow] {
        let out = run_with_stdin(
            &["score", "--input", "-", "--model", m, "--output", "-"],
            &std::fs::read(file).unwrap(),
        );
        ok(&file.display().to_string(), &out);
        assert_eq!(out.stdout, want, "{}", file.display());
    }
    // An Arrow file read by path.
    let out = run(&[
        "score",
        "--input",
        arrow.to_str().unwrap(),
        "--model",
        m,
        "--output",
        "-",
    ]);
    ok("arrow file", &out);
    assert_eq!(out.stdout, want);
    // A FIFO as input (what `--input <(zcat data.csv.gz)` gives).
    let fifo = s.dir.join("in.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = {
        let (fifo, data) = (fifo.clone(), s.data.clone());
        std::thread::spawn(move || std::fs::write(fifo, std::fs::read(data).unwrap()).unwrap())
    };
    let out = run(&[
        "score",
        "--input",
        fifo.to_str().unwrap(),
        "--model",
        m,
        "--output",
        "-",
    ]);
    writer.join().unwrap();
    ok("fifo input", &out);
    assert_eq!(out.stdout, want);
    // With ids from paths, standard input is the series `<stdin>` (not the temporary copy).
    let one: String = csv(60)
        .lines()
        .filter(|l| l.starts_with("a,"))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let out = run_with_stdin(
        &[
            "ingest",
            "--input",
            "-",
            "--id-from-path",
            "--context",
            "1",
            "--horizon",
            "1",
        ],
        format!("ds,y\n{one}").as_bytes(),
    );
    ok("ingest --id-from-path from stdin", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("<stdin>"));
    // Empty standard input: a clear error.
    let out = run_with_stdin(
        &["score", "--input", "-", "--model", m, "--output", "-"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: <stdin>: the input is empty"),
        "{stderr}"
    );
    // A bad value names <stdin>, not a temporary file.
    let bad = b"unique_id,ds,y\na,2020-01-01 00:00:00,1\na,2020-01-01 01:00:00,x\n";
    let out = run_with_stdin(
        &["score", "--input", "-", "--model", m, "--output", "-"],
        bad,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: <stdin>:"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// `cat | particast score | particast-free consumer` and `forecast | evaluate`, through a shell.
#[test]
fn shell_pipelines_end_to_end() {
    let s = setup(200);
    let script = format!(
        "set -e; cat '{data}' | '{bin}' score --input - --model '{m}' --output - --output-format arrow | cat > '{out}'",
        data = s.data.display(),
        bin = bin(),
        m = s.model.display(),
        out = s.dir.join("piped.arrow").display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    ok("cat | score | cat", &out);
    let df = read_arrow(&std::fs::read(s.dir.join("piped.arrow")).unwrap(), &s.dir);
    assert_eq!(df.height(), 600);

    // Forecast the first 188 steps of each series, evaluate on the rest, through a pipe.
    let history = s.dir.join("history.csv");
    let text = csv(200);
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || (i - 1) % 200 < 188)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&history, kept).unwrap();
    for format in ["parquet", "arrow"] {
        let script = format!(
            "set -e; '{bin}' forecast --input '{h}' --model '{m}' --horizon 12 --output - --output-format {format} | '{bin}' evaluate --forecast - --actuals '{data}' --history '{h}' --season 24 --json",
            bin = bin(),
            h = history.display(),
            m = s.model.display(),
            data = s.data.display(),
        );
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        ok("forecast | evaluate", &out);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["series"], 3, "{json}");
        assert_eq!(json["observations"], 36, "{json}");
        assert!(json["mase"].as_f64().unwrap().is_finite());
    }
}

/// A reader that stops after a few bytes: the writer ends with exit code 0, no message, no
/// panic, and leaves nothing behind.
#[test]
fn a_reader_that_closes_early_ends_the_command_quietly() {
    let s = setup(2000);
    let mut child = Command::new(bin())
        .args([
            "score",
            "--input",
            s.data.to_str().unwrap(),
            "--model",
            s.model.to_str().unwrap(),
            "--output",
            "-",
            "--output-format",
            "arrow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    // The same through a shell: `| head -c 100`.
    let script = format!(
        "'{bin}' score --input '{d}' --model '{m}' --output - --output-format arrow | head -c 100 > /dev/null; echo \"status $?\"",
        bin = bin(),
        d = s.data.display(),
        m = s.model.display()
    );
    let out = Command::new("bash")
        .args(["-c", &format!("set -o pipefail; {script}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("status 0"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
