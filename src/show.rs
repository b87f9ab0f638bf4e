//! What the commands print: summary lines (on standard error when standard output carries
//! data), the training progress bar, the metrics table and the words for a model's settings.

use indicatif::{ProgressBar, ProgressStyle};
use particast::ingest::{DataSchema, IngestReport, PreparedSeries, WindowSpec};
use particast::kernels::Gate;
use particast::pipeline::metrics::Metrics;
use particast::pipeline::recipe::RecipeReport;
use particast::pipeline::sink::is_stdout;
use particast::pipeline::{EpochReport, Reporter, TrainSummary, TrainedModel};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when a command writes its data to standard output: its summary lines then go to
/// standard error, so the data stream stays clean.
static DATA_ON_STDOUT: AtomicBool = AtomicBool::new(false);

/// Prints one summary line: on standard output, or on standard error when standard output
/// carries data. A closed stream is not an error here (the reader has gone).
pub fn say_line(line: String) {
    if DATA_ON_STDOUT.load(Ordering::Relaxed) {
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}

/// `println!` for summary lines ([`say_line`]).
macro_rules! say {
    ($($t:tt)*) => { $crate::show::say_line(format!($($t)*)) };
}
pub(crate) use say;

/// Marks standard output as carrying data when `path` is `-`.
pub fn note_output(path: &Path) {
    if is_stdout(path) {
        DATA_ON_STDOUT.store(true, Ordering::Relaxed);
    }
}

/// An output path as shown in summaries.
pub fn shown(path: &Path) -> String {
    if is_stdout(path) {
        "standard output".into()
    } else {
        path.display().to_string()
    }
}

/// Draws a progress bar on a terminal and prints one line per epoch either way.
pub struct BarReporter {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl BarReporter {
    pub fn new(quiet: bool) -> Self {
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

/// A bar of input rows done for a streamed stage (score, forecast) on a terminal: rows/s and
/// series done; nothing when quiet or when standard error is not a terminal.
pub struct RowsBar {
    bar: Option<ProgressBar>,
}

impl RowsBar {
    /// A bar over `total` input rows (0: unknown, a spinner).
    pub fn new(quiet: bool, total: usize, what: &str) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return RowsBar { bar: None };
        }
        let bar = if total > 0 {
            ProgressBar::new(total as u64)
        } else {
            ProgressBar::new_spinner()
        };
        let template = format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{human_pos}}/{{human_len}} rows {what} ({{per_sec}}) {{msg}}"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        RowsBar { bar: Some(bar) }
    }

    /// Moves the bar to `p`.
    pub fn update(&self, p: particast::pipeline::stage::Progress) {
        if let Some(b) = &self.bar {
            b.set_position(p.rows as u64);
            b.set_message(format!("{} series", p.series));
        }
    }
}

impl Drop for RowsBar {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

pub fn print_training(s: &TrainSummary) {
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

pub fn print_metrics(m: &Metrics) {
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

/// Words for the model's settings, as a user types them.
pub mod words {
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

/// `particast inspect`: a model directory in words, as flags and as `[train]` values.
pub fn model(dir: &Path, m: &TrainedModel) {
    let c = &m.model.config;
    let d = &m.meta.data;
    let inputs = &m.meta.inputs;
    say!("model       {}", dir.display());
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
        } else if inputs.covariates.is_empty() {
            d.covariate_cols.join(", ")
        } else {
            inputs
                .covariates
                .iter()
                .map(|c| format!("{} ({})", c.name, c.kind))
                .collect::<Vec<_>>()
                .join(", ")
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
}

/// One series as `particast ingest` lists it.
pub struct SeriesRow {
    id: String,
    len: usize,
    observed: usize,
    gaps: usize,
    mean: f64,
    mean_abs: f64,
    first: String,
    last: String,
}

impl SeriesRow {
    /// The row of a series.
    pub fn of(s: &PreparedSeries) -> Self {
        SeriesRow {
            id: s.id.clone(),
            len: s.len(),
            observed: s.stats.observed.iter().sum::<usize>(),
            gaps: s.stats.gaps_filled,
            mean: s.stats.mean.first().copied().unwrap_or(0.0),
            mean_abs: s.stats.mean_abs.first().copied().unwrap_or(0.0),
            first: s.axis.kind.render(s.stats.first_ds),
            last: s.axis.kind.render(s.stats.last_ds),
        }
    }
}

/// `particast ingest`'s summary: the schema, the first series, what reading found, the
/// windows.
pub fn ingest(
    input: &str,
    schema: &DataSchema,
    shown: &[SeriesRow],
    report: &IngestReport,
    windows: usize,
    spec: &WindowSpec,
    seconds: f64,
) {
    println!("input      {}", input);
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
    for r in shown {
        println!(
            "{:<50} {:>8} {:>9} {:>6} {:>12.4} {:>12.4}  {:<20} {:<20}",
            r.id, r.len, r.observed, r.gaps, r.mean, r.mean_abs, r.first, r.last
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
    println!("time       {:.2} s", seconds);
}
