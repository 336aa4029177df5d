"""Smart select page at scale: peak RSS and wall time of one AppTest session that opens the
page and previews a random and an ordered selection, in a fresh process per run.

Builds (once, in ``--home``) the text dataset of ``bench_catalog_page.build_dataset`` (``--rows``
rows; ``--dims``-d random vectors unless ``--no-embedding``), then runs this script again as a
child per ``--repo`` (e.g. this checkout and a worktree of the previous commit, side by
side in one run) and prints wall seconds per step and the child's peak RSS (ru_maxrss).

    /work/venv/bin/python bench/bench_pages_scale.py --rows 1000000 --dims 64 --home DIR \\
        [--repo /work/main --repo /tmp/wt-c] [--no-embedding]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = "bench"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(repo: Path, rows: int) -> dict:
    """Open the Smart select page in ``repo``'s app, preview random then ordered (by score,
    descending); return wall seconds per step and peak RSS (MB) after each."""
    sys.path.insert(0, str(repo))
    import streamlit  # noqa: F401  (the imports every run pays, counted before the page)
    from streamlit.testing.v1 import AppTest

    import core  # noqa: F401
    import ui.grid  # noqa: F401

    out: dict = {"repo": str(repo), "start_rss_mb": round(_rss_mb())}
    at = AppTest.from_file(str(repo / "app.py"), default_timeout=1800)
    at.session_state["sidebar:dataset"] = DATASET
    t0 = time.perf_counter()
    at.switch_page(str(repo / "pages/smart_select.py")).run()  # the page first (not the Catalog)
    out["first_load_s"] = round(time.perf_counter() - t0, 2)
    out["first_load_rss_mb"] = round(_rss_mb())
    if at.exception:
        raise RuntimeError(f"page raised: {at.exception[0].value}")
    for name, method, widgets in (("random", "random", {"sel:seed": 3}),
                                  ("ordered", "ordered", {"sel:by": "score", "sel:desc": True})):
        at.selectbox(key="sel:method").select(method).run()
        at.number_input(key="sel:n").set_value(100).run()
        for key, value in widgets.items():
            widget = next(w for w in at.get("selectbox") + at.get("number_input") + at.get("checkbox")
                          if w.key == key)
            widget.set_value(value).run()
        t0 = time.perf_counter()
        at.button(key="sel:preview_btn").click().run()
        out[f"{name}_preview_s"] = round(time.perf_counter() - t0, 2)
        out[f"{name}_rss_mb"] = round(_rss_mb())
        if at.exception:
            raise RuntimeError(f"{name}: page raised: {at.exception[0].value}")
        counts = [m.value for m in at.markdown if "rows selected" in m.value]
        if not counts or not counts[0].startswith("**100 rows selected**"):
            raise RuntimeError(f"{name}: no preview of 100 rows: {counts}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--repo", type=Path, action="append", default=None)
    parser.add_argument("--no-embedding", action="store_true",
                        help="drop the dataset's embedding (the rows' cost alone: no quality pass)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["CATALOG_HOME"] = str(args.home)
    os.environ["CATALOG_NO_DEMO"] = "1"
    if args.child is not None:
        print(json.dumps(child(args.child, args.rows)))
        return 0

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from bench_catalog_page import build_dataset

    t0 = time.perf_counter()
    build_dataset(args.home, args.rows, args.dims)
    emb_dir = args.home / "datasets" / DATASET / "embeddings"
    if args.no_embedding and emb_dir.exists():
        import shutil

        shutil.rmtree(emb_dir)
    print(f"dataset: {args.rows:,} rows ready in {time.perf_counter() - t0:.1f} s "
          f"({'no embedding' if args.no_embedding else f'{args.dims}-d embedding'})", file=sys.stderr)
    results = []
    for repo in args.repo or [REPO]:
        done = subprocess.run([sys.executable, __file__, "--home", str(args.home), "--rows", str(args.rows),
                               "--child", str(repo.resolve())], capture_output=True, text=True, check=False,
                              cwd=str(repo))
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the run in {repo} failed")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"\nSmart select page, {args.rows:,} rows, one AppTest session per checkout "
          f"(peak RSS of the process after each step):\n")
    print("| checkout | RSS MB after imports | first load s | RSS MB | random preview s | RSS MB "
          "| ordered preview s | RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['repo']} | {r['start_rss_mb']} | {r['first_load_s']} | {r['first_load_rss_mb']} "
              f"| {r['random_preview_s']} "
              f"| {r['random_rss_mb']} | {r['ordered_preview_s']} | {r['ordered_rss_mb']} |")
    if len(results) == 2:
        a, b = results
        print(f"\nratio {b['repo']} / {a['repo']}: first-load RSS {b['first_load_rss_mb'] / a['first_load_rss_mb']:.2f}, "
              f"peak RSS {b['ordered_rss_mb'] / a['ordered_rss_mb']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
