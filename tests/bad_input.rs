//! The bad-input suite: every hostile or broken input we could think of, each through the Rust
//! API and through the `particast` binary, with the outcome it must have.
//!
//! For every case: the API returns an error whose text contains the expected words (or succeeds,
//! for inputs that are valid but odd); the binary exits with the expected code (2 for bad input,
//! 1 for runtime failures such as an unwritable output) and a first stderr line `error: ...`
//! containing the same words; nothing panics (exit code 101 would); and a command that fails
//! leaves an existing output and the model directory byte-for-byte as they were, with no
//! temporary files behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use particast::ingest::{Dataset, IngestOptions, Source};
use particast::pipeline::TrainedModel;
use particast::polars::prelude::*;
use particast::spec::PipelineSpec;

mod common;
use common::particast;

/// What a command or call must do.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Succeed, printing this on stdout (CLI) or nothing in particular (API).
    Ok(&'static str),
    /// Fail with this exit code and these words on the first stderr line (and in the API error).
    Fail(u8, &'static str),
}

fn check_cli(case: &str, out: &Output, expect: Expect) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(101),
        "{case}: the binary panicked\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "{case}: the binary panicked\n{stderr}"
    );
    match expect {
        Expect::Ok(needle) => {
            assert!(out.status.success(), "{case}: expected success\n{stderr}");
            assert!(
                stdout.contains(needle),
                "{case}: expected `{needle}` on stdout\n{stdout}"
            );
        }
        Expect::Fail(code, needle) => {
            assert_eq!(
                out.status.code(),
                Some(code as i32),
                "{case}: exit code\n{stderr}"
            );
            let first = stderr.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("error: ") && first.contains(needle),
                "{case}: expected `error: ...{needle}...` as the first line, got\n{stderr}"
            );
        }
    }
}

fn check_api<T>(case: &str, result: Result<T, impl std::fmt::Display>, expect: Expect) {
    match (result, expect) {
        (Ok(_), Expect::Ok(_)) => {}
        (Err(e), Expect::Fail(_, needle)) => {
            let text = e.to_string();
            assert!(
                text.contains(needle),
                "{case}: API error should contain `{needle}`: {text}"
            );
        }
        (Ok(_), Expect::Fail(_, needle)) => panic!("{case}: API accepted it (expected `{needle}`)"),
        (Err(e), Expect::Ok(_)) => panic!("{case}: API refused it: {e}"),
    }
}

/// Files in `dir` whose names mark them as temporaries of an atomic write.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.starts_with(".particast-"))
        .collect()
}

/// The bytes of every file of a folder, to prove a failed command left it alone.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `n` hourly rows of series `id` starting at 2020-01-01 00:00, values from `f`.
fn hourly(id: &str, n: usize, f: impl Fn(usize) -> String) -> String {
    (0..n)
        .map(|h| {
            format!(
                "{id},2020-01-{:02} {:02}:00:00,{}\n",
                h / 24 + 1,
                h % 24,
                f(h)
            )
        })
        .collect()
}

const HEADER: &str = "unique_id,ds,y\n";

fn clean_csv() -> String {
    let mut s = HEADER.to_string();
    s += &hourly("a", 120, |h| format!("{}", 10.0 + (h % 24) as f64));
    s += &hourly("b", 120, |h| format!("{}", 50.0 - (h % 12) as f64));
    s
}

/// A small model on the clean data (one target, hourly, unique_id/ds/y).
fn train_model(dir: &Path) -> PathBuf {
    let data = dir.join("clean.csv");
    std::fs::write(&data, clean_csv()).unwrap();
    let cfg = common::small_config(dir);
    let model = dir.join("model");
    let out = common::train_tiny(&data, &model, &cfg);
    check_cli("training the suite's model", &out, Expect::Ok(""));
    model
}

fn parquet_bytes(mut df: DataFrame) -> Vec<u8> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
    buf
}

/// One data file and what reading it, and scoring it with the suite's model, must do.
struct DataCase {
    name: &'static str,
    /// File name (its extension picks the reader).
    file: &'static str,
    bytes: Vec<u8>,
    /// Reading it (API `Dataset::read` and `particast ingest`).
    read: Expect,
    /// Scoring it with the suite's model (`particast score`, output written over an existing file).
    score: Expect,
}

fn data_cases() -> Vec<DataCase> {
    let csv = |name, body: String, read, score| DataCase {
        name,
        file: "input.csv",
        bytes: body.into_bytes(),
        read,
        score,
    };
    let bad = |words| Expect::Fail(2, words);
    let with = |f: &dyn Fn(usize) -> String| format!("{HEADER}{}", hourly("a", 48, f));
    let good_parquet = parquet_bytes(
        df!(
            "unique_id" => ["a"; 48],
            "ds" => (0..48i64).map(|h| 1_577_836_800_000_000 + h * 3_600_000_000).collect::<Vec<_>>(),
            "y" => (0..48).map(|h| h as f64).collect::<Vec<_>>(),
        )
        .unwrap()
        .lazy()
        .with_column(col("ds").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
        .collect()
        .unwrap(),
    );
    let zero_rows = parquet_bytes(
        df!(
            "unique_id" => Vec::<String>::new(),
            "ds" => Vec::<i64>::new(),
            "y" => Vec::<f64>::new(),
        )
        .unwrap(),
    );
    let mut non_utf8 = HEADER.as_bytes().to_vec();
    non_utf8.extend_from_slice(b"caf\xe9,2020-01-01 00:00:00,1\ncaf\xe9,2020-01-01 01:00:00,2\n");
    vec![
        csv("empty file", String::new(), bad("empty"), bad("empty")),
        csv(
            "header only",
            HEADER.into(),
            bad("empty"),
            bad("empty"),
        ),
        DataCase {
            name: "zero rows (Parquet)",
            file: "input.parquet",
            bytes: zero_rows,
            read: bad("empty"),
            score: bad("empty"),
        },
        csv(
            "missing id column",
            "ds,y\n2020-01-01 00:00:00,1\n".into(),
            bad("missing column `unique_id`"),
            bad("missing column `unique_id`"),
        ),
        csv(
            "missing time column",
            "unique_id,y\na,1\n".into(),
            bad("missing column `ds`"),
            bad("missing column `ds`"),
        ),
        csv(
            "missing target column",
            "unique_id,ds\na,2020-01-01 00:00:00\n".into(),
            bad("missing column `y`"),
            bad("missing column `y`"),
        ),
        csv(
            "target column of strings",
            with(&|h| format!("v{h}")),
            bad("`y`"),
            bad("`y`"),
        ),
        csv(
            "mixed numbers and strings",
            with(&|h| if h == 30 { "oops".into() } else { h.to_string() }),
            bad("`y`"),
            bad("`y`"),
        ),
        csv(
            "NaN, +inf and -inf values",
            with(&|h| match h % 10 {
                3 => "NaN".into(),
                5 => "inf".into(),
                7 => "-inf".into(),
                _ => h.to_string(),
            }),
            Expect::Ok("15 non-finite values masked"),
            Expect::Ok("scored     48 observations"),
        ),
        csv(
            "1e300",
            with(&|h| if h == 20 { "1e300".into() } else { h.to_string() }),
            bad("1e300"),
            bad("1e300"),
        ),
        csv(
            "-1e300",
            with(&|h| if h == 20 { "-1e300".into() } else { h.to_string() }),
            bad("-1e300"),
            bad("-1e300"),
        ),
        csv(
            "all-missing series",
            format!(
                "{HEADER}{}{}",
                hourly("a", 48, |h| h.to_string()),
                hourly("b", 48, |_| String::new())
            ),
            bad("series `b` has no observed"),
            bad("series `b` has no observed"),
        ),
        csv(
            "constant series",
            with(&|_| "7".into()),
            Expect::Ok("1 series"),
            Expect::Ok("scored     48 observations"),
        ),
        csv(
            "series of length 1",
            format!("{HEADER}a,2020-01-01 00:00:00,3\n"),
            Expect::Ok("1 series"),
            Expect::Ok("scored     1 observations"),
        ),
        csv(
            "unsorted timestamps",
            format!(
                "{HEADER}a,2020-01-01 00:00:00,1\na,2020-01-01 02:00:00,2\na,2020-01-01 01:00:00,3\n"
            ),
            bad("not sorted"),
            bad("not sorted"),
        ),
        csv(
            "duplicate timestamps",
            format!(
                "{HEADER}a,2020-01-01 00:00:00,1\na,2020-01-01 01:00:00,2\na,2020-01-01 01:00:00,3\n"
            ),
            bad("duplicate timestamp"),
            bad("duplicate timestamp"),
        ),
        csv(
            "irregular steps",
            format!(
                "{HEADER}a,2020-01-01 00:00:00,1\na,2020-01-01 01:00:00,2\na,2020-01-01 02:00:00,3\na,2020-01-01 02:25:00,4\n"
            ),
            bad("irregular step"),
            bad("irregular step"),
        ),
        // Different UTC offsets are instants: read as UTC (00:00, 01:00, 02:00, hourly); a model
        // trained on naive timestamps scores them on the UTC wall clock.
        csv(
            "mixed UTC offsets",
            format!(
                "{HEADER}a,2020-01-01T00:00:00+00:00,1\na,2020-01-01T02:00:00+01:00,2\na,2020-01-01T02:00:00Z,3\n"
            ),
            Expect::Ok("frequency=1h"),
            Expect::Ok("scored     3 observations"),
        ),
        csv(
            "time zone on some rows only",
            format!("{HEADER}a,2020-01-01T00:00:00+00:00,1\na,2020-01-01 02:00:00,2\n"),
            bad("`ds`"),
            bad("`ds`"),
        ),
        csv(
            "datetime out of range",
            format!("{HEADER}a,2020-01-01 00:00:00,1\na,2020-13-45 99:00:00,2\n"),
            bad("`ds`"),
            bad("`ds`"),
        ),
        csv(
            "integer timestamps at the ends of i64",
            "unique_id,ds,y\na,-9223372036854775807,1\na,9223372036854775807,2\na,0,3\n".into(),
            bad("not sorted"),
            bad("not sorted"),
        ),
        DataCase {
            name: "truncated Parquet file",
            file: "input.parquet",
            bytes: good_parquet[..good_parquet.len() / 2].to_vec(),
            read: bad("input.parquet"),
            score: bad("input.parquet"),
        },
        // Found by the ingest_parquet fuzz target: a damaged page makes polars' reader panic in
        // a worker thread; it must be a read error naming the file.
        DataCase {
            name: "Parquet page that makes polars panic (fuzz find)",
            file: "input.parquet",
            bytes: std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-damaged-page.parquet"),
            )
            .unwrap(),
            read: bad("is the file damaged?"),
            score: bad("is the file damaged?"),
        },
        csv(
            "wrong delimiter",
            clean_csv().replace(',', ";"),
            bad("missing column `unique_id`"),
            bad("missing column `unique_id`"),
        ),
        DataCase {
            name: "non-UTF-8 CSV",
            file: "input.csv",
            bytes: non_utf8,
            read: bad("input.csv"),
            score: bad("input.csv"),
        },
    ]
}

#[test]
fn bad_data_through_the_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    let model_before = snapshot(&model);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let output = out_dir.join("scores.parquet");
    let mut table = Vec::new();
    for case in data_cases() {
        let case_dir = dir
            .path()
            .join(case.name.replace([' ', ',', '(', ')'], "_"));
        std::fs::create_dir(&case_dir).unwrap();
        let file = case_dir.join(case.file);
        std::fs::write(&file, &case.bytes).unwrap();
        let f = file.to_str().unwrap();

        // The Rust API.
        let api = Dataset::read(Source::path(&file), &IngestOptions::default());
        check_api(case.name, api, case.read);

        // particast ingest.
        let out = particast(&[
            "ingest",
            "--input",
            f,
            "--context",
            "1",
            "--horizon",
            "1",
            "--short-series",
            "pad",
        ]);
        check_cli(&format!("{}: ingest", case.name), &out, case.read);

        // particast score over an existing output: replaced only on success.
        std::fs::write(&output, b"previous output").unwrap();
        let out = particast(&[
            "score",
            "--input",
            f,
            "--model",
            model.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ]);
        check_cli(&format!("{}: score", case.name), &out, case.score);
        let written = std::fs::read(&output).unwrap();
        match case.score {
            Expect::Fail(..) => assert_eq!(written, b"previous output", "{}", case.name),
            Expect::Ok(_) => {
                assert_eq!(&written[..4], b"PAR1", "{}", case.name);
                // Every scored observation has a finite NLL.
                let df = ParquetReader::new(std::io::Cursor::new(written))
                    .finish()
                    .unwrap();
                let nll = df.column("particast-nll").unwrap().f64().unwrap();
                assert!(
                    nll.iter().flatten().all(f64::is_finite),
                    "{}: non-finite NLL",
                    case.name
                );
            }
        }
        assert!(leftovers(&out_dir).is_empty(), "{}", case.name);
        assert_eq!(
            snapshot(&model),
            model_before,
            "{}: model changed",
            case.name
        );
        table.push(format!(
            "{:<40} read {:?} / score {:?}",
            case.name, case.read, case.score
        ));
    }
    println!("{}", table.join("\n"));
}

#[test]
fn bad_paths_through_the_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    let model_before = snapshot(&model);
    let clean = dir.path().join("clean.csv");
    let m = model.to_str().unwrap();

    // A directory instead of a file.
    let sub = dir.path().join("folder");
    std::fs::create_dir(&sub).unwrap();
    let expect = Expect::Fail(2, "is a directory");
    check_api(
        "directory",
        Dataset::read(Source::path(&sub), &IngestOptions::default()),
        expect,
    );
    check_cli(
        "directory",
        &particast(&["ingest", "--input", sub.to_str().unwrap()]),
        expect,
    );

    // A missing file.
    let missing = dir.path().join("missing.csv");
    let expect = Expect::Fail(2, "no such file");
    check_api(
        "missing file",
        Dataset::read(Source::path(&missing), &IngestOptions::default()),
        expect,
    );
    check_cli(
        "missing file",
        &particast(&["ingest", "--input", missing.to_str().unwrap()]),
        expect,
    );

    // An unreadable file. Permissions do not stop root, so there the case is a file the kernel
    // refuses to read (`/proc/self/mem` at offset 0 answers EIO).
    let locked = dir.path().join("locked.csv");
    std::fs::write(&locked, clean_csv()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    if std::fs::File::open(&locked).is_err() {
        let expect = Expect::Fail(1, "locked.csv");
        check_api(
            "unreadable file",
            Dataset::read(Source::path(&locked), &IngestOptions::default()),
            expect,
        );
        check_cli(
            "unreadable file",
            &particast(&["ingest", "--input", locked.to_str().unwrap()]),
            expect,
        );
    } else {
        let out = particast(&[
            "ingest",
            "--input",
            "/proc/self/mem",
            "--input-format",
            "csv",
        ]);
        check_cli("unreadable file", &out, Expect::Fail(2, "/proc/self/mem"));
    }

    // An unwritable output path: its folder is a file. Refused before any work, exit 2.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"a file, not a folder").unwrap();
    let out_path = blocker.join("scores.parquet");
    let expect = Expect::Fail(2, "blocker");
    check_cli(
        "unwritable output",
        &particast(&[
            "score",
            "--input",
            clean.to_str().unwrap(),
            "--model",
            m,
            "--output",
            out_path.to_str().unwrap(),
        ]),
        expect,
    );
    check_cli(
        "unwritable forecast output",
        &particast(&[
            "forecast",
            "--input",
            clean.to_str().unwrap(),
            "--model",
            m,
            "--horizon",
            "4",
            "--output",
            out_path.to_str().unwrap(),
        ]),
        expect,
    );
    check_cli(
        "unwritable model folder",
        &particast(&[
            "train",
            "--input",
            clean.to_str().unwrap(),
            "--model",
            blocker.join("model").to_str().unwrap(),
            "--epochs",
            "1",
        ]),
        expect,
    );
    assert_eq!(std::fs::read(&blocker).unwrap(), b"a file, not a folder");
    assert_eq!(snapshot(&model), model_before);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn damaged_models_and_mismatched_data() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    let clean = dir.path().join("clean.csv");
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    let config = std::fs::read(model.join("config.json")).unwrap();
    let output = dir.path().join("scores.parquet");

    let mut flipped = weights.clone();
    // Past the header: overwrite one f32 with a NaN bit pattern.
    let at = flipped.len() - 8;
    flipped[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let config_text = String::from_utf8(config.clone()).unwrap();
    let cases: Vec<(&str, Vec<u8>, Vec<u8>, Expect)> = vec![
        (
            "truncated weights",
            weights[..weights.len() / 2].to_vec(),
            config.clone(),
            Expect::Fail(2, "model.safetensors"),
        ),
        (
            "empty weights",
            Vec::new(),
            config.clone(),
            Expect::Fail(2, "model.safetensors"),
        ),
        (
            "corrupted weights (a NaN)",
            flipped,
            config.clone(),
            Expect::Fail(2, "non-finite"),
        ),
        (
            "truncated config",
            weights.clone(),
            config[..config.len() / 2].to_vec(),
            Expect::Fail(2, "not valid JSON"),
        ),
        (
            "config of another format version",
            weights.clone(),
            config_text
                .replacen("\"format_version\": 1", "\"format_version\": 99", 1)
                .into_bytes(),
            Expect::Fail(2, "version 99"),
        ),
        (
            "config asking for a huge network",
            weights.clone(),
            config_text
                .replacen("\"hidden\": 4", "\"hidden\": 1000000", 1)
                .into_bytes(),
            Expect::Fail(2, "parameters"),
        ),
        (
            "config with a wrong shape",
            weights.clone(),
            config_text
                .replacen("\"particles\": 2", "\"particles\": 3", 1)
                .into_bytes(),
            Expect::Fail(2, "shape"),
        ),
    ];
    for (name, w, c, expect) in cases {
        let damaged = dir.path().join(name.replace([' ', '(', ')'], "_"));
        std::fs::create_dir(&damaged).unwrap();
        std::fs::write(damaged.join("model.safetensors"), &w).unwrap();
        std::fs::write(damaged.join("config.json"), &c).unwrap();
        let before = snapshot(&damaged);
        check_api(name, TrainedModel::load(&damaged), expect);
        check_cli(
            &format!("{name}: inspect"),
            &particast(&["inspect", damaged.to_str().unwrap()]),
            expect,
        );
        std::fs::write(&output, b"previous output").unwrap();
        check_cli(
            &format!("{name}: score"),
            &particast(&[
                "score",
                "--input",
                clean.to_str().unwrap(),
                "--model",
                damaged.to_str().unwrap(),
                "--output",
                output.to_str().unwrap(),
            ]),
            expect,
        );
        assert_eq!(
            std::fs::read(&output).unwrap(),
            b"previous output",
            "{name}"
        );
        assert_eq!(
            snapshot(&damaged),
            before,
            "{name}: the model folder changed"
        );
    }

    // A model trained on D = 1 applied to D = 3 data.
    let three = dir.path().join("three.csv");
    let mut text = String::from("unique_id,ds,y,z,w\n");
    for h in 0..48 {
        text += &format!("a,2020-01-{:02} {:02}:00:00,{h},1,2\n", h / 24 + 1, h % 24);
    }
    std::fs::write(&three, text).unwrap();
    let expect = Expect::Fail(2, "trained on 1 target(s)");
    let tm = TrainedModel::load(&model).unwrap();
    let opts = IngestOptions {
        target_cols: vec!["y".into(), "z".into(), "w".into()],
        ..tm.meta.ingest.clone()
    };
    let data = Dataset::read(Source::path(&three), &opts).unwrap();
    check_api(
        "D=1 model on D=3 data",
        tm.check_schema(&data.schema),
        expect,
    );
    std::fs::write(&output, b"previous output").unwrap();
    let out = particast(&[
        "score",
        "--input",
        three.to_str().unwrap(),
        "--target-col",
        "y",
        "--target-col",
        "z",
        "--target-col",
        "w",
        "--model",
        model.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    check_cli("D=1 model on D=3 data", &out, expect);
    assert_eq!(std::fs::read(&output).unwrap(), b"previous output");

    // Training over an existing model with bad data leaves the model as it was.
    let before = snapshot(&model);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{HEADER}a,2020-01-01 00:00:00,x\n")).unwrap();
    let out = particast(&[
        "train",
        "--input",
        bad.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    check_cli(
        "train over a model with bad data",
        &out,
        Expect::Fail(2, "`y`"),
    );
    assert_eq!(snapshot(&model), before);
    assert!(leftovers(&model).is_empty());
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn bad_pipeline_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clean.csv");
    std::fs::write(&data, clean_csv()).unwrap();
    let good = format!(
        "output_dir = \"out\"\n[input]\npath = \"{}\"\n[train]\nhidden = 4\nparticles = 2\ncontext = 24\nhorizon = 12\nepochs = 1\nbatches_per_epoch = 2\n",
        data.display()
    );
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "unknown key",
            good.replace("hidden = 4", "hiden = 4"),
            Expect::Fail(2, "hiden"),
        ),
        (
            "unknown section",
            format!("{good}[trian]\nepochs = 1\n"),
            Expect::Fail(2, "trian"),
        ),
        (
            "wrong type",
            good.replace("hidden = 4", "hidden = \"four\""),
            Expect::Fail(2, "hidden"),
        ),
        (
            "negative size",
            good.replace("hidden = 4", "hidden = -4"),
            Expect::Fail(2, "hidden"),
        ),
        (
            "missing required key (input.path)",
            good.replace(&format!("path = \"{}\"\n", data.display()), ""),
            Expect::Fail(2, "path"),
        ),
        (
            "missing [input] section",
            "[train]\nepochs = 1\n".into(),
            Expect::Fail(2, "[input]"),
        ),
        (
            "not TOML",
            "[input\npath = ".into(),
            Expect::Fail(2, "bad.toml"),
        ),
        ("empty file", String::new(), Expect::Fail(2, "[input]")),
    ];
    for (name, text, expect) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, &text).unwrap();
        check_api(name, PipelineSpec::parse(&text, &file), expect);
        check_cli(name, &particast(&["run", file.to_str().unwrap()]), expect);
        assert!(!dir.path().join("out").exists(), "{name}: output written");
    }
    // And a file that is not there, or not text.
    check_cli(
        "missing pipeline file",
        &particast(&["run", dir.path().join("nope.toml").to_str().unwrap()]),
        Expect::Fail(2, "nope.toml"),
    );
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"\xff\xfe\x00garbage").unwrap();
    check_cli(
        "binary pipeline file",
        &particast(&["run", binary.to_str().unwrap()]),
        Expect::Fail(2, "binary.toml"),
    );
}

#[test]
fn a_folder_as_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    check_cli(
        "folder as pipeline file",
        &particast(&["run", dir.path().to_str().unwrap()]),
        Expect::Fail(2, "Is a directory"),
    );
}

/// Outputs are readable like any file the user writes (not tempfile's private 0600).
#[test]
fn outputs_get_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    for f in ["model.safetensors", "config.json", "checkpoint.safetensors"] {
        let mode = std::fs::metadata(model.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "{f}: {mode:o}");
    }
}

/// Found by the ingest_csv fuzz target: a wide CSV whose header has a column named like a polars
/// internal (`__PL_STRUCTFIELDS`) reaches an `unreachable!` in polars' planner. It must be a
/// read error naming the file, through the API and the CLI.
#[test]
fn a_polars_internal_column_name_is_an_error_not_a_crash() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-reserved-column.csv");
    let opts = IngestOptions {
        layout: particast::ingest::Layout::Wide,
        id_from_path: true,
        calendar: false,
        lags: vec![1, 3],
        target_cols: vec!["y".into(), "z".into()],
        ..Default::default()
    };
    let expect = Expect::Fail(2, "is the file damaged?");
    check_api(
        "reserved column",
        Dataset::read(Source::path(&file), &opts),
        expect,
    );
    let out = particast(&[
        "ingest",
        "--input",
        file.to_str().unwrap(),
        "--format",
        "wide",
        "--short-series",
        "pad",
    ]);
    check_cli("reserved column", &out, expect);
}

#[test]
fn values_outside_a_log_models_domain() {
    // A model trained with `transform = log` (offset 0) meets a zero: score, forecast and
    // training refuse it with the series, step and value, exit 2, and leave outputs alone.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clean.csv");
    std::fs::write(&data, clean_csv()).unwrap();
    let cfg = dir.path().join("log.toml");
    std::fs::write(
        &cfg,
        "batches_per_epoch = 3\nbatch_size = 8\ntransform = { kind = \"log\", offset = 0.0 }\n",
    )
    .unwrap();
    let model = dir.path().join("model");
    let train = |input: &Path, model: &Path| common::train_tiny(input, model, &cfg);
    check_cli(
        "training a log model",
        &train(&data, &model),
        Expect::Ok(""),
    );
    let before_model = snapshot(&model);

    let zero = dir.path().join("zero.csv");
    let mut body = HEADER.to_string();
    body += &hourly("a", 48, |h| if h == 30 { "0".into() } else { "5".into() });
    std::fs::write(&zero, body).unwrap();
    let expect = Expect::Fail(2, "series `a`, step 30: value 0 is outside the domain");
    for cmd in ["score", "forecast"] {
        let out_file = dir.path().join(format!("{cmd}.parquet"));
        std::fs::write(&out_file, b"previous output").unwrap();
        let mut args = vec![
            cmd,
            "--input",
            zero.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--output",
            out_file.to_str().unwrap(),
        ];
        if cmd == "forecast" {
            args.extend(["--horizon", "4"]);
        }
        check_cli(cmd, &particast(&args), expect);
        assert_eq!(
            std::fs::read(&out_file).unwrap(),
            b"previous output",
            "{cmd}"
        );
        assert!(leftovers(dir.path()).is_empty(), "{cmd}");
    }
    check_cli(
        "training on it",
        &train(&zero, &dir.path().join("m2")),
        expect,
    );
    assert_eq!(snapshot(&model), before_model);
}

/// `particast score` of `input` with `model` into `output` (more arguments after).
fn score_cmd(input: &Path, model: &Path, output: &Path, more: &[&str]) -> Output {
    let mut args = vec![
        "score",
        "--input",
        input.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    particast(&args)
}

/// An output that is an input of the same command (directly, through another spelling, a
/// symlink or a hard link) or a file of the model directory is refused before any work, and
/// every file is left as it was; two outputs of one command may not be the same file.
#[test]
fn outputs_that_would_destroy_an_input_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    let model_before = snapshot(&model);
    let clean = dir.path().join("clean.csv");
    let data_before = std::fs::read(&clean).unwrap();
    let same = Expect::Fail(2, "input");
    // The input itself, and other spellings of it.
    let dotted = dir.path().join(".").join("clean.csv");
    let roundabout = dir.path().join("model").join("..").join("clean.csv");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&clean, &link).unwrap();
    let hard = dir.path().join("hard.csv");
    std::fs::hard_link(&clean, &hard).unwrap();
    for (case, out) in [
        ("output = input", clean.clone()),
        ("output = ./input", dotted),
        ("output = dir/../input", roundabout),
        ("output = symlink to input", link.clone()),
        ("output = hard link of input", hard.clone()),
    ] {
        check_cli(case, &score_cmd(&clean, &model, &out, &[]), same);
        check_cli(
            &format!("forecast: {case}"),
            &particast(&[
                "forecast",
                "--input",
                clean.to_str().unwrap(),
                "--model",
                model.to_str().unwrap(),
                "--horizon",
                "4",
                "--output",
                out.to_str().unwrap(),
            ]),
            same,
        );
        assert_eq!(std::fs::read(&clean).unwrap(), data_before, "{case}");
    }
    // A glob input protects every file it matches.
    let glob = format!("{}/*.csv", dir.path().display());
    check_cli(
        "output = a file of the input glob",
        &particast(&[
            "score",
            "--input",
            &glob,
            "--model",
            model.to_str().unwrap(),
            "--output",
            hard.to_str().unwrap(),
        ]),
        same,
    );
    // The model directory's files, as a score, state or forecast output.
    for file in ["config.json", "model.safetensors", "checkpoint.safetensors"] {
        let target = model.join(file);
        check_cli(
            &format!("score output = model's {file}"),
            &score_cmd(&clean, &model, &target, &[]),
            same,
        );
        let scores = dir.path().join("s.parquet");
        check_cli(
            &format!("state output = model's {file}"),
            &score_cmd(
                &clean,
                &model,
                &scores,
                &["--state-out", target.to_str().unwrap()],
            ),
            same,
        );
    }
    // Training into a folder that holds the training data under a model file's name.
    let trap = dir.path().join("trap");
    std::fs::create_dir(&trap).unwrap();
    std::fs::write(trap.join("config.json"), clean_csv()).unwrap();
    check_cli(
        "train data = a model file",
        &particast(&[
            "train",
            "--input",
            trap.join("config.json").to_str().unwrap(),
            "--input-format",
            "csv",
            "--model",
            trap.to_str().unwrap(),
            "--epochs",
            "1",
        ]),
        same,
    );
    assert_eq!(
        std::fs::read(trap.join("config.json")).unwrap(),
        clean_csv().as_bytes()
    );
    // The state input may be updated in place (read whole first), but it is not the scores.
    let state = dir.path().join("state.parquet");
    let scores = dir.path().join("scores.parquet");
    let ok = score_cmd(
        &clean,
        &model,
        &scores,
        &["--state-out", state.to_str().unwrap()],
    );
    check_cli("first state", &ok, Expect::Ok("scored"));
    let in_place = score_cmd(
        &clean,
        &model,
        &scores,
        &[
            "--state-in",
            state.to_str().unwrap(),
            "--state-out",
            state.to_str().unwrap(),
        ],
    );
    assert_ne!(in_place.status.code(), Some(101));
    let state_before = std::fs::read(&state).unwrap();
    check_cli(
        "scores = state input",
        &score_cmd(
            &clean,
            &model,
            &state,
            &["--state-in", state.to_str().unwrap()],
        ),
        same,
    );
    assert_eq!(std::fs::read(&state).unwrap(), state_before);
    // Two outputs at one place.
    check_cli(
        "scores = state output",
        &score_cmd(
            &clean,
            &model,
            &scores,
            &["--state-out", scores.to_str().unwrap()],
        ),
        Expect::Fail(2, "same file as the output"),
    );
    // A pipeline whose score output is its own input.
    let pipeline = dir.path().join("self.toml");
    std::fs::write(
        &pipeline,
        "[input]\npath = \"clean.csv\"\n[train]\nmodel = \"model\"\nepochs = 1\nbatches_per_epoch = 1\nhidden = 4\nparticles = 2\ncontext = 24\nhorizon = 12\n[score]\noutput = \"clean.csv\"\n",
    )
    .unwrap();
    check_cli(
        "pipeline: score output = input",
        &particast(&["run", pipeline.to_str().unwrap()]),
        same,
    );
    std::fs::write(
        &pipeline,
        "[input]\npath = \"clean.csv\"\n[score]\noutput = \"self.toml\"\n[train]\nmodel = \"model\"\n",
    )
    .unwrap();
    check_cli(
        "pipeline: score output = the pipeline file",
        &particast(&["run", pipeline.to_str().unwrap()]),
        same,
    );
    // The Rust API's guard says the same.
    let mut guard = particast::pipeline::sink::Protected::new();
    guard.input(clean.to_str().unwrap()).model_dir(&model);
    check_api("API: output = input", guard.claim(&link), same);
    check_api(
        "API: output = model file",
        guard.claim(&model.join("config.json")),
        same,
    );
    check_api(
        "API: a new file",
        guard.claim(&dir.path().join("new.parquet")),
        Expect::Ok(""),
    );

    assert_eq!(std::fs::read(&clean).unwrap(), data_before);
    assert_eq!(snapshot(&model), model_before);
    assert!(leftovers(dir.path()).is_empty());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Outputs that are not regular files are written through, never replaced: a FIFO stays a FIFO
/// (and its reader gets the Parquet file), `/dev/null` stays a device, a symlink to a file
/// stays a symlink (its target gets the output); `/dev/full` is a clean write error.
#[test]
fn non_regular_outputs_are_written_through_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    let clean = dir.path().join("clean.csv");

    // A FIFO with a reader on the other end.
    let fifo = dir.path().join("scores.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    let out = score_cmd(&clean, &model, &fifo, &[]);
    check_cli("FIFO output", &out, Expect::Ok("scored"));
    let bytes = reader.join().unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
    let df = ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .unwrap();
    assert_eq!(df.height(), 240);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // A character device.
    let out = score_cmd(&clean, &model, Path::new("/dev/null"), &[]);
    check_cli("/dev/null output", &out, Expect::Ok("scored"));
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // A full device: a write error (exit 1, one line), the device untouched.
    if Path::new("/dev/full").exists() {
        let out = score_cmd(&clean, &model, Path::new("/dev/full"), &[]);
        check_cli("/dev/full output", &out, Expect::Fail(1, "/dev/full"));
        assert!(std::fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    // A symlink to a regular file.
    let target = dir.path().join("real.parquet");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("latest.parquet");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = score_cmd(&clean, &model, &link, &[]);
    check_cli("symlink output", &out, Expect::Ok("scored"));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(&std::fs::read(&target).unwrap()[..4], b"PAR1");
    // A dangling symlink is refused, not replaced.
    let dangling = dir.path().join("dangling.parquet");
    std::os::unix::fs::symlink(dir.path().join("nowhere/x.parquet"), &dangling).unwrap();
    let out = score_cmd(&clean, &model, &dangling, &[]);
    assert!(matches!(out.status.code(), Some(1) | Some(2)), "{out:?}");
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(leftovers(dir.path()).is_empty());
}

/// A write that fails part-way (here the file-size limit, as a full disk would) leaves the
/// previous output byte for byte and no temporary file.
#[test]
fn a_failed_write_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    let clean = dir.path().join("clean.csv");
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let output = out_dir.join("scores.arrow");
    std::fs::write(&output, b"previous output").unwrap();
    // 2 KiB per file (ulimit -f counts 512-byte blocks); SIGXFSZ ignored so the write fails
    // with EFBIG instead of killing the process.
    let script = format!(
        "trap '' XFSZ; ulimit -f 4; exec '{}' score --input '{}' --model '{}' --output '{}'",
        common::bin(),
        clean.display(),
        model.display(),
        output.display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    check_cli(
        "write beyond the file-size limit",
        &out,
        Expect::Fail(1, "scores.arrow"),
    );
    assert_eq!(std::fs::read(&output).unwrap(), b"previous output");
    assert!(leftovers(&out_dir).is_empty(), "{:?}", leftovers(&out_dir));
}

/// Sizes nobody can allocate are refused with a message naming the option, before any
/// allocation: each option alone above its limit, and moderate values whose product is huge.
#[test]
fn impossible_sizes_are_refused_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_model(dir.path());
    let clean = dir.path().join("clean.csv");
    let out = dir.path().join("f.parquet");
    let forecast = |more: &[&str]| {
        let mut args = vec![
            "forecast",
            "--input",
            clean.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        particast(&args)
    };
    let many_levels = "50,".repeat(200);
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "horizon in the billions",
            vec!["--horizon", "5000000000"],
            "horizon",
        ),
        (
            "samples in the billions",
            vec![
                "--horizon",
                "4",
                "--mode",
                "sample",
                "--samples",
                "2000000000",
            ],
            "samples",
        ),
        (
            "moderate horizon x samples",
            vec![
                "--horizon",
                "100000",
                "--mode",
                "sample",
                "--samples",
                "100000",
            ],
            "the horizon, the samples",
        ),
        (
            "too many levels",
            vec!["--horizon", "4", "--levels", &many_levels[..399]],
            "levels",
        ),
    ];
    for (case, args, needle) in &cases {
        check_cli(case, &forecast(args), Expect::Fail(2, needle));
    }
    assert!(!out.exists());
    // Training sizes.
    let m2 = dir.path().join("m2");
    for (case, flag, value, needle) in [
        ("hidden", "--hidden", "100000000", "hidden"),
        ("particles", "--particles", "100000000", "particles"),
        ("context", "--context", "5000000000", "context"),
        (
            "hidden x particles x context",
            "--hidden",
            "4000",
            "would need about",
        ),
    ] {
        let mut args = vec![
            "train",
            "--input",
            clean.to_str().unwrap(),
            "--model",
            m2.to_str().unwrap(),
            flag,
            value,
        ];
        if case.contains(" x ") {
            args.extend_from_slice(&["--particles", "4000", "--context", "100000"]);
        }
        check_cli(case, &particast(&args), Expect::Fail(2, needle));
    }
    // Scoring sizes, through a pipeline file and the API.
    let pipeline = dir.path().join("big.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[input]\npath = \"clean.csv\"\n[train]\nmodel = \"{}\"\n[score]\nchunk = 1000000000000\n",
            model.display()
        ),
    )
    .unwrap();
    let spec = PipelineSpec::load(&pipeline).unwrap();
    let tm = TrainedModel::load(&model).unwrap();
    let data = Dataset::read(Source::path(&clean), &IngestOptions::default()).unwrap();
    let cfg = spec.score.as_ref().unwrap().config.clone();
    check_api(
        "API: chunk",
        particast::pipeline::score_series(&tm, &data.series, &cfg),
        Expect::Fail(2, "chunk"),
    );
    let huge = particast::pipeline::ForecastConfig {
        horizon: 200_000,
        samples: 200_000,
        mode: particast::pipeline::Mode::Sample,
        ..Default::default()
    };
    check_api(
        "API: horizon x samples",
        particast::pipeline::forecast_series(&tm, &data.series, &huge),
        Expect::Fail(2, "would need about"),
    );
    let bad_score = particast::pipeline::ScoreConfig {
        long_window: usize::MAX,
        ..Default::default()
    };
    check_api(
        "API: long window",
        particast::pipeline::score_series(&tm, &data.series, &bad_score),
        Expect::Fail(2, "long_window"),
    );
}

/// Duplicated timestamps: an error naming the policy option by default, and `first`, `last`
/// and `mean` through the API, the CLI and a pipeline file.
#[test]
fn duplicate_timestamps_follow_the_policy() {
    use particast::ingest::Duplicates;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dup.csv");
    // 01:00 three times (2, 4, and a missing value), 03:00 twice (5, 7).
    std::fs::write(
        &file,
        format!(
            "{HEADER}a,2020-01-01 00:00:00,1\na,2020-01-01 01:00:00,2\na,2020-01-01 01:00:00,4\na,2020-01-01 01:00:00,\na,2020-01-01 02:00:00,3\na,2020-01-01 03:00:00,5\na,2020-01-01 03:00:00,7\n"
        ),
    )
    .unwrap();
    let read = |d| {
        Dataset::read(
            Source::path(&file),
            &IngestOptions::default().with_duplicates(d),
        )
    };
    check_api(
        "duplicates: error",
        read(Duplicates::Error),
        Expect::Fail(2, "duplicates = "),
    );
    for (policy, want) in [
        (Duplicates::First, [1.0, 2.0, 3.0, 5.0]),
        // The last row of 01:00 is missing: `last` keeps the row, so the step is missing.
        (Duplicates::Last, [1.0, f64::NAN, 3.0, 7.0]),
        (Duplicates::Mean, [1.0, 3.0, 3.0, 6.0]),
    ] {
        let data = read(policy).unwrap();
        let s = &data.series[0];
        assert_eq!(s.len(), 4, "{policy:?}");
        assert_eq!(data.report.rows, 7, "{policy:?}");
        assert_eq!(data.report.duplicates_merged, 3, "{policy:?}");
        for (t, w) in want.iter().enumerate() {
            if w.is_nan() {
                assert_eq!(s.mask[t], 0, "{policy:?} step {t}");
            } else {
                assert_eq!(s.mask[t], 1, "{policy:?} step {t}");
                assert_eq!(s.values[t], *w, "{policy:?} step {t}");
            }
        }
    }
    let f = file.to_str().unwrap();
    let ingest = |more: &[&str]| {
        let mut args = vec!["ingest", "--input", f, "--context", "1", "--horizon", "1"];
        args.extend_from_slice(more);
        particast(&args)
    };
    check_cli(
        "CLI duplicates: default",
        &ingest(&[]),
        Expect::Fail(2, "duplicates = "),
    );
    for p in ["first", "last", "mean"] {
        check_cli(
            &format!("CLI duplicates: {p}"),
            &ingest(&["--duplicates", p]),
            Expect::Ok("3 duplicate rows merged"),
        );
    }
    let pipeline = dir.path().join("dup.toml");
    std::fs::write(
        &pipeline,
        "[input]\npath = \"dup.csv\"\nduplicates = \"mean\"\n",
    )
    .unwrap();
    let spec = PipelineSpec::load(&pipeline).unwrap();
    assert_eq!(spec.input.options.duplicates, Duplicates::Mean);
    std::fs::write(
        &pipeline,
        "[input]\npath = \"dup.csv\"\nduplicates = \"median\"\n",
    )
    .unwrap();
    check_cli(
        "pipeline: unknown policy",
        &particast(&["run", pipeline.to_str().unwrap()]),
        Expect::Fail(2, "duplicates"),
    );
}
