"""Benchmarks of the Python package against the command line, each run in a fresh process.

Two benches, each printing a table and writing ``benches/results/NAME.json``:

- ``overhead`` (``python-overhead.json``): forecasting M4 Hourly (414 series, h = 48, sampled
  paths, 200 samples, levels 80/95, the forecast settings of ``pipelines/m4-hourly.toml``) with
  ``particast forecast`` against a Python process that reads the same Parquet file with polars,
  calls ``Model.forecast`` and writes the result with polars. Both from process start to exit;
  runs alternate, the median of ``--runs`` each is reported. Target: Python within 10%.
- ``ray`` (``python-ray.json``): scoring 10M rows (2,000 hourly series x 5,000 steps, the data
  of ``cargo bench --bench scale``) with ``particast.distributed.score`` on a local Ray cluster
  of 2 workers (1 thread each) against one process: ``particast score`` (streamed, bounded
  memory) and ``Model.score`` on a polars frame read whole. Peak memory is the largest sum,
  over the process and all its descendants (Ray's GCS, raylet and workers), of the proportional
  set size (PSS: shared pages such as Ray's object store counted once), sampled every 0.2 s;
  for one process also its ``ru_maxrss``.

Both use one model each, trained once with the CLI on a slice of the data (few epochs: the
benches measure the front ends, not accuracy). Data and models live under
``$CARGO_TARGET_DIR/bench-data`` (default ``target/bench-data``).

Run (with the package installed in the active venv and the CLI built, ``cargo build --release
--features cli``)::

    python benches/python.py overhead [--runs 3]
    python benches/python.py ray [--rows-scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DATA = TARGET / "bench-data"
BIN = Path(os.environ.get("PARTICAST_BENCH_BIN", TARGET / "release" / "particast"))
RESULTS = ROOT / "benches" / "results"
M4 = ROOT.parent / "shared" / "data" / "m4-hourly" / "Hourly-train.csv"


def tree_pss(proc: psutil.Process) -> tuple[int, int]:
    """PSS and RSS summed over ``proc`` and its descendants (processes that vanish are skipped)."""
    pss = rss = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0, 0
    for p in procs:
        try:
            m = p.memory_full_info()
            pss += m.pss
            rss += m.rss
        except psutil.Error:
            pass
    return pss, rss


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Runs ``cmd`` to completion: wall seconds, peak PSS/RSS of its process tree, ru_maxrss."""
    t = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    proc = psutil.Process(child.pid)
    peak_pss = peak_rss = 0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        pss, rss = tree_pss(proc)
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(0.2)
    seconds = time.perf_counter() - t
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {rc}")
    return dict(
        seconds=seconds,
        peak_tree_pss_bytes=peak_pss,
        peak_tree_rss_bytes=peak_rss,
        ru_maxrss_bytes=usage.ru_maxrss * 1024,
    )


def cli(*args: str) -> list[str]:
    return [str(BIN), "--quiet", *args]


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def train_model(data: Path, model: Path, context: int, horizon: int, hidden: int) -> Path:
    if not (model / "model.safetensors").exists():
        m = measure(
            cli(
                "train", "--input", str(data), "--model", str(model),
                "--epochs", "2", "--batches-per-epoch", "10", "--no-select",
                "--hidden", str(hidden), "--particles", "8",
                "--context", str(context), "--horizon", str(horizon),
            )
        )
        print(f"trained {model} in {m['seconds']:.1f} s", file=sys.stderr)
    return model


def write(name: str, doc: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")


def machine() -> dict:
    import particast

    return dict(
        cpus=os.cpu_count(),
        python=platform.python_version(),
        particast=getattr(particast, "__version__", None),
        binary=str(BIN),
    )


# --- overhead --------------------------------------------------------------------------------


def m4_long() -> Path:
    """M4 Hourly's training part as a long Parquet table (unique_id, ds step counter, y)."""
    out = DATA / "m4-hourly-long.parquet"
    if not out.exists():
        import polars as pl

        wide = pl.read_csv(M4, infer_schema=False).with_columns(pl.exclude("V1").cast(pl.Float64))
        long = (
            wide.unpivot(index="V1", variable_name="col", value_name="y")
            .drop_nulls("y")
            .with_columns(ds=pl.col("col").str.slice(1).cast(pl.Int64) - 2)
            .select(unique_id="V1", ds="ds", y=pl.col("y").cast(pl.Float64))
            .sort("unique_id", "ds")
        )
        DATA.mkdir(parents=True, exist_ok=True)
        long.write_parquet(out.with_suffix(".tmp"))
        os.replace(out.with_suffix(".tmp"), out)
    return out


def overhead(runs: int) -> None:
    data = m4_long()
    model = train_model(data, DATA / "m4-overhead-model", context=168, horizon=48, hidden=40)
    out_cli = DATA / "m4-forecast-cli.parquet"
    out_py = DATA / "m4-forecast-py.parquet"
    cli_cmd = cli(
        "forecast", "--input", str(data), "--model", str(model), "--horizon", "48",
        "--levels", "80,95", "--mode", "sample", "--samples", "200", "--output", str(out_cli),
    )
    py_cmd = py(
        "import polars as pl, particast\n"
        f"m = particast.load({str(model)!r})\n"
        f"df = pl.read_parquet({str(data)!r})\n"
        "fc = m.forecast(df, h=48, level=[80, 95], mode='sample', samples=200)\n"
        f"fc.write_parquet({str(out_py)!r})\n"
    )
    # Python only the call itself, in one process (the import and reading excluded).
    py_call = py(
        "import time, polars as pl, particast\n"
        f"m = particast.load({str(model)!r})\n"
        f"df = pl.read_parquet({str(data)!r})\n"
        "t = time.perf_counter()\n"
        "fc = m.forecast(df, h=48, level=[80, 95], mode='sample', samples=200)\n"
        "import sys; print(time.perf_counter() - t, file=sys.stderr)\n"
    )
    rows = {"cli": [], "python": []}
    for _ in range(runs):
        rows["cli"].append(measure(cli_cmd))
        rows["python"].append(measure(py_cmd))
    import polars as pl

    a, b = pl.read_parquet(out_cli), pl.read_parquet(out_py)
    same = a.columns == b.columns and a.equals(b)
    call = subprocess.run(py_call, capture_output=True, text=True, check=True)
    call_s = float(call.stderr.strip().splitlines()[-1])

    med = {k: statistics.median(r["seconds"] for r in v) for k, v in rows.items()}
    mem = {k: max(r["ru_maxrss_bytes"] for r in v) for k, v in rows.items()}
    ratio = med["python"] / med["cli"]
    print(f"M4 Hourly forecast, 414 series, h=48, 200 sampled paths, median of {runs} runs")
    print(f"{'front end':<12}{'seconds':>10}{'peak RSS MiB':>14}")
    for k in ("cli", "python"):
        print(f"{k:<12}{med[k]:>10.2f}{mem[k] / 2**20:>14.0f}")
    print(f"python / cli: {ratio:.3f} (target <= 1.10); Model.forecast call alone {call_s:.2f} s")
    print(f"same forecasts from both: {same}")
    write(
        "python-overhead",
        dict(
            bench="python-overhead",
            machine=machine(),
            runs=rows,
            median_seconds=med,
            python_over_cli=ratio,
            forecast_call_seconds=call_s,
            identical_output=same,
            settings=dict(h=48, levels=[80, 95], mode="sample", samples=200, hidden=40,
                          particles=8, context=168),
        ),
    )


# --- ray -------------------------------------------------------------------------------------


def scale_data(series: int, steps: int, name: str) -> Path:
    """Hourly series in time order (every row group holds every series), as the scale bench's."""
    out = DATA / f"{name}.parquet"
    if out.exists():
        return out
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    ids = np.array([f"series-{s:06d}" for s in range(series)])
    level = 10.0 + (np.arange(series) % 97)
    start = np.datetime64("2020-01-01T00:00:00", "us")
    per_group = max(1, 262_144 // series)
    tmp = out.with_suffix(".tmp")
    writer = None
    rng = np.random.default_rng(7)
    for g0 in range(0, steps, per_group):
        g1 = min(g0 + per_group, steps)
        t = np.repeat(np.arange(g0, g1), series)
        s = np.tile(np.arange(series), g1 - g0)
        y = level[s] * (1.0 + 0.3 * np.sin(t * 2 * np.pi / 24)) + rng.uniform(-0.5, 0.5, len(t))
        table = pa.table(
            dict(
                unique_id=pa.array(ids[s]),
                ds=pa.array(start + t.astype("timedelta64[h]")),
                y=pa.array(y),
            )
        )
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
    writer.close()
    os.replace(tmp, out)
    return out


def ray_bench(scale: float) -> None:
    series = max(2, int(2000 * scale))
    data = scale_data(series, 5000, f"python-score-{series}x5000")
    train = scale_data(100, 1000, "python-score-train")
    model = train_model(train, DATA / "python-score-model", context=96, horizon=48, hidden=32)
    rows = series * 5000
    outs = {k: DATA / f"python-score-{k}" for k in ("cli", "python", "ray")}
    for o in outs.values():
        subprocess.run(["rm", "-rf", str(o)], check=True)
    cmds = {
        "cli": cli("score", "--input", str(data), "--model", str(model),
                   "--output", str(outs["cli"]) + ".parquet"),
        "python": py(
            "import polars as pl, particast\n"
            f"m = particast.load({str(model)!r})\n"
            f"m.score(pl.read_parquet({str(data)!r})).write_parquet({str(outs['python']) + '.parquet'!r})\n"
        ),
        "ray": py(
            "import ray, particast\n"
            "from particast import distributed\n"
            "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,\n"
            "         _node_ip_address='127.0.0.1')\n"
            f"m = particast.load({str(model)!r})\n"
            f"ds = ray.data.read_parquet({str(data)!r})\n"
            f"distributed.score(ds, m).write_parquet({str(outs['ray'])!r})\n"
            "ray.shutdown()\n"
        ),
    }
    res = {}
    for k, cmd in cmds.items():
        env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1")
        res[k] = measure(cmd, env=env)
        res[k]["rows_per_second"] = rows / res[k]["seconds"]
        print(f"{k}: {res[k]['seconds']:.1f} s", file=sys.stderr)

    import polars as pl

    key = ["unique_id", "ds"]
    a = pl.read_parquet(str(outs["cli"]) + ".parquet").sort(key)
    b = pl.scan_parquet(str(outs["ray"]) + "/*.parquet").collect().sort(key)
    b = b.select(a.columns).cast(dict(zip(a.columns, a.dtypes)))
    same = a.equals(b)
    del a, b

    print(f"scoring {rows:,} rows ({series} series x 5000 steps), 2 cores")
    print(f"{'run':<34}{'seconds':>9}{'rows/s':>11}{'peak PSS MiB':>14}")
    names = {
        "cli": "particast score (one process)",
        "python": "Model.score, frame in memory",
        "ray": "Ray, 2 workers x 1 thread",
    }
    for k, r in res.items():
        print(f"{names[k]:<34}{r['seconds']:>9.1f}{r['rows_per_second']:>11.0f}"
              f"{r['peak_tree_pss_bytes'] / 2**20:>14.0f}")
    ratio = res["ray"]["seconds"] / res["cli"]["seconds"]
    print(f"Ray / one process (time): {ratio:.2f}; Ray rows equal the CLI's: {same}")
    write(
        "python-ray",
        dict(
            bench="python-ray",
            machine=machine(),
            rows=rows,
            series=series,
            runs=res,
            ray_over_cli_seconds=ratio,
            ray_over_python_seconds=res["ray"]["seconds"] / res["python"]["seconds"],
            ray_equals_cli=same,
        ),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="bench", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--runs", type=int, default=3)
    r = sub.add_parser("ray")
    r.add_argument("--rows-scale", type=float, default=1.0)
    args = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} not found: cargo build --release --features cli")
    if args.bench == "overhead":
        overhead(args.runs)
    else:
        ray_bench(args.rows_scale)


if __name__ == "__main__":
    main()
