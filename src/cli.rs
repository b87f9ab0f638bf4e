//! Command-line types (clap) and the commands they run.

use clap::{Args, Parser, Subcommand, ValueEnum};
use particast::ingest::{
    Duplicates, IngestError, IngestOptions, InputFormat, Layout, SeriesStream, ShortSeries,
    WindowSpec, WindowStream,
};
use particast::pipeline::sink::OutputFormat;
use std::time::Instant;
use tracing::info_span;

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

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CellArg {
    Gru,
    Tanh,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GateArg {
    Uniform,
    Bayes,
    FixedShare,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HeadArg {
    Gaussian,
    StudentT,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NonnegativeArg {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    Particle,
    Sample,
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
    pub cell: Option<CellArg>,
    /// Mixture gate [default: uniform].
    #[arg(long, value_enum)]
    pub gate: Option<GateArg>,
    /// Emission head [default: gaussian].
    #[arg(long, value_enum)]
    pub head: Option<HeadArg>,
    /// Seasons in steps, comma-separated (`24,168`), `none`, or `auto`: from the frequency,
    /// kept when the data show them [default: auto].
    #[arg(long, value_parser = parse_auto_list, value_name = "LIST|none|auto")]
    pub season: Option<AutoList>,
    /// Target lags in steps, comma-separated, `none`, or `auto`: 1 and the seasons
    /// [default: auto].
    #[arg(long, value_parser = parse_auto_list, value_name = "LIST|none|auto")]
    pub lags: Option<AutoList>,
    /// Transform of the values [default: auto: log when every training value is positive].
    #[arg(long, value_enum)]
    pub transform: Option<TransformArg>,
    /// What the network predicts: the level, the change from the previous step, or the change
    /// from one season ago [default: auto: seasonal when a season is kept, else change].
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// Scaling of each window [default: auto: seasonal-diff at the target's season].
    #[arg(long, value_enum)]
    pub scaling: Option<ScalingArg>,
    /// How training windows are spread over the series [default: auto: series, each equally
    /// often].
    #[arg(long, value_enum)]
    pub weighting: Option<WeightingArg>,
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

/// A list of steps, or `none`, or `auto` (`None`).
#[derive(Clone, Debug, PartialEq)]
pub struct AutoList(pub Option<Vec<usize>>);

/// Parses `auto`, `none` or `24,168`.
pub fn parse_auto_list(text: &str) -> Result<AutoList, String> {
    match text.trim() {
        "auto" => Ok(AutoList(None)),
        "none" | "" => Ok(AutoList(Some(Vec::new()))),
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
            .map(|v| AutoList(Some(v))),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TransformArg {
    Auto,
    None,
    Log,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TargetArg {
    Auto,
    Level,
    Change,
    Seasonal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScalingArg {
    Auto,
    MeanAbs,
    SeasonalDiff,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WeightingArg {
    Auto,
    Scale,
    Series,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Output file, or `-` for standard output; a FIFO or device is written through.
    #[arg(long, short)]
    pub output: std::path::PathBuf,
    /// Output format [default: by extension (.arrow, .arrows, .ipc: Arrow IPC stream), else
    /// Parquet, also on standard output].
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormatArg>,
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
    /// Anomaly score recipe: tail probability, short- vs long-term surprise (z-score), or the
    /// rank of the recent surprise among the long window's [default: tail].
    #[arg(long, value_enum)]
    pub method: Option<MethodArg>,
    /// Long window of the likelihood method [default: 1000].
    #[arg(long)]
    pub long_window: Option<usize>,
    /// Report only the onset of a run of high scores: 0 unless above every score of this many
    /// previous observations [default: 0, off].
    #[arg(long)]
    pub suppress: Option<usize>,
    /// Re-condition fresh particles on the last `context` observations, with their own scale,
    /// every this many steps (0: never) [default: 0].
    #[arg(long)]
    pub refresh: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    Tail,
    Likelihood,
    Rank,
}

#[derive(Args, Debug)]
pub struct ForecastArgs {
    #[command(flatten)]
    pub input: InputArgs,
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
    pub output_format: Option<OutputFormatArg>,
    /// Interval levels in percent.
    #[arg(long, value_delimiter = ',', default_value = "80,95")]
    pub levels: Vec<f64>,
    /// Sampled paths (calibrated intervals over the whole horizon; deterministic for a seed)
    /// or particle means (the exact mixture of each particle's mean path, faster; its
    /// intervals are too narrow over long horizons).
    #[arg(long, value_enum, default_value = "sample")]
    pub mode: ModeArg,
    /// Paths in sample mode.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Seed of sample mode.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Censor forecasts at zero: `auto` for series with no negative observation.
    #[arg(long, value_enum, default_value = "auto")]
    pub nonnegative: NonnegativeArg,
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
    /// Seasonality for MASE and MSIS.
    #[arg(long, default_value_t = 1)]
    pub season: usize,
    /// Table layout of actuals and history.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
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
    pub duplicates: Option<DuplicatesArg>,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Series to draw (default: the first).
    #[arg(long)]
    pub series: Option<String>,
    /// Fan chart file (.png or .svg): forecast from the end of the series.
    #[arg(long)]
    pub forecast: Option<std::path::PathBuf>,
    /// Steps ahead for the fan chart.
    #[arg(long, default_value_t = 48)]
    pub horizon: usize,
    /// History steps shown before the forecast.
    #[arg(long, default_value_t = 336)]
    pub history: usize,
    /// Anomaly view file (.png or .svg).
    #[arg(long)]
    pub anomaly: Option<std::path::PathBuf>,
    /// NAB label windows (combined_windows.json) to shade.
    #[arg(long)]
    pub labels: Option<std::path::PathBuf>,
    /// Flag threshold.
    #[arg(long, default_value_t = 0.999)]
    pub threshold: f64,
    /// Smoothing of the anomaly score.
    #[arg(long, default_value_t = 1)]
    pub smooth: usize,
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

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Long,
    Wide,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum InputFormatArg {
    Csv,
    Parquet,
    /// Arrow IPC (stream or file).
    Arrow,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputFormatArg {
    Parquet,
    /// Arrow IPC stream.
    Arrow,
}

impl OutputFormatArg {
    /// The library's format (`auto` when not given).
    pub fn format(arg: Option<Self>) -> OutputFormat {
        match arg {
            None => OutputFormat::Auto,
            Some(OutputFormatArg::Parquet) => OutputFormat::Parquet,
            Some(OutputFormatArg::Arrow) => OutputFormat::Arrow,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DuplicatesArg {
    /// Fail, naming the series, timestamp and row.
    Error,
    /// Keep the first row of each timestamp.
    First,
    /// Keep the last row of each timestamp.
    Last,
    /// Average the rows of each timestamp.
    Mean,
}

impl DuplicatesArg {
    /// The library's policy.
    pub fn policy(self) -> Duplicates {
        match self {
            DuplicatesArg::Error => Duplicates::Error,
            DuplicatesArg::First => Duplicates::First,
            DuplicatesArg::Last => Duplicates::Last,
            DuplicatesArg::Mean => Duplicates::Mean,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShortArg {
    Error,
    Skip,
    Pad,
}

/// Input options shared by commands that read data.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// A CSV, Parquet or Arrow IPC file, a glob of them (quote it), or `-` for standard input
    /// (CSV, Parquet or an Arrow IPC stream, told from its first bytes).
    #[arg(long = "input", short = 'i')]
    pub input: String,
    /// Table layout [default: long, or the model's].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// File format, when the extension does not tell.
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormatArg>,
    /// Series id column [default: unique_id].
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
    /// strftime format of a text time column (e.g. %d/%m/%Y, %Y-%m-%d %H:%M; %Y, %Y-%m and
    /// %YQ%q read years, months and quarters) [default: told from the values].
    #[arg(long)]
    pub time_format: Option<String>,
    /// Read an integer time column as a Unix epoch in these units instead of a step counter.
    #[arg(long, value_parser = ["s", "ms", "us", "ns"])]
    pub time_unit: Option<String>,
    /// Rows of a series with the same timestamp [default: error, or the model's].
    #[arg(long, value_enum)]
    pub duplicates: Option<DuplicatesArg>,
    /// Frequency override (30min, 1h, 1d, 1mo, or an integer step).
    #[arg(long)]
    pub frequency: Option<String>,
    /// Target lags to add as features, comma separated (e.g. 24,168).
    #[arg(long, value_delimiter = ',')]
    pub lags: Option<Vec<usize>>,
}

impl InputArgs {
    /// The reading options: `base` (defaults, or what a model was trained with) with the flags
    /// given on the command line on top.
    pub fn options(&self, base: IngestOptions) -> IngestOptions {
        let mut o = base;
        if let Some(f) = self.input_format {
            o.format = match f {
                InputFormatArg::Csv => InputFormat::Csv,
                InputFormatArg::Parquet => InputFormat::Parquet,
                InputFormatArg::Arrow => InputFormat::Arrow,
            };
        } else {
            o.format = InputFormat::Auto;
        }
        if let Some(f) = self.format {
            o.layout = match f {
                FormatArg::Long => Layout::Long,
                FormatArg::Wide => Layout::Wide,
            };
        }
        if let Some(c) = &self.id_col {
            o.id_col = c.clone();
        }
        o.id_from_path |= self.id_from_path;
        if let Some(c) = &self.time_col {
            o.time_col = c.clone();
        }
        if !self.target_cols.is_empty() {
            o.target_cols = self.target_cols.clone();
        }
        o.sort |= self.sort;
        if self.sequence {
            o.irregular = particast::ingest::Irregular::Sequence;
        }
        if let Some(d) = self.duplicates {
            o.duplicates = d.policy();
        }
        if self.no_covariates {
            o.covariate_cols = Some(Vec::new());
        } else if !self.covariate_cols.is_empty() {
            o.covariate_cols = Some(self.covariate_cols.clone());
        }
        if let Some(f) = &self.time_format {
            o.time_format = Some(f.clone());
        }
        if let Some(u) = &self.time_unit {
            o.time_unit = Some(u.clone());
        }
        if let Some(f) = &self.frequency {
            o.frequency = Some(f.clone());
        }
        if let Some(l) = &self.lags {
            o.lags = l.clone();
        }
        o
    }
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Context steps of a training window.
    #[arg(long, default_value_t = 168)]
    pub context: usize,
    /// Horizon steps of a training window.
    #[arg(long, default_value_t = 48)]
    pub horizon: usize,
    /// Steps between window starts.
    #[arg(long, default_value_t = 24)]
    pub stride: usize,
    /// Series shorter than a window.
    #[arg(long, value_enum, default_value = "error")]
    pub short_series: ShortArg,
    /// Series to list in the summary.
    #[arg(long, default_value_t = 10)]
    pub show: usize,
}

/// A failure: a one-line headline, optional detail, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub headline: String,
    pub detail: Option<String>,
    pub code: u8,
}

impl Failure {
    /// Bad usage or bad input (exit code 2), with a one-line headline.
    pub fn input(headline: impl Into<String>) -> Self {
        Failure {
            headline: headline.into(),
            detail: None,
            code: 2,
        }
    }

    /// The reader of standard output (or of a pipe written through) closed it before the
    /// output was complete: not particast's failure. Exit code 0 and no message, as ripgrep
    /// and other filters do; the reader got a prefix of the output.
    pub fn reader_gone() -> Self {
        Failure {
            headline: String::new(),
            detail: None,
            code: 0,
        }
    }
}

impl From<particast::Error> for Failure {
    fn from(e: particast::Error) -> Self {
        if let particast::Error::Pipeline(p) = &e {
            if particast::pipeline::sink::is_broken_pipe(p) {
                return Failure::reader_gone();
            }
        }
        Failure {
            code: if e.is_bad_input() { 2 } else { 1 },
            headline: e.to_string(),
            detail: None,
        }
    }
}

impl From<particast::pipeline::PipelineError> for Failure {
    fn from(e: particast::pipeline::PipelineError) -> Self {
        particast::Error::from(e).into()
    }
}

impl From<IngestError> for Failure {
    fn from(e: IngestError) -> Self {
        let code = match e {
            IngestError::Io { .. } => 1,
            _ => 2,
        };
        Failure {
            headline: e.to_string(),
            detail: None,
            code,
        }
    }
}

/// Sets up `tracing` on stderr: warnings by default, more with -v, none with --quiet.
pub fn init_logging(g: &Global) {
    let default = if g.quiet {
        "error"
    } else {
        match g.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Ingest(args) => ingest(args, quiet),
        Command::Run(args) => crate::commands::run(args, quiet),
        Command::Train(args) => crate::commands::train(args, quiet),
        Command::Score(args) => crate::commands::score(args, quiet),
        Command::Forecast(args) => crate::commands::forecast(args, quiet),
        Command::Evaluate(args) => crate::commands::evaluate(args, quiet),
        Command::Inspect(args) => crate::commands::inspect(args),
        Command::Plot(args) => crate::commands::plot(args, quiet),
        Command::Nab(args) => crate::commands::nab(args),
    }
}

fn ingest(args: IngestArgs, quiet: bool) -> Result<(), Failure> {
    let _span = info_span!("ingest", input = %args.input.input).entered();
    let start = Instant::now();
    let opts = args.input.options(IngestOptions::default());
    let spec = WindowSpec {
        context: args.context,
        horizon: args.horizon,
        stride: args.stride,
        batch_size: 1024,
        short_series: match args.short_series {
            ShortArg::Error => ShortSeries::Error,
            ShortArg::Skip => ShortSeries::Skip,
            ShortArg::Pad => ShortSeries::Pad,
        },
        ..Default::default()
    };
    if spec.stride == 0 || spec.is_empty() {
        return Err(Failure {
            headline: "--stride and --context + --horizon must be positive".into(),
            detail: None,
            code: 2,
        });
    }
    let input = crate::commands::open_input(&args.input)?;
    let mut stream = SeriesStream::open(input.source(), &opts)?;
    let schema = stream.schema().clone();
    let shown = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let keep = std::rc::Rc::clone(&shown);
    let limit = args.show;
    let series = stream.by_ref().inspect(move |s| {
        if let Ok(s) = s {
            let mut k = keep.borrow_mut();
            if k.len() < limit {
                k.push((
                    s.id.clone(),
                    s.len(),
                    s.stats.observed.iter().sum::<usize>(),
                    s.stats.gaps_filled,
                    s.stats.mean.first().copied().unwrap_or(0.0),
                    s.stats.mean_abs.first().copied().unwrap_or(0.0),
                    s.axis.kind.render(s.stats.first_ds),
                    s.axis.kind.render(s.stats.last_ds),
                ));
            }
        }
    });
    let mut windows = 0usize;
    for batch in WindowStream::new(
        series,
        spec.clone(),
        schema.features.clone(),
        &args.input.input,
    ) {
        windows += batch?.num_rows();
    }
    let report = stream.report().clone();
    if quiet {
        return Ok(());
    }
    println!("input      {}", args.input.input);
    println!(
        "schema     id={} time={} targets={} covariates=[{}] time kind={:?} frequency={}",
        schema.id_col,
        schema.time_col,
        schema.target_cols.join(","),
        schema.covariate_cols.join(","),
        schema.time_kind,
        schema.frequency_text()
    );
    println!(
        "features   {} per step: [{}], lags {:?}",
        schema.features.n_features(),
        schema
            .features
            .feature_names(&schema.covariate_cols)
            .join(", "),
        schema.features.lags
    );
    println!(
        "\n{:<50} {:>8} {:>9} {:>6} {:>12} {:>12}  {:<20} {:<20}",
        "series", "steps", "observed", "gaps", "mean", "mean |y|", "first", "last"
    );
    for (id, len, obs, gaps, mean, mean_abs, first, last) in shown.borrow().iter() {
        println!(
            "{:<50} {:>8} {:>9} {:>6} {:>12.4} {:>12.4}  {:<20} {:<20}",
            id, len, obs, gaps, mean, mean_abs, first, last
        );
    }
    println!(
        "\nread       {} rows, {} series, {} observed values; {} gap steps filled, {} non-finite values masked, {} all-missing series dropped, {} duplicate rows merged; {} bucket(s)",
        report.rows,
        report.series,
        report.observed,
        report.gaps_filled,
        report.non_finite,
        report.dropped_all_missing,
        report.duplicates_merged,
        report.buckets
    );
    println!(
        "windows    {} of {} steps (context {}, horizon {}, stride {})",
        windows,
        spec.len(),
        spec.context,
        spec.horizon,
        spec.stride
    );
    println!("time       {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}
