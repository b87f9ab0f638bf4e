//! Running a pipeline file: train -> score -> forecast -> evaluate, any subset.

use particast_ingest::{Dataset, PreparedSeries, Source};
use particast_kernels::Head;
use particast_pipeline::evaluate::{actuals_for, eval_series, history_of};
use particast_pipeline::metrics::{evaluate, Metrics};
use particast_pipeline::output::{forecast_batch, scores_batch, to_dataframe, write_parquet};
use particast_pipeline::sink::Protected;
use particast_pipeline::{
    forecast_series, save_states, score_series, train, write_atomic, Reporter, SeriesForecast,
    TrainSummary, TrainedModel,
};
use std::path::PathBuf;
use tracing::info_span;

use crate::error::Error;
use crate::spec::{EvaluateSpec, PipelineSpec};

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
}

/// Holds out the last `h` steps of every series long enough (others stay whole).
pub fn hold_out(series: &[PreparedSeries], h: usize) -> Vec<PreparedSeries> {
    series
        .iter()
        .map(|s| {
            if h > 0 && s.len() > h {
                s.head(s.len() - h)
            } else {
                s.clone()
            }
        })
        .collect()
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
    if let Some(f) = &spec.forecast {
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
    let data = Dataset::read(Source::Path(spec.input.path.clone()), &spec.input.options)?;
    let holdout = spec.train.as_ref().map(|t| t.holdout).unwrap_or(0);
    let train_series = hold_out(&data.series, holdout);
    let model_dir = spec.model_dir();
    let model = match &spec.train {
        Some(t) => {
            let mut train_data = data.clone();
            train_data.series = match t.train_fraction {
                // Only each series' first part (NAB's probation period): the model never sees
                // what it will score after that.
                Some(f) => train_series
                    .iter()
                    .map(|s| {
                        let n = ((s.len() as f64 * f).floor() as usize)
                            .min(t.train_max_steps.unwrap_or(usize::MAX))
                            .max(1);
                        s.head(n)
                    })
                    .collect(),
                None => train_series.clone(),
            };
            let m = train(
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
        None => TrainedModel::load(&model_dir)?,
    };
    model.check_schema(&data.schema)?;
    let plot_id = spec.plot.as_ref().and_then(|p| p.series.clone());
    let plot_index = match &plot_id {
        Some(id) => data
            .series
            .iter()
            .position(|s| &s.id == id)
            .ok_or_else(|| Error::Spec {
                file: spec.file.clone(),
                message: format!("[plot] series `{id}` is not in the input"),
            })?,
        None => 0,
    };
    if let Some(s) = &spec.score {
        let _s = info_span!("score").entered();
        let results = score_series(&model, &data.series, &s.config)?;
        let (scores, states): (Vec<_>, Vec<_>) = results.into_iter().unzip();
        if let (Some(p), Some(sc)) = (&spec.plot, scores.get(plot_index)) {
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
        let batch = scores_batch(&scores, &data.schema)?;
        let mut df = to_dataframe(&batch, &data.schema.time_kind)?;
        let flagged = scores
            .iter()
            .flat_map(|s| s.flag.iter().zip(&s.present))
            .filter(|(f, p)| **p && **f == Some(true))
            .count();
        report.scored = Some((df.height(), flagged));
        write_parquet(&mut df, &s.output)?;
        report.outputs.push(("scores".into(), s.output.clone()));
        if let Some(state) = &s.state {
            save_states(&states, state)?;
            report.outputs.push(("scoring state".into(), state.clone()));
        }
    }
    if let Some(f) = &spec.forecast {
        let _s = info_span!("forecast").entered();
        let forecasts = forecast_series(&model, &train_series, &f.config)?;
        if let (Some(p), Some(fc)) = (&spec.plot, forecasts.get(plot_index)) {
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
        let batch = forecast_batch(
            &forecasts,
            &f.config.levels,
            f.config.mode,
            model.model.config.particles,
            model.model.config.head == Head::StudentT,
        )?;
        let mut df = to_dataframe(&batch, &data.schema.time_kind)?;
        write_parquet(&mut df, &f.output)?;
        report.forecast_series = Some(forecasts.len());
        report.outputs.push(("forecast".into(), f.output.clone()));
        if let Some(e) = &spec.evaluate {
            let metrics =
                evaluate_forecasts(&forecasts, &train_series, &data, e, &f.config.levels)?;
            let json = serde_json::to_vec_pretty(&metrics).map_err(|err| Error::Spec {
                file: e.output.clone(),
                message: err.to_string(),
            })?;
            write_atomic(&e.output, &json)?;
            report.outputs.push(("metrics".into(), e.output.clone()));
            report.metrics = Some(metrics);
        }
    }
    Ok(report)
}

/// Scores forecasts made from `history` (the series as the model saw them) against the
/// actuals `e` names, or against the held-out tail of `data` when it names none.
pub fn evaluate_forecasts(
    forecasts: &[SeriesForecast],
    history: &[PreparedSeries],
    data: &Dataset,
    e: &EvaluateSpec,
    levels: &[f64],
) -> Result<Metrics, Error> {
    let _s = info_span!("evaluate").entered();
    let actuals = match &e.actuals {
        Some(a) => Some(Dataset::read(Source::Path(a.path.clone()), &a.options)?),
        None => None,
    };
    // Wide actuals (M4's test file) restart their step counter: match steps by position.
    let positional = e
        .actuals
        .as_ref()
        .is_some_and(|a| a.options.layout == particast_ingest::Layout::Wide);
    let mut evals = Vec::new();
    for (fc, hist) in forecasts.iter().zip(history) {
        let full = match &actuals {
            Some(a) => a.get(&fc.id),
            None => data.get(&fc.id),
        };
        let Some(full) = full else { continue };
        let actual = actuals_for(fc, full, positional);
        evals.push(eval_series(fc, &actual, history_of(hist), levels));
    }
    Ok(evaluate(&evals, e.season))
}
