"""Frames in and out: any Arrow stream goes in; results come back as the caller's frame type."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def kind(obj: Any) -> str:
    """The frame family of ``obj``: ``polars``, ``polars-lazy``, ``pandas``, ``pyarrow`` or
    ``arrow`` (any other object exporting an Arrow stream; results come back as pyarrow)."""
    module = type(obj).__module__.split(".")[0]
    name = type(obj).__name__
    if module == "polars":
        return "polars-lazy" if name == "LazyFrame" else "polars"
    if module == "pandas":
        return "pandas"
    if isinstance(obj, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        return "pyarrow"
    if hasattr(obj, "__arrow_c_stream__"):
        return "arrow"
    raise TypeError(
        f"expected a polars DataFrame or LazyFrame, a pandas DataFrame, a pyarrow Table or any "
        f"object with __arrow_c_stream__, got {type(obj).__module__}.{name}"
    )


def to_arrow(obj: Any) -> Any:
    """An object the extension reads (it exports ``__arrow_c_stream__``)."""
    k = kind(obj)
    if k == "polars-lazy":
        try:
            return obj.collect(engine="streaming")
        except TypeError:  # polars before the streaming engine's name
            return obj.collect()
    if k == "pandas":
        return pa.Table.from_pandas(obj, preserve_index=False)
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    return obj


def from_arrow(table: pa.Table, like: str) -> Any:
    """``table`` as the frame family ``like``."""
    if like in ("polars", "polars-lazy"):
        import polars as pl

        df = pl.from_arrow(table)
        return df.lazy() if like == "polars-lazy" else df
    if like == "pandas":
        return table.to_pandas()
    # pyarrow users get the types pyarrow itself makes (not all of its kernels take views).
    return plain(table)


_VIEWS = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}


def plain(table: pa.Table) -> pa.Table:
    """``table`` with Arrow's view types (polars exports strings as views) cast to their large
    equivalents."""
    if any(f.type in _VIEWS for f in table.schema):
        table = table.cast(pa.schema([f.with_type(_VIEWS.get(f.type, f.type)) for f in table.schema]))
    return table


def to_table(obj: Any) -> pa.Table:
    """``obj`` as one ``pyarrow.Table``."""
    obj = to_arrow(obj)
    if isinstance(obj, pa.RecordBatchReader):
        obj = obj.read_all()
    elif not isinstance(obj, pa.Table):
        obj = pa.table(obj)
    return plain(obj)
