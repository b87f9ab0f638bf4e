"""particast: probabilistic forecasting and anomaly scoring with particle RNNs.

Frames in and out in the Nixtla layout (one row per series and time step)::

    import particast
    m = particast.fit(df, h=48, id_col="unique_id", time_col="ds", target_col="y")
    fc = m.forecast(df, h=48, level=[80, 95])   # unique_id, ds, particast, particast-lo-80, ...
    scores = m.score(df)                        # df's rows with particast-nll, -pit, -anomaly, -flag
    m.save("model"); m = particast.load("model")

Any frame that exports an Arrow stream is accepted (polars, pyarrow, pandas, duckdb); results
come back in the caller's frame type (polars for polars, pyarrow for pyarrow, pandas for pandas).
Settings are the keys of the command line's pipeline files (``particast train --help``); an
unknown key is a ``ConfigError``. Rust computes with the GIL released; training progress is
logged to the ``particast`` logger (``progress=True`` adds a bar on standard error).
"""

from __future__ import annotations

import json
import logging
import sys

import pyarrow as pa
from typing import Any, Iterable, Mapping, Sequence

from . import _frames
from ._particast import (
    ConfigError,
    InputError,
    ModelError,
    ParticastError,
    TrainingError,
)
from ._particast import Model as _Model
from ._particast import Scorer as _Scorer
from ._particast import cross_validation as _cross_validation
from ._particast import evaluate as _evaluate
from ._particast import fit as _fit
from ._particast import version as _version

__all__ = [
    "fit",
    "cross_validation",
    "load",
    "evaluate",
    "Model",
    "Scorer",
    "ParticastError",
    "InputError",
    "ConfigError",
    "ModelError",
    "TrainingError",
]

__version__ = _version()

logger = logging.getLogger("particast")


def _json(d: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in d.items() if v is not None})


def _targets(target_col: str | Sequence[str]) -> list[str]:
    return [target_col] if isinstance(target_col, str) else list(target_col)


class _Bar:
    """A progress bar on standard error (tqdm when installed)."""

    def __init__(self) -> None:
        self._tqdm = None
        self._last = -1

    def __call__(self, done: int, total: int, what: str) -> None:
        if self._tqdm is None:
            try:
                from tqdm.auto import tqdm

                self._tqdm = tqdm(total=total, unit=what, file=sys.stderr)
            except ImportError:
                self._tqdm = False
        if self._tqdm:
            self._tqdm.update(done - self._tqdm.n)
            return
        pct = int(100 * done / max(total, 1))
        if pct != self._last:
            self._last = pct
            filled = pct // 4
            end = "\n" if done >= total else ""
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (25 - filled)}] {done}/{total} {what}{end}")
            sys.stderr.flush()

    def close(self) -> None:
        if self._tqdm:
            self._tqdm.close()


def fit(
    df: Any,
    h: int | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str | Sequence[str] = "y",
    *,
    freq: str | None = None,
    covariate_cols: Sequence[str] | None = None,
    futr_exog: Sequence[str] | None = None,
    hist_exog: Sequence[str] | None = None,
    stat_exog: Sequence[str] | None = None,
    sort: bool = True,
    ingest: Mapping[str, Any] | None = None,
    dir: str | None = None,
    progress: bool = False,
    n_threads: int | None = None,
    **train_options: Any,
) -> "Model":
    """Trains one global model on every series of ``df``.

    ``h`` is the horizon the model is trained and selected for (default: the recipe's);
    ``freq`` the data's step (``"1h"``; found from the data when absent); ``sort`` sorts rows by
    time within each series. ``train_options`` are the ``[train]`` keys of a pipeline file
    (``epochs``, ``hidden``, ``particles``, ``seed``, ...); ``ingest`` further ``[input]`` keys.
    ``futr_exog`` (known ahead: forecasting then needs ``X_df``), ``hist_exog`` (known up to
    now) and ``stat_exog`` (constant per series) name covariate columns by kind, as
    neuralforecast's ``futr_exog_list``, ``hist_exog_list`` and ``stat_exog_list`` do; naming any
    reads only the named ones.
    Training writes checkpoints to ``dir`` when given (a model directory), else to a temporary
    folder removed at the end.
    """
    opts = _reading(
        ingest, id_col, time_col, target_col, sort, freq, covariate_cols,
        futr_exog, hist_exog, stat_exog,
    )
    train = dict(train_options)
    if h is not None:
        train["horizon"] = h
    inner = _with_bar(
        progress,
        lambda bar: _fit(
            _frames.to_arrow(df),
            _json(opts),
            _json(train),
            dir=dir,
            logger=logger,
            progress=bar,
            n_threads=n_threads,
        ),
    )
    return Model(inner)


def _reading(ingest, id_col, time_col, target_col, sort, freq, covariate_cols,
             futr_exog, hist_exog, stat_exog) -> dict:
    """The ``[input]`` keys of ``fit`` and ``cross_validation``."""
    opts = dict(ingest or {})
    opts.update(id_col=id_col, time_col=time_col, target_cols=_targets(target_col), sort=sort)
    if freq is not None:
        opts["frequency"] = freq
    if covariate_cols is not None:
        opts["covariate_cols"] = list(covariate_cols)
    for key, cols in (("futr_exog", futr_exog), ("hist_exog", hist_exog), ("stat_exog", stat_exog)):
        if cols is not None:
            opts[key] = list(cols)
    return opts


def _with_bar(progress: bool, call):
    """``call(bar)`` with a progress bar when asked, closed whatever happens."""
    bar = _Bar() if progress else None
    try:
        return call(bar)
    finally:
        if bar is not None:
            bar.close()


def load(path: str) -> "Model":
    """Loads a model directory (written by ``Model.save`` or ``particast train``)."""
    return Model(_Model.load(str(path)))


def _from_bytes(config: bytes, weights: bytes) -> "Model":
    return Model(_Model.from_bytes(config, weights))


class Model:
    """A trained model. Pickles as its bytes (config and weights), so engines can ship it."""

    def __init__(self, inner: _Model) -> None:
        self._inner = inner
        self.config: dict = json.loads(inner.config)

    @property
    def id_col(self) -> str:
        return self.config["ingest"]["id_col"]

    @property
    def time_col(self) -> str:
        return self.config["ingest"]["time_col"]

    @property
    def target_cols(self) -> list[str]:
        return list(self.config["ingest"]["target_cols"])

    def __repr__(self) -> str:
        m = self.config["model"]
        return (
            f"particast.Model(targets={self.target_cols}, hidden={m.get('hidden')}, "
            f"particles={m.get('particles')}, horizon={self.config.get('horizon')})"
        )

    def __reduce__(self):
        config, weights = self._inner.to_bytes()
        return (_from_bytes, (config, weights))

    def to_bytes(self) -> tuple[bytes, bytes]:
        """The bytes of ``config.json`` and ``model.safetensors``."""
        return self._inner.to_bytes()

    @staticmethod
    def from_bytes(config: bytes, weights: bytes) -> "Model":
        """The model of ``to_bytes``, checked as a model directory is."""
        return _from_bytes(config, weights)

    def save(self, path: str) -> None:
        """Writes the model directory (``config.json``, ``model.safetensors``) atomically."""
        self._inner.save(str(path))

    def _input(self, id_col, time_col, target_col, sort, ingest) -> str:
        opts = dict(ingest or {})
        if id_col is not None:
            opts["id_col"] = id_col
        if time_col is not None:
            opts["time_col"] = time_col
        if target_col is not None:
            opts["target_cols"] = _targets(target_col)
        opts["sort"] = sort
        return _json(opts)

    def forecast(
        self,
        df: Any,
        h: int,
        level: Iterable[float] = (80, 95),
        mode: str = "sample",
        *,
        id_col: str | None = None,
        time_col: str | None = None,
        target_col: str | Sequence[str] | None = None,
        sort: bool = True,
        ingest: Mapping[str, Any] | None = None,
        n_threads: int | None = None,
        X_df: Any = None,
        **forecast_options: Any,
    ) -> Any:
        """Forecasts ``h`` steps after the end of every series of ``df``: one row per series
        and step with the mean (``particast``), ``particast-median`` and the ``level`` intervals
        (``particast-lo-95``, ``particast-hi-95``). ``mode`` is ``sample`` (sampled paths),
        ``particle`` or ``particle-mean``; ``forecast_options`` are the ``[forecast]`` keys
        (``samples``, ``seed``, ``nonnegative``, ``calibrated``). Column names follow the
        model's (or the given) ``id_col`` and ``time_col``. ``X_df`` (as in Nixtla's
        libraries): the future covariates of a model trained with ``futr_exog`` (one row per
        series and step of the horizon, with the id, time and future covariate columns);
        without it such a model raises an error naming them."""
        cfg = dict(forecast_options)
        cfg.update(horizon=h, levels=[float(v) for v in level], mode=mode)
        table = self._inner.forecast(
            _frames.to_arrow(df),
            _json(cfg),
            self._input(id_col, time_col, target_col, sort, ingest),
            future=None if X_df is None else _frames.to_arrow(X_df),
            n_threads=n_threads,
        )
        return _frames.from_arrow(table, _frames.kind(df))

    def score(
        self,
        df: Any,
        *,
        id_col: str | None = None,
        time_col: str | None = None,
        target_col: str | Sequence[str] | None = None,
        sort: bool = True,
        ingest: Mapping[str, Any] | None = None,
        n_threads: int | None = None,
        **score_options: Any,
    ) -> Any:
        """``df``'s rows with ``particast-nll`` (the exact one-step predictive NLL),
        ``particast-pit``, ``particast-anomaly`` (in [0, 1]) and ``particast-flag`` appended;
        ``score_options`` are the ``[score]`` keys (``method``, ``threshold``, ``suppress``, ...),
        among them online adaptation: ``adapt=200, adapt_lr=1e-4`` keeps learning every 200
        rows of a series from the rows already scored (``adapt_steps``, ``adapt_windows``,
        ``adapt_memory``, ``adapt_params="all"|"head"``); the default flags a run of 3 or more
        identical values by the rank of its length among the series' past runs (``stuck=3``,
        a flat-lined sensor); NAB's recipe is ``method="surprise", smooth=20,
        long_window=8640, novelty=0.025, calm=0, stuck=0, adapt=200, adapt_lr=1e-4,
        adapt_memory=20000`` (a calibrated surprise with an alarm hold-off, 1 for values outside
        the range of the last ``long_window`` rows, and online adaptation).
        """
        table, _ = self._inner.score(
            _frames.to_arrow(df),
            _json(score_options),
            self._input(id_col, time_col, target_col, sort, ingest),
            n_threads=n_threads,
        )
        return _frames.from_arrow(table, _frames.kind(df))


def _score_schema(schema: pa.Schema) -> pa.Schema:
    """The columns scoring appends to an input of ``schema``."""
    return pa.schema(
        list(schema)
        + [
            pa.field("particast-nll", pa.float64()),
            pa.field("particast-pit", pa.float64()),
            pa.field("particast-anomaly", pa.float64()),
            pa.field("particast-flag", pa.bool_()),
        ]
    )


class Scorer:
    """Scores a stream micro-batch by micro-batch: keeps each series' state (particles,
    weights, scale, lags, the anomaly method's memory), so ``update`` after ``update`` gives the
    numbers of one pass over the whole history. States travel as bytes (``states()``) or as an
    Arrow table (``states_table()``), and come back with ``Scorer.from_states``.

    A series' scale is fixed by its first ``context`` steps (the model's training context), so
    the rows of a new series are held until it has that many: ``update`` returns the rows it
    scored (held rows come back with the call that completes them) and ``pending()`` says how
    many rows wait. A scorer that must survive a restart keeps both: ``states()`` and
    ``held()`` (``Scorer(model, states=..., held=...)`` takes them back)."""

    def __init__(
        self,
        model: Model,
        *,
        states: Any = None,
        held: Any = None,
        id_col: str | None = None,
        time_col: str | None = None,
        target_col: str | Sequence[str] | None = None,
        sort: bool = True,
        ingest: Mapping[str, Any] | None = None,
        **score_options: Any,
    ) -> None:
        if states is not None and not isinstance(states, (bytes, bytearray)):
            states = _frames.to_arrow(states)
        elif isinstance(states, bytearray):
            states = bytes(states)
        self.model = model
        self._context = int(model.config["context"])
        self._id_col = id_col or model.id_col
        self._pending: pa.Table | None = None
        if held is not None:
            held = _frames.to_table(held)
            self._pending = held if held.num_rows else None
        self._inner = _Scorer(
            model._inner,
            _json(score_options),
            model._input(id_col, time_col, target_col, sort, ingest),
            states,
        )
        self._known: set[str] = set()
        if len(self._inner):
            self._known = set(self._inner.states_table().column("unique_id").to_pylist())

    @classmethod
    def from_states(cls, model: Model, states: Any, held: Any = None, **options: Any) -> "Scorer":
        """A scorer continuing ``states`` (bytes from ``states()`` or a table from
        ``states_table()``, or a state file's bytes from ``particast score --state-out``) and
        holding ``held`` (from ``held()``)."""
        return cls(model, states=states, held=held, **options)

    def update(self, df: Any, n_threads: int | None = None) -> Any:
        """Scores the new rows of ``df`` (each series' rows must follow its last scored step)
        and returns the rows scored, with the score columns; on an error the states (and the
        held rows) are unchanged."""
        import pyarrow.compute as pc

        like = _frames.kind(df)
        table = _frames.to_table(df)
        if self._pending is not None:
            held = self._pending
            table = pa.concat_tables([held, table.select(held.column_names).cast(held.schema)])
        ready, held = self._split_new(table)
        if ready.num_rows == 0:
            out = _score_schema(ready.schema).empty_table()
        else:
            out = self._inner.update(ready, n_threads=n_threads)
            self._known.update(pc.unique(ready.column(self._id_col).cast(pa.string())).to_pylist())
        self._pending = held
        return _frames.from_arrow(out, like)

    def _split_new(self, table: pa.Table) -> tuple[pa.Table, pa.Table | None]:
        """(rows to score now, rows of new series still shorter than the context)."""
        import pyarrow.compute as pc

        ids = table.column(self._id_col).cast(pa.string())
        known = self._known
        counts = pc.value_counts(ids).to_pylist()
        short = [c["values"] for c in counts if c["values"] not in known and c["counts"] < self._context]
        if not short:
            return table, None
        is_short = pc.is_in(ids, value_set=pa.array(short, pa.string()))
        return table.filter(pc.invert(is_short)), table.filter(is_short)

    def held(self) -> pa.Table | None:
        """The held rows (a ``pyarrow.Table``), or None when no row waits."""
        return self._pending

    def pending(self) -> int:
        """Rows held for new series not yet ``context`` steps long."""
        return 0 if self._pending is None else self._pending.num_rows

    def states(self) -> bytes:
        """The states as the bytes of a state file (Parquet)."""
        return self._inner.states_bytes()

    def states_table(self) -> Any:
        """The states as a ``pyarrow.Table``, one row per series."""
        return self._inner.states_table()

    def __len__(self) -> int:
        return len(self._inner)


def evaluate(
    forecasts: Any,
    actuals: Any,
    history: Any = None,
    *,
    season: int = 1,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    sort: bool = True,
) -> dict:
    """Accuracy of ``forecasts`` (``Model.forecast``'s output) against ``actuals``: sMAPE,
    MAPE, MASE and MSIS (scaled by ``history``'s seasonal naive errors at ``season``), ND,
    NRMSE, weighted quantile loss, CRPS and interval coverage, as ``particast evaluate``."""
    opts = dict(id_col=id_col, time_col=time_col, target_cols=[target_col], sort=sort)
    out = _evaluate(
        _frames.to_arrow(forecasts),
        _frames.to_arrow(actuals),
        None if history is None else _frames.to_arrow(history),
        _json(opts),
        season=season,
    )
    return json.loads(out)


def cross_validation(
    df: Any,
    h: int,
    n_windows: int = 3,
    step_size: int | None = None,
    *,
    level: Iterable[float] = (80, 95),
    mode: str = "sample",
    refit: bool = False,
    season: int | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str | Sequence[str] = "y",
    freq: str | None = None,
    futr_exog: Sequence[str] | None = None,
    hist_exog: Sequence[str] | None = None,
    stat_exog: Sequence[str] | None = None,
    sort: bool = True,
    ingest: Mapping[str, Any] | None = None,
    dir: str | None = None,
    progress: bool = False,
    n_threads: int | None = None,
    return_metrics: bool = False,
    **train_options: Any,
) -> Any:
    """Rolling-origin cross-validation, as ``particast cv`` and Nixtla's ``cross_validation``:
    ``n_windows`` cutoffs per series counted back from its end, ``step_size`` apart (default
    ``h``); one model trained on every series up to its first cutoff (``refit=True``: one per
    window), every window forecast ``h`` steps. Returns the rows (id, time, ``cutoff``, ``y``,
    ``particast``, ``particast-median``, ``particast-lo-80``, ...) as the caller's frame type;
    with ``return_metrics=True`` also the report (metrics per window and overall, a dict).
    ``season`` is the seasonality of MASE and MSIS (default: the model's shortest season);
    ``train_options`` are the ``[train]`` keys, as for ``fit``."""
    opts = _reading(
        ingest, id_col, time_col, target_col, sort, freq, None, futr_exog, hist_exog, stat_exog
    )
    train = dict(train_options)
    train.setdefault("horizon", h)
    fc = dict(horizon=h, levels=[float(v) for v in level], mode=mode)
    cv = dict(n_windows=n_windows, refit=refit)
    if step_size is not None:
        cv["step_size"] = step_size
    if season is not None:
        cv["season"] = season
    table, report = _with_bar(
        progress,
        lambda bar: _cross_validation(
            _frames.to_arrow(df),
            _json(opts),
            _json(train),
            _json(fc),
            _json(cv),
            dir=dir,
            logger=logger,
            progress=bar,
            n_threads=n_threads,
        ),
    )
    out = _frames.from_arrow(table, _frames.kind(df))
    return (out, json.loads(report)) if return_metrics else out


try:  # the polars namespaces, when polars is installed
    from . import _polars  # noqa: F401
except ImportError:  # pragma: no cover - polars is optional
    pass
