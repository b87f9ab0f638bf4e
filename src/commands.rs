//! The commands behind the CLI: each reads its arguments, calls the library, prints a summary.

use indicatif::{ProgressBar, ProgressStyle};
use particast::ingest::ipc::{read_table, spool_stdin, Spooled};
use particast::ingest::polars::prelude::*;
use particast::ingest::{Dataset, IngestOptions, Layout, Source, Weighting};
use particast::kernels::{Cell, Gate, Head};
use particast::pipeline::evaluate::{actuals_for, eval_series, history_of};
use particast::pipeline::metrics::{evaluate as compute_metrics, Metrics};
use particast::pipeline::mixture::Component;
use particast::pipeline::output::{forecast_batch, scores_batch, to_dataframe};
use particast::pipeline::recipe::RecipeReport;
use particast::pipeline::sink::{is_stdout, write_frame, Protected};
use particast::pipeline::{
    check_state, forecast_ensemble, forecast_series, load_states, save_states, score_continued,
    score_series, train as train_model, EpochReport, ForecastConfig, Mode, Nonnegative, Reporter,
    Scaling, ScoreConfig, SeriesForecast, StepForecast, Target, TrainConfig, TrainSummary,
    TrainedModel, Transform,
};
use particast::run::run_pipeline;
use particast::spec::PipelineSpec;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::cli::*;

/// Set when a command writes its data to standard output: its summary lines then go to
/// standard error, so the data stream stays clean.
static DATA_ON_STDOUT: AtomicBool = AtomicBool::new(false);

/// Prints one summary line: on standard output, or on standard error when standard output
/// carries data. A closed stream is not an error here (the reader has gone).
pub(crate) fn say_line(line: String) {
    if DATA_ON_STDOUT.load(Ordering::Relaxed) {
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}

macro_rules! say {
    ($($t:tt)*) => { say_line(format!($($t)*)) };
}

/// Marks standard output as carrying data when `path` is `-`.
fn note_output(path: &Path) {
    if is_stdout(path) {
        DATA_ON_STDOUT.store(true, Ordering::Relaxed);
    }
}

/// A data input: a path or glob, or standard input copied to a temporary file (kept as long
/// as this value lives, so the model's reading options may read it twice).
pub(crate) struct InputData {
    path: String,
    spooled: Option<Spooled>,
}

impl InputData {
    /// The source to read.
    pub(crate) fn source(&self) -> Source {
        match &self.spooled {
            Some(s) => s.source(),
            None => Source::Path(self.path.clone()),
        }
    }
}

/// Opens `--input`: `-` copies standard input (refused when it is a terminal).
pub(crate) fn open_input(args: &InputArgs) -> Result<InputData, Failure> {
    open_path(&args.input, args.options(IngestOptions::default()).format)
}

fn open_path(path: &str, format: particast::ingest::InputFormat) -> Result<InputData, Failure> {
    // A FIFO or device (`--input <(zcat data.csv.gz)` gives `/dev/fd/63`) is copied like
    // standard input: it can be read only once and has no size.
    let special = path != "-" && std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if special {
        let mut f =
            std::fs::File::open(path).map_err(|e| Failure::input(format!("{path}: {e}")))?;
        return Ok(InputData {
            path: path.to_string(),
            spooled: Some(particast::ingest::ipc::spool(&mut f, path, format, None)?),
        });
    }
    if path != "-" {
        return Ok(InputData {
            path: path.to_string(),
            spooled: None,
        });
    }
    if std::io::stdin().is_terminal() {
        return Err(Failure::input(
            "--input - reads standard input, which is a terminal: pipe the data in (`cat data.csv | particast ...`)",
        ));
    }
    Ok(InputData {
        path: path.to_string(),
        spooled: Some(spool_stdin(format, None)?),
    })
}

/// Draws a progress bar on a terminal and prints one line per epoch either way.
struct BarReporter {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl BarReporter {
    fn new(quiet: bool) -> Self {
        BarReporter { bar: None, quiet }
    }
    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Reporter for BarReporter {
    fn on_recipe(&mut self, report: &RecipeReport) {
        for d in &report.decisions {
            self.line(format!(
                "recipe     {:<10} {}  ({}{})",
                d.knob,
                d.value,
                if d.auto { "auto: " } else { "" },
                d.why
            ));
        }
    }
    fn on_candidate(&mut self, k: usize, n: usize, name: &str) {
        self.line(format!("candidate  {k} of {n}: {name}"));
    }
    fn on_selected(&mut self, report: &RecipeReport) {
        for c in &report.candidates {
            self.line(format!(
                "candidate  {:<18} held-out MASE {}{}",
                c.name,
                c.holdout_mase
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_else(|| "-".into()),
                if c.chosen { "  kept" } else { "" }
            ));
        }
    }
    fn on_start(&mut self, epochs: usize, batches_per_epoch: usize, first_epoch: usize) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let total = (epochs + 1).saturating_sub(first_epoch) * batches_per_epoch;
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} batches ({per_sec}) {msg}",
        ) {
            bar.set_style(style);
        }
        self.bar = Some(bar);
    }
    fn on_batch(&mut self, epoch: usize, _batch: usize, loss: f64) {
        if let Some(b) = &self.bar {
            b.inc(1);
            b.set_message(format!("epoch {epoch} train NLL {loss:.4}"));
        }
    }
    fn on_epoch(&mut self, r: &EpochReport) {
        let val = r
            .val_nll
            .map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "-".into());
        self.line(format!(
            "epoch {:>3}  train NLL {:.4}  val NLL {}  lr {:.2e}  {:.1} batches/s{}",
            r.epoch,
            r.train_nll,
            val,
            r.lr,
            r.batches_per_second,
            if r.improved { "  *" } else { "" }
        ));
    }
}

impl Drop for BarReporter {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn print_training(s: &TrainSummary) {
    say!(
        "trained    {} parameters, {} epochs (best {}), best validation NLL {} per observation ({} in original units), {:.1} s",
        s.parameters,
        s.epochs,
        s.best_epoch,
        s.best_val_nll.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
        s.best_val_nll_original.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
        s.wall_seconds
    );
    say!(
        "particles  effective number {:.2}, mean pairwise state distance {:.3}{}",
        s.effective_particles,
        s.particle_distance,
        if s.resumed {
            " (resumed from a checkpoint)"
        } else {
            ""
        }
    );
}

fn print_metrics(m: &Metrics) {
    say!("\n{:<22} {:>12}", "metric", "value");
    let rows = [
        ("series", m.series as f64),
        ("observations", m.observations as f64),
        ("sMAPE", m.smape),
        ("MAPE", m.mape),
        ("MASE", m.mase),
        ("MSIS (95%)", m.msis),
        ("ND", m.nd),
        ("NRMSE", m.nrmse),
        ("wQL (0.1..0.9)", m.wql),
        ("CRPS", m.crps),
        ("weighted CRPS", m.wcrps),
        ("mean NLL", m.nll),
    ];
    for (name, v) in rows {
        say!("{name:<22} {v:>12.4}");
    }
    for (level, c) in &m.coverage {
        say!("{:<22} {:>12.4}", format!("coverage {level}%"), c);
    }
}

pub fn run(args: RunArgs, quiet: bool) -> Result<(), Failure> {
    let start = Instant::now();
    let spec = PipelineSpec::load(&args.pipeline)?;
    let mut reporter = BarReporter::new(quiet);
    let report = run_pipeline(&spec, &mut reporter)?;
    drop(reporter);
    if quiet {
        return Ok(());
    }
    if let Some(t) = &report.training {
        print_training(t);
    }
    if let Some((rows, flagged)) = report.scored {
        say!("scored     {rows} observations, {flagged} flagged");
    }
    if let Some(n) = report.forecast_series {
        say!("forecast   {n} series");
    }
    if let Some(m) = &report.metrics {
        print_metrics(m);
    }
    say!("\noutputs");
    for (what, path) in &report.outputs {
        say!("  {what:<14} {}", path.display());
    }
    say!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn read(input: &InputArgs, base: IngestOptions) -> Result<(Dataset, IngestOptions), Failure> {
    let opts = input.options(base);
    let data = Dataset::read(open_input(input)?.source(), &opts)?;
    Ok((data, opts))
}

/// Reads data for a trained model: its reading options, with the command line's on top.
fn read_for_model(input: &InputArgs, model: &TrainedModel) -> Result<Dataset, Failure> {
    let data = open_input(input)?;
    Ok(model.read_data(|| data.source(), |base| input.options(base))?)
}

pub fn train(args: TrainArgs, quiet: bool) -> Result<(), Failure> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            toml::from_str::<TrainConfig>(&text).map_err(|e| Failure {
                headline: format!(
                    "{}: {}",
                    path.display(),
                    e.to_string().lines().next().unwrap_or("bad TOML")
                ),
                detail: Some(e.to_string()),
                code: 2,
            })?
        }
        None => TrainConfig::default(),
    };
    if let Some(v) = args.particles {
        cfg.particles = v;
    }
    if let Some(v) = args.hidden {
        cfg.hidden = Some(v);
    }
    if let Some(v) = args.cell {
        cfg.cell = match v {
            CellArg::Gru => Cell::Gru,
            CellArg::Tanh => Cell::Tanh,
        };
    }
    if let Some(v) = args.gate {
        cfg.gate = match v {
            GateArg::Uniform => Gate::Uniform,
            GateArg::Bayes => Gate::Bayes,
            GateArg::FixedShare => Gate::FixedShare,
        };
    }
    if let Some(v) = args.head {
        cfg.head = match v {
            HeadArg::Gaussian => Head::Gaussian,
            HeadArg::StudentT => Head::StudentT,
        };
    }
    if let Some(AutoList(v)) = args.season {
        cfg.seasons = v;
    }
    if let Some(AutoList(v)) = args.lags {
        cfg.lags = v;
    }
    if let Some(v) = args.transform {
        cfg.transform = match v {
            TransformArg::Auto => None,
            TransformArg::None => Some(Transform::None),
            TransformArg::Log => Some(Transform::Log { offset: 0.0 }),
        };
    }
    if let Some(v) = args.target {
        cfg.target = match v {
            TargetArg::Auto => None,
            TargetArg::Level => Some(Target::Level),
            TargetArg::Change => Some(Target::SeasonalChange { season: 1 }),
            // Season 0: the recipe's (or --season's) first season.
            TargetArg::Seasonal => Some(Target::SeasonalChange { season: 0 }),
        };
    }
    if let Some(v) = args.scaling {
        cfg.scaling = match v {
            ScalingArg::Auto => None,
            ScalingArg::MeanAbs => Some(Scaling::default()),
            ScalingArg::SeasonalDiff => Some(Scaling::SeasonalDiff {
                season: 0,
                floor: 1e-4,
            }),
        };
    }
    if let Some(v) = args.weighting {
        cfg.weighting = match v {
            WeightingArg::Auto => None,
            WeightingArg::Scale => Some(Weighting::Scale),
            WeightingArg::Series => Some(Weighting::Series),
        };
    }
    if let Some(v) = args.context {
        cfg.context = Some(v);
    }
    if let Some(v) = args.horizon {
        cfg.horizon = v;
    }
    if let Some(v) = args.epochs {
        cfg.epochs = Some(v);
    }
    if let Some(v) = args.batches_per_epoch {
        cfg.batches_per_epoch = Some(v);
    }
    if let Some(v) = args.batch_size {
        cfg.batch_size = Some(v);
    }
    if let Some(v) = args.lr {
        cfg.lr = v;
    }
    if args.no_select {
        cfg.select = false;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    let mut protected = Protected::new();
    protected.input(&args.input.input);
    if let Some(c) = &args.config {
        protected.file(c);
    }
    protected.model_outputs(&args.model)?;
    let (data, opts) = read(&args.input, IngestOptions::default())?;
    let mut reporter = BarReporter::new(quiet);
    let model = train_model(&data, &opts, &cfg, &args.model, args.resume, &mut reporter)?;
    drop(reporter);
    if !quiet {
        if let Some(s) = &model.meta.training {
            print_training(s);
        }
        say!("model      {}", args.model.display());
    }
    Ok(())
}

pub fn score(args: ScoreArgs, quiet: bool) -> Result<(), Failure> {
    // The state file may be updated in place (`--state-in s --state-out s`, read whole before
    // anything is written); every other input is protected from every output.
    let mut protected = Protected::new();
    protected.input(&args.input.input).model_dir(&args.model);
    if let Some(p) = &args.state_out {
        protected.claim(p)?;
    }
    if let Some(p) = &args.state_in {
        protected.file(p);
    }
    protected.claim(&args.output)?;
    note_output(&args.output);
    let model = TrainedModel::load(&args.model)?;
    let data = read_for_model(&args.input, &model)?;
    model.check_schema(&data.schema)?;
    let mut cfg = ScoreConfig::default();
    if let Some(t) = args.threshold {
        cfg.threshold = t;
    }
    if let Some(s) = args.smooth {
        cfg.smooth = s;
    }
    if let Some(m) = args.method {
        cfg.method = match m {
            MethodArg::Tail => particast::pipeline::AnomalyMethod::Tail,
            MethodArg::Likelihood => particast::pipeline::AnomalyMethod::Likelihood,
            MethodArg::Rank => particast::pipeline::AnomalyMethod::Rank,
        };
    }
    if let Some(w) = args.long_window {
        cfg.long_window = w;
    }
    if let Some(w) = args.suppress {
        cfg.suppress = w;
    }
    if let Some(r) = args.refresh {
        cfg.refresh = r;
    }
    let mut states: HashMap<String, particast::pipeline::SeriesState> = match &args.state_in {
        Some(p) => load_states(p)?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect(),
        None => HashMap::new(),
    };
    for s in states.values() {
        check_state(&model, s)?;
    }
    let mut scores = Vec::new();
    let mut ends = Vec::new();
    // Series with a saved state continue it; the others start fresh (in parallel).
    let (cont, fresh): (Vec<_>, Vec<_>) =
        data.series.iter().partition(|s| states.contains_key(&s.id));
    for s in cont {
        let mut st = states.remove(&s.id).ok_or_else(|| Failure {
            headline: format!("no state for {}", s.id),
            detail: None,
            code: 1,
        })?;
        scores.push(score_continued(&model, &mut st, s, &cfg)?);
        ends.push(st);
    }
    let fresh: Vec<_> = fresh.into_iter().cloned().collect();
    for (sc, st) in score_series(&model, &fresh, &cfg)? {
        scores.push(sc);
        ends.push(st);
    }
    // States of series not seen this time are kept.
    ends.extend(states.into_values());
    let batch = scores_batch(&scores, &data.schema)?;
    let mut df = to_dataframe(&batch, &data.schema.time_kind)?;
    write_frame(
        &mut df,
        &args.output,
        OutputFormatArg::format(args.output_format),
    )?;
    if let Some(p) = &args.state_out {
        save_states(&ends, p)?;
    }
    if !quiet {
        let flagged = scores
            .iter()
            .flat_map(|s| s.flag.iter().zip(&s.present))
            .filter(|(f, p)| **p && **f == Some(true))
            .count();
        say!(
            "scored     {} observations of {} series, {} flagged (threshold {})",
            df.height(),
            scores.len(),
            flagged,
            cfg.threshold
        );
        say!("output     {}", shown(&args.output));
    }
    Ok(())
}

pub fn forecast(args: ForecastArgs, quiet: bool) -> Result<(), Failure> {
    let mut protected = Protected::new();
    protected.input(&args.input.input);
    for m in &args.model {
        protected.model_dir(m);
    }
    protected.claim(&args.output)?;
    note_output(&args.output);
    let models = args
        .model
        .iter()
        .map(|m| TrainedModel::load(m))
        .collect::<Result<Vec<_>, _>>()?;
    // The first model decides how the input is read; every model must fit it.
    let model = &models[0];
    let data = read_for_model(&args.input, model)?;
    for m in &models {
        m.check_schema(&data.schema)?;
    }
    let cfg = ForecastConfig {
        horizon: args.horizon,
        levels: args.levels.clone(),
        mode: match args.mode {
            ModeArg::Particle => Mode::Particle,
            ModeArg::Sample => Mode::Sample,
        },
        samples: args.samples,
        seed: args.seed,
        nonnegative: match args.nonnegative {
            NonnegativeArg::Auto => Nonnegative::Auto,
            NonnegativeArg::Always => Nonnegative::Always,
            NonnegativeArg::Never => Nonnegative::Never,
        },
    };
    let forecasts = forecast_ensemble(&models, &data.series, &cfg)?;
    let batch = forecast_batch(
        &forecasts,
        &cfg.levels,
        cfg.mode,
        models.iter().map(|m| m.model.config.particles).sum(),
        models.iter().any(|m| m.model.config.head == Head::StudentT),
    )?;
    let mut df = to_dataframe(&batch, &data.schema.time_kind)?;
    write_frame(
        &mut df,
        &args.output,
        OutputFormatArg::format(args.output_format),
    )?;
    if !quiet {
        say!(
            "forecast   {} series x {} steps ({:?} mode{})",
            forecasts.len(),
            cfg.horizon,
            cfg.mode,
            if models.len() > 1 {
                format!(", ensemble of {} models", models.len())
            } else {
                String::new()
            }
        );
        say!("output     {}", shown(&args.output));
    }
    Ok(())
}

/// An input path as shown in messages.
fn shown_input(path: &Path) -> String {
    if path.as_os_str() == "-" {
        particast::ingest::ipc::STDIN_NAME.into()
    } else {
        path.display().to_string()
    }
}

/// An output path as shown in summaries.
fn shown(path: &Path) -> String {
    if is_stdout(path) {
        "standard output".into()
    } else {
        path.display().to_string()
    }
}

fn polars_fail(path: &Path, e: PolarsError) -> Failure {
    Failure::input(format!(
        "{}: {}",
        path.display(),
        e.to_string().lines().next().unwrap_or("")
    ))
}

/// Reads a whole Parquet or Arrow IPC file (told from its first bytes), or standard input for
/// `-`.
fn read_frame(path: &Path) -> Result<DataFrame, Failure> {
    let input = open_path(
        &path.to_string_lossy(),
        particast::ingest::InputFormat::Auto,
    )?;
    let (file, name) = match &input.spooled {
        Some(s) if s.format() == particast::ingest::InputFormat::Csv => {
            return Err(Failure::input(format!(
                "{}: not a forecast file (expected Parquet or an Arrow IPC stream)",
                shown_input(path)
            )))
        }
        Some(s) => (s.path().to_path_buf(), shown_input(path)),
        None => (path.to_path_buf(), path.display().to_string()),
    };
    Ok(read_table(&file, &name)?)
}

/// Reads a forecast file back into per-series forecasts (mixtures when the columns are there).
fn read_forecast(path: &Path) -> Result<(Vec<SeriesForecast>, Vec<f64>), Failure> {
    let df = read_frame(path)?;
    let shown = shown_input(path);
    let path = Path::new(&shown);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let need = |c: &str| -> Result<Column, Failure> {
        df.column(c).cloned().map_err(|_| {
            Failure::input(format!(
                "{}: missing column `{c}` (not a particast forecast file?)",
                path.display()
            ))
        })
    };
    let f64col = |c: &str| -> Result<Vec<f64>, Failure> {
        let col = need(c)?
            .cast(&DataType::Float64)
            .map_err(|e| polars_fail(path, e))?;
        Ok(col
            .f64()
            .map_err(|e| polars_fail(path, e))?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let ids: Vec<String> = need("unique_id")?
        .cast(&DataType::String)
        .map_err(|e| polars_fail(path, e))?
        .str()
        .map_err(|e| polars_fail(path, e))?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect();
    let ds: Vec<i64> = need("ds")?
        .cast(&DataType::Int64)
        .map_err(|e| polars_fail(path, e))?
        .i64()
        .map_err(|e| polars_fail(path, e))?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let mean = f64col("particast")?;
    let median = f64col("particast-median")?;
    let mut levels: Vec<f64> = names
        .iter()
        .filter_map(|n| n.strip_prefix("particast-lo-").and_then(|l| l.parse().ok()))
        .collect();
    levels.sort_by(|a, b| a.total_cmp(b));
    let mut bounds = Vec::new();
    for l in &levels {
        let name = if l.fract() == 0.0 {
            format!("{}", *l as i64)
        } else {
            format!("{l}")
        };
        bounds.push((
            f64col(&format!("particast-lo-{name}"))?,
            f64col(&format!("particast-hi-{name}"))?,
        ));
    }
    let particles = (0..)
        .take_while(|k| names.iter().any(|n| n == &format!("particast-weight-{k}")))
        .count();
    let mut comps = Vec::new();
    for k in 0..particles {
        let nu = if names.iter().any(|n| n == &format!("particast-df-{k}")) {
            f64col(&format!("particast-df-{k}"))?
        } else {
            vec![f64::INFINITY; df.height()]
        };
        comps.push((
            f64col(&format!("particast-weight-{k}"))?,
            f64col(&format!("particast-mu-{k}"))?,
            f64col(&format!("particast-std-{k}"))?,
            nu,
        ));
    }
    let mut out: Vec<SeriesForecast> = Vec::new();
    for r in 0..df.height() {
        if out.last().map(|f| f.id != ids[r]).unwrap_or(true) {
            out.push(SeriesForecast {
                id: ids[r].clone(),
                steps: Vec::new(),
            });
        }
        let mixture = comps
            .iter()
            .map(|(w, m, s, nu)| Component {
                weight: w[r],
                mu: m[r],
                sigma: s[r],
                nu: nu[r],
            })
            .collect();
        if let Some(f) = out.last_mut() {
            f.steps.push(StepForecast {
                ds: ds[r],
                mean: mean[r],
                median: median[r],
                intervals: bounds.iter().map(|(lo, hi)| (lo[r], hi[r])).collect(),
                mixture,
                samples: Vec::new(),
            });
        }
    }
    Ok((out, levels))
}

pub fn evaluate(args: EvaluateArgs, quiet: bool) -> Result<(), Failure> {
    let stdin_users = [
        args.forecast.as_os_str() == "-",
        args.actuals == "-",
        args.history.as_deref() == Some("-"),
    ];
    if stdin_users.iter().filter(|u| **u).count() > 1 {
        return Err(Failure::input(
            "only one of --forecast, --actuals and --history can read standard input (-)",
        ));
    }
    let (forecasts, levels) = read_forecast(&args.forecast)?;
    let mut opts = IngestOptions::default();
    if let Some(f) = args.format {
        opts.layout = match f {
            FormatArg::Long => Layout::Long,
            FormatArg::Wide => Layout::Wide,
        };
    }
    if let Some(c) = &args.id_col {
        opts.id_col = c.clone();
    }
    opts.id_from_path = args.id_from_path;
    if let Some(c) = &args.time_col {
        opts.time_col = c.clone();
    }
    if !args.target_cols.is_empty() {
        opts.target_cols = args.target_cols.clone();
    }
    if let Some(d) = args.duplicates {
        opts.duplicates = d.policy();
    }
    let actuals = Dataset::read(open_path(&args.actuals, opts.format)?.source(), &opts)?;
    let history = match &args.history {
        Some(h) => Some(Dataset::read(open_path(h, opts.format)?.source(), &opts)?),
        None => None,
    };
    let positional = opts.layout == Layout::Wide;
    let mut evals = Vec::new();
    for f in &forecasts {
        let Some(a) = actuals.get(&f.id) else {
            continue;
        };
        let actual = actuals_for(f, a, positional);
        let hist = history
            .as_ref()
            .and_then(|h| h.get(&f.id))
            .map(history_of)
            .unwrap_or_default();
        evals.push(eval_series(f, &actual, hist, &levels));
    }
    if evals.is_empty() {
        return Err(Failure {
            headline: format!("no forecast series found in {}", args.actuals),
            detail: Some(
                "the unique_id values of the forecast and the actuals do not overlap".into(),
            ),
            code: 2,
        });
    }
    let m = compute_metrics(&evals, args.season);
    if args.json {
        say!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
    } else if !quiet {
        print_metrics(&m);
    }
    Ok(())
}

/// Words for the model's settings, as a user types them.
mod words {
    use particast::ingest::{time::TimeUnit, TimeKind};
    use particast::kernels::{Cell, Gate, Head};
    use particast::pipeline::{LagInputs, Scaling, Target, Transform};

    pub fn cell(c: Cell) -> &'static str {
        match c {
            Cell::Gru => "gru",
            Cell::Tanh => "tanh",
        }
    }
    pub fn head(h: Head) -> &'static str {
        match h {
            Head::Gaussian => "gaussian",
            Head::StudentT => "student-t",
        }
    }
    pub fn gate(g: Gate) -> &'static str {
        match g {
            Gate::Uniform => "uniform",
            Gate::Bayes => "bayes",
            Gate::FixedShare => "fixed-share",
        }
    }
    pub fn time(k: &TimeKind) -> String {
        match k {
            TimeKind::Date => "dates".into(),
            TimeKind::Integer => "integer steps".into(),
            TimeKind::Datetime { unit, tz } => format!(
                "datetimes in {}{}",
                match unit {
                    TimeUnit::Ns => "nanoseconds",
                    TimeUnit::Us => "microseconds",
                    TimeUnit::Ms => "milliseconds",
                },
                tz.as_ref()
                    .map(|t| format!(", time zone {t}"))
                    .unwrap_or_default()
            ),
        }
    }
    pub fn scaling(s: &Scaling) -> String {
        s.to_string()
    }
    pub fn transform(t: &Transform) -> String {
        t.to_string()
    }
    pub fn target(t: &Target) -> String {
        t.to_string()
    }
    pub fn lag_inputs(l: &LagInputs) -> &'static str {
        match l {
            LagInputs::Level => "as levels",
            LagInputs::SeasonalChange { .. } => "as seasonal changes and levels",
        }
    }
    /// The settings as TOML values of a `[train]` section.
    pub fn toml_value<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|j| match j {
                serde_json::Value::Object(map) => Some(
                    map.iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                _ => None,
            })
            .map(|inner| format!("{{ {inner} }}"))
            .unwrap_or_default()
    }
}

pub fn inspect(args: InspectArgs) -> Result<(), Failure> {
    let m = TrainedModel::load(&args.model)?;
    let c = &m.model.config;
    if args.json {
        let mut value = serde_json::to_value(&m.meta).map_err(|e| Failure {
            headline: format!("{}: {e}", args.model.display()),
            detail: None,
            code: 1,
        })?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("parameters".into(), m.model.params.len().into());
        }
        say!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    let d = &m.meta.data;
    let inputs = &m.meta.inputs;
    say!("model       {}", args.model.display());
    say!(
        "format      version {}, written by particast {}",
        m.meta.format_version,
        m.meta.particast_version
    );
    say!(
        "network     {} cell, hidden size {}, {} particles, embedding {}, {} head, {} gate{}; {} inputs per step, {} target(s), {} parameters",
        words::cell(c.cell),
        c.hidden,
        c.particles,
        c.embedding,
        words::head(c.head),
        words::gate(c.gate),
        if c.noise { ", transition noise" } else { "" },
        c.inputs,
        c.targets,
        m.model.params.len()
    );
    if c.gate == Gate::FixedShare {
        say!("share rate  {:.4}", m.model.share_rate());
    }
    say!(
        "data        series id `{}`, time `{}` ({}), target(s) {}, covariates {}, frequency {}",
        d.id_col,
        d.time_col,
        words::time(&d.time_kind),
        d.target_cols.join(", "),
        if d.covariate_cols.is_empty() {
            "none".to_string()
        } else {
            d.covariate_cols.join(", ")
        },
        d.frequency_text()
    );
    let lags = &inputs.features.lags;
    say!(
        "inputs      lags {} {}; calendar features {}",
        if lags.is_empty() {
            "none".to_string()
        } else {
            lags.iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
        words::lag_inputs(&inputs.lag_inputs),
        if inputs.features.calendar.is_empty() {
            "none".to_string()
        } else {
            inputs
                .features
                .calendar
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    say!(
        "recipe      transform {}; predicts {}; scaled by the {}; context {}, horizon {}",
        words::transform(&inputs.transform),
        words::target(&inputs.target),
        words::scaling(&inputs.scaling),
        m.meta.context,
        m.meta.horizon
    );
    let mut flags = format!(
        "particast train --cell {} --head {} --gate {} --hidden {} --particles {} --context {} --horizon {}",
        words::cell(c.cell),
        words::head(c.head),
        words::gate(c.gate),
        c.hidden,
        c.particles,
        m.meta.context,
        m.meta.horizon
    );
    // The lags as read (the network's lag 1 is added by the model itself).
    let read_lags = &m.meta.ingest.lags;
    if !read_lags.is_empty() {
        flags += &format!(
            " --lags {}",
            read_lags
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    say!("as flags    {flags}");
    say!(
        "[train]     transform = {}, target = {}, scaling = {}, embedding = {}",
        words::toml_value(&inputs.transform),
        words::toml_value(&inputs.target),
        words::toml_value(&inputs.scaling),
        c.embedding
    );
    if let Some(t) = &m.meta.training {
        print_training(t);
    }
    Ok(())
}

pub fn plot(args: PlotArgs, quiet: bool) -> Result<(), Failure> {
    if args.forecast.is_none() && args.anomaly.is_none() {
        return Err(Failure::input(
            "nothing to draw: give --forecast FILE and/or --anomaly FILE",
        ));
    }
    let mut protected = Protected::new();
    protected.input(&args.input.input).model_dir(&args.model);
    if let Some(l) = &args.labels {
        protected.file(l);
    }
    for p in args.forecast.iter().chain(&args.anomaly) {
        protected.claim(p)?;
        note_output(p);
    }
    let model = TrainedModel::load(&args.model)?;
    let data = read_for_model(&args.input, &model)?;
    model.check_schema(&data.schema)?;
    let series = match &args.series {
        Some(id) => data.get(id).ok_or_else(|| {
            Failure::input(format!("series `{id}` is not in {}", args.input.input))
        })?,
        None => data
            .series
            .first()
            .ok_or_else(|| Failure::input("the input has no series"))?,
    };
    if let Some(path) = &args.forecast {
        // Particle mode: the chart shows each particle's mean path.
        let cfg = ForecastConfig {
            horizon: args.horizon,
            mode: Mode::Particle,
            ..Default::default()
        };
        let fc = forecast_series(&model, std::slice::from_ref(series), &cfg)?;
        particast::plot::forecast_chart(series, &fc[0], &cfg.levels, args.history, path)?;
        if !quiet {
            say!("fan chart  {}", path.display());
        }
    }
    if let Some(path) = &args.anomaly {
        let cfg = ScoreConfig {
            threshold: args.threshold,
            smooth: args.smooth,
            ..Default::default()
        };
        let (scores, _) = score_series(&model, std::slice::from_ref(series), &cfg)?.remove(0);
        let windows = match &args.labels {
            Some(l) => particast::plot::nab_windows(l, &series.id, &series.axis.kind)?,
            None => Vec::new(),
        };
        particast::plot::anomaly_chart(&scores, &series.axis.kind, &windows, args.threshold, path)?;
        if !quiet {
            say!("anomaly    {}", path.display());
        }
    }
    Ok(())
}

pub fn nab(args: NabArgs) -> Result<(), Failure> {
    use particast::pipeline::nab::{score_corpus, PROFILES};
    let files = particast::nab::read_scores(&args.scores, &args.labels)?;
    let results: Vec<_> = PROFILES.iter().map(|p| score_corpus(&files, p)).collect();
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    } else {
        say!(
            "{} files, {} windows",
            files.len(),
            results.first().map(|r| r.windows).unwrap_or(0)
        );
        say!(
            "{:<22} {:>10} {:>10} {:>10}",
            "profile",
            "score",
            "raw",
            "threshold"
        );
        for r in &results {
            say!(
                "{:<22} {:>10.2} {:>10.2} {:>10.4}",
                r.profile,
                r.normalized,
                r.raw,
                r.threshold
            );
        }
    }
    Ok(())
}
