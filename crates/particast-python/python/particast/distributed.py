"""Forecasting and scoring on Ray, Spark and Dask.

Each call forecasts (or scores) every series of a distributed frame with one trained model::

    from particast import distributed
    fc = distributed.forecast(ray_dataset, model, h=48)        # a Ray Dataset
    fc = distributed.forecast(spark_df, model, h=48)           # a Spark DataFrame
    sc = distributed.score(dask_df, model)                     # a Dask DataFrame

A series must be whole in one call, so rows are first partitioned by a hash of the id (Ray:
``groupby(bucket).map_groups``; Spark: ``groupBy(pmod(xxhash64(id), n)).applyInArrow``; Dask:
``shuffle(id)`` + ``map_partitions``), never mapped batch by batch as they happen to lie. The
model travels once per worker (a Spark broadcast; Ray and Dask ship its bytes with the tasks
and each worker process decodes it once). A series' forecast depends only on the model, the
seed and the series (sampled paths draw from a stream chosen by the series id), so the rows
equal a single-process ``model.forecast`` bit for bit, in another order.

Training stays one global model on one machine: collect the data (or a sample of series drawn
with the engine, e.g. ``ids = df.select(id).distinct().sample(0.1)`` and a join) to the driver
and call ``particast.fit``; then distribute the forecasts.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa

from . import Model, _frames, _from_bytes, _score_schema

_BUCKET = "__particast_bucket"
_MODELS: dict[str, Model] = {}


def _model(config: bytes, weights: bytes) -> Model:
    """The model of these bytes, decoded once per process."""
    key = hashlib.sha256(config + weights).hexdigest()
    m = _MODELS.get(key)
    if m is None:
        m = _MODELS[key] = _from_bytes(config, weights)
    return m


def _engine(data: Any) -> str:
    mod = type(data).__module__
    if mod.startswith("ray."):
        return "ray"
    if mod.startswith("pyspark."):
        return "spark"
    if mod.startswith("dask"):
        return "dask"
    raise TypeError(
        f"expected a Ray Dataset, a Spark DataFrame or a Dask DataFrame, got {mod}.{type(data).__name__}"
    )


class _Job:
    """One call's work on one group of whole series (an Arrow table), picklable."""

    def __init__(self, model: Model, what: str, args: dict, n_threads: int | None) -> None:
        self.config, self.weights = model.to_bytes()
        self.what = what
        self.args = args
        self.n_threads = n_threads

    def __call__(self, table: pa.Table) -> pa.Table:
        m = _model(self.config, self.weights)
        if _BUCKET in table.column_names:
            table = table.drop_columns([_BUCKET])
        if table.num_rows == 0:
            return self.empty(m, table)
        if self.what == "forecast":
            out = m.forecast(table, n_threads=self.n_threads, **self.args)
        else:
            out = m.score(table, n_threads=self.n_threads, **self.args)
        # Engines do not all take Arrow's view types (polars exports strings as views).
        return _frames.to_table(out)

    def empty(self, m: Model, table: pa.Table) -> pa.Table:
        return self.schema_from(m, table).empty_table()

    def schema_from(self, m: Model, sample: pa.Table) -> pa.Schema:
        """The output schema, from the output of one series of ``sample``."""
        if self.what == "score":
            return _score_schema(pa.schema([f for f in sample.schema if f.name != _BUCKET]))
        return self(sample).schema


def _one_series(table: pa.Table, id_col: str) -> pa.Table:
    import pyarrow.compute as pc

    first = table.column(id_col)[0]
    return table.filter(pc.equal(table.column(id_col), first))


def _run(data: Any, model: Model, what: str, args: dict, partitions: int | None, n_threads):
    id_col = args.get("id_col") or model.id_col
    job = _Job(model, what, args, n_threads)
    engine = _engine(data)
    if engine == "ray":
        return _ray(data, job, id_col, partitions)
    if engine == "spark":
        return _spark(data, job, id_col, partitions)
    return _dask(data, job, id_col, partitions)


def forecast(
    data: Any,
    model: Model,
    h: int,
    *,
    partitions: int | None = None,
    n_threads: int | None = 1,
    **options: Any,
) -> Any:
    """``model.forecast`` of every series of ``data`` (a Ray Dataset, Spark DataFrame or Dask
    DataFrame), as a frame of the same engine. ``partitions`` is the number of hash buckets
    (default: the engine's parallelism times 4); ``n_threads`` the threads per task (1: the
    engine's workers are the parallelism); ``options`` those of ``Model.forecast``."""
    return _run(data, model, "forecast", dict(options, h=h), partitions, n_threads)


def score(
    data: Any,
    model: Model,
    *,
    partitions: int | None = None,
    n_threads: int | None = 1,
    **options: Any,
) -> Any:
    """``model.score`` of every series of ``data``: its rows with the four score columns."""
    return _run(data, model, "score", dict(options), partitions, n_threads)


# --- Ray -------------------------------------------------------------------------------------


def _ray(ds: Any, job: _Job, id_col: str, partitions: int | None):
    import ray

    n = partitions or max(1, int(ray.cluster_resources().get("CPU", 1)) * 4)

    def bucket(batch: pa.Table) -> pa.Table:
        # Hash each distinct id once (a batch holds many rows of few series), then spread.
        ids = batch.column(id_col).cast(pa.string()).combine_chunks().dictionary_encode()
        per_id = [
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") % n
            for i in ids.dictionary.to_pylist()
        ]
        b = pa.array(per_id, pa.int64()).take(ids.indices)
        return batch.append_column(_BUCKET, b)

    def run(table: pa.Table) -> pa.Table:
        return job(table)

    return (
        ds.map_batches(bucket, batch_format="pyarrow")
        .groupby(_BUCKET)
        .map_groups(run, batch_format="pyarrow")
    )


# --- Spark -----------------------------------------------------------------------------------


def _spark(df: Any, job: _Job, id_col: str, partitions: int | None):
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    spark = df.sparkSession
    n = partitions or max(1, spark.sparkContext.defaultParallelism * 4)
    # The output schema, from one series forecast on the driver.
    first = df.select(id_col).limit(1).collect()
    if not first:
        sample = df.limit(0).toArrow()
    else:
        sample = df.filter(F.col(id_col) == first[0][0]).toArrow()
    m = _model(job.config, job.weights)
    spark_schema = from_arrow_schema(job.schema_from(m, sample))
    # The Arrow types Spark expects back for that schema (string, not large_string, ...).
    schema = to_arrow_schema(spark_schema, timezone=spark.conf.get("spark.sql.session.timeZone"))
    bc = spark.sparkContext.broadcast((job.config, job.weights))
    what, args, threads = job.what, job.args, job.n_threads

    def run(table: pa.Table) -> pa.Table:
        config, weights = bc.value
        local = _Job.__new__(_Job)
        local.config, local.weights = config, weights
        local.what, local.args, local.n_threads = what, args, threads
        out = local(table)
        return out.cast(schema) if out.schema != schema else out

    bucketed = df.withColumn(_BUCKET, F.pmod(F.xxhash64(F.col(id_col)), F.lit(n)))
    return bucketed.groupBy(_BUCKET).applyInArrow(run, spark_schema)


# --- Dask ------------------------------------------------------------------------------------


def _dask(ddf: Any, job: _Job, id_col: str, partitions: int | None):
    import pandas as pd

    n = partitions or ddf.npartitions
    head = ddf.head(1, npartitions=-1)
    if len(head):
        first = head[id_col].iloc[0]
        sample = pa.Table.from_pandas(ddf[ddf[id_col] == first].compute(), preserve_index=False)
    else:
        sample = pa.Table.from_pandas(head, preserve_index=False)
    m = _model(job.config, job.weights)
    meta = job.schema_from(m, sample).empty_table().to_pandas()

    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        out = job(pa.Table.from_pandas(pdf, preserve_index=False))
        return out.to_pandas()

    return ddf.shuffle(on=id_col, npartitions=n).map_partitions(run, meta=meta)

