"""The distributed runners on local clusters (Ray num_cpus=2, Spark local[2], Dask
LocalCluster with 2 workers), bound to loopback: the rows equal a single-process run bit for bit.

`.ci/run` runs this file inside a private network namespace (only `lo`), so nothing can leave
the machine; `test_no_network_but_loopback` checks that when PARTICAST_NETNS=1.
"""

from __future__ import annotations

import os
import socket

import pandas as pd
import pyarrow as pa
import pytest

import particast
from particast import distributed
from conftest import H, split

def canon(t) -> pd.DataFrame:
    """Rows in one order, columns as plain pandas types, for a bit-for-bit comparison."""
    if isinstance(t, pa.Table):
        t = t.to_pandas()
    t = t.copy()
    t["unique_id"] = t["unique_id"].astype(str)
    t["ds"] = pd.to_datetime(t["ds"]).astype("datetime64[us]")
    return t.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def assert_same(a, b):
    a, b = canon(a), canon(b)
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        if c.startswith("particast"):
            x, y = a[c].to_numpy(), b[c].to_numpy()
            assert ((x == y) | (pd.isna(x) & pd.isna(y))).all(), c
        else:
            assert (a[c].astype(str) == b[c].astype(str)).all(), c


@pytest.fixture(scope="module")
def history(data):
    return split(data)[0]


def test_no_network_but_loopback():
    if os.environ.get("PARTICAST_NETNS") != "1":
        pytest.skip("not in a private network namespace (run through .ci/run)")
    with open("/proc/net/dev") as f:
        names = {line.split(":")[0].strip() for line in f.readlines()[2:]}
    assert names == {"lo"}, names
    s = socket.socket()
    s.settimeout(2)
    with pytest.raises(OSError):
        s.connect(("1.1.1.1", 80))


@pytest.fixture(scope="module")
def ray_ctx():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_forecast_and_score(ray_ctx, model, history, data):
    import ray

    ds = ray.data.from_arrow(history).repartition(3)
    fc = distributed.forecast(ds, model, h=H, partitions=4)
    got = pa.concat_tables(list(fc.iter_batches(batch_format="pyarrow", batch_size=None)))
    assert_same(got, model.forecast(history, h=H))
    sc = distributed.score(ray.data.from_arrow(data).repartition(3), model, partitions=4)
    got = pa.concat_tables(list(sc.iter_batches(batch_format="pyarrow", batch_size=None)))
    assert_same(got, model.score(data))


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2]")
        .appName("particast-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield s
    s.stop()


def test_spark_forecast_and_score(spark, model, history, data):
    sdf = spark.createDataFrame(history.to_pandas()).repartition(3)
    fc = distributed.forecast(sdf, model, h=H, partitions=4).toPandas()
    assert_same(fc, model.forecast(history, h=H))
    sc = distributed.score(spark.createDataFrame(data.to_pandas()).repartition(3), model).toPandas()
    assert_same(sc, model.score(data))


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask.dataframe")
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_forecast_and_score(dask_client, model, history, data):
    import dask.dataframe as dd

    ddf = dd.from_pandas(history.to_pandas(), npartitions=3)
    fc = distributed.forecast(ddf, model, h=H, partitions=4).compute()
    assert_same(fc, model.forecast(history, h=H))
    sc = distributed.score(dd.from_pandas(data.to_pandas(), npartitions=3), model).compute()
    assert_same(sc, model.score(data))


def test_unknown_engine_is_a_type_error(model, history):
    with pytest.raises(TypeError, match="Ray Dataset"):
        distributed.forecast(history, model, h=H)


def test_spark_structured_streaming_scorer_equals_one_pass(spark, model, data, tmp_path):
    """A file source read one file per micro-batch; `applyInPandasWithState` keeps each series'
    Scorer state (its state bytes and its held rows) in Spark's state store between batches.
    The scores equal one pass over the whole history."""
    import pyarrow.parquet as pq
    from pyspark.sql.streaming.state import GroupStateTimeout
    from pyspark.sql.types import BinaryType, BooleanType, DoubleType, StructField, StructType

    src = tmp_path / "incoming"
    src.mkdir()
    steps = data.num_rows // 6
    idx = pa.array([i % steps for i in range(data.num_rows)])
    import pyarrow.compute as pc

    # Files of 30, 1, 69, 100 and 88 steps per series.
    bounds = [0, 30, 31, 100, 200, steps]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        part = data.filter(pc.and_(pc.greater_equal(idx, a), pc.less(idx, b)))
        pq.write_table(part, src / f"part-{k}.parquet")
        # The file source takes files in modification-time order; files written within one
        # clock tick tie and come in any order, so each gets its own time, 10 s apart.
        t = 1_700_000_000 + 10 * k
        os.utime(src / f"part-{k}.parquet", (t, t))

    sample = spark.createDataFrame(data.slice(0, 1).to_pandas())
    in_schema = sample.schema
    out_schema = StructType(list(in_schema.fields))
    for name in ["particast-nll", "particast-pit", "particast-anomaly"]:
        out_schema = out_schema.add(name, DoubleType())
    out_schema = out_schema.add("particast-flag", BooleanType())
    state_schema = StructType([StructField("states", BinaryType()), StructField("held", BinaryType())])
    config, weights = model.to_bytes()

    def ipc(table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return sink.getvalue().to_pybytes()

    def score_group(key, frames, state):
        m = particast.Model.from_bytes(config, weights)
        if state.exists:
            states, held = state.get
            held = pa.ipc.open_stream(held).read_all() if held else None
            scorer = particast.Scorer(m, states=states or None, held=held)
        else:
            scorer = particast.Scorer(m)
        for pdf in frames:
            out = scorer.update(pa.Table.from_pandas(pdf, preserve_index=False))
            if out.num_rows:
                yield out.to_pandas()
        held = scorer.held()
        state.update((scorer.states() if len(scorer) else b"", ipc(held) if held is not None else b""))

    stream = (
        spark.readStream.schema(in_schema)
        .option("maxFilesPerTrigger", 1)
        .parquet(str(src))
        .groupBy("unique_id")
        .applyInPandasWithState(score_group, out_schema, state_schema, "append", GroupStateTimeout.NoTimeout)
    )
    batches = []
    query = (
        stream.writeStream.outputMode("append")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .foreachBatch(lambda df, epoch: batches.append((epoch, df.toPandas())))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(240)
    assert not query.isActive
    assert query.exception() is None
    assert len(batches) == len(bounds) - 1
    # The first two micro-batches score nothing: every series is still shorter than the
    # model's context (48 steps), so its rows wait in the state store; the third scores them.
    assert model.config["context"] == 48
    assert [len(b) for _, b in batches[:3]] == [0, 0, 6 * 100]
    got = pd.concat([b for _, b in batches])
    assert_same(got, model.score(data))
