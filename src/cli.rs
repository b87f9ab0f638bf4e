//! Command-line types (clap) and the commands they run.

use clap::{Args, Parser, Subcommand, ValueEnum};
use particast::ingest::{
    IngestError, IngestOptions, InputFormat, Layout, SeriesStream, ShortSeries, Source, WindowSpec,
    WindowStream,
};
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
    /// Read, validate and window a dataset; print what was found.
    #[command(after_help = "Examples:
  particast ingest \"data/nab/*/*.csv\" --id-from-path --time-col timestamp --target-col value
  particast ingest train.parquet --lags 24,168 --context 168 --horizon 48
  particast ingest ../shared/data/m4-hourly/Hourly-train.csv --format wide --short-series pad")]
    Ingest(IngestArgs),
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
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShortArg {
    Error,
    Skip,
    Pad,
}

/// Input options shared by commands that read data.
#[derive(Args, Debug)]
pub struct InputArgs {
    /// A CSV or Parquet file, or a glob of them (quote it).
    pub input: String,
    /// Table layout.
    #[arg(long, value_enum, default_value = "long")]
    pub format: FormatArg,
    /// File format, when the extension does not tell.
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormatArg>,
    /// Series id column.
    #[arg(long, default_value = "unique_id")]
    pub id_col: String,
    /// Use each file's path (relative to the glob's fixed folder) as its series id.
    #[arg(long)]
    pub id_from_path: bool,
    /// Time column.
    #[arg(long, default_value = "ds")]
    pub time_col: String,
    /// Target column (repeat for multivariate series).
    #[arg(long = "target-col", default_value = "y")]
    pub target_cols: Vec<String>,
    /// Sort rows by time within each series instead of failing on unsorted input.
    #[arg(long)]
    pub sort: bool,
    /// Read each series' rows as consecutive steps even if their timestamps are irregular.
    #[arg(long)]
    pub sequence: bool,
    /// Frequency override (30min, 1h, 1d, 1mo, or an integer step).
    #[arg(long)]
    pub frequency: Option<String>,
    /// Target lags to add as features, comma separated (e.g. 24,168).
    #[arg(long, value_delimiter = ',')]
    pub lags: Vec<usize>,
}

impl InputArgs {
    fn options(&self) -> IngestOptions {
        IngestOptions {
            format: match self.input_format {
                None => InputFormat::Auto,
                Some(InputFormatArg::Csv) => InputFormat::Csv,
                Some(InputFormatArg::Parquet) => InputFormat::Parquet,
            },
            layout: match self.format {
                FormatArg::Long => Layout::Long,
                FormatArg::Wide => Layout::Wide,
            },
            id_col: self.id_col.clone(),
            id_from_path: self.id_from_path,
            time_col: self.time_col.clone(),
            target_cols: self.target_cols.clone(),
            sort: self.sort,
            irregular: if self.sequence {
                particast::ingest::Irregular::Sequence
            } else {
                particast::ingest::Irregular::Error
            },
            frequency: self.frequency.clone(),
            lags: self.lags.clone(),
            ..Default::default()
        }
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
    match cli.command {
        Command::Ingest(args) => ingest(args, cli.global.quiet),
    }
}

fn ingest(args: IngestArgs, quiet: bool) -> Result<(), Failure> {
    let _span = info_span!("ingest", input = %args.input.input).entered();
    let start = Instant::now();
    let opts = args.input.options();
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
    };
    if spec.stride == 0 || spec.is_empty() {
        return Err(Failure {
            headline: "--stride and --context + --horizon must be positive".into(),
            detail: None,
            code: 2,
        });
    }
    let mut stream = SeriesStream::open(Source::Path(args.input.input.clone()), &opts)?;
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
        "\nread       {} rows, {} series, {} observed values; {} gap steps filled, {} non-finite values masked, {} all-missing series dropped; {} bucket(s)",
        report.rows,
        report.series,
        report.observed,
        report.gaps_filled,
        report.non_finite,
        report.dropped_all_missing,
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
