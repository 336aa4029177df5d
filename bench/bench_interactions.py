"""Server time of each common interaction at ``--rows`` rows (AppTest, warm caches).

Builds (once, in ``--home``) two text datasets of ``--rows`` rows with a random imported
embedding (``bench`` and ``bench-b``, see ``bench_catalog_page.build_dataset``), then,
for each interaction, times the script run it triggers (``AppTest.run()`` wall time after
warm-up runs), ``--runs`` times, alternating between two states so every timed run is a
real change of input:

- select: what a tile click costs the server: the grid fragment's rerun (the browser
  sends the page's selection once the clicks settle; only the grid fragment reruns).
  Timed as a script holding just the grid over the same rows (what the fragment runs).
- filter (a label on / off), sort (by score / as listed), next page (1 ⇄ 2), open a row
  (the detail dialog), switch page (Catalog ⇄ Text search), switch dataset (bench ⇄
  bench-b): full script runs of app.py, an upper bound for the ones that rerun a
  fragment in the browser (sort, next page).

Prints a markdown table of median / p90 / max milliseconds against the 300 ms target.

    /work/venv/bin/python bench/bench_interactions.py [--rows 100000] [--runs 15] [--home DIR]

Timings include AppTest's own overhead (about 50-70 ms a run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
TARGET_MS = 300.0
DATASETS = ("bench", "bench-b")


def _build(home: Path, rows: int, dims: int) -> None:
    from bench_catalog_page import DATASET, build_dataset

    from core.workspace import open_workspace

    build_dataset(home, rows, dims)
    ws = open_workspace(home)
    if not ws.has_dataset("bench-b"):
        import shutil

        shutil.copytree(ws.dataset(DATASET).path, ws.home / "datasets" / "bench-b")


def _app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    at.session_state["sidebar:dataset"] = DATASETS[0]
    return at


def _grid_only(home: str, dataset: str) -> None:
    """The grid fragment's work: the rows, the page of tiles and its payload."""
    from core.workspace import open_workspace
    from ui.grid import render_grid
    from ui.loaders import effective_rows

    ws = open_workspace(home)
    render_grid(ws.dataset(dataset), effective_rows(ws, dataset), key="catalog")


def _timed(at, change: Callable[[object, int], None], runs: int, warmup: int = 3) -> list[float]:
    out = []
    for i in range(warmup + runs):
        change(at, i)
        t0 = time.perf_counter()
        at.run()
        elapsed = (time.perf_counter() - t0) * 1000
        if at.exception:
            raise RuntimeError(f"the app raised: {at.exception}")
        if i >= warmup:
            out.append(elapsed)
    return out


def _row(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    med = statistics.median(ms)
    verdict = "ok" if med <= TARGET_MS else "over"
    return f"| {name} | {med:.0f} | {p90:.0f} | {ms[-1]:.0f} | {med / TARGET_MS:.2f} | {verdict} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    home = args.home or Path(tempfile.gettempdir()) / f"catalog-bench-interactions-{args.rows}"
    os.environ["CATALOG_HOME"] = str(home)
    os.environ["CATALOG_NO_DEMO"] = "1"
    t0 = time.perf_counter()
    _build(home, args.rows, args.dims)
    print(f"datasets ready in {time.perf_counter() - t0:.1f} s ({args.rows:,} rows each)",
          file=sys.stderr)
    from streamlit.testing.v1 import AppTest

    results: dict[str, list[float]] = {}

    grid = AppTest.from_function(_grid_only, args=(str(home), DATASETS[0]), default_timeout=600)

    def select(at, i: int) -> None:
        at.session_state["selection"] = {DATASETS[0]: {f"doc-{i:07d}": True}}
    results["select (grid fragment rerun)"] = _timed(grid, select, args.runs)

    at = _app()
    at.run()

    def filter_label(at, i: int) -> None:
        at.multiselect(key=f"flt:{DATASETS[0]}:labels").set_value(["label-3"] if i % 2 == 0 else [])
    results["filter (label on/off)"] = _timed(at, filter_label, args.runs)

    def sort(at, i: int) -> None:
        at.selectbox(key="catalog:sort").set_value("score" if i % 2 == 0 else "(as listed)")
    results["sort (score / as listed)"] = _timed(at, sort, args.runs)

    def next_page(at, i: int) -> None:
        at.number_input(key="catalog:page").set_value(2 if i % 2 == 0 else 1)
    results["next page (1 / 2)"] = _timed(at, next_page, args.runs)

    def open_row(at, i: int) -> None:
        at.session_state["detail_row"] = f"doc-{i:07d}"
        at.session_state["detail_pending"] = True
    results["open a row (detail dialog)"] = _timed(at, open_row, args.runs)

    def switch_page(at, i: int) -> None:
        at.switch_page(str(REPO / "pages" / ("text_search.py" if i % 2 == 0 else "catalog.py")))
    results["switch page (Catalog / Text search)"] = _timed(at, switch_page, args.runs)

    def switch_dataset(at, i: int) -> None:
        at.selectbox(key="sidebar:dataset").set_value(DATASETS[(i + 1) % 2])
    results["switch dataset (bench / bench-b)"] = _timed(at, switch_dataset, args.runs)

    print(f"\n{args.rows:,} rows, {args.runs} timed runs each (warm), AppTest wall time of the "
          f"script run an interaction triggers; target {TARGET_MS:.0f} ms\n")
    print("| interaction | median ms | p90 ms | max ms | median / target | |")
    print("|---|---|---|---|---|---|")
    for name, ms in results.items():
        print(_row(name, ms))


if __name__ == "__main__":
    main()
