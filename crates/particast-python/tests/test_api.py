"""The Python API on every frame type: fit, forecast, score, evaluate, save/load, pickling,
errors, the polars namespaces and the streaming scorer."""

from __future__ import annotations

import logging
import math
import pickle

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import particast
from conftest import H, TRAIN, panel, split


def sort(t: pa.Table, id_col="unique_id", time_col="ds") -> pa.Table:
    return t.sort_by([(id_col, "ascending"), (time_col, "ascending")])


def as_arrow(obj) -> pa.Table:
    if isinstance(obj, pl.DataFrame):
        return obj.to_arrow()
    if isinstance(obj, pl.LazyFrame):
        return obj.collect().to_arrow()
    if isinstance(obj, pd.DataFrame):
        return pa.Table.from_pandas(obj, preserve_index=False)
    return obj


INPUTS = {
    "pyarrow": lambda t: t,
    "polars": lambda t: pl.from_arrow(t),
    "polars-lazy": lambda t: pl.from_arrow(t).lazy(),
    "pandas": lambda t: t.to_pandas(),
    "large_string": lambda t: t.set_column(0, "unique_id", t.column(0).cast(pa.large_string())),
    "string_view": lambda t: t.set_column(0, "unique_id", t.column(0).cast(pa.string_view())),
    "record_batch_reader": lambda t: pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=100)),
    # A duckdb relation exports the stream itself (the query runs when it is read).
    "duckdb": lambda t: duckdb.from_arrow(t),
}
OUTPUT_TYPE = {
    "pyarrow": pa.Table,
    "polars": pl.DataFrame,
    "polars-lazy": pl.LazyFrame,
    "pandas": pd.DataFrame,
    "large_string": pa.Table,
    "string_view": pa.Table,
    "record_batch_reader": pa.Table,
    "duckdb": pa.Table,
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_forecast_every_input_type_same_numbers(model, data, kind):
    history, _ = split(data)
    expected = model.forecast(history, h=H)
    got = model.forecast(INPUTS[kind](history), h=H)
    assert isinstance(got, OUTPUT_TYPE[kind])
    got = as_arrow(got)
    assert got.num_rows == 6 * H
    for name in ["particast", "particast-median", "particast-lo-95", "particast-hi-80"]:
        assert got.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert got.column("unique_id").cast(pa.string()).to_pylist() == expected.column("unique_id").to_pylist()


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_score_every_input_type(model, data, kind):
    expected = model.score(data)
    got = model.score(INPUTS[kind](data))
    assert isinstance(got, OUTPUT_TYPE[kind])
    got = as_arrow(got)
    assert got.num_rows == data.num_rows
    assert got.column_names == ["unique_id", "ds", "y", "particast-nll", "particast-pit", "particast-anomaly", "particast-flag"]
    assert got.column("particast-nll").to_pylist() == expected.column("particast-nll").to_pylist()


def test_fit_on_every_input_type_gives_the_same_model(data):
    history, _ = split(data)
    a = particast.fit(history, h=H, **TRAIN)
    b = particast.fit(pl.from_arrow(history).lazy(), h=H, **TRAIN)
    c = particast.fit(history.to_pandas(), h=H, **TRAIN)
    d = particast.fit(duckdb.from_arrow(history), h=H, **TRAIN)
    # Same weights bit for bit (the config differs only in the training's wall time).
    assert a.to_bytes()[1] == b.to_bytes()[1] == c.to_bytes()[1] == d.to_bytes()[1]


def test_forecast_is_deterministic_across_threads(model, data):
    history, _ = split(data)
    one = model.forecast(history, h=H, n_threads=1)
    two = model.forecast(history, h=H, n_threads=2)
    assert one.equals(two)


def test_user_column_names_are_kept():
    t = panel(id_col="store", time_col="when", target_col="sales")
    history, _ = split(t, id_col="store")
    m = particast.fit(history, h=H, id_col="store", time_col="when", target_col="sales", **TRAIN)
    assert (m.id_col, m.time_col, m.target_cols) == ("store", "when", ["sales"])
    fc = m.forecast(pl.from_arrow(history), h=H, level=[90], mode="particle")
    assert fc.columns[:2] == ["store", "when"]
    assert "particast-lo-90" in fc.columns and "particast-lo-95" not in fc.columns
    assert fc.schema["when"] == pl.Datetime("us")
    sc = m.score(pl.from_arrow(t))
    assert sc.columns[:3] == ["store", "when", "sales"]


def test_score_keeps_input_rows_and_extra_columns(model, data):
    df = pl.from_arrow(data).with_columns(pl.lit("x").alias("note")).sample(fraction=1.0, shuffle=True, seed=1)
    sc = model.score(df)
    assert sc.height == df.height
    assert sc["note"].to_list() == df["note"].to_list()
    # The rows come back in the input's order (pandas users align on the index).
    assert sc.select("unique_id", "ds").equals(df.select("unique_id", "ds"))
    pdf = df.to_pandas()
    spd = model.score(pdf)
    assert list(spd["unique_id"]) == list(pdf["unique_id"])
    assert (spd["ds"].to_numpy() == pdf["ds"].to_numpy()).all()
    # Unsorted rows are sorted within each series before scoring (sort=True by default).
    base = pl.from_arrow(model.score(data))
    joined = sc.join(base, on=["unique_id", "ds"], suffix="_b")
    assert (joined["particast-nll"].fill_null(0) == joined["particast-nll_b"].fill_null(0)).all()


def test_evaluate(model, data):
    history, future = split(data)
    fc = model.forecast(pl.from_arrow(history), h=H)
    m = particast.evaluate(fc, pl.from_arrow(future), pl.from_arrow(history), season=24)
    assert m["series"] == 6 and m["observations"] == 6 * H
    assert 0 < m["mase"] < 5
    levels = dict((round(level), cov) for level, cov in m["coverage"])
    assert set(levels) == {80, 95}


def test_save_load_and_pickle(model, data, tmp_path):
    history, _ = split(data)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "config.json").is_file()
    loaded = particast.load(tmp_path / "m")
    pickled = pickle.loads(pickle.dumps(model))
    ref = model.forecast(history, h=H)
    assert loaded.forecast(history, h=H).equals(ref)
    assert pickled.forecast(history, h=H).equals(ref)
    assert pickled.to_bytes()[1] == model.to_bytes()[1]
    # The config's settings survive exactly (training-report floats go through serde_json's
    # parser, which may round their last digit).
    for key in ["model", "data", "ingest", "inputs", "context", "horizon"]:
        assert pickled.config[key] == model.config[key]


def test_errors(model, data, tmp_path):
    assert issubclass(particast.InputError, particast.ParticastError)
    with pytest.raises(particast.InputError, match="missing column `y`"):
        model.score(data.drop_columns(["y"]))
    with pytest.raises(particast.ConfigError, match="unknown field `nonsense`"):
        particast.fit(data, nonsense=1)
    with pytest.raises(particast.ConfigError, match="horizon"):
        model.forecast(data, h=0)
    with pytest.raises(particast.ModelError):
        particast.load(tmp_path / "nothing")
    with pytest.raises(particast.ModelError):
        particast.Model.from_bytes(b"{}", b"")
    dup = pa.concat_tables([data, data.slice(0, 1)])
    with pytest.raises(particast.InputError, match="s0"):
        model.score(dup)
    with pytest.raises(TypeError, match="expected a polars DataFrame"):
        model.score([1, 2, 3])


def test_training_logs_and_progress(data, caplog, capsys):
    history, _ = split(data)
    with caplog.at_level(logging.INFO, logger="particast"):
        particast.fit(history, h=H, progress=True, **TRAIN)
    assert any("epoch 2" in r.getMessage() for r in caplog.records)
    out, err = capsys.readouterr()
    assert out == ""
    assert "12/12" in err or "12" in err


def test_polars_namespaces(model, data):
    history, _ = split(data)
    df = pl.from_arrow(history)
    fc = df.particast.forecast(model, h=H)
    assert fc.equals(model.forecast(df, h=H))
    lazy = df.lazy().particast.score(model)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().height == df.height


def test_scorer_micro_batches_equal_one_pass(model, data):
    df = pl.from_arrow(data)
    one_pass = model.score(df)
    scorer = particast.Scorer(model)
    parts = []
    steps = df.height // 6
    bounds = [0, 30, 31, 100, 200, steps]
    for a, b in zip(bounds, bounds[1:]):
        part = df.filter(pl.int_range(pl.len()).over("unique_id").is_between(a, b - 1))
        parts.append(scorer.update(part))
        if a == 0:
            # A restart while rows are held: the held rows travel with the (empty) states.
            assert scorer.pending() == 6 * 30 and len(scorer) == 0
            scorer = particast.Scorer.from_states(model, scorer.states(), held=scorer.held())
        if a == 100:
            # States survive a round trip through bytes and through Arrow.
            scorer = particast.Scorer.from_states(model, scorer.states())
            scorer = particast.Scorer.from_states(model, scorer.states_table())
    assert len(scorer) == 6 and scorer.pending() == 0
    streamed = pl.concat(parts).sort(["unique_id", "ds"])
    ref = one_pass.sort(["unique_id", "ds"])
    for c in ["particast-nll", "particast-pit", "particast-anomaly", "particast-flag"]:
        assert streamed[c].to_list() == ref[c].to_list(), c


def test_scorer_refuses_rows_before_its_state_and_keeps_it(model, data):
    df = pl.from_arrow(data)
    scorer = particast.Scorer(model)
    first = df.filter(pl.int_range(pl.len()).over("unique_id") < 100)
    assert scorer.update(first).height == first.height
    before = scorer.states()
    with pytest.raises(particast.InputError):
        scorer.update(first.head(10))
    assert scorer.states() == before


def test_scorer_holds_new_series_until_their_scale_is_known(model, data):
    df = pl.from_arrow(data)
    context = model.config["context"]
    scorer = particast.Scorer(model)
    head = df.filter(pl.int_range(pl.len()).over("unique_id") < context - 1)
    assert scorer.update(head).height == 0
    assert scorer.pending() == head.height
    rest = df.filter(pl.int_range(pl.len()).over("unique_id") >= context - 1)
    out = scorer.update(rest)
    assert out.height == df.height and scorer.pending() == 0


def test_future_covariates_need_x_df():
    table = panel()
    promo = [float((i * 7) % 11 < 3) for i in range(table.num_rows)]
    y = pc.add(table.column("y"), pc.multiply(pa.array(promo), 4.0))
    table = table.set_column(2, "y", y).append_column("promo", pa.array(promo))
    history, future = split(table)
    m = particast.fit(history, h=H, futr_exog=["promo"], **TRAIN)
    with pytest.raises(particast.ParticastError, match=r"future covariates \[promo\]"):
        m.forecast(history, H)
    x_df = future.select(["unique_id", "ds", "promo"])
    fc = m.forecast(pl.from_arrow(history), H, X_df=pl.from_arrow(x_df))
    assert fc.height == H * 6
    flipped = x_df.set_column(2, "promo", pc.subtract(1.0, x_df.column("promo")))
    other = m.forecast(pl.from_arrow(history), H, X_df=flipped)
    assert not fc["particast"].equals(pl.from_arrow(as_arrow(other))["particast"])
    with pytest.raises(particast.ParticastError, match="missing|has rows for"):
        m.forecast(history, H, X_df=x_df.slice(0, x_df.num_rows - 1))


def test_cross_validation_in_nixtla_layout(data):
    cv, report = particast.cross_validation(
        pl.from_arrow(data), h=H, n_windows=2, step_size=6, return_metrics=True, **TRAIN
    )
    assert isinstance(cv, pl.DataFrame)
    assert cv.columns[:5] == ["unique_id", "ds", "cutoff", "y", "particast"]
    assert cv.height == 6 * 2 * H
    assert len(report["windows"]) == 2 and report["overall"]["mase"] > 0
    # Each window's first step is the one after its cutoff; y is the input's value there.
    first = cv.group_by(["unique_id", "cutoff"]).agg(pl.col("ds").min().alias("start"))
    assert (first["start"] - first["cutoff"]).dt.total_hours().to_list() == [1] * 12
    joined = cv.join(pl.from_arrow(data), on=["unique_id", "ds"], suffix="_in")
    assert joined["y"].equals(joined["y_in"])


def test_score_with_online_adaptation(model, data):
    frozen = as_arrow(model.score(data))
    adapted = as_arrow(model.score(data, adapt=24, adapt_lr=1e-3, n_threads=1))
    again = as_arrow(model.score(data, adapt=24, adapt_lr=1e-3, n_threads=2))
    a = adapted.column("particast-nll").to_pylist()
    f = frozen.column("particast-nll").to_pylist()
    assert a == again.column("particast-nll").to_pylist()
    assert all(v is None or math.isfinite(v) for v in a)
    assert a != f
    with pytest.raises(particast.ConfigError, match="adapt_lr"):
        model.score(data, adapt=24, adapt_lr=-1.0)


def test_score_with_the_surprise_method_and_novelty(model, data):
    options = dict(method="surprise", smooth=20, long_window=500, novelty=0.05, calm=0)
    one = as_arrow(model.score(data, n_threads=1, **options))
    two = as_arrow(model.score(data, n_threads=2, **options))
    a = one.column("particast-anomaly").to_pylist()
    assert a == two.column("particast-anomaly").to_pylist()
    assert all(v is None or 0.0 <= v <= 1.0 for v in a)
    assert a != as_arrow(model.score(data)).column("particast-anomaly").to_pylist()
    with pytest.raises(particast.ConfigError, match="novelty"):
        model.score(data, method="surprise", novelty=-1.0)


def test_a_stuck_sensor_is_flagged_by_default(model, data):
    # The first series sticks at one value for its last 24 rows (rows are in series order).
    ys = data.column("y").to_pylist()
    steps = data.num_rows // 6
    for i in range(steps - 24, steps):
        ys[i] = ys[steps - 25]
    stuck = data.set_column(2, "y", pa.array(ys, pa.float64()))
    default = as_arrow(model.score(stuck)).column("particast-anomaly").to_pylist()
    off = as_arrow(model.score(stuck, stuck=0, calm=0)).column("particast-anomaly").to_pylist()
    # From the third identical value on (the second repeat), every row scores above 0.999.
    assert all(a > 0.999 for a in default[steps - 23 : steps]), default[steps - 24 : steps]
    assert not all(a > 0.999 for a in off[steps - 23 : steps])
    # The other series have no repeats: the rule changes nothing there.
    off_calm = as_arrow(model.score(stuck, calm=0)).column("particast-anomaly").to_pylist()
    no_rule = as_arrow(model.score(stuck, calm=0, stuck=0)).column("particast-anomaly").to_pylist()
    assert off_calm[steps:] == no_rule[steps:]
