//! Pipeline files: a TOML spec that chains train -> score -> forecast -> evaluate.
//!
//! Relative paths resolve against the file's folder. Every section is optional except
//! `[input]`; a stage runs when its section is present. A section's keys are the settings'
//! names ([`particast_pipeline::settings`]): the file is one layer of overrides over the
//! library's defaults, as the command line's flags are. Unknown keys are errors.

use particast_ingest::IngestOptions;
use particast_pipeline::stage::EvaluateConfig;
use particast_pipeline::{ForecastConfig, Overrides, ScoreConfig, TrainConfig};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// A data source: a path plus how to read it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    /// File or glob (resolved).
    pub path: String,
    /// Reading options.
    pub options: IngestOptions,
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    /// Model directory (default `<output_dir>/model`).
    pub model: PathBuf,
    /// Steps held out at the end of every series for forecasting and evaluation (0: none).
    pub holdout: usize,
    /// Continue from a checkpoint in the model directory.
    pub resume: bool,
    /// Train only on the first fraction of every series (NAB's probation period: 0.15).
    pub train_fraction: Option<f64>,
    /// At most this many leading steps of every series when `train_fraction` is set.
    pub train_max_steps: Option<usize>,
    /// Training settings.
    pub config: TrainConfig,
}

/// `[score]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSpec {
    /// Output Parquet file (default `<output_dir>/scores.parquet`).
    pub output: PathBuf,
    /// Where to write the per-series states (optional).
    pub state: Option<PathBuf>,
    /// Scoring settings.
    pub config: ScoreConfig,
}

/// `[forecast]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastSpec {
    /// Output Parquet file (default `<output_dir>/forecast.parquet`).
    pub output: PathBuf,
    /// Future frame (`future = "FILE"`): the future covariates of every series for the
    /// horizon, read with the `[input]` options. With `holdout`, the held-out rows of the
    /// input serve instead.
    pub future: Option<PathBuf>,
    /// Forecast from a score state file (`state_in = "FILE"`, written by `[score] state`)
    /// instead of the input's series.
    pub state_in: Option<PathBuf>,
    /// Forecast settings.
    pub config: ForecastConfig,
}

/// `[cv]`: a rolling-origin backtest with the `[train]` settings and the `[forecast]`
/// settings (horizon, levels, mode), on the input minus any `[train] holdout`.
#[derive(Clone, Debug, PartialEq)]
pub struct CvSpec {
    /// The backtest's model directory (default `<output_dir>/cv-model`).
    pub model: PathBuf,
    /// The windows' forecasts (default `<output_dir>/cv.parquet`).
    pub output: PathBuf,
    /// Metrics per window and overall, JSON (default `<output_dir>/cv.json`).
    pub metrics: PathBuf,
    /// Fit and save a conformal calibration of the intervals.
    pub calibrate: bool,
    /// Windows, step, refit, season.
    pub config: particast_pipeline::cv::CvConfig,
}

/// `[evaluate]`.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluateSpec {
    /// Seasonality for MASE / MSIS.
    pub season: usize,
    /// Actuals to score against; the held-out tail of the input when absent.
    pub actuals: Option<SourceSpec>,
    /// Metrics JSON (default `<output_dir>/metrics.json`).
    pub output: PathBuf,
}

/// `[plot]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotSpec {
    /// Fan chart file (.png or .svg), drawn when forecasting.
    pub forecast: Option<PathBuf>,
    /// Anomaly view file, drawn when scoring.
    pub anomaly: Option<PathBuf>,
    /// Series to draw (default: the first).
    pub series: Option<String>,
    /// NAB label windows to shade in the anomaly view.
    pub labels: Option<PathBuf>,
    /// History steps shown before the forecast.
    pub history: usize,
}

/// A parsed pipeline file.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineSpec {
    /// The file.
    pub file: PathBuf,
    /// Folder for outputs (default `<file folder>/out/<file stem>`).
    pub output_dir: PathBuf,
    /// The data.
    pub input: SourceSpec,
    /// Training, if asked.
    pub train: Option<TrainSpec>,
    /// Scoring, if asked.
    pub score: Option<ScoreSpec>,
    /// Forecasting, if asked.
    pub forecast: Option<ForecastSpec>,
    /// Evaluation, if asked.
    pub evaluate: Option<EvaluateSpec>,
    /// A backtest, if asked.
    pub cv: Option<CvSpec>,
    /// Pictures, if asked.
    pub plot: Option<PlotSpec>,
}

type Table = toml::map::Map<String, toml::Value>;

fn bad(file: &Path, msg: impl std::fmt::Display) -> Error {
    Error::spec(file, msg)
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A text file's contents (UTF-8).
fn read_text(file: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(file).map_err(|e| Error::Io {
        path: file.to_path_buf(),
        source: e,
    })?;
    String::from_utf8(bytes).map_err(|e| bad(file, format!("not a UTF-8 text file ({e})")))
}

/// Parses TOML text into a table; a syntax error names `file` and the first line of the cause.
fn parse_table(text: &str, file: &Path) -> Result<Table, Error> {
    toml::from_str(text).map_err(|e| bad(file, first_line(&e.to_string())))
}

/// Reads a settings file -- the keys of one section of a pipeline file, `[train]`'s for
/// `particast train --config` -- as overrides of `section`.
pub fn load_settings(file: &Path, section: &str) -> Result<Overrides, Error> {
    overrides(&parse_table(&read_text(file)?, file)?, section, file)
}

/// A section's keys as overrides (messages name `file`).
fn overrides(t: &Table, section: &str, file: &Path) -> Result<Overrides, Error> {
    Overrides::from_table(section, t).map_err(|e| bad(file, e))
}

/// A typed key taken out of a section's overrides.
fn take<T: DeserializeOwned>(
    o: &mut Overrides,
    key: &str,
    file: &Path,
) -> Result<Option<T>, Error> {
    o.take(key).map_err(|e| bad(file, e))
}

/// The settings of a section: the library's defaults with the section's keys.
fn build<T: DeserializeOwned>(o: &Overrides, file: &Path) -> Result<T, Error> {
    o.build().map_err(|e| bad(file, e))
}

fn input(t: &Table, section: &str, base: &Path, file: &Path) -> Result<SourceSpec, Error> {
    let mut o = overrides(t, section, file)?;
    let path: String = take(&mut o, "path", file)?
        .ok_or_else(|| bad(file, format!("[{section}] needs `path`")))?;
    let mut options: IngestOptions = build(&o, file)?;
    if let Some(d) = &options.spill_dir {
        options.spill_dir = Some(resolve(base, &d.to_string_lossy()));
    }
    Ok(SourceSpec {
        path: resolve(base, &path).to_string_lossy().into_owned(),
        options,
    })
}

fn section(root: &mut Table, name: &str, file: &Path) -> Result<Option<Table>, Error> {
    match root.remove(name) {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(bad(file, format!("`{name}` must be a section ([{name}])"))),
    }
}

/// The keys of `[plot]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlotKeys {
    forecast: Option<String>,
    anomaly: Option<String>,
    series: Option<String>,
    labels: Option<String>,
    history: Option<usize>,
}

impl PipelineSpec {
    /// Reads and checks a pipeline file.
    pub fn load(file: &Path) -> Result<PipelineSpec, Error> {
        Self::parse(&read_text(file)?, file)
    }

    /// Parses pipeline text; `file` names it in messages and anchors relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<PipelineSpec, Error> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut root = parse_table(text, file)?;
        let output_dir = match root.remove("output_dir") {
            None => base.join("out").join(file.file_stem().unwrap_or_default()),
            Some(toml::Value::String(d)) => resolve(&base, &d),
            Some(v) => {
                return Err(bad(
                    file,
                    format!(
                        "[top level] output_dir: expected a string, found {}",
                        v.type_str()
                    ),
                ))
            }
        };
        let input_t = section(&mut root, "input", file)?
            .ok_or_else(|| bad(file, "missing [input] section"))?;
        let input_spec = input(&input_t, "input", &base, file)?;
        let train = match section(&mut root, "train", file)? {
            None => None,
            Some(t) => {
                let mut o = overrides(&t, "train", file)?;
                let model = take::<String>(&mut o, "model", file)?
                    .map(|m| resolve(&base, &m))
                    .unwrap_or_else(|| output_dir.join("model"));
                let holdout = take::<usize>(&mut o, "holdout", file)?.unwrap_or(0);
                let resume = take::<bool>(&mut o, "resume", file)?.unwrap_or(false);
                let train_fraction = take::<f64>(&mut o, "train_fraction", file)?;
                if let Some(f) = train_fraction {
                    if !(f > 0.0 && f <= 1.0) {
                        return Err(bad(
                            file,
                            format!("[train] train_fraction must be in (0, 1], not {f}"),
                        ));
                    }
                }
                let train_max_steps = take::<usize>(&mut o, "train_max_steps", file)?;
                Some(TrainSpec {
                    model,
                    holdout,
                    resume,
                    train_fraction,
                    train_max_steps,
                    config: build(&o, file)?,
                })
            }
        };
        let score = match section(&mut root, "score", file)? {
            None => None,
            Some(t) => {
                let mut o = overrides(&t, "score", file)?;
                Some(ScoreSpec {
                    output: take::<String>(&mut o, "output", file)?
                        .map(|p| resolve(&base, &p))
                        .unwrap_or_else(|| output_dir.join("scores.parquet")),
                    state: take::<String>(&mut o, "state", file)?.map(|p| resolve(&base, &p)),
                    config: build(&o, file)?,
                })
            }
        };
        let forecast = match section(&mut root, "forecast", file)? {
            None => None,
            Some(t) => {
                let mut o = overrides(&t, "forecast", file)?;
                Some(ForecastSpec {
                    output: take::<String>(&mut o, "output", file)?
                        .map(|p| resolve(&base, &p))
                        .unwrap_or_else(|| output_dir.join("forecast.parquet")),
                    future: take::<String>(&mut o, "future", file)?.map(|p| resolve(&base, &p)),
                    state_in: take::<String>(&mut o, "state_in", file)?.map(|p| resolve(&base, &p)),
                    config: build(&o, file)?,
                })
            }
        };
        let evaluate = match section(&mut root, "evaluate", file)? {
            None => None,
            Some(mut t) => {
                let actuals = match t.remove("actuals") {
                    None => None,
                    Some(toml::Value::Table(a)) => {
                        Some(input(&a, "evaluate.actuals", &base, file)?)
                    }
                    Some(_) => return Err(bad(file, "[evaluate] actuals must be a table")),
                };
                let mut o = overrides(&t, "evaluate", file)?;
                let output = take::<String>(&mut o, "output", file)?
                    .map(|p| resolve(&base, &p))
                    .unwrap_or_else(|| output_dir.join("metrics.json"));
                let config: EvaluateConfig = build(&o, file)?;
                Some(EvaluateSpec {
                    season: config.season,
                    actuals,
                    output,
                })
            }
        };
        let cv = match section(&mut root, "cv", file)? {
            None => None,
            Some(t) => {
                let mut o = overrides(&t, "cv", file)?;
                let path =
                    |o: &mut Overrides, key: &str, default: &str| -> Result<PathBuf, Error> {
                        Ok(take::<String>(o, key, file)?
                            .map(|p| resolve(&base, &p))
                            .unwrap_or_else(|| output_dir.join(default)))
                    };
                Some(CvSpec {
                    model: path(&mut o, "model", "cv-model")?,
                    output: path(&mut o, "output", "cv.parquet")?,
                    metrics: path(&mut o, "metrics", "cv.json")?,
                    calibrate: take::<bool>(&mut o, "calibrate", file)?.unwrap_or(false),
                    config: build(&o, file)?,
                })
            }
        };
        let plot = match section(&mut root, "plot", file)? {
            None => None,
            Some(t) => {
                let keys: PlotKeys = build(&overrides(&t, "plot", file)?, file)?;
                Some(PlotSpec {
                    forecast: keys.forecast.map(|p| resolve(&output_dir, &p)),
                    anomaly: keys.anomaly.map(|p| resolve(&output_dir, &p)),
                    series: keys.series,
                    labels: keys.labels.map(|p| resolve(&base, &p)),
                    history: keys.history.unwrap_or(crate::plot::DEFAULT_HISTORY),
                })
            }
        };
        if let Some(k) = root.keys().next() {
            return Err(bad(
                file,
                format!("unknown key or section `{k}` (expected output_dir, [input], [train], [score], [forecast], [evaluate], [cv], [plot])"),
            ));
        }
        if evaluate.is_some() && forecast.is_none() {
            return Err(bad(file, "[evaluate] needs a [forecast] section"));
        }
        Ok(PipelineSpec {
            file: file.to_path_buf(),
            output_dir,
            input: input_spec,
            train,
            score,
            forecast,
            evaluate,
            cv,
            plot,
        })
    }

    /// The model directory the stages use.
    pub fn model_dir(&self) -> PathBuf {
        self.train
            .as_ref()
            .map(|t| t.model.clone())
            .unwrap_or_else(|| self.output_dir.join("model"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_paths() {
        let text = r#"
            output_dir = "out"
            [input]
            path = "data.csv"
            time_col = "timestamp"
            [train]
            holdout = 24
            hidden = 16
            [forecast]
            horizon = 24
            [evaluate]
            season = 24
        "#;
        let s = PipelineSpec::parse(text, Path::new("/p/q.toml")).unwrap();
        assert_eq!(s.input.path, "/p/data.csv");
        assert_eq!(s.input.options.time_col, "timestamp");
        assert_eq!(s.output_dir, PathBuf::from("/p/out"));
        let t = s.train.unwrap();
        assert_eq!((t.holdout, t.config.hidden), (24, Some(16)));
        assert_eq!(t.model, PathBuf::from("/p/out/model"));
        assert_eq!(
            s.forecast.unwrap().output,
            PathBuf::from("/p/out/forecast.parquet")
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named() {
        let e = PipelineSpec::parse(
            "[input]\npath = \"x.csv\"\n[train]\nhiden = 3\n",
            Path::new("a.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hiden"), "{e}");
        let e = PipelineSpec::parse(
            "[input]\npath = \"x.csv\"\n[train]\nhidden = \"many\"\n",
            Path::new("a.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[train]") && e.contains("invalid type"), "{e}");
        let e = PipelineSpec::parse("[train]\nhidden = 3\n", Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing [input]"), "{e}");
        let e = PipelineSpec::parse("[input]\ntime_col = \"t\"\n", Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs `path`"), "{e}");
        let e = PipelineSpec::parse("[input]\npath = \"x\"\n[scor]\n", Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`scor`"), "{e}");
    }
}
