//! The commands: each turns its arguments into the library's settings, calls the stage API
//! ([`particast::pipeline::stage`]) and prints a summary.

use particast::ingest::spool::Input;
use particast::ingest::{IngestOptions, InputFormat, SeriesStream, WindowSpec, WindowStream};
use particast::pipeline::sink::Protected;
use particast::pipeline::stage::{self, EvaluateConfig};
use particast::pipeline::{
    load_states, save_states, ForecastConfig, Overrides, ScoreConfig, TrainConfig, TrainedModel,
};
use particast::run::run_pipeline;
use particast::spec::PipelineSpec;
use particast::Error;
use std::time::Instant;
use tracing::info_span;

use crate::args::*;
use crate::show::{
    self, note_output, print_metrics, print_training, say, shown, BarReporter, RowsBar,
};

type Result<T> = std::result::Result<T, Error>;

/// The input options of the flags, with `--lags` where the command has it.
fn input_overrides(args: &InputArgs, lags: &Option<Vec<usize>>) -> Overrides {
    let mut o = args.overrides();
    o.merge(lags_override(lags));
    o
}

/// `--lags` of the `ingest` command.
fn lags_override(lags: &Option<Vec<usize>>) -> Overrides {
    let mut o = Overrides::new("input");
    o.set_some("lags", lags.as_ref());
    o
}

/// Opens `--input` (`-`: standard input).
fn open(args: &InputArgs) -> Result<Input> {
    Ok(Input::open(
        args.path()?,
        args.input_format.unwrap_or(InputFormat::Auto),
    )?)
}

/// Reads `--input` for `model`: its reading options with the flags on top.
fn read_for(
    model: &TrainedModel,
    args: &InputArgs,
    lags: &Option<Vec<usize>>,
) -> Result<particast::ingest::Dataset> {
    let input = open(args)?;
    Ok(stage::read_for_model(
        model,
        || input.source(),
        &input_overrides(args, lags),
    )?)
}

/// Opens `--input` for `model` as a stream of series ([`stage::open_for_model`]); the
/// [`Input`] (a spooled standard input) lives as long as the stream is read.
fn open_for(
    model: &TrainedModel,
    args: &InputArgs,
    lags: &Option<Vec<usize>>,
) -> Result<(Input, SeriesStream)> {
    let input = open(args)?;
    let stream = stage::open_for_model(model, || input.source(), &input_overrides(args, lags))?;
    Ok((input, stream))
}

pub fn run(args: RunArgs, quiet: bool) -> Result<()> {
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
    if let Some(c) = &report.cv {
        say!(
            "cv         {} series x {} windows x {} steps: MASE {:.3}, sMAPE {:.3}, MSIS {:.3}",
            c.series,
            c.n_windows,
            c.h,
            c.overall.mase,
            c.overall.smape,
            c.overall.msis
        );
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

pub fn train(args: TrainArgs, quiet: bool) -> Result<()> {
    let mut settings = match &args.config {
        Some(path) => particast::spec::load_settings(path, "train")?,
        None => Overrides::new("train"),
    };
    settings.merge(args.overrides());
    let cfg: TrainConfig = settings.build().map_err(|e| match &args.config {
        Some(path) => Error::spec(path, e),
        None => e.into(),
    })?;
    let mut protected = Protected::new();
    protected.input(args.input.path()?);
    if let Some(c) = &args.config {
        protected.file(c);
    }
    protected.model_outputs(&args.model)?;
    let opts: IngestOptions = args.input.overrides().build()?;
    let input = Input::open(args.input.path()?, opts.format)?;
    let data = stage::read(input.source(), &opts)?;
    let mut reporter = BarReporter::new(quiet);
    let model = stage::train(&data, &opts, &cfg, &args.model, args.resume, &mut reporter)?;
    drop(reporter);
    if !quiet {
        if let Some(s) = &model.meta.training {
            print_training(s);
        }
        say!("model      {}", args.model.display());
    }
    Ok(())
}

pub fn score(args: ScoreArgs, quiet: bool) -> Result<()> {
    // The state file may be updated in place (`--state-in s --state-out s`, read whole before
    // anything is written); every other input is protected from every output.
    let mut protected = Protected::new();
    protected.input(args.input.path()?).model_dir(&args.model);
    if let Some(p) = &args.state_out {
        protected.claim(p)?;
    }
    if let Some(p) = &args.state_in {
        protected.file(p);
    }
    protected.claim(&args.output)?;
    note_output(&args.output);
    let model = TrainedModel::load(&args.model)?;
    let cfg: ScoreConfig = args.overrides().build()?;
    let resume = match &args.state_in {
        Some(p) => load_states(p)?,
        None => Vec::new(),
    };
    // Series stream in bucket by bucket and scores go out part by part: memory stays bounded
    // whatever the input's size.
    let (_input, stream) = open_for(&model, &args.input, &args.lags)?;
    let schema = stream.schema().clone();
    let bar = RowsBar::new(quiet, stream.report().input_rows, "scored");
    let mut batches =
        stage::ScoreBatches::new(&model, stream, &schema, &cfg, resume)?.on_part(|p| bar.update(p));
    if args.state_out.is_some() {
        batches = batches.keep_states();
    }
    let summary = stage::score_to(
        batches,
        &args.output,
        args.output_format.unwrap_or_default(),
    )?;
    drop(bar);
    if let Some(p) = &args.state_out {
        save_states(&summary.states, p)?;
    }
    if !quiet {
        say!(
            "scored     {} observations of {} series, {} flagged (threshold {})",
            summary.rows,
            summary.series,
            summary.flagged,
            cfg.threshold
        );
        say!("output     {}", shown(&args.output));
    }
    Ok(())
}

pub fn forecast(args: ForecastArgs, quiet: bool) -> Result<()> {
    let mut protected = Protected::new();
    if let Some(p) = &args.input.input {
        protected.input(p);
    }
    if let Some(p) = &args.future {
        protected.input(p);
    }
    if let Some(p) = &args.state_in {
        protected.file(p);
    }
    for m in &args.model {
        protected.model_dir(m);
    }
    protected.claim(&args.output)?;
    note_output(&args.output);
    let models = args
        .model
        .iter()
        .map(|m| TrainedModel::load(m))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let cfg: ForecastConfig = args.overrides().build()?;
    let future = match &args.future {
        Some(path) => {
            let input = Input::open(path, args.input.input_format.unwrap_or(InputFormat::Auto))?;
            Some(stage::read_future(
                &models[0],
                input.source(),
                &input_overrides(&args.input, &args.lags),
            )?)
        }
        None => None,
    };
    let n = match &args.state_in {
        // From saved states: the tails they keep, in memory (a state holds a few hundred steps).
        Some(path) => {
            let series = stage::state_series_of(&models[0], &load_states(path)?)?;
            let kind = models[0].meta.data.time_kind.clone();
            let fc = stage::forecast_with_future(&models, &series, &kind, &cfg, future.as_ref())?;
            fc.write(&args.output, args.output_format.unwrap_or_default())?;
            series.len()
        }
        None => {
            // The first model decides how the input is read; every model must fit it.
            let (_input, stream) = open_for(&models[0], &args.input, &args.lags)?;
            for m in &models[1..] {
                m.check_schema(stream.schema())?;
            }
            let time_kind = stream.schema().time_kind.clone();
            let bar = RowsBar::new(quiet, stream.report().input_rows, "read");
            let batches = stage::ForecastBatches::new(&models, stream, &time_kind, &cfg)?
                .with_future(future.as_ref())
                .on_part(|p| bar.update(p));
            let n = stage::forecast_to(
                batches,
                &args.output,
                args.output_format.unwrap_or_default(),
            )?;
            drop(bar);
            n
        }
    };
    if !quiet {
        say!(
            "forecast   {} series x {} steps ({:?} mode{}{})",
            n,
            cfg.horizon,
            cfg.mode,
            if models.len() > 1 {
                format!(", ensemble of {} models", models.len())
            } else {
                String::new()
            },
            match (&args.state_in, &args.future) {
                (Some(_), _) => ", from saved states",
                (None, Some(_)) => ", with future covariates",
                _ => "",
            }
        );
        say!("output     {}", shown(&args.output));
    }
    Ok(())
}

pub fn cv(args: CvArgs, quiet: bool) -> Result<()> {
    let t = &args.train;
    let mut protected = Protected::new();
    protected.input(t.input.path()?);
    if let Some(c) = &t.config {
        protected.file(c);
    }
    if args.pretrained {
        protected.model_dir(&t.model);
    } else {
        protected.model_outputs(&t.model)?;
    }
    protected.claim(&args.output)?;
    if let Some(m) = &args.metrics {
        protected.claim(m)?;
    }
    note_output(&args.output);
    let fc: ForecastConfig = args.forecast_overrides().build()?;
    let cv_cfg = particast::pipeline::cv::CvConfig {
        n_windows: args.n_windows,
        step_size: args.step_size,
        refit: args.refit,
        season: args.eval_season,
    };
    cv_cfg.validate(fc.horizon)?;
    let start = Instant::now();
    let (bt, data) = if args.pretrained {
        let model = TrainedModel::load(&t.model)?;
        let data = read_for(&model, &t.input, &None)?;
        let bt = particast::pipeline::cv::backtest(
            std::slice::from_ref(&model),
            &data.series,
            &fc,
            &cv_cfg,
            None,
        )?;
        (bt, data)
    } else {
        let mut settings = match &t.config {
            Some(path) => particast::spec::load_settings(path, "train")?,
            None => Overrides::new("train"),
        };
        settings.merge(t.overrides());
        let train_cfg: TrainConfig = settings.build().map_err(|e| match &t.config {
            Some(path) => Error::spec(path, e),
            None => e.into(),
        })?;
        let opts: IngestOptions = t.input.overrides().build()?;
        let input = Input::open(t.input.path()?, opts.format)?;
        let data = stage::read(input.source(), &opts)?;
        let mut reporter = BarReporter::new(quiet);
        let (bt, _models) = stage::cross_validate(
            &data,
            &opts,
            &train_cfg,
            &fc,
            &cv_cfg,
            &t.model,
            &mut reporter,
        )?;
        (bt, data)
    };
    let trained = start.elapsed().as_secs_f64();
    let mut frame = bt.frame(&data.series, &data.schema.time_kind)?;
    particast::pipeline::sink::write_frame(
        &mut frame,
        &args.output,
        args.output_format.unwrap_or_default(),
    )?;
    let report = bt.report(&data, &cv_cfg, args.calibrate)?;
    if let Some(c) = &report.calibration {
        TrainedModel::save_calibration(
            &particast::pipeline::cv::calibration_dir(&t.model, &cv_cfg),
            c,
        )?;
    }
    if let Some(path) = &args.metrics {
        let mut value = serde_json::to_value(&report).map_err(|e| Error::Usage(e.to_string()))?;
        value["seconds"] = trained.into();
        let json = serde_json::to_vec_pretty(&value).map_err(|e| Error::Usage(e.to_string()))?;
        particast::pipeline::sink::write_bytes(path, &json)?;
    }
    if !quiet {
        say!(
            "cv         {} series x {} windows x {} steps{}, {:.1} s",
            report.series,
            report.n_windows,
            report.h,
            if report.skipped_series > 0 {
                format!(" ({} series too short, left out)", report.skipped_series)
            } else {
                String::new()
            },
            trained
        );
        for (k, m) in report.windows.iter().enumerate() {
            say!(
                "window {:<3} sMAPE {:.3}  MASE {:.3}  MSIS {:.3}  coverage {}",
                k + 1,
                m.smape,
                m.mase,
                m.msis,
                coverage_text(m)
            );
        }
        print_metrics(&report.overall);
        if let Some(c) = &report.calibration_holdout {
            say!(
                "calibration last window, calibrated on the {} before it: coverage {} -> {}, MSIS {:.3} -> {:.3}",
                c.fitted_on_windows,
                coverage_text(&c.raw),
                coverage_text(&c.calibrated),
                c.raw.msis,
                c.calibrated.msis
            );
        }
        if report.calibration.is_some() {
            say!(
                "calibration saved in {}",
                particast::pipeline::cv::calibration_dir(&t.model, &cv_cfg).display()
            );
        }
        say!("output     {}", shown(&args.output));
    }
    Ok(())
}

/// `80%: 0.78, 95%: 0.93`.
fn coverage_text(m: &particast::pipeline::metrics::Metrics) -> String {
    m.coverage
        .iter()
        .map(|(l, c)| format!("{l}%: {c:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn evaluate(args: EvaluateArgs, quiet: bool) -> Result<()> {
    let stdin_users = [
        args.forecast.as_os_str() == "-",
        args.actuals == "-",
        args.history.as_deref() == Some("-"),
    ];
    if stdin_users.iter().filter(|u| **u).count() > 1 {
        return Err(Error::Usage(
            "only one of --forecast, --actuals and --history can read standard input (-)".into(),
        ));
    }
    let fc = Input::open(&args.forecast.to_string_lossy(), InputFormat::Auto)?;
    let file = match fc.spooled() {
        Some(s) if s.format() == InputFormat::Csv => {
            return Err(Error::Usage(format!(
                "{}: not a forecast file (expected Parquet or an Arrow IPC stream)",
                fc.name()
            )))
        }
        Some(s) => s.path().to_path_buf(),
        None => args.forecast.clone(),
    };
    // The forecasts and the history are read part by part (a forecast file or a history of
    // any size); the actuals, one horizon per series, are read whole.
    let forecasts = stage::open_forecast_file(&file, &fc.name())?;
    let opts: IngestOptions = args.input_overrides().build()?;
    let actuals = stage::read(Input::open(&args.actuals, opts.format)?.source(), &opts)?;
    let mut settings = Overrides::new("evaluate");
    settings.set_some("season", args.season);
    let season = settings.build::<EvaluateConfig>()?.season;
    let m = match &args.history {
        Some(h) => {
            let input = Input::open(h, opts.format)?;
            let history = SeriesStream::open(input.source(), &opts)?;
            stage::evaluate_file(forecasts, &actuals, &opts, history, season)?
        }
        None => stage::evaluate_file(forecasts, &actuals, &opts, std::iter::empty(), season)?,
    };
    if args.json {
        say!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
    } else if !quiet {
        print_metrics(&m);
    }
    Ok(())
}

pub fn inspect(args: InspectArgs) -> Result<()> {
    let m = TrainedModel::load(&args.model)?;
    if args.json {
        // A model's metadata is plain data: it always serialises.
        let mut value = serde_json::to_value(&m.meta).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("parameters".into(), m.model.params.len().into());
        }
        say!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        show::model(&args.model, &m);
    }
    Ok(())
}

pub fn plot(args: PlotArgs, quiet: bool) -> Result<()> {
    if args.forecast.is_none() && args.anomaly.is_none() {
        return Err(Error::Usage(
            "nothing to draw: give --forecast FILE and/or --anomaly FILE".into(),
        ));
    }
    let mut protected = Protected::new();
    protected.input(args.input.path()?).model_dir(&args.model);
    if let Some(l) = &args.labels {
        protected.file(l);
    }
    if let Some(f) = &args.future {
        protected.input(f);
    }
    for p in args.forecast.iter().chain(&args.anomaly) {
        protected.claim(p)?;
        note_output(p);
    }
    let model = TrainedModel::load(&args.model)?;
    let data = read_for(&model, &args.input, &args.lags)?;
    let series = match &args.series {
        Some(id) => data.get(id).ok_or_else(|| {
            Error::Usage(format!(
                "series `{id}` is not in {}",
                args.input.path().unwrap_or("-")
            ))
        })?,
        None => data
            .series
            .first()
            .ok_or_else(|| Error::Usage("the input has no series".into()))?,
    };
    let one = std::slice::from_ref(series);
    if let Some(path) = &args.forecast {
        let cfg: ForecastConfig = args.forecast_overrides().build()?;
        let models = std::slice::from_ref(&model);
        let future = match &args.future {
            Some(f) => {
                let input = Input::open(f, args.input.input_format.unwrap_or(InputFormat::Auto))?;
                Some(stage::read_future(
                    &model,
                    input.source(),
                    &input_overrides(&args.input, &args.lags),
                )?)
            }
            None => None,
        };
        let fc = stage::forecast_with_future(
            models,
            one,
            &data.schema.time_kind,
            &cfg,
            future.as_ref(),
        )?;
        particast::plot::forecast_chart(series, &fc.series[0], &cfg.levels, args.history, path)?;
        if !quiet {
            say!("fan chart  {}", path.display());
        }
    }
    if let Some(path) = &args.anomaly {
        let cfg: ScoreConfig = args.score_overrides().build()?;
        let scored = stage::score_series_of(&model, one, &data.schema, &cfg, Vec::new())?;
        let windows = match &args.labels {
            Some(l) => particast::plot::nab_windows(l, &series.id, &series.axis.kind)?,
            None => Vec::new(),
        };
        particast::plot::anomaly_chart(
            &scored.scores[0],
            &series.axis.kind,
            &windows,
            cfg.threshold,
            path,
        )?;
        if !quiet {
            say!("anomaly    {}", path.display());
        }
    }
    Ok(())
}

pub fn nab(args: NabArgs) -> Result<()> {
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

pub fn ingest(args: IngestArgs, quiet: bool) -> Result<()> {
    let path = args.input.path()?;
    let _span = info_span!("ingest", input = %path).entered();
    let start = Instant::now();
    let opts: IngestOptions = input_overrides(&args.input, &args.lags).build()?;
    let spec: WindowSpec = args.window_overrides().build()?;
    if spec.stride == 0 || spec.is_empty() {
        return Err(Error::Usage(
            "--stride and --context + --horizon must be positive".into(),
        ));
    }
    let input = Input::open(path, opts.format)?;
    let mut stream = SeriesStream::open(input.source(), &opts)?;
    let schema = stream.schema().clone();
    let shown = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let keep = std::rc::Rc::clone(&shown);
    let limit = args.show;
    let series = stream.by_ref().inspect(move |s| {
        if let Ok(s) = s {
            let mut k = keep.borrow_mut();
            if k.len() < limit {
                k.push(show::SeriesRow::of(s));
            }
        }
    });
    let mut windows = 0usize;
    for batch in WindowStream::new(series, spec.clone(), schema.features.clone(), path) {
        windows += batch?.num_rows();
    }
    if !quiet {
        show::ingest(
            path,
            &schema,
            &shown.borrow(),
            stream.report(),
            windows,
            &spec,
            start.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}
