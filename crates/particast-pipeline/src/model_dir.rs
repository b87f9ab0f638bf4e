//! Model directories: weights in safetensors, a JSON config with a format version, the data
//! schema, the inputs and what training decided and achieved ([`ModelMeta`]). Every file is
//! written atomically (a temporary file in the same folder, then a rename). Checkpoints are
//! training's (`train::checkpoint`).

use particast_ingest::{DataSchema, Dataset, IngestOptions, PreparedSeries, SeriesStream, Source};
use particast_kernels::{Model, ModelConfig};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::calibrate::{Calibration, CALIBRATION};
use crate::error::{PipelineError, Result};
use crate::inputs::InputSpec;

/// The version of the model directory format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Weights file in a model directory.
pub const WEIGHTS: &str = "model.safetensors";
/// Config file in a model directory.
pub const CONFIG: &str = "config.json";

/// Everything but the weights: `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// Format of the directory ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// particast version that wrote it.
    pub particast_version: String,
    /// Network configuration.
    pub model: ModelConfig,
    /// The data the model was trained on: columns, time kind, frequency, features.
    pub data: DataSchema,
    /// How to read data for this model (layout, column names, lags).
    pub ingest: IngestOptions,
    /// The inputs: features (with lags) and the scaling rule.
    pub inputs: InputSpec,
    /// Context steps of the training windows (also the scoring scale window).
    pub context: usize,
    /// Horizon of the training windows.
    pub horizon: usize,
    /// What training reported, once done.
    pub training: Option<TrainSummary>,
    /// What the automatic recipe decided (absent in models written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<crate::recipe::RecipeReport>,
}

/// One epoch, as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Mean training NLL per observation (scaled units).
    pub train_nll: f64,
    /// Validation NLL per observation (scaled units), if there is a validation set.
    pub val_nll: Option<f64>,
    /// Validation NLL per observation in original units (of the transformed values when the
    /// model has a transform).
    pub val_nll_original: Option<f64>,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient steps per second.
    pub batches_per_second: f64,
    /// Whether this epoch's model is the best so far (and was saved).
    pub improved: bool,
}

/// What training achieved (stored in the model's config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Trainable scalars.
    pub parameters: usize,
    /// Epochs run (including before a resume).
    pub epochs: usize,
    /// Epoch of the best validation NLL.
    pub best_epoch: usize,
    /// Best validation NLL per observation, scaled units.
    pub best_val_nll: Option<f64>,
    /// The same in original units (of the transformed values when the model has a transform).
    pub best_val_nll_original: Option<f64>,
    /// Wall time of this run, seconds.
    pub wall_seconds: f64,
    /// Effective number of particles `1 / sum w^2`, averaged over validation steps.
    pub effective_particles: f64,
    /// Mean pairwise distance between particle states at the end of the validation windows.
    pub particle_distance: f64,
    /// Training series and validation windows.
    pub series: usize,
    /// Validation windows (one per series long enough).
    pub validation_windows: usize,
    /// Final learning rate.
    pub final_lr: f64,
    /// Whether training resumed from a checkpoint.
    pub resumed: bool,
    /// Per-epoch history.
    pub history: Vec<EpochReport>,
}

/// A trained model: metadata and f32 weights.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedModel {
    /// `config.json`.
    pub meta: ModelMeta,
    /// The network.
    pub model: Model<f32>,
    /// Interval corrections from a backtest (`calibration.json`, [`crate::calibrate`]), used
    /// by forecasts that ask for them.
    pub calibration: Option<Calibration>,
}

/// Writes `bytes` to `path` atomically (or through to a pipe or device): see
/// [`crate::sink::write_with`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::sink::write_bytes(path, bytes)
}

/// Serialises named f32/f64 tensors to safetensors bytes.
pub(crate) fn tensors_to_bytes(
    tensors: &[(String, Vec<usize>, TensorData<'_>)],
) -> Result<Vec<u8>> {
    tensors_to_bytes_with(tensors, None)
}

/// [`tensors_to_bytes`] with string metadata in the safetensors header.
pub(crate) fn tensors_to_bytes_with(
    tensors: &[(String, Vec<usize>, TensorData<'_>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let (dtype, raw) = match data {
                TensorData::F32(v) => {
                    (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                TensorData::F64(v) => {
                    (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
            };
            (name.clone(), shape.clone(), dtype, raw)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, dtype, raw)| {
            TensorView::new(*dtype, shape.clone(), raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| PipelineError::Config(format!("tensor {name}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::tensor::serialize(views, metadata)
        .map_err(|e| PipelineError::Config(format!("serialising tensors: {e}")))
}

/// Tensor payloads for [`tensors_to_bytes`].
pub(crate) enum TensorData<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// Reads one tensor of a safetensors file as f64 values, checking its shape.
pub(crate) fn read_tensor(
    st: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    path: &Path,
) -> Result<Vec<f64>> {
    let t = st
        .tensor(name)
        .map_err(|e| PipelineError::format(path, format!("tensor `{name}`: {e}")))?;
    if t.shape() != shape {
        return Err(PipelineError::format(
            path,
            format!(
                "tensor `{name}` has shape {:?}, the config needs {shape:?}",
                t.shape()
            ),
        ));
    }
    let data = t.data();
    let values: Vec<f64> = match t.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
        other => {
            return Err(PipelineError::format(
                path,
                format!("tensor `{name}` has type {other:?}, expected F32 or F64"),
            ))
        }
    };
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(PipelineError::format(
            path,
            format!("tensor `{name}` holds a non-finite value at position {bad}"),
        ));
    }
    Ok(values)
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| PipelineError::io(path, e))
}

impl TrainedModel {
    /// The model's weights as safetensors bytes (one named tensor per parameter view).
    pub fn weights_bytes(model: &Model<f32>) -> Result<Vec<u8>> {
        let tensors: Vec<(String, Vec<usize>, TensorData<'_>)> = model
            .layout
            .entries
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| {
                (
                    e.name.to_string(),
                    e.shape.clone(),
                    TensorData::F32(&model.params[e.range()]),
                )
            })
            .collect();
        tensors_to_bytes(&tensors)
    }

    /// Writes the directory: weights first, then the config (so a config always has its weights).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
        write_atomic(&dir.join(WEIGHTS), &Self::weights_bytes(&self.model)?)?;
        let json = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| PipelineError::Config(format!("serialising config: {e}")))?;
        write_atomic(&dir.join(CONFIG), &json)
    }

    /// Reads a model directory, checking the format version and every tensor's shape.
    pub fn load(dir: &Path) -> Result<TrainedModel> {
        if !dir.is_dir() {
            return Err(PipelineError::format(
                dir,
                "not a model directory (no such folder)",
            ));
        }
        let config_path = dir.join(CONFIG);
        if !config_path.is_file() {
            return Err(PipelineError::format(
                &config_path,
                "not a model directory (no config.json; train one with `particast train`)",
            ));
        }
        let raw = read_file(&config_path)?;
        let weights_path = dir.join(WEIGHTS);
        let bytes = match read_file(&weights_path) {
            Ok(b) => b,
            Err(e) => {
                // A damaged config is the first thing to report.
                Self::parse_meta(&raw, dir)?;
                return Err(e);
            }
        };
        let mut model = Self::from_bytes(&raw, &bytes, dir)?;
        model.calibration = load_calibration(dir)?;
        Ok(model)
    }

    /// Writes `calibration` into the model directory `dir` as `calibration.json`
    /// (atomically); [`TrainedModel::load`] reads it back.
    pub fn save_calibration(dir: &Path, calibration: &Calibration) -> Result<()> {
        write_json(&dir.join(CALIBRATION), calibration)
    }

    /// Parses and checks `config.json` (format version, network sizes, inputs).
    fn parse_meta(config: &[u8], dir: &Path) -> Result<ModelMeta> {
        let config_path = dir.join(CONFIG);
        let value: serde_json::Value = serde_json::from_slice(config)
            .map_err(|e| PipelineError::format(&config_path, format!("not valid JSON: {e}")))?;
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(FORMAT_VERSION as u64) {
            return Err(PipelineError::format(
                &config_path,
                format!(
                    "model format version {} is not supported (this build reads version {FORMAT_VERSION})",
                    version.map(|v| v.to_string()).unwrap_or_else(|| "missing".into())
                ),
            ));
        }
        let meta: ModelMeta = serde_json::from_value(value)
            .map_err(|e| PipelineError::format(&config_path, format!("bad config: {e}")))?;
        meta.model
            .validate()
            .map_err(|e| PipelineError::format(&config_path, e.to_string()))?;
        meta.inputs
            .validate()
            .map_err(|e| PipelineError::format(&config_path, e.to_string()))?;
        if meta.inputs.n_inputs() != meta.model.inputs {
            return Err(PipelineError::format(
                &config_path,
                "the input spec and the network disagree on the number of inputs",
            ));
        }
        Ok(meta)
    }

    /// Builds a model from the bytes of `config.json` and `model.safetensors`, with the checks
    /// of [`TrainedModel::load`]; `dir` only names the files in messages. Sizes in the config
    /// are checked against the weights before anything is allocated, so a damaged or hostile
    /// config cannot ask for an absurd amount of memory.
    pub fn from_bytes(config: &[u8], weights: &[u8], dir: &Path) -> Result<TrainedModel> {
        let weights_path = dir.join(WEIGHTS);
        let meta = Self::parse_meta(config, dir)?;
        // Every parameter takes at least 4 bytes in the weights file: a config that needs more
        // than the file holds is refused before the buffer is allocated.
        let needed = meta.model.parameter_count().unwrap_or(u64::MAX);
        if needed.saturating_mul(4) > weights.len() as u64 {
            return Err(PipelineError::format(
                &weights_path,
                format!(
                    "the config needs {needed} parameters but the file holds only {} bytes (truncated, or the config belongs to another model)",
                    weights.len()
                ),
            ));
        }
        let st = SafeTensors::deserialize(weights).map_err(|e| {
            PipelineError::format(&weights_path, format!("not a safetensors file: {e}"))
        })?;
        let mut model = Model::<f32>::new(meta.model.clone(), 0)?;
        let entries = model.layout.entries.clone();
        for e in entries.iter().filter(|e| !e.is_empty()) {
            let values = read_tensor(&st, e.name, &e.shape, &weights_path)?;
            for (dst, v) in model.params[e.range()].iter_mut().zip(values) {
                *dst = v as f32;
            }
        }
        Ok(TrainedModel {
            meta,
            model,
            calibration: None,
        })
    }

    /// Reads data for this model with the options it was trained with, `input` on top (a
    /// command line's reading flags, say). Data too short to show its own step (a single row
    /// per series) is read again at the model's frequency, so that it gets the model's
    /// calendar features instead of failing the schema check.
    pub fn read_data(
        &self,
        source: impl Fn() -> Source,
        input: &crate::settings::Overrides,
    ) -> Result<Dataset> {
        Ok(Dataset::collect(self.open_data(source, input)?)?)
    }

    /// [`TrainedModel::read_data`] as a stream: series bucket by bucket, in bounded memory.
    pub fn open_data(
        &self,
        source: impl Fn() -> Source,
        input: &crate::settings::Overrides,
    ) -> Result<SeriesStream> {
        let stream = SeriesStream::open(source(), &input.apply(&self.meta.ingest)?)?;
        let Some(f) = self.meta.data.frequency else {
            return Ok(stream);
        };
        if stream.schema().frequency.is_some() {
            return Ok(stream);
        }
        drop(stream);
        let mut opts = self.meta.ingest.clone();
        opts.frequency = Some(f.describe(&self.meta.data.time_kind));
        Ok(SeriesStream::open(source(), &input.apply(&opts)?)?)
    }

    /// `s` in the model's transformed units. Under a transform the automatic recipe chose, a
    /// value outside its domain (a zero or a negative after all-positive training data) is
    /// masked, counted and logged; under a transform the user set, it is an error naming the
    /// series, step and value.
    pub fn transformed<'a>(
        &self,
        s: &'a PreparedSeries,
    ) -> Result<std::borrow::Cow<'a, PreparedSeries>> {
        let t = self.meta.inputs.transform;
        let auto = self
            .meta
            .recipe
            .as_ref()
            .is_some_and(|r| r.decisions.iter().any(|d| d.knob == "transform" && d.auto));
        if !auto {
            return t.apply(s);
        }
        let (out, masked) = t.apply_masking(s);
        if masked > 0 {
            tracing::warn!(
                series = %s.id,
                masked,
                transform = %t,
                "values outside the automatic transform's domain treated as missing"
            );
        }
        Ok(out)
    }

    /// Checks that data read for scoring or forecasting has the schema the model was trained on.
    pub fn check_schema(&self, data: &DataSchema) -> Result<()> {
        let want = &self.meta.data;
        let mismatch = |what: String| Err(PipelineError::SchemaMismatch(what));
        if data.target_cols.len() != want.target_cols.len() {
            return mismatch(format!(
                "the model was trained on {} target(s) ({}), the input has {} ({})",
                want.target_cols.len(),
                want.target_cols.join(", "),
                data.target_cols.len(),
                data.target_cols.join(", ")
            ));
        }
        if data.covariate_cols != want.covariate_cols {
            return mismatch(format!(
                "covariates differ: model [{}], input [{}]",
                want.covariate_cols.join(", "),
                data.covariate_cols.join(", ")
            ));
        }
        if std::mem::discriminant(&data.time_kind) != std::mem::discriminant(&want.time_kind) {
            return mismatch(format!(
                "time column kinds differ: model {:?}, input {:?}",
                want.time_kind, data.time_kind
            ));
        }
        if data.features.calendar != want.features.calendar {
            return mismatch(format!(
                "the input's frequency ({}) gives other calendar features than the model's ({})",
                data.frequency_text(),
                want.frequency_text()
            ));
        }
        Ok(())
    }
}

/// Reads `calibration.json` of a model directory, if there is one.
fn load_calibration(dir: &Path) -> Result<Option<Calibration>> {
    let path = dir.join(CALIBRATION);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = read_file(&path)?;
    let c: Calibration = serde_json::from_slice(&bytes)
        .map_err(|e| PipelineError::format(&path, format!("not a calibration file: {e}")))?;
    c.check().map_err(|m| PipelineError::format(&path, m))?;
    Ok(Some(c))
}

/// Writes JSON atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| PipelineError::Config(format!("serialising {}: {e}", path.display())))?;
    write_atomic(path, &json)
}
