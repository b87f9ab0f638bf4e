//! Conditioning a series on its recent past, the step scoring (at its start and at every
//! refresh) and forecasting (at the origin) share: a window of the series in the model's
//! transformed units ([`crate::TrainedModel::transformed`]) with the scale of its first
//! steps, exactly as a training window is scaled, and fresh particles run through it.

use particast_ingest::{PreparedSeries, WindowData};
use particast_kernels::{score, ParticleState};

use crate::error::Result;
use crate::inputs::{Affine, KernelBatch};
use crate::model_dir::TrainedModel;

/// The `len` steps of `s` (transformed) from `start` (negative or past the end: padded as
/// missing), with the affine map of their first `scale_steps` steps.
pub(crate) fn scaled_window(
    tm: &TrainedModel,
    s: &PreparedSeries,
    start: i64,
    len: usize,
    scale_steps: usize,
) -> (WindowData, Affine) {
    let spec = &tm.meta.inputs;
    let w = WindowData::of(s, start, len, &spec.features);
    let affine = spec
        .scaling
        .affine(&w.values, &w.mask, spec.features.n_targets, scale_steps);
    (w, affine)
}

/// Fresh particles conditioned on the last `context` steps of `s` (transformed), copied into
/// `windows` rows, with the scale of those steps.
pub(crate) fn condition_end(
    tm: &TrainedModel,
    s: &PreparedSeries,
    windows: usize,
) -> Result<(ParticleState<f32>, Affine)> {
    let ctx = tm.meta.context;
    let start = s.len() as i64 - ctx as i64;
    let (w, affine) = scaled_window(tm, s, start, ctx, ctx);
    let mut kb = KernelBatch::default();
    let spec = &tm.meta.inputs;
    let before = spec.covariates_before(s, start);
    spec.push_window(&w, ctx, &affine, usize::MAX, before.as_deref(), &mut kb);
    let mut state = ParticleState::new(&tm.model, 1);
    score(&tm.model, &mut state, &kb.view(0), false)?;
    Ok((state.select(&vec![0; windows]), affine))
}
