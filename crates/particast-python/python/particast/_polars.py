"""polars namespaces: ``df.particast.forecast(m, h=24)``, ``lf.particast.score(m)``."""

from __future__ import annotations

from typing import Any

import polars as pl


class _Namespace:
    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def forecast(self, model: Any, h: int, **options: Any) -> Any:
        """``model.forecast(frame, h, ...)``: forecast rows (a LazyFrame for a LazyFrame)."""
        return model.forecast(self._frame, h, **options)

    def score(self, model: Any, **options: Any) -> Any:
        """``model.score(frame, ...)``: the frame's rows with the score columns."""
        return model.score(self._frame, **options)

    def fit(self, h: int | None = None, **options: Any) -> Any:
        """``particast.fit(frame, h, ...)``: a model trained on the frame."""
        import particast

        return particast.fit(self._frame, h, **options)


@pl.api.register_dataframe_namespace("particast")
class DataFrameNamespace(_Namespace):
    """particast on a polars DataFrame."""


@pl.api.register_lazyframe_namespace("particast")
class LazyFrameNamespace(_Namespace):
    """particast on a polars LazyFrame (collected with the streaming engine)."""
