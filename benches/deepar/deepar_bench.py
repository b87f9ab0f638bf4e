"""GluonTS DeepAR (PyTorch, CPU) timed on M4 Hourly, for `cargo bench --bench deepar`.

Trains DeepAR with the settings the Rust side passes (hidden size, context length, batch size,
gradient steps, lags), then times three things a user does, and prints one JSON object:
  - training: windows per second (gradient steps x batch size / wall time of `estimator.train`);
  - forecasting: series per second (`predictor.predict` over every series, `samples` paths each);
  - scoring: observations per second: the exact log-likelihood of every observation after the
    first `context + max lag` steps, in windows of `horizon` future steps (DeepAR is window based:
    each window re-runs the network over its past), through `DeepARModel.log_prob`.
Python stays here, under benches/; the library never calls it.
"""

import argparse
import json
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch


def read_m4(path):
    series = []
    with open(path) as f:
        next(f)
        for line in f:
            cells = line.rstrip("\n").split(",")
            name = cells[0].strip('"')
            values = [float(c.strip('"')) for c in cells[1:] if c.strip('"') != ""]
            series.append((name, np.asarray(values, dtype=np.float32)))
    return series


def main():
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--hidden", type=int, default=40)
    p.add_argument("--context", type=int, default=168)
    p.add_argument("--horizon", type=int, default=48)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batches-per-epoch", type=int, default=50)
    p.add_argument("--lags", default="1,24,168")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    from gluonts.dataset.common import ListDataset
    from gluonts.torch.model.deepar import DeepAREstimator
    import lightning.pytorch as pl

    pl.seed_everything(a.seed, workers=True)
    raw = read_m4(a.train)
    start = pd.Period("2000-01-01 00:00", freq="h")
    data = ListDataset(
        [{"target": y, "start": start, "item_id": n} for n, y in raw], freq="h"
    )
    lags = [int(x) for x in a.lags.split(",")]
    epochs = max(1, a.steps // a.batches_per_epoch)
    est = DeepAREstimator(
        freq="h",
        prediction_length=a.horizon,
        context_length=a.context,
        num_layers=1,
        hidden_size=a.hidden,
        dropout_rate=0.0,
        lags_seq=lags,
        batch_size=a.batch,
        num_batches_per_epoch=a.batches_per_epoch,
        num_parallel_samples=a.samples,
        trainer_kwargs={
            "max_epochs": epochs,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "default_root_dir": tempfile.mkdtemp(prefix="particast-deepar-"),
        },
    )
    t0 = time.perf_counter()
    predictor = est.train(data)
    train_s = time.perf_counter() - t0
    steps = epochs * a.batches_per_epoch

    t0 = time.perf_counter()
    forecasts = list(predictor.predict(data))
    forecast_s = time.perf_counter() - t0
    assert len(forecasts) == len(raw)

    # Scoring: one entry per window of `horizon` future steps, ending at every multiple of the
    # horizon from the end of each series, as far back as a full past allows.
    module = predictor.prediction_net
    model = module.model
    past = model._past_length
    entries = []
    for n, y in raw:
        end = len(y)
        while end - a.horizon - past >= 0:
            entries.append({"target": y[:end], "start": start, "item_id": n})
            end -= a.horizon
    windows = ListDataset(entries, freq="h")
    observations = len(entries) * a.horizon
    transformation = est.create_transformation()
    t0 = time.perf_counter()
    loader = est.create_validation_data_loader(
        transformation.apply(windows, is_train=True), module
    )
    total_ll = 0.0
    model.eval()
    with torch.no_grad():
        for batch in loader:
            inputs = {k: v for k, v in batch.items() if k != "future_observed_values"}
            total_ll += float(model.log_prob(**inputs).sum())
    score_s = time.perf_counter() - t0

    out = {
        "tool": "gluonts DeepAR (torch %s, gluonts %s)"
        % (torch.__version__, __import__("gluonts").__version__),
        "threads": a.threads,
        "gradient_steps": steps,
        "batch_size": a.batch,
        "train_seconds": train_s,
        "train_windows_per_second": steps * a.batch / train_s,
        "forecast_series": len(raw),
        "forecast_samples": a.samples,
        "forecast_seconds": forecast_s,
        "forecast_series_per_second": len(raw) / forecast_s,
        "score_observations": observations,
        "score_seconds": score_s,
        "score_observations_per_second": observations / score_s,
        "score_mean_nll": -total_ll / observations,
    }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
