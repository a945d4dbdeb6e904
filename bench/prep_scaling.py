"""Data prep scaling: the data_prep job at 1M, 4M and 16M interaction events, against a full scan and pandas.

For each size (synthetic logs from ``bench/synth_logs.py``, generated once and cached as Parquet), in one
SparkSession (``local[2]``): a *full scan* (an aggregate that decodes every column the job reads, the
floor for any job over this input), then the *prep job* (``data_prep.job.run``), then, at the sizes in
``--pandas-sizes``, a single-process pandas implementation of the same validation filter, rewards and
pairs (``bench/pandas_prep.py``) in a child process. After each prep run its outputs are read back,
cached, and written again from memory (timed): the cost of encoding what the job produces, mostly
rendered text several times the size of its input, which no implementation of the same exports avoids;
``(scan + rewrite)/scan`` is thus a floor for ``prep/scan``. Peak memory is the peak RSS of the whole process
tree (this Python driver, the JVM, Spark's Python workers) sampled during each phase; for pandas it is
the child's own peak. Last line: ``prep_vs_scan_ratio=<x>`` for the largest size.

    .venv/bin/python bench/prep_scaling.py [--sizes 1M,4M,16M] [--pandas-sizes 1M,16M] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from synth_logs import NAMES, cached_logs, parse_size

HERE = Path(__file__).resolve().parent
GIB = 1024**3


class Probe:
    """Wall time, CPU time and peak RSS of this process and all its descendants (JVM, Python workers).

    CPU seconds are summed over the tree, including workers that exited (their parent's children
    times), so they hold up on a busy shared machine where wall time does not.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.wall = self.cpu = 0.0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _tree() -> tuple[int, float]:
        me = psutil.Process()
        rss, cpu = 0, 0.0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a Python worker may exit between listing and reading
                t = proc.cpu_times()
                rss += proc.memory_info().rss
                cpu += t.user + t.system + t.children_user + t.children_system
        return rss, cpu

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree()[0])
            self._stop.wait(self.interval)

    def __enter__(self) -> Probe:
        self.peak, self._cpu0 = self._tree()
        self._wall0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.wall = time.perf_counter() - self._wall0
        self._stop.set()
        self._thread.join()
        rss, cpu = self._tree()
        self.peak, self.cpu = max(self.peak, rss), cpu - self._cpu0


def spark_session(driver_memory: str) -> SparkSession:
    """``local[2]`` through data_prep's own session helper, with the driver heap set before the JVM starts."""
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {driver_memory} pyspark-shell"
    from data_prep.session import get_spark

    return get_spark("local[2]", app_name="bench-prep-scaling")


def full_scan(spark: SparkSession, paths: dict[str, Path]) -> None:
    """XOR of a hash of every column of every input: each value is read and decoded once."""
    for name in NAMES:
        frame = spark.read.parquet(str(paths[name]))
        frame.agg(F.count(F.lit(1)), *[F.bit_xor(F.xxhash64(c)) for c in frame.columns]).collect()


def run_prep(spark: SparkSession, paths: dict[str, Path], out: Path) -> dict[str, Any]:
    """The data_prep job with its defaults: the one place that knows ``data_prep.job.run``'s signature."""
    from data_prep.job import run

    return run(
        spark,
        responses=str(paths["responses"]),
        interactions=str(paths["interactions"]),
        catalog=str(paths["catalog"]),
        intents=None,
        out=str(out),
        hash_key="bench",
    )


def parquet_bytes(path: Path) -> int:
    """Uncompressed size of the column chunks of every Parquet file under ``path`` (from the footers)."""
    import pyarrow.parquet as pq

    total = 0
    for file in path.rglob("*.parquet"):
        meta = pq.ParquetFile(file).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            total += sum(group.column(c).total_uncompressed_size for c in range(group.num_columns))
    return total


def rewrite_outputs(spark: SparkSession, out: Path, work: Path) -> Probe:
    """Time writing the prep job's outputs again from memory: the floor of any job that produces them.

    Every output directory of the manifest is read, cached and counted (not timed), then written as
    Parquet (timed): encoding and compressing the rows, mostly rendered prompt and answer text, with
    none of the job's computation.
    """
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    frames = [spark.read.parquet(str(out / name)).cache() for name in outputs]
    for frame in frames:
        frame.count()
    with Probe() as probe:
        for name, frame in zip(outputs, frames, strict=True):
            frame.write.parquet(str(work / "rewrite" / name))
    for frame in frames:
        frame.unpersist()
    shutil.rmtree(work / "rewrite", ignore_errors=True)
    return probe


def run_pandas(paths: dict[str, Path]) -> dict[str, Any]:
    """``bench/pandas_prep.py`` in a child process, so that its peak RSS is its own."""
    args = [sys.executable, str(HERE / "pandas_prep.py"), *[f"--{n}={paths[n]}" for n in NAMES]]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:  # e.g. killed for memory at the largest size: say so, keep the Spark numbers
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(spark: SparkSession, events: int, with_pandas: bool, work: Path) -> dict[str, Any]:
    """Scan, prep and (optionally) pandas on the logs of ``events`` interactions."""
    paths = cached_logs(events)
    with Probe() as scan:
        full_scan(spark, paths)
    with Probe() as prep:
        manifest = run_prep(spark, paths, work / f"out-{events}")
    write = rewrite_outputs(spark, work / f"out-{events}", work)
    row: dict[str, Any] = {
        "events": events,
        "in_bytes": sum(parquet_bytes(paths[name]) for name in NAMES),
        "out_bytes": parquet_bytes(work / f"out-{events}"),
    }
    shutil.rmtree(work / f"out-{events}", ignore_errors=True)
    for name, probe in (("scan", scan), ("prep", prep), ("write", write)):
        row.update({f"{name}_s": probe.wall, f"{name}_cpu": probe.cpu, f"{name}_rss": probe.peak})
    row["pairs"] = manifest["outputs"]["pairs"]["rows"]
    row["response_pairs"] = manifest["strategy_counts"].get("response", 0)
    if with_pandas:
        pandas = run_pandas(paths)
        row.update({f"pandas_{k}": pandas[k] for k in ("s", "cpu", "rss", "pairs", "error") if k in pandas})
    return row


def _fmt_size(events: int) -> str:
    return f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events / 1e3:g}k"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def report(rows: list[dict[str, Any]]) -> None:
    """Print the Spark and pandas tables, the scaling ratios and, last, ``prep_vs_scan_ratio``."""
    print(_row("events", "full scan wall / CPU", "prep wall / CPU", "events/s (wall)", "prep/scan wall / CPU",
               "peak RSS scan", "peak RSS prep", "pairs (response)", "outputs rewritten wall / CPU",
               "(scan + rewrite)/scan wall", "bytes in → out (uncompressed)"))  # fmt: skip
    print("|" + "---|" * 11)
    for r in rows:
        print(_row(
            _fmt_size(r["events"]),
            f"{r['scan_s']:.1f} s / {r['scan_cpu']:.1f} s",
            f"{r['prep_s']:.1f} s / {r['prep_cpu']:.1f} s",
            f"{r['events'] / r['prep_s']:,.0f}",
            f"{r['prep_s'] / r['scan_s']:.1f} / {r['prep_cpu'] / r['scan_cpu']:.1f}",
            f"{r['scan_rss'] / GIB:.2f} GiB",
            f"{r['prep_rss'] / GIB:.2f} GiB",
            f"{r['pairs']:,} ({r['response_pairs']:,})",
            f"{r['write_s']:.1f} s / {r['write_cpu']:.1f} s",
            f"{(r['scan_s'] + r['write_s']) / r['scan_s']:.1f}",
            f"{r['in_bytes'] / 1e6:,.0f} MB → {r['out_bytes'] / 1e6:,.0f} MB",
        ))  # fmt: skip
    print()
    print(_row("events", "pandas wall / CPU", "pandas peak RSS", "pandas pairs", "Spark prep / pandas wall / CPU",
               "Spark prep / pandas peak RSS"))  # fmt: skip
    print("|" + "---|" * 6)
    for r in (r for r in rows if "pandas_error" in r):
        print(_row(_fmt_size(r["events"]), f"failed: {r['pandas_error']}", "", "", "", ""))
    for r in (r for r in rows if "pandas_s" in r):
        print(_row(
            _fmt_size(r["events"]),
            f"{r['pandas_s']:.1f} s / {r['pandas_cpu']:.1f} s",
            f"{r['pandas_rss'] / GIB:.2f} GiB",
            f"{r['pandas_pairs']:,}",
            f"{r['prep_s'] / r['pandas_s']:.1f} / {r['prep_cpu'] / r['pandas_cpu']:.1f}",
            f"{r['prep_rss'] / r['pandas_rss']:.1f}",
        ))  # fmt: skip
    first, last = rows[0], rows[-1]
    name = f"{_fmt_size(last['events'])}_vs_{_fmt_size(first['events'])}"
    print(f"linear_ratio_{name}={last['events'] / first['events']:g}")
    print(f"prep_time_ratio_{name}={last['prep_s'] / first['prep_s']:.2f}")
    print(f"prep_cpu_ratio_{name}={last['prep_cpu'] / first['prep_cpu']:.2f}")
    print(f"prep_vs_scan_cpu_ratio={last['prep_cpu'] / last['scan_cpu']:.2f}")
    print(f"scan_plus_rewrite_vs_scan_ratio={(last['scan_s'] + last['write_s']) / last['scan_s']:.2f}")
    print(f"prep_vs_scan_ratio={last['prep_s'] / last['scan_s']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,4M,16M", help="interaction events per run, comma-separated")
    parser.add_argument("--pandas-sizes", default="1M,16M", help="sizes that also run the pandas version")
    parser.add_argument("--quick", action="store_true", help="smoke run: --sizes 100k,400k, pandas at both")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--work", type=Path, default=Path(".cache/bench/prep/work"))
    args = parser.parse_args()
    if args.quick:
        args.sizes = args.pandas_sizes = "100k,400k"
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    pandas_sizes = {parse_size(s) for s in args.pandas_sizes.split(",") if s}
    for events in sizes:  # generate every input before any timing
        cached_logs(events)

    spark = spark_session(args.driver_memory)
    print(f"spark={spark.version} master={spark.sparkContext.master} cores={os.cpu_count()} "
          f"ram={psutil.virtual_memory().total / GIB:.1f}GiB driver_memory={args.driver_memory}")  # fmt: skip
    # Warm-up on a small input, so the first measured size does not pay for JVM start-up and JIT.
    warm = parse_size("50k")
    full_scan(spark, cached_logs(warm))
    run_prep(spark, cached_logs(warm), args.work / "warmup")
    shutil.rmtree(args.work, ignore_errors=True)
    rows = []
    for events in sizes:
        rows.append(measure(spark, events, events in pandas_sizes, args.work))
        print(json.dumps(rows[-1]), flush=True)
    spark.stop()
    report(rows)


if __name__ == "__main__":
    main()
