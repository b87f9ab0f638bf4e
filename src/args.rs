//! The command line's arguments (clap): what each command takes, and each command's flags as
//! the library's settings overrides ([`particast::pipeline::settings`]). No defaults live
//! here: an absent flag keeps the library's default (or the model's setting).

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use particast::ingest::{Duplicates, InputFormat, Irregular, Layout, ShortSeries, Weighting};
use particast::kernels::{Cell, Gate, Head};
use particast::pipeline::sink::OutputFormat;
use particast::pipeline::{
    AdaptParams, AnomalyMethod, Mode, Nonnegative, Overrides, Scaling, Target, Transform,
};
use std::str::FromStr;

/// Probabilistic forecasting and anomaly scoring with particle RNNs.
#[derive(Parser, Debug)]
#[command(name = "particast", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug)]
pub struct Global {
    /// Only errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More log lines (-v info, -vv debug); RUST_LOG overrides.
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the stages a pipeline file chains (train -> score -> forecast -> evaluate).
    #[command(after_help = "Examples:
  particast run pipelines/quickstart.toml
  particast run pipelines/nab.toml -v")]
    Run(RunArgs),
    /// Train a model on a dataset and write its directory.
    #[command(after_help = "Examples:
  particast train --input data.parquet --model model/ --particles 8 --hidden 32
  particast train --input \"data/nab/*/*.csv\" --id-from-path --time-col timestamp --target-col value --model m/
  particast train --input train.csv --format wide --model m4/ --config train.toml --resume")]
    Train(TrainArgs),
    /// Score every observation: predictive NLL, PIT, anomaly score and flag.
    #[command(after_help = "Examples:
  particast score --input data.parquet --model model/ --output scores.parquet
  particast score --input new.parquet --model model/ --output s.parquet --state-in state.parquet --state-out state.parquet
  cat data.csv | particast score --input - --model model/ --output - --output-format arrow | consumer")]
    Score(ScoreArgs),
    /// Forecast every series `horizon` steps ahead with intervals.
    #[command(after_help = "Examples:
  particast forecast --input data.parquet --model model/ --horizon 48 --output forecast.parquet
  particast forecast --input data.parquet --model model/ --horizon 24 --mode sample --samples 500 --levels 50,90 --output f.parquet
  cat data.csv | particast forecast --input - --model model/ --horizon 48 --output - > forecast.parquet")]
    Forecast(ForecastArgs),
    /// Rolling-origin cross-validation: train up to the first cutoff, forecast every window
    /// of every series, write the forecasts in Nixtla's layout and the metrics per window.
    #[command(after_help = "Examples:
  particast cv --input data.parquet --model cv-model/ --horizon 48 --n-windows 3 --output cv.parquet
  particast cv --input train.csv --format wide --model m/ --horizon 48 --n-windows 3 --eval-season 24 --calibrate --output cv.parquet
  particast cv --input data.parquet --model m/ --pretrained --horizon 24 --n-windows 7 --step-size 24 --output cv.parquet")]
    Cv(CvArgs),
    /// Score a forecast file against actuals: sMAPE, MASE, MSIS, coverage, ND, NRMSE, wQL, CRPS, NLL.
    #[command(after_help = "Examples:
  particast evaluate --forecast forecast.parquet --actuals test.parquet --history train.parquet --season 24
  particast evaluate --forecast f.parquet --actuals test.csv --format wide --history train.csv --season 24 --json
  particast forecast ... --output - | particast evaluate --forecast - --actuals test.parquet --season 24")]
    Evaluate(EvaluateArgs),
    /// Draw a forecast fan chart and/or an anomaly view of one series (PNG or SVG).
    #[command(after_help = "Examples:
  particast plot --input data.parquet --model model/ --series s1 --forecast fan.png --horizon 48
  particast plot --input \"data/nab/*/*.csv\" --id-from-path --time-col timestamp --target-col value --model m/ \\
      --series realKnownCause/nyc_taxi.csv --anomaly taxi.svg --labels data/nab/labels/combined_windows.json")]
    Plot(PlotArgs),
    /// Score an anomaly-score file the NAB way (three profiles, corpus-optimal threshold).
    #[command(after_help = "Example:
  particast nab --scores pipelines/out/nab/scores.parquet --labels ../shared/data/nab/labels/combined_windows.json")]
    Nab(NabArgs),
    /// Print a model directory's summary.
    #[command(after_help = "Example:
  particast inspect model/")]
    Inspect(InspectArgs),
    /// Read, validate and window a dataset; print what was found.
    #[command(after_help = "Examples:
  particast ingest \"data/nab/*/*.csv\" --id-from-path --time-col timestamp --target-col value
  particast ingest train.parquet --lags 24,168 --context 168 --horizon 48
  particast ingest ../shared/data/m4-hourly/Hourly-train.csv --format wide --short-series pad")]
    Ingest(IngestArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pipeline file (TOML).
    pub pipeline: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Model directory to write.
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Training settings file (the keys of a pipeline file's [train] section); flags win.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Particles L [default: 8].
    #[arg(long)]
    pub particles: Option<usize>,
    /// Hidden units H [default: auto: 32, or 40 above 100,000 training windows].
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Recurrent cell [default: gru].
    #[arg(long, value_enum)]
    pub cell: Option<Cell>,
    /// Mixture gate [default: uniform].
    #[arg(long, value_enum)]
    pub gate: Option<Gate>,
    /// Emission head [default: gaussian].
    #[arg(long, value_enum)]
    pub head: Option<Head>,
    /// Seasons in steps, comma-separated (`24,168`), `none`, or `auto`: from the frequency,
    /// kept when the data show them [default: auto].
    #[arg(long, value_parser = parse_auto_list, value_name = "LIST|none|auto")]
    pub season: Option<Auto<Vec<usize>>>,
    /// Target lags in steps, comma-separated, `none`, or `auto`: 1 and the seasons
    /// [default: auto].
    #[arg(long, value_parser = parse_auto_list, value_name = "LIST|none|auto")]
    pub lags: Option<Auto<Vec<usize>>>,
    /// Transform of the values [default: auto: log when every training value is positive].
    #[arg(long, value_parser = auto_parser::<Transform>(&["auto", "none", "log"]))]
    pub transform: Option<Auto<Transform>>,
    /// What the network predicts: the level, the change from the previous step, or the change
    /// from one season ago [default: auto: seasonal when a season is kept, else change].
    #[arg(long, value_parser = auto_parser::<Target>(&["auto", "level", "change", "seasonal"]))]
    pub target: Option<Auto<Target>>,
    /// Scaling of each window [default: auto: seasonal-diff at the target's season].
    #[arg(long, value_parser = auto_parser::<Scaling>(&["auto", "mean-abs", "seasonal-diff"]))]
    pub scaling: Option<Auto<Scaling>>,
    /// How training windows are spread over the series [default: auto: series, each equally
    /// often].
    #[arg(long, value_parser = auto_parser::<Weighting>(&["auto", "scale", "series"]))]
    pub weighting: Option<Auto<Weighting>>,
    /// Context steps [default: auto: two seasons and two horizons, 16 at least].
    #[arg(long)]
    pub context: Option<usize>,
    /// Horizon steps (the validation tail of every series) [default: 48].
    #[arg(long)]
    pub horizon: Option<usize>,
    /// Maximum epochs [default: auto: about ten passes over the windows, 4 to 100].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Gradient steps per epoch [default: auto: up to 50].
    #[arg(long)]
    pub batches_per_epoch: Option<usize>,
    /// Windows per gradient step [default: auto: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam step size [default: 0.003].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Do not compare the recipe's alternatives on the validation split when the evidence
    /// for a season is mixed (train the first choice only).
    #[arg(long)]
    pub no_select: bool,
    /// Seed [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue from the checkpoint in the model directory.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Args, Debug)]
pub struct CvArgs {
    /// The model trained on every series up to its first cutoff (`--model`, training flags,
    /// `--horizon` for the forecasts too).
    #[command(flatten)]
    pub train: TrainArgs,
    /// Cutoffs (windows) per series, counted back from its end.
    #[arg(long, default_value_t = 3)]
    pub n_windows: usize,
    /// Steps between cutoffs [default: the horizon].
    #[arg(long)]
    pub step_size: Option<usize>,
    /// Train a model per window on the history before its cutoff (into `MODEL/window-K`).
    #[arg(long, conflicts_with = "pretrained")]
    pub refit: bool,
    /// Use the trained model in `--model` as it is (no training; it must not have seen the
    /// windows).
    #[arg(long)]
    pub pretrained: bool,
    /// Seasonality of MASE, MSIS and the calibration's scale [default: the model's shortest
    /// season, else 1] (`--season` is the training recipe's).
    #[arg(long)]
    pub eval_season: Option<usize>,
    /// Interval levels in percent [default: 80,95].
    #[arg(long, value_delimiter = ',')]
    pub levels: Option<Vec<f64>>,
    /// Forecast mode [default: sample].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Sampled paths in sample mode [default: 200].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Output file of the windows' forecasts (`-`: standard output).
    #[arg(long, short)]
    pub output: std::path::PathBuf,
    /// Output format [default: by extension, else Parquet].
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormat>,
    /// Metrics per window and overall as JSON.
    #[arg(long)]
    pub metrics: Option<std::path::PathBuf>,
    /// Fit a conformal calibration of the intervals on the windows and save it in the model
    /// directory (`calibration.json`; used by `forecast --calibrated`); reports the coverage
    /// of the last window before and after, calibrated on the earlier windows.
    #[arg(long)]
    pub calibrate: bool,
}

/// A value or `auto` (`None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Auto<T>(pub Option<T>);

/// Parses `auto`, `none` or `24,168`.
pub fn parse_auto_list(text: &str) -> Result<Auto<Vec<usize>>, String> {
    match text.trim() {
        "auto" => Ok(Auto(None)),
        "none" | "" => Ok(Auto(Some(Vec::new()))),
        t => t
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| format!("`{}` is not a positive number of steps", p.trim()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Auto(Some(v))),
    }
}

/// A parser of `auto` or one of the library's words for `T` (its `FromStr`), listing `words`
/// in `--help` and in errors.
pub fn auto_parser<T>(words: &'static [&'static str]) -> impl TypedValueParser<Value = Auto<T>>
where
    T: FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(words).map(|w: String| match w.as_str() {
        "auto" => Auto(None),
        // Only the listed words get here, and the library reads each of them.
        w => Auto(w.parse::<T>().ok()),
    })
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Target lags the data are read with, comma separated [default: the model's].
    #[arg(long, value_delimiter = ',')]
    pub lags: Option<Vec<usize>>,
    /// Model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Output file, or `-` for standard output; a FIFO or device is written through.
    #[arg(long, short)]
    pub output: std::path::PathBuf,
    /// Output format [default: by extension (.arrow, .arrows, .ipc: Arrow IPC stream), else
    /// Parquet, also on standard output].
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormat>,
    /// Continue series from these saved states (series not in the file start fresh).
    #[arg(long)]
    pub state_in: Option<std::path::PathBuf>,
    /// Save the states at the end of each series here.
    #[arg(long)]
    pub state_out: Option<std::path::PathBuf>,
    /// Flag threshold on the anomaly score [default: 0.999].
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Average the anomaly score over this many observations [default: 1].
    #[arg(long)]
    pub smooth: Option<usize>,
    /// Anomaly score recipe: tail probability, short- vs long-term surprise (z-score), the
    /// rank of the recent surprise among the long window's, a tail fit, or the calibrated surprise
    /// (Numenta-style likelihood of the smoothed rank) [default: rank].
    #[arg(long, value_enum)]
    pub method: Option<AnomalyMethod>,
    /// Long window of the likelihood and rank methods and of the calm score [default: 1000].
    #[arg(long)]
    pub long_window: Option<usize>,
    /// Also flag runs of this many observations that are too predictable (a stuck sensor):
    /// their tail scores against the long window's (0: off) [default: 6].
    #[arg(long)]
    pub calm: Option<usize>,
    /// Also flag a stuck sensor: from this many identical values in a row on, the rank of the
    /// run's length among the series' past run lengths (0: off) [default: 3].
    #[arg(long)]
    pub stuck: Option<usize>,
    /// Report only the onset of a run of high scores: 0 unless above every score of this many
    /// previous observations [default: 0, off].
    #[arg(long)]
    pub suppress: Option<usize>,
    /// Re-condition fresh particles on the last `context` observations, with their own scale,
    /// every this many steps (0: never) [default: 0].
    #[arg(long)]
    pub refresh: Option<usize>,
    /// Keep learning while scoring: every this many steps of a series, gradient steps of its
    /// own copy of the model on the windows it has already scored (0: frozen) [default: 0].
    #[arg(long)]
    pub adapt: Option<usize>,
    /// Learning rate of online adaptation [default: 0.001].
    #[arg(long)]
    pub adapt_lr: Option<f64>,
    /// Gradient steps per adaptation update [default: 1].
    #[arg(long)]
    pub adapt_steps: Option<usize>,
    /// Training windows per adaptation update [default: 4].
    #[arg(long)]
    pub adapt_windows: Option<usize>,
    /// How far back an update's windows reach, in steps (0: back to back) [default: 0].
    #[arg(long)]
    pub adapt_memory: Option<usize>,
    /// Which weights adaptation changes [default: all].
    #[arg(long, value_enum)]
    pub adapt_params: Option<AdaptParams>,
    /// Score 1 for an observation outside the range of every earlier one of its series,
    /// widened by this fraction of the range on each side (e.g. 0.05) [default: off].
    #[arg(long)]
    pub novelty: Option<f64>,
}

#[derive(Args, Debug)]
pub struct ForecastArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Target lags the data are read with, comma separated [default: the model's].
    #[arg(long, value_delimiter = ',')]
    pub lags: Option<Vec<usize>>,
    /// Model directory; repeat it for an ensemble (the equal-weight mixture of the models'
    /// predictives, e.g. one setting trained with several seeds).
    #[arg(long, required = true)]
    pub model: Vec<std::path::PathBuf>,
    /// Steps ahead.
    #[arg(long)]
    pub horizon: usize,
    /// Output file, or `-` for standard output; a FIFO or device is written through.
    #[arg(long, short)]
    pub output: std::path::PathBuf,
    /// Output format [default: by extension (.arrow, .arrows, .ipc: Arrow IPC stream), else
    /// Parquet, also on standard output].
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormat>,
    /// Interval levels in percent [default: 80,95].
    #[arg(long, value_delimiter = ',')]
    pub levels: Option<Vec<f64>>,
    /// Sampled paths (calibrated intervals over the whole horizon; deterministic for a seed)
    /// or particle means (the exact mixture of each particle's mean path, faster; its
    /// intervals are too narrow over long horizons) [default: sample].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Paths in sample mode [default: 200].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Seed of sample mode [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Censor forecasts at zero: `auto` for series with no negative observation [default: auto].
    #[arg(long, value_enum)]
    pub nonnegative: Option<Nonnegative>,
    /// Future frame: the values of the model's future covariates for every series and step of
    /// the horizon (one row per series and step; id, time and covariate columns, read with the
    /// input's options). Required by a model with future covariates.
    #[arg(long)]
    pub future: Option<String>,
    /// Forecast from the score state file of `score --state-out` instead of an input: each
    /// saved series continues from where its scoring stopped, without re-reading its history
    /// (the same forecasts as from the full history). `--input` is then not read.
    #[arg(long, conflicts_with = "input")]
    pub state_in: Option<std::path::PathBuf>,
    /// Widen the intervals by the model's conformal calibration (from `particast cv
    /// --calibrate`).
    #[arg(long)]
    pub calibrated: bool,
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Forecast file from `particast forecast` (Parquet or Arrow IPC), or `-` for standard input.
    #[arg(long)]
    pub forecast: std::path::PathBuf,
    /// Actuals (read like an input; `-` for standard input when the forecast is a file).
    #[arg(long)]
    pub actuals: String,
    /// In-sample history for MASE and MSIS (same reading options).
    #[arg(long)]
    pub history: Option<String>,
    /// Seasonality for MASE and MSIS [default: 1].
    #[arg(long)]
    pub season: Option<usize>,
    /// Table layout of actuals and history.
    #[arg(long, value_enum)]
    pub format: Option<Layout>,
    /// Series id column.
    #[arg(long)]
    pub id_col: Option<String>,
    /// Use file paths as series ids.
    #[arg(long)]
    pub id_from_path: bool,
    /// Time column.
    #[arg(long)]
    pub time_col: Option<String>,
    /// Target column.
    #[arg(long = "target-col")]
    pub target_cols: Vec<String>,
    /// Rows of a series with the same timestamp in the actuals and history.
    #[arg(long, value_enum)]
    pub duplicates: Option<Duplicates>,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Target lags the data are read with, comma separated [default: the model's].
    #[arg(long, value_delimiter = ',')]
    pub lags: Option<Vec<usize>>,
    /// Model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Series to draw (default: the first).
    #[arg(long)]
    pub series: Option<String>,
    /// Fan chart file (.png or .svg): forecast from the end of the series.
    #[arg(long)]
    pub forecast: Option<std::path::PathBuf>,
    /// Steps ahead for the fan chart [default: 48].
    #[arg(long)]
    pub horizon: Option<usize>,
    /// Future frame of a model with future covariates (as `forecast --future`).
    #[arg(long)]
    pub future: Option<String>,
    /// History steps shown before the forecast.
    #[arg(long, default_value_t = particast::plot::DEFAULT_HISTORY)]
    pub history: usize,
    /// Anomaly view file (.png or .svg).
    #[arg(long)]
    pub anomaly: Option<std::path::PathBuf>,
    /// NAB label windows (combined_windows.json) to shade.
    #[arg(long)]
    pub labels: Option<std::path::PathBuf>,
    /// Flag threshold [default: 0.999].
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Smoothing of the anomaly score [default: 1].
    #[arg(long)]
    pub smooth: Option<usize>,
}

#[derive(Args, Debug)]
pub struct NabArgs {
    /// Scores Parquet file with `unique_id` (NAB relative paths), `ds` and `particast-anomaly`.
    #[arg(long)]
    pub scores: std::path::PathBuf,
    /// NAB's `labels/combined_windows.json`.
    #[arg(long)]
    pub labels: std::path::PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Model directory.
    pub model: std::path::PathBuf,
    /// Print the whole model description (config.json and the parameter count) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Input options shared by commands that read data.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// A CSV, Parquet or Arrow IPC file, a glob of them (quote it), or `-` for standard input
    /// (CSV, Parquet or an Arrow IPC stream, told from its first bytes). Required, except by
    /// `forecast --state-in`.
    #[arg(long = "input", short = 'i')]
    pub input: Option<String>,
    /// Table layout [default: long, or the model's].
    #[arg(long, value_enum)]
    pub format: Option<Layout>,
    /// File format, when the extension does not tell.
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormat>,
    /// Series id column [default: unique_id, or the model's]; naming one turns off ids from file
    /// paths (a model trained with `--id-from-path` used on a long table).
    #[arg(long)]
    pub id_col: Option<String>,
    /// Use each file's path (relative to the glob's fixed folder) as its series id.
    #[arg(long)]
    pub id_from_path: bool,
    /// Time column [default: ds].
    #[arg(long)]
    pub time_col: Option<String>,
    /// Target column, repeat for multivariate series [default: y].
    #[arg(long = "target-col")]
    pub target_cols: Vec<String>,
    /// Sort rows by time within each series instead of failing on unsorted input.
    #[arg(long)]
    pub sort: bool,
    /// Read each series' rows as consecutive steps even if their timestamps are irregular.
    #[arg(long)]
    pub sequence: bool,
    /// Covariate column, repeat for several [default: every other numeric column].
    #[arg(long = "covariate-col", conflicts_with = "no_covariates")]
    pub covariate_cols: Vec<String>,
    /// No covariates: the other columns are ignored.
    #[arg(long)]
    pub no_covariates: bool,
    /// Future (known-ahead) covariate columns, comma separated: the model sees each step's
    /// value, and forecasting needs them for the horizon (`forecast --future FILE`). Naming any
    /// kind reads only the named covariates [default: every covariate not named otherwise].
    #[arg(long, value_delimiter = ',')]
    pub futr_exog: Vec<String>,
    /// Historical covariate columns (known only up to now), comma separated: the model sees
    /// the previous step's value, and forecasts without them after the first step.
    #[arg(long, value_delimiter = ',')]
    pub hist_exog: Vec<String>,
    /// Static covariate columns (constant within each series), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub stat_exog: Vec<String>,
    /// strftime format of a text time column (e.g. %d/%m/%Y, %Y-%m-%d %H:%M; %Y, %Y-%m and
    /// %YQ%q read years, months and quarters) [default: told from the values].
    #[arg(long)]
    pub time_format: Option<String>,
    /// Read an integer time column as a Unix epoch in these units instead of a step counter.
    #[arg(long, value_parser = ["s", "ms", "us", "ns"])]
    pub time_unit: Option<String>,
    /// Rows of a series with the same timestamp [default: error, or the model's].
    #[arg(long, value_enum)]
    pub duplicates: Option<Duplicates>,
    /// Frequency override (30min, 1h, 1d, 1mo, or an integer step).
    #[arg(long)]
    pub frequency: Option<String>,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Target lags to add as features, comma separated (e.g. 24,168).
    #[arg(long, value_delimiter = ',')]
    pub lags: Option<Vec<usize>>,
    /// Context steps of a training window [default: 168].
    #[arg(long)]
    pub context: Option<usize>,
    /// Horizon steps of a training window [default: 48].
    #[arg(long)]
    pub horizon: Option<usize>,
    /// Steps between window starts [default: 24].
    #[arg(long)]
    pub stride: Option<usize>,
    /// Series shorter than a window [default: error].
    #[arg(long, value_enum)]
    pub short_series: Option<ShortSeries>,
    /// Series to list in the summary.
    #[arg(long, default_value_t = 10)]
    pub show: usize,
}

impl InputArgs {
    /// `--input`, which every command but `forecast --state-in` needs.
    pub fn path(&self) -> Result<&str, particast::Error> {
        self.input
            .as_deref()
            .ok_or_else(|| particast::Error::Usage("--input FILE is required".into()))
    }

    /// The reading flags as overrides of `[input]` keys. The input's file format is never
    /// taken from a model: it is the flag's, or told from the input itself.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::new("input");
        o.set("format", self.input_format.unwrap_or(InputFormat::Auto))
            .set_some("layout", self.format)
            .set_some("id_col", self.id_col.as_ref())
            .set_some("time_col", self.time_col.as_ref())
            .set_some("duplicates", self.duplicates)
            .set_some("time_format", self.time_format.as_ref())
            .set_some("time_unit", self.time_unit.as_ref())
            .set_some("frequency", self.frequency.as_ref());
        // Naming an id column means ids come from it, even for a model trained with ids from
        // file paths (a model trained on one file per series, used on a long table).
        if self.id_from_path {
            o.set("id_from_path", true);
        } else if self.id_col.is_some() {
            o.set("id_from_path", false);
        }
        if !self.target_cols.is_empty() {
            o.set("target_cols", &self.target_cols);
        }
        if self.sort {
            o.set("sort", true);
        }
        if self.sequence {
            o.set("irregular", Irregular::Sequence);
        }
        if self.no_covariates {
            o.set("covariate_cols", Vec::<String>::new());
        } else if !self.covariate_cols.is_empty() {
            o.set("covariate_cols", &self.covariate_cols);
        }
        for (key, cols) in [
            ("futr_exog", &self.futr_exog),
            ("hist_exog", &self.hist_exog),
            ("stat_exog", &self.stat_exog),
        ] {
            if !cols.is_empty() {
                o.set(key, cols);
            }
        }
        o
    }
}

impl TrainArgs {
    /// The training flags as overrides of `[train]` keys.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::new("train");
        o.set_some("particles", self.particles)
            .set_some("hidden", self.hidden)
            .set_some("cell", self.cell)
            .set_some("gate", self.gate)
            .set_some("head", self.head)
            .set_auto("seasons", self.season.clone().map(|a| a.0))
            .set_auto("lags", self.lags.clone().map(|a| a.0))
            .set_auto("transform", self.transform.clone().map(|a| a.0))
            .set_auto("target", self.target.clone().map(|a| a.0))
            .set_auto("scaling", self.scaling.clone().map(|a| a.0))
            .set_auto("weighting", self.weighting.clone().map(|a| a.0))
            .set_some("context", self.context)
            .set_some("horizon", self.horizon)
            .set_some("epochs", self.epochs)
            .set_some("batches_per_epoch", self.batches_per_epoch)
            .set_some("batch_size", self.batch_size)
            .set_some("lr", self.lr)
            .set_some("seed", self.seed);
        if self.no_select {
            o.set("select", false);
        }
        o
    }
}

impl ScoreArgs {
    /// The scoring flags as overrides of `[score]` keys.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::new("score");
        o.set_some("threshold", self.threshold)
            .set_some("smooth", self.smooth)
            .set_some("method", self.method)
            .set_some("long_window", self.long_window)
            .set_some("calm", self.calm)
            .set_some("stuck", self.stuck)
            .set_some("suppress", self.suppress)
            .set_some("refresh", self.refresh)
            .set_some("adapt", self.adapt)
            .set_some("adapt_lr", self.adapt_lr)
            .set_some("adapt_steps", self.adapt_steps)
            .set_some("adapt_windows", self.adapt_windows)
            .set_some("adapt_memory", self.adapt_memory)
            .set_some("adapt_params", self.adapt_params)
            .set_some("novelty", self.novelty);
        o
    }
}

impl ForecastArgs {
    /// The forecasting flags as overrides of `[forecast]` keys.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::new("forecast");
        o.set("horizon", self.horizon)
            .set_some("levels", self.levels.as_ref())
            .set_some("mode", self.mode)
            .set_some("samples", self.samples)
            .set_some("seed", self.seed)
            .set_some("nonnegative", self.nonnegative);
        if self.calibrated {
            o.set("calibrated", true);
        }
        o
    }
}

impl CvArgs {
    /// The forecast settings of the windows, as overrides of `[forecast]` keys (the horizon is
    /// training's, 48 by default).
    pub fn forecast_overrides(&self) -> Overrides {
        let mut o = Overrides::new("forecast");
        o.set("horizon", self.train.horizon.unwrap_or(48))
            .set_some("levels", self.levels.as_ref())
            .set_some("mode", self.mode)
            .set_some("samples", self.samples);
        o
    }
}

impl EvaluateArgs {
    /// The reading flags of the actuals and history, as overrides of `[input]` keys.
    pub fn input_overrides(&self) -> Overrides {
        let mut o = Overrides::new("input");
        o.set_some("layout", self.format)
            .set_some("id_col", self.id_col.as_ref())
            .set_some("time_col", self.time_col.as_ref())
            .set_some("duplicates", self.duplicates);
        if self.id_from_path {
            o.set("id_from_path", true);
        }
        if !self.target_cols.is_empty() {
            o.set("target_cols", &self.target_cols);
        }
        o
    }
}

impl PlotArgs {
    /// The fan chart's forecast settings (particle mode: the chart shows each particle's
    /// mean path).
    pub fn forecast_overrides(&self) -> Overrides {
        let mut o = Overrides::new("forecast");
        o.set_some("horizon", self.horizon)
            .set("mode", Mode::Particle);
        o
    }

    /// The anomaly view's scoring settings.
    pub fn score_overrides(&self) -> Overrides {
        let mut o = Overrides::new("score");
        o.set_some("threshold", self.threshold)
            .set_some("smooth", self.smooth);
        o
    }
}

impl IngestArgs {
    /// The window flags as overrides of [`WindowSpec`] keys.
    pub fn window_overrides(&self) -> Overrides {
        let mut o = Overrides::new("window");
        o.set_some("context", self.context)
            .set_some("horizon", self.horizon)
            .set_some("stride", self.stride)
            .set_some("short_series", self.short_series);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag of every command is unique and well formed (clap checks this only in debug
    /// builds, and the tests run in release).
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
