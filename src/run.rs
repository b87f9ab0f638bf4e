//! Running a pipeline file: train -> score -> forecast -> evaluate, any subset, each stage a
//! call of [`particast_pipeline::stage`].

use particast_ingest::Source;
use particast_pipeline::metrics::Metrics;
use particast_pipeline::output::metrics::write_metrics;
use particast_pipeline::sink::{OutputFormat, Protected};
use particast_pipeline::{
    stage, FutureCovariates, Overrides, Reporter, TrainSummary, TrainedModel,
};
use std::path::PathBuf;
use tracing::info_span;

use crate::error::Error;
use crate::spec::PipelineSpec;

/// What a run produced.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// Files written, with what they are.
    pub outputs: Vec<(String, PathBuf)>,
    /// Training summary, when trained.
    pub training: Option<TrainSummary>,
    /// Rows scored and rows flagged.
    pub scored: Option<(usize, usize)>,
    /// Series forecast.
    pub forecast_series: Option<usize>,
    /// Metrics, when evaluated.
    pub metrics: Option<Metrics>,
    /// The backtest's report, when one ran.
    pub cv: Option<particast_pipeline::cv::CvReport>,
}

/// Refuses, before any work, outputs of the pipeline that would replace a file it reads (the
/// pipeline file, the input, the actuals, the labels, the model it loads) or each other.
pub fn check_outputs(spec: &PipelineSpec) -> Result<(), Error> {
    let mut p = Protected::new();
    p.file(&spec.file).input(&spec.input.path);
    if let Some(a) = spec.evaluate.as_ref().and_then(|e| e.actuals.as_ref()) {
        p.input(&a.path);
    }
    if let Some(l) = spec.plot.as_ref().and_then(|p| p.labels.as_ref()) {
        p.file(l);
    }
    match &spec.train {
        Some(t) => p.model_outputs(&t.model)?,
        None => {
            p.model_dir(&spec.model_dir());
        }
    }
    if let Some(s) = &spec.score {
        p.claim(&s.output)?;
        if let Some(state) = &s.state {
            p.claim(state)?;
        }
    }
    if let Some(c) = &spec.cv {
        p.model_outputs(&c.model)?;
        p.claim(&c.output)?;
        p.claim(&c.metrics)?;
    }
    if let Some(f) = &spec.forecast {
        if let Some(future) = &f.future {
            p.file(future);
        }
        if let Some(state) = &f.state_in {
            p.file(state);
        }
        p.claim(&f.output)?;
        if let Some(e) = &spec.evaluate {
            p.claim(&e.output)?;
        }
    }
    if let Some(pl) = &spec.plot {
        for path in pl.forecast.iter().chain(&pl.anomaly) {
            p.claim(path)?;
        }
    }
    Ok(())
}

/// Runs the stages a pipeline file asks for.
pub fn run_pipeline(spec: &PipelineSpec, reporter: &mut dyn Reporter) -> Result<RunReport, Error> {
    let _span = info_span!("run", file = %spec.file.display()).entered();
    std::fs::create_dir_all(&spec.output_dir).map_err(|e| Error::Io {
        path: spec.output_dir.clone(),
        source: e,
    })?;
    check_outputs(spec)?;
    let mut report = RunReport::default();
    let data = stage::read(Source::Path(spec.input.path.clone()), &spec.input.options)?;
    let holdout = spec.train.as_ref().map(|t| t.holdout).unwrap_or(0);
    let train_series = stage::hold_out(&data.series, holdout);
    let model = match &spec.train {
        Some(t) => {
            let mut train_data = data.clone();
            train_data.series = match t.train_fraction {
                Some(f) => stage::leading(&train_series, f, t.train_max_steps),
                None => train_series.clone(),
            };
            let m = stage::train(
                &train_data,
                &spec.input.options,
                &t.config,
                &t.model,
                t.resume,
                reporter,
            )?;
            report.training = m.meta.training.clone();
            report.outputs.push(("model".into(), t.model.clone()));
            m
        }
        None => TrainedModel::load(&spec.model_dir())?,
    };
    model.check_schema(&data.schema)?;
    let plot_index = match spec.plot.as_ref().and_then(|p| p.series.as_ref()) {
        Some(id) => data
            .series
            .iter()
            .position(|s| &s.id == id)
            .ok_or_else(|| {
                Error::spec(
                    &spec.file,
                    format!("[plot] series `{id}` is not in the input"),
                )
            })?,
        None => 0,
    };
    if let Some(s) = &spec.score {
        // Scores go to their file part by part; only the plotted series is kept.
        let mut batches = stage::ScoreBatches::new(
            &model,
            data.series.iter().cloned().map(Ok),
            &data.schema,
            &s.config,
            Vec::new(),
        )?;
        if s.state.is_some() {
            batches = batches.keep_states();
        }
        let summary = stage::score_to(batches, &s.output, OutputFormat::Parquet)?;
        let plotted = match (&spec.plot, data.series.get(plot_index)) {
            (Some(p), Some(one)) if p.anomaly.is_some() => Some(stage::score_series_of(
                &model,
                std::slice::from_ref(one),
                &data.schema,
                &s.config,
                Vec::new(),
            )?),
            _ => None,
        };
        if let (Some(p), Some(sc)) = (&spec.plot, plotted.as_ref().and_then(|p| p.scores.first())) {
            if let Some(path) = &p.anomaly {
                let windows = match &p.labels {
                    Some(l) => crate::plot::nab_windows(l, &sc.id, &data.schema.time_kind)?,
                    None => Vec::new(),
                };
                crate::plot::anomaly_chart(
                    sc,
                    &data.schema.time_kind,
                    &windows,
                    s.config.threshold,
                    path,
                )?;
                report.outputs.push(("anomaly view".into(), path.clone()));
            }
        }
        report.scored = Some((summary.rows, summary.flagged));
        report.outputs.push(("scores".into(), s.output.clone()));
        if let Some(state) = &s.state {
            particast_pipeline::save_states(&summary.states, state)?;
            report.outputs.push(("scoring state".into(), state.clone()));
        }
    }
    if let Some(f) = &spec.forecast {
        // Future covariates: the file's, else (with a hold-out) the held-out rows' own.
        let future = match &f.future {
            Some(path) => Some(stage::read_future(
                &model,
                Source::Path(path.to_string_lossy().into_owned()),
                &Overrides::from_table("input", &spec.input.options)?,
            )?),
            None if holdout > 0 && model.meta.inputs.needs_future() => {
                Some(FutureCovariates::from_series(
                    &data.series,
                    &data.schema.covariate_cols,
                    "the held-out rows of the input",
                ))
            }
            None => None,
        };
        // From saved score states, or from the input (minus any holdout).
        let from_states = match &f.state_in {
            Some(path) => Some(stage::state_series_of(
                &model,
                &particast_pipeline::load_states(path)?,
            )?),
            None => None,
        };
        let forecasts = stage::forecast_with_future(
            std::slice::from_ref(&model),
            from_states.as_deref().unwrap_or(&train_series),
            &data.schema.time_kind,
            &f.config,
            future.as_ref(),
        )?;
        if let (Some(p), Some(fc)) = (&spec.plot, forecasts.series.get(plot_index)) {
            if let Some(path) = &p.forecast {
                crate::plot::forecast_chart(
                    &data.series[plot_index],
                    fc,
                    &f.config.levels,
                    p.history + holdout,
                    path,
                )?;
                report.outputs.push(("fan chart".into(), path.clone()));
            }
        }
        forecasts.write(&f.output, OutputFormat::Parquet)?;
        report.forecast_series = Some(forecasts.series.len());
        report.outputs.push(("forecast".into(), f.output.clone()));
        if let Some(e) = &spec.evaluate {
            let metrics = evaluate(spec, &forecasts.series, &train_series, &data)?;
            write_metrics(&metrics, &e.output)?;
            report.outputs.push(("metrics".into(), e.output.clone()));
            report.metrics = Some(metrics);
        }
    }
    if let Some(c) = &spec.cv {
        let _s = info_span!("cv").entered();
        let train_cfg = spec
            .train
            .as_ref()
            .map(|t| t.config.clone())
            .unwrap_or_default();
        let fc = match &spec.forecast {
            Some(f) => f.config.clone(),
            None => particast_pipeline::ForecastConfig {
                horizon: train_cfg.horizon,
                ..Default::default()
            },
        };
        let mut cv_data = data.clone();
        cv_data.series = train_series.clone();
        let (bt, _) = stage::cross_validate(
            &cv_data,
            &spec.input.options,
            &train_cfg,
            &fc,
            &c.config,
            &c.model,
            reporter,
        )?;
        let mut frame = bt.frame(&cv_data.series, &cv_data.schema.time_kind)?;
        particast_pipeline::sink::write_frame(&mut frame, &c.output, OutputFormat::Parquet)?;
        report.outputs.push(("backtest".into(), c.output.clone()));
        let cv_report = bt.report(&cv_data, &c.config, c.calibrate)?;
        if let Some(cal) = &cv_report.calibration {
            let dir = particast_pipeline::cv::calibration_dir(&c.model, &c.config);
            TrainedModel::save_calibration(&dir, cal)?;
            report.outputs.push(("calibration".into(), dir));
        }
        let json = serde_json::to_vec_pretty(&cv_report)
            .map_err(|e| Error::spec(&spec.file, format!("the backtest report: {e}")))?;
        particast_pipeline::sink::write_bytes(&c.metrics, &json)?;
        report
            .outputs
            .push(("backtest metrics".into(), c.metrics.clone()));
        report.cv = Some(cv_report);
    }
    Ok(report)
}

/// The metrics of forecasts made from `history` (the series as the model saw them) against
/// the actuals the `[evaluate]` section names, or against the held-out tail of `data` when it
/// names none.
pub fn evaluate(
    spec: &PipelineSpec,
    forecasts: &[particast_pipeline::SeriesForecast],
    history: &[particast_ingest::PreparedSeries],
    data: &particast_ingest::Dataset,
) -> Result<Metrics, Error> {
    let (Some(e), Some(f)) = (&spec.evaluate, &spec.forecast) else {
        return Err(Error::spec(
            &spec.file,
            "[evaluate] needs a [forecast] section",
        ));
    };
    let metrics = match &e.actuals {
        Some(a) => stage::evaluate(
            forecasts,
            &f.config.levels,
            &stage::read(Source::Path(a.path.clone()), &a.options)?,
            history,
            stage::by_position(&a.options),
            e.season,
        )?,
        // The held-out tail of the input: matched by timestamp.
        None => stage::evaluate(forecasts, &f.config.levels, data, history, false, e.season)?,
    };
    Ok(metrics)
}
