"""HNSW sweep at one size: build (or reuse) a ``VectorIndex`` of kind hnsw with the default
parameters, then time single queries through ``VectorIndex.search`` at several
``ef_search`` values with recall@10 against exact search. The graph is saved to
``--cache`` so the query sweep can be re-run on a quiet machine without a rebuild.
Each ef_search value is timed twice in one run: first with the graph in ordinary 4 KiB
pages, then after :func:`core.huge_pages.advise_huge_pages` (what ``VectorIndex`` does on
build and load), with the ratio.

    python bench/bench_hnsw_sweep.py --rows 1000000 --cache /tmp/hnsw-1m [--data isotropic|spectrum]

Data as in ``bench_search.py`` (same seed rule, so ``isotropic`` at 1M is that bench's
set); ``spectrum`` has the covariance spectrum of real MiniLM embeddings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_search import K, clustered, recall_at_k, spectrum_matched  # noqa: E402
import core.index.vector_index as index_mod  # noqa: E402
from core.index.huge_pages import advise_huge_pages  # noqa: E402
from core.index import HNSW_DEFAULTS, VectorIndex, build_index
from core.index.faiss_build import graph_of  # noqa: E402


def sweep_point(index: VectorIndex, q: np.ndarray, truth: np.ndarray, ef: int) -> tuple[float, float, float]:
    """(best wall ms/query of 3 loops, best CPU ms/query, recall@10) of single-query search."""
    index.params["ef_search"] = ef
    index._cache.pop("refine_params", None)  # noqa: SLF001  (the cached default search parameters)
    graph_of(index._index).hnsw.efSearch = ef  # noqa: SLF001
    index.search(q[0], K)
    best, cpu = float("inf"), float("inf")
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        got = [index.search(v, K).ids[0] for v in q]
        best = min(best, (time.perf_counter() - t0) / len(q) * 1e3)
        cpu = min(cpu, (time.process_time() - c0) / len(q) * 1e3)
    return best, cpu, recall_at_k(np.array([[int(v) for v in row] for row in got]), truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", choices=("isotropic", "spectrum"), default="isotropic")
    ap.add_argument("--cache", type=Path, required=True, help="folder for the built index (reused)")
    ap.add_argument("--efs", default="64,96,128,160,192,256")
    ap.add_argument("--params", default="", help="HNSW parameters over the defaults, e.g. M=48,ef_construction=300")
    args = ap.parse_args()
    n, nq = args.rows, args.queries
    make = clustered if args.data == "isotropic" else spectrum_matched
    x = make(n + nq, args.dims, args.seed + n)
    base, q = x[:n], x[n:].copy()
    del x
    flat = faiss.IndexFlatIP(args.dims)
    flat.add(base)
    truth = flat.search(q, K)[1]
    del flat
    ids = np.array([str(i) for i in range(n)])
    print(f"# bench_hnsw_sweep: rows={n:,} dims={args.dims} data={args.data} queries={nq} "
          f"HNSW defaults {HNSW_DEFAULTS} overrides {args.params or 'none'} cpus={os.cpu_count()} loadavg_at_start={os.getloadavg()[0]:.1f}")
    index_mod.advise_huge_pages = lambda graph: 0  # first pass: ordinary pages
    if (args.cache / "index.json").exists():
        index = VectorIndex.load(args.cache)
        print(f"# reused the index in {args.cache}: {index.params}")
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        params = {k: int(v) for k, v in (kv.split("=") for kv in args.params.split(",") if kv)}
        index = build_index(base, ids, kind="hnsw", **params)
        print(f"# built in {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")
        index.save(args.cache)
    index_mod.advise_huge_pages = advise_huge_pages
    efs = [int(v) for v in args.efs.split(",")]
    plain = {ef: sweep_point(index, q, truth, ef) for ef in efs}
    t0 = time.perf_counter()
    advised = advise_huge_pages(graph_of(index._index))  # noqa: SLF001
    print(f"# huge pages: {advised / 1e6:.0f} MB advised in {time.perf_counter() - t0:.2f} s")
    print("\n| ef_search | 4 KiB pages ms/q | huge pages ms/q | CPU ms/q | ratio | recall@10 |"
          "\n|---:|---:|---:|---:|---:|---:|")
    for ef in efs:
        wall, cpu, recall = sweep_point(index, q, truth, ef)
        print(f"| {ef} | {plain[ef][0]:.3f} | {wall:.3f} | {cpu:.3f} | {wall / plain[ef][0]:.2f} | {recall:.4f} |",
              flush=True)
    print(f"# loadavg_at_end={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
