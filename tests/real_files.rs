//! Real files as they come: wide CSVs padded with quoted empty strings or `NA`, time columns in
//! the shapes public data uses (years, quarters, months, US dates, offsets, epochs), each through
//! the Rust API and the `particast` binary; and every dev file of `../shared/data/dev` read with
//! the documented options only (when that folder is there).

use std::path::Path;
use std::process::Output;

use particast::ingest::{Dataset, Frequency, IngestOptions, Layout, Source, TimeKind};

mod common;
use common::particast;

fn read(path: &Path, opts: &IngestOptions) -> Dataset {
    Dataset::read(Source::path(path), opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ok(case: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The values of a series, NaN where missing.
fn values(d: &Dataset, id: &str) -> Vec<f64> {
    let s = d.get(id).unwrap();
    s.values
        .iter()
        .zip(&s.mask)
        .map(|(v, m)| if *m == 1 { *v } else { f64::NAN })
        .collect()
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
}

#[test]
fn wide_files_with_any_padding_read_as_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let wide = IngestOptions::default().with_layout(Layout::Wide);
    let cases = [
        // Quoted empty strings, as writers that quote every field pad; the first rows are the
        // shortest series, so type inference would see only padding there.
        (
            "quoted-empty",
            "\"V1\",\"V2\",\"V3\",\"V4\",\"V5\"\n\"s1\",\"1.5\",\"\",\"\",\"\"\n\"s2\",\"1\",\"2\",\"\",\"\"\n\"s3\",\"1\",\"2\",\"3\",\"4.25\"\n",
        ),
        // NA padding, and a column that is empty in every row.
        (
            "na",
            "V1,V2,V3,V4,V5,V6\ns1,1.5,NA,NA,NA,\ns2,1,2,NA,NA,\ns3,1,2,3,4.25,\n",
        ),
        // Unquoted empty cells (the official M4 files), spaces around numbers.
        (
            "plain",
            "V1,V2,V3,V4,V5\ns1, 1.5 ,,,\ns2,1,2,,\ns3,1,2,3,4.25\n",
        ),
    ];
    for (name, text) in cases {
        let path = dir.path().join(format!("{name}.csv"));
        std::fs::write(&path, text).unwrap();
        let d = read(&path, &wide);
        assert_eq!(d.series.len(), 3, "{name}");
        assert!(
            same(&values(&d, "s1"), &[1.5]),
            "{name}: {:?}",
            values(&d, "s1")
        );
        assert!(same(&values(&d, "s2"), &[1.0, 2.0]), "{name}");
        assert!(
            same(&values(&d, "s3"), &[1.0, 2.0, 3.0, 4.25]),
            "{name}: {:?}",
            values(&d, "s3")
        );
        let out = particast(&[
            "ingest",
            "--input",
            path.to_str().unwrap(),
            "--format",
            "wide",
            "--context",
            "1",
            "--horizon",
            "1",
            "--short-series",
            "pad",
        ]);
        assert!(ok(name, &out).contains("3 series"), "{name}");
    }
    // A cell that is not a number is an error naming it.
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "V1,V2,V3\ns1,1,oops\n").unwrap();
    let e = Dataset::read(Source::path(&path), &wide)
        .unwrap_err()
        .to_string();
    assert!(e.contains("oops") && e.contains("V3"), "{e}");
}

#[test]
fn long_targets_and_named_covariates_take_na_and_quoted_empty_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.csv");
    std::fs::write(
        &path,
        "unique_id,ds,y,promo\na,0,\"1.0\",1\na,1,\"\",NA\na,2,NA,0\na,3,4,\"\"\na,4,N/A,1\n",
    )
    .unwrap();
    let opts = IngestOptions {
        covariate_cols: Some(vec!["promo".into()]),
        ..Default::default()
    };
    let d = read(&path, &opts);
    assert!(same(
        &values(&d, "a"),
        &[1.0, f64::NAN, f64::NAN, 4.0, f64::NAN]
    ));
    assert_eq!(d.series[0].covariates, vec![1.0, 0.0, 0.0, 0.0, 1.0]);
    // A word where a number belongs names the value, the column, the series and the row.
    std::fs::write(&path, "unique_id,ds,y\na,0,1\na,1,lots\n").unwrap();
    let e = Dataset::read(Source::path(&path), &IngestOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`lots`")
            && e.contains("`y`")
            && e.contains("series `a`")
            && e.contains("row 1"),
        "{e}"
    );
}

/// Each case: the file, its options, the frequency and first timestamp it must give.
#[test]
fn time_columns_in_the_shapes_public_data_uses() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let rows = |labels: &[&str]| -> String {
        let mut s = String::from("unique_id,ds,y\n");
        for (i, l) in labels.iter().enumerate() {
            s += &format!("a,{l},{}\n", i + 1);
        }
        s
    };
    let base = IngestOptions::default();
    let cases: Vec<(&str, String, IngestOptions, &str, &str)> = vec![
        (
            "quarters",
            rows(&["1984Q1", "1984Q2", "1984Q3", "1984Q4", "1985Q1"]),
            base.clone(),
            "3mo",
            "1984-01-01",
        ),
        (
            "months",
            rows(&["1990-03", "1990-04", "1990-05"]),
            base.clone(),
            "1mo",
            "1990-03-01",
        ),
        (
            "years",
            rows(&["1975", "1976", "1977"]),
            base.clone(),
            "1y",
            "1975-01-01",
        ),
        (
            "integer years with --time-format %Y",
            rows(&["1975", "1976", "1977"]),
            IngestOptions {
                time_format: Some("%Y".into()),
                ..base.clone()
            },
            "1y",
            "1975-01-01",
        ),
        (
            "US dates newest first, with sort",
            rows(&["04/30/2021", "04/23/2021", "04/16/2021"]),
            IngestOptions {
                sort: true,
                ..base.clone()
            },
            "1w",
            "2021-04-16",
        ),
        (
            "dotted dates",
            rows(&["30.04.2021", "01.05.2021", "02.05.2021"]),
            base.clone(),
            "1d",
            "2021-04-30",
        ),
        (
            "an explicit strftime format",
            rows(&["30/04/2021 13.00", "30/04/2021 14.00", "30/04/2021 15.00"]),
            IngestOptions {
                time_format: Some("%d/%m/%Y %H.%M".into()),
                ..base.clone()
            },
            "1h",
            "2021-04-30 13:00:00",
        ),
        (
            "Unix seconds with --time-unit s",
            rows(&["1600000000", "1600003600", "1600007200"]),
            IngestOptions {
                time_unit: Some("s".into()),
                ..base.clone()
            },
            "1h",
            "2020-09-13 12:26:40",
        ),
    ];
    for (name, text, opts, freq, first) in cases {
        let path = write("t.csv", text);
        let d = read(&path, &opts);
        let s = &d.series[0];
        let kind = &s.axis.kind;
        assert!(
            !matches!(kind, TimeKind::Integer),
            "{name}: read as integers"
        );
        assert_eq!(
            s.stats
                .frequency
                .map(|f: Frequency| f.describe(kind))
                .unwrap_or_default(),
            freq,
            "{name}"
        );
        assert!(
            kind.render(s.stats.first_ds).starts_with(first),
            "{name}: {}",
            kind.render(s.stats.first_ds)
        );
    }
    // Unsorted US dates without --sort: the error says to sort.
    let path = write("t.csv", rows(&["04/30/2021", "04/23/2021"]));
    let e = Dataset::read(Source::path(&path), &base)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sort"), "{e}");
    // Day and month that cannot be told apart: asks for --time-format.
    let path = write("t.csv", rows(&["01/02/2021", "02/02/2021"]));
    let e = Dataset::read(Source::path(&path), &base)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--time-format"), "{e}");
    // Nothing fits: the error lists what was tried.
    let path = write("t.csv", rows(&["monday", "tuesday"]));
    let out = particast(&["ingest", "--input", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`monday`") && stderr.contains("quarters (1984Q1)"),
        "{stderr}"
    );
    // The CLI flags.
    let path = write("t.csv", rows(&["1975", "1976", "1977"]));
    let out = particast(&[
        "ingest",
        "--input",
        path.to_str().unwrap(),
        "--time-format",
        "%Y",
        "--context",
        "1",
        "--horizon",
        "1",
    ]);
    assert!(ok("--time-format", &out).contains("1975-01-01"));
    let path = write("t.csv", rows(&["1600000000", "1600003600", "1600007200"]));
    let out = particast(&[
        "ingest",
        "--input",
        path.to_str().unwrap(),
        "--time-unit",
        "s",
        "--context",
        "1",
        "--horizon",
        "1",
    ]);
    assert!(ok("--time-unit", &out).contains("frequency=1h"));
}

/// Every dev file reads with documented options only: the commands listed in the README.
#[test]
fn every_dev_file_reads_with_documented_options() {
    let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dev");
    if !dev.is_dir() {
        eprintln!("skipped: {} is not there", dev.display());
        return;
    }
    let d = |p: &str| dev.join(p).to_string_lossy().into_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                d("m3/csv/m3_train.csv"),
                "--id-col".into(),
                "series_id".into(),
                "--time-col".into(),
                "step".into(),
                "--target-col".into(),
                "value".into(),
                "--no-covariates".into(),
            ],
            "3003 series",
        ),
        (
            vec![
                d("tourism/csv/tourism_train.csv"),
                "--id-col".into(),
                "series_id".into(),
                "--time-col".into(),
                "time_label".into(),
                "--target-col".into(),
                "value".into(),
                "--no-covariates".into(),
            ],
            "1311 series",
        ),
        (
            vec![
                d("vic_elec/csv/vic_elec.csv"),
                "--id-from-path".into(),
                "--time-col".into(),
                "Time_utc".into(),
                "--target-col".into(),
                "Demand".into(),
            ],
            "frequency=30min",
        ),
        (
            vec![
                d("aus_retail/csv/aus_retail.csv"),
                "--id-col".into(),
                "Series ID".into(),
                "--time-col".into(),
                "Month".into(),
                "--target-col".into(),
                "Turnover".into(),
            ],
            "152 series",
        ),
        (
            vec![
                d("peyton_manning_wiki/example_wp_log_peyton_manning.csv"),
                "--id-from-path".into(),
            ],
            "frequency=1d",
        ),
        (
            vec![
                d("us_gasoline/us_gasoline.csv"),
                "--id-from-path".into(),
                "--time-col".into(),
                "Week".into(),
                "--target-col".into(),
                "Gasoline".into(),
                "--sort".into(),
            ],
            "frequency=1w",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["ingest", "--input"];
        all.extend(args.iter().map(String::as_str));
        all.extend(["--context", "1", "--horizon", "1", "--short-series", "pad"]);
        let out = particast(&all);
        let stdout = ok(&args[0], &out);
        assert!(stdout.contains(want), "{}: {stdout}", args[0]);
    }
}

/// The reading options are pipeline-file keys too.
#[test]
fn time_and_covariate_options_in_pipeline_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("years.csv");
    std::fs::write(
        &data,
        "unique_id,ds,y,step\na,1975,1,1\na,1976,2,2\na,1977,3,3\n",
    )
    .unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "[input]\npath = \"years.csv\"\ntime_format = \"%Y\"\ncovariate_cols = []\n",
    )
    .unwrap();
    let spec = particast::spec::PipelineSpec::load(&file).unwrap();
    assert_eq!(spec.input.options.time_format.as_deref(), Some("%Y"));
    let d = read(&data, &spec.input.options);
    assert_eq!(d.schema.covariate_cols, Vec::<String>::new());
    assert_eq!(d.series[0].axis.kind, TimeKind::Date);
    std::fs::write(&file, "[input]\npath = \"years.csv\"\ntime_unit = \"s\"\n").unwrap();
    let spec = particast::spec::PipelineSpec::load(&file).unwrap();
    assert_eq!(spec.input.options.time_unit.as_deref(), Some("s"));
}
