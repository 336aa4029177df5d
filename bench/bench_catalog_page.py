"""Catalog page rerun benchmark: one Streamlit script run of app.py on the Catalog page.

Builds (once, in ``--home``) a text dataset of ``--rows`` rows (random sentences, 10
labels, a categorical ``source`` column, numeric ``score`` and ``length`` columns) with
a ``--dims``-d random imported embedding, then times ``AppTest.run()`` after warm-up
runs (warm caches), in three states: no filter, a label filter (about a tenth of the
rows), and a row detail open. Prints a markdown table of min / median / p90 wall times
of ``at.run()`` and the median CPU time of the script thread (the page's own cost,
less sensitive to other processes on a busy machine than wall time).

    /work/venv/bin/python bench/bench_catalog_page.py [--rows 100000] [--runs 15]
        [--home DIR] [--profile OUT.txt]

``--profile`` writes cProfile statistics of the script thread during the timed no-filter
runs (top 40 functions by cumulative time) to a text file. Timings include AppTest's own
overhead (about 50-70 ms a run: widget-state collection, thread start, tree parsing).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATASET = "bench"
WORDS = ["alpha", "beta", "gamma", "delta", "model", "vector", "search", "label", "image",
         "text", "query", "index", "cluster", "noise", "sample", "batch", "train", "valid",
         "error", "score", "review", "ship", "broken", "great", "slow", "fast"]


def build_dataset(home: Path, n: int, dims: int, seed: int = 0) -> None:
    """Ingest an ``n``-row text table into ``home`` and import (n, dims) random vectors."""
    from core.embeddings import write_embedding
    from core.ingest import ingest_table
    from core.workspace import open_workspace

    ws = open_workspace(home)
    if ws.has_dataset(DATASET) and ws.dataset(DATASET).row_count() == n:
        return
    rng = np.random.default_rng(seed)
    words = np.asarray(WORDS)[rng.integers(0, len(WORDS), (n, 12))]
    table = pd.DataFrame({
        "id": [f"doc-{i:07d}" for i in range(n)],
        "text": [" ".join(w) for w in words],
        "label": [f"label-{k}" for k in rng.integers(0, 10, n)],
        "source": np.asarray(["web", "mail", "chat", "forum", "phone"])[rng.integers(0, 5, n)],
        "score": rng.random(n).round(4),
        "length": rng.integers(5, 500, n),
    })
    src = home / "bench-source.parquet"
    table.to_parquet(src, index=False)
    ingest_table(ws, src, DATASET, format="parquet", replace=True)
    vectors = rng.standard_normal((n, dims), dtype=np.float32)
    write_embedding(ws.dataset(DATASET), f"random-{dims}", table["id"].tolist(), vectors,
                    {"encoder": None, "source": "imported"}, replace=True)


def new_app():
    """A fresh AppTest session of app.py on the Catalog page (default page)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    at.session_state["sidebar:dataset"] = DATASET
    return at


def check(at, expect: str) -> None:
    if at.exception:
        raise RuntimeError(f"page raised: {at.exception[0].value}")
    shown = [m.value for m in at.markdown]
    if not any(expect in s for s in shown):
        raise RuntimeError(f"expected {expect!r} on the page; got {shown[:5]}")


class ScriptHook:
    """Measures the script thread: AppTest runs the page in a ScriptRunner thread, which
    a profiler or CPU clock in the main thread would not see. While ``active``, records
    each run's thread CPU seconds in ``cpu`` and, if ``profile``, cProfiles it."""

    def __init__(self, profile: bool = False) -> None:
        from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

        self.profile = cProfile.Profile() if profile else None
        self.active = False
        self.cpu: list[float] = []
        original = ScriptRunner._run_script
        hook = self

        def run_script(runner, rerun_data) -> None:
            if not hook.active:
                return original(runner, rerun_data)
            t0 = time.thread_time()
            if hook.profile is not None:
                hook.profile.enable()
            try:
                return original(runner, rerun_data)
            finally:
                if hook.profile is not None:
                    hook.profile.disable()
                hook.cpu.append(time.thread_time() - t0)

        ScriptRunner._run_script = run_script

    def report(self, limit: int = 40) -> str:
        out = io.StringIO()
        pstats.Stats(self.profile, stream=out).sort_stats("cumulative").print_stats(limit)
        return out.getvalue()


def time_runs(at, runs: int, expect: str, hook: ScriptHook, warmup: int = 2
              ) -> tuple[list[float], list[float]]:
    """(wall seconds, script-thread CPU seconds) of ``runs`` reruns after ``warmup`` reruns."""
    for _ in range(warmup):
        at.run()
    check(at, expect)
    times = []
    hook.cpu = []
    hook.active = True
    for _ in range(runs):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    hook.active = False
    check(at, expect)
    return times, hook.cpu


def scenario(name: str, prepare: Callable[[object], str], runs: int, hook: ScriptHook
             ) -> tuple[str, list[float], list[float]]:
    at = new_app()
    at.run()
    expect = prepare(at)
    return (name, *time_runs(at, runs, expect, hook))


def ms_stats(seconds: list[float]) -> tuple[float, float, float]:
    """(min, median, p90) in milliseconds."""
    ms = sorted(t * 1000 for t in seconds)
    return ms[0], statistics.median(ms), ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--home", type=Path, default=None,
                        help="workspace to build the dataset in (default: a temp dir)")
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args(argv)

    tmp = None if args.home else tempfile.TemporaryDirectory(prefix="bench-catalog-")
    home = args.home or Path(tmp.name)
    t0 = time.perf_counter()
    build_dataset(home, args.rows, args.dims)
    print(f"dataset: {args.rows:,} rows, {args.dims}-d imported embedding "
          f"(ready in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    os.environ["CATALOG_HOME"] = str(home)
    os.environ["CATALOG_NO_DEMO"] = "1"

    n = args.rows
    labels = pd.read_parquet(home / "datasets" / DATASET / "rows.parquet", columns=["label"])
    n3 = int((labels["label"] == "label-3").sum())

    def no_filter(at) -> str:
        return f"**{n:,} of {n:,} rows**"

    def label_filter(at) -> str:
        at.multiselect(key=f"flt:{DATASET}:labels").select("label-3").run()
        return f"**{n3:,} of {n:,} rows**"

    def detail_open(at) -> str:
        next(b for b in at.button if b.key.startswith("catalog:Open:")).click().run()
        return f"**{n:,} of {n:,} rows**"

    hook = ScriptHook(profile=args.profile is not None)
    no_filter_result = scenario("no filter (50 cards)", no_filter, args.runs, hook)
    profile = hook.report() if args.profile else None
    hook.profile = None
    results = [no_filter_result,
               scenario("label filter (≈10% of rows)", label_filter, args.runs, hook),
               scenario("row detail open", detail_open, args.runs, hook)]

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nCatalog page rerun, {n:,} rows, {args.runs} timed runs after 2 warm-up runs "
          f"({os.cpu_count()} CPUs, load average {load}):\n")
    print("| state | wall min ms | wall median ms | wall p90 ms | script CPU median ms |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, cpu in results:
        lo, med, p90 = ms_stats(wall)
        print(f"| {name} | {lo:.0f} | {med:.0f} | {p90:.0f} | {ms_stats(cpu)[1]:.0f} |")
    if profile is not None:
        args.profile.write_text(profile)
        print(f"\nprofile of the no-filter runs: {args.profile}", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
