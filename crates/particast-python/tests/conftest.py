"""Shared fixtures: a small hourly panel and a model trained on it once per session."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

import particast

N_SERIES = 6
STEPS = 24 * 12
H = 12


def panel(series: int = N_SERIES, steps: int = STEPS, id_col="unique_id", time_col="ds", target_col="y") -> pa.Table:
    """Hourly series with a daily cycle, different levels, a little deterministic noise."""
    ids, ts, ys = [], [], []
    start = dt.datetime(2024, 1, 1)
    for s in range(series):
        for t in range(steps):
            ids.append(f"s{s}")
            ts.append(start + dt.timedelta(hours=t))
            noise = math.sin(t * 12.9898 + s * 78.233) * 0.2
            ys.append(10.0 + 3 * s + 2 * math.sin(2 * math.pi * t / 24) + noise)
    return pa.table(
        {
            id_col: pa.array(ids, pa.string()),
            time_col: pa.array(ts, pa.timestamp("us")),
            target_col: pa.array(ys, pa.float64()),
        }
    )


def split(table: pa.Table, h: int = H, id_col="unique_id"):
    """(history, the last h steps of every series)."""
    import pyarrow.compute as pc

    steps = table.num_rows // N_SERIES
    idx = pa.array([i % steps for i in range(table.num_rows)])
    return table.filter(pc.less(idx, steps - h)), table.filter(pc.greater_equal(idx, steps - h))


TRAIN = dict(epochs=2, batches_per_epoch=6, seed=3, select=False)


@pytest.fixture(scope="session")
def data() -> pa.Table:
    return panel()


@pytest.fixture(scope="session")
def model(data) -> particast.Model:
    history, _ = split(data)
    return particast.fit(history, h=H, **TRAIN)
