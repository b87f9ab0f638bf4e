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
