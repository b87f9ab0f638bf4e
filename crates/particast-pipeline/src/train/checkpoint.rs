//! Training checkpoints: the parameters, Adam's moments and the training progress in one
//! safetensors file (the progress as JSON in its header, so tensors and progress are replaced
//! together by one atomic rename), plus `checkpoint.json`, a readable copy of the progress.
//! Also the list of every file training writes into a model directory.

use particast_kernels::{Adam, Model};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::{PipelineError, Result};
use crate::model_dir::{
    read_file, read_tensor, tensors_to_bytes_with, write_atomic, write_json, EpochReport,
    TensorData, CONFIG, WEIGHTS,
};
use crate::settings::TrainConfig;
use crate::sink::Protected;

/// The checkpoint's tensors file.
pub(crate) const CHECKPOINT_WEIGHTS: &str = "checkpoint.safetensors";
/// Header key of the progress JSON in the checkpoint's tensors file.
pub(crate) const CHECKPOINT_PROGRESS_KEY: &str = "progress";
/// The readable copy of the progress.
pub(crate) const CHECKPOINT_STATE: &str = "checkpoint.json";
/// Every file a model directory may hold (weights, config, the checkpoint pair).
pub const MODEL_FILES: [&str; 4] = [WEIGHTS, CONFIG, CHECKPOINT_WEIGHTS, CHECKPOINT_STATE];

impl Protected {
    /// Protects the files of a model directory that the command reads.
    pub fn model_dir(&mut self, dir: &Path) -> &mut Self {
        self.folder_files(dir, &MODEL_FILES)
    }

    /// Checks a model folder that training will write: it must be (or become) a folder, and
    /// none of its files may be a protected input; its files are claimed as outputs.
    pub fn model_outputs(&mut self, dir: &Path) -> Result<()> {
        self.folder_outputs(dir, &MODEL_FILES)
    }
}

/// Progress saved with each checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Progress {
    pub(super) config: TrainConfig,
    pub(super) epochs_done: usize,
    pub(super) adam_t: u64,
    pub(super) lr: f64,
    pub(super) best_val: Option<f64>,
    pub(super) best_epoch: usize,
    pub(super) epochs_since_best: usize,
    pub(super) epochs_since_lr: usize,
    pub(super) history: Vec<EpochReport>,
}

impl Progress {
    /// The progress before the first epoch.
    pub(super) fn new(cfg: &TrainConfig) -> Self {
        Progress {
            config: cfg.clone(),
            epochs_done: 0,
            adam_t: 0,
            lr: cfg.lr,
            best_val: None,
            best_epoch: 0,
            epochs_since_best: 0,
            epochs_since_lr: 0,
            history: Vec::new(),
        }
    }
}

/// Restores the checkpoint in `dir` into `model` and `adam`, returning its progress (with
/// `cfg` as its config); refuses a checkpoint written with other settings (only the stopping
/// rules may change on resume).
pub(super) fn restore(
    dir: &Path,
    cfg: &TrainConfig,
    model: &mut Model<f32>,
    adam: &mut Adam,
) -> Result<Progress> {
    // Tensors and progress come from one file, written by one rename: a kill at any
    // moment leaves either the previous checkpoint or the new one, never a mix.
    let path = dir.join(CHECKPOINT_WEIGHTS);
    let bytes = read_file(&path)?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| PipelineError::format(&path, format!("not a safetensors file: {e}")))?;
    let saved: Progress = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CHECKPOINT_PROGRESS_KEY))
        .ok_or_else(|| PipelineError::format(&path, "the checkpoint has no training progress"))
        .and_then(|json| {
            serde_json::from_str(json)
                .map_err(|e| PipelineError::format(&path, format!("bad training progress: {e}")))
        })?;
    // The stopping rules may change on resume (train longer); nothing else may.
    let comparable = |c: &TrainConfig| TrainConfig {
        epochs: None,
        patience: 0,
        ..c.clone()
    };
    if comparable(&saved.config) != comparable(cfg) {
        return Err(PipelineError::Config(format!(
            "{} was written with other training settings; train into a new folder or without resume",
            path.display()
        )));
    }
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| PipelineError::format(&path, format!("not a safetensors file: {e}")))?;
    let n = model.params.len();
    let params = read_tensor(&st, "params", &[n], &path)?;
    model.params = params.iter().map(|&v| v as f32).collect();
    adam.m = read_tensor(&st, "adam.m", &[n], &path)?;
    adam.v = read_tensor(&st, "adam.v", &[n], &path)?;
    adam.t = saved.adam_t;
    let mut progress = saved;
    progress.config = cfg.clone();
    Ok(progress)
}

/// Writes the checkpoint: tensors and progress in one file (one atomic rename), then a
/// readable copy of the progress.
pub(super) fn save(dir: &Path, progress: &Progress, model: &Model<f32>, adam: &Adam) -> Result<()> {
    let n = model.params.len();
    let progress_json = serde_json::to_string(progress)
        .map_err(|e| PipelineError::Config(format!("serialising progress: {e}")))?;
    let bytes = tensors_to_bytes_with(
        &[
            ("params".into(), vec![n], TensorData::F32(&model.params)),
            ("adam.m".into(), vec![n], TensorData::F64(&adam.m)),
            ("adam.v".into(), vec![n], TensorData::F64(&adam.v)),
        ],
        Some([(CHECKPOINT_PROGRESS_KEY.to_string(), progress_json)].into()),
    )?;
    write_atomic(&dir.join(CHECKPOINT_WEIGHTS), &bytes)?;
    write_json(&dir.join(CHECKPOINT_STATE), progress)
}
