"""Search benchmark: VectorIndex (exact, HNSW) against raw FAISS and scikit-learn.

For each size: clustered synthetic unit vectors (100 gaussian centers + equal-scale
noise, seeded), held-out queries from the same distribution; prints build time,
per-query latency (single-query loop and one batched call), recall@10 against exact
search, and ours/raw-FAISS ratios, as a markdown table. Then an ef_search sweep of the
HNSW graph (same parameters as ours) and, up to ``--bulk-max-rows``, the bulk kNN
(``search_positions`` with every row as a query). Timings are the best of ``--repeats``
runs; "single CPU ms/q" is process CPU time per query of the single-query loop, a
steadier figure than wall time when other jobs share the cores.

    /work/venv/bin/python bench/bench_search.py [--sizes 10000,100000,1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import faiss
import numpy as np
import sklearn
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.index import (
    EXACT_MAX_ROWS,
    HNSW_DEFAULTS,
    VectorIndex,
    build_index,
)
from core.index.faiss_build import _one_thread  # noqa: E402
from core.index.huge_pages import advise_huge_pages  # noqa: E402
from core.index.faiss_build import graph_of  # noqa: E402

K = 10
SKLEARN_SINGLE_MAX_ROWS = 500_000  # above this, sklearn's single-query loop uses fewer queries


def clustered(n: int, d: int, seed: int, centers: int = 100) -> np.ndarray:
    """(n, d) float32 unit vectors: centers ~ N(0, 1), points = center + N(0, 1) noise."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d), dtype=np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x[s:s + m] = c[rng.integers(0, centers, m)] + rng.standard_normal((m, d), dtype=np.float32)
    faiss.normalize_L2(x)
    return x


SPECTRUM_FILE = Path(__file__).with_name("minilm_spectrum.json")


def covariance_spectrum(vectors: np.ndarray) -> list[float]:
    """Eigenvalues (d,) of the covariance of unit ``vectors`` (n, d), largest first."""
    x = vectors - vectors.mean(0)
    return np.clip(np.linalg.eigvalsh(np.cov(x.T))[::-1], 0, None).tolist()


def spectrum_matched(n: int, d: int, seed: int, centers: int = 1000) -> np.ndarray:
    """(n, d) float32 unit vectors whose covariance spectrum is that of real MiniLM embeddings
    (``SPECTRUM_FILE``, from the api-docs demo): centers ~ N(0, diag(eigenvalues)) in a random
    rotation, points = center + 0.7 * the same noise. Nearest-neighbour cosines then look like
    the real set's (1st ~0.8, 10th ~0.6) instead of the isotropic set's (0.56 / 0.51)."""
    ev = np.asarray(json.loads(SPECTRUM_FILE.read_text())["eigenvalues"], np.float32)[:d]
    rng = np.random.default_rng(seed)
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scale = (np.sqrt(ev)[:, None] * rot.T).astype(np.float32)  # z @ scale ~ N(0, R diag(ev) R^T)
    c = rng.standard_normal((centers, d), dtype=np.float32) @ scale
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x[s:s + m] = c[rng.integers(0, centers, m)] + 0.7 * (rng.standard_normal((m, d), dtype=np.float32) @ scale)
    faiss.normalize_L2(x)
    return x


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """(best wall seconds over ``repeats`` runs, result of the last run)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def recall_at_k(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(got, truth)]))


Method = tuple[str, Callable[[np.ndarray], object], Callable[[np.ndarray], np.ndarray]]


def measure(methods: list[Method], q: np.ndarray, truth: np.ndarray, repeats: int,
            n_single: int) -> dict[str, dict[str, float]]:
    """Per method: single-query-loop and batched ms/query (best of ``repeats``, methods
    interleaved so background load hits them alike) and recall@10 of the batched positions.
    """
    out = {name: {"single": float("inf"), "cpu": float("inf"), "batch": float("inf")}
           for name, _, _ in methods}
    for _ in range(repeats):
        for name, one, batch in methods:
            one(q[0])  # warm-up
            cpu = time.process_time()
            t_one, _ = best_time(lambda: [one(q[i]) for i in range(n_single)], 1)
            cpu = time.process_time() - cpu
            t_batch, got = best_time(lambda: batch(q), 1)
            out[name]["single"] = min(out[name]["single"], 1e3 * t_one / n_single)
            out[name]["cpu"] = min(out[name]["cpu"], 1e3 * cpu / n_single)
            out[name]["batch"] = min(out[name]["batch"], 1e3 * t_batch / len(q))
            out[name]["recall"] = recall_at_k(np.asarray(got), truth)
    return out


def run_size(n: int, d: int, nq: int, repeats: int, seed: int, bulk_max_rows: int,
             share_hnsw_above: int) -> list[list[str]]:
    x = clustered(n + nq, d, seed)
    base, q = x[:n], x[n:].copy()
    del x
    ids = np.array([str(i) for i in range(n)], dtype=object)
    to_pos = np.vectorize(int, otypes=[np.int64])
    p = HNSW_DEFAULTS

    def raw_hnsw() -> faiss.Index:  # what VectorIndex builds, straight in faiss
        graph = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, p["M"], faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction, graph.hnsw.efSearch = p["ef_construction"], p["ef_search"]
        index = faiss.IndexRefineFlat(graph)
        index.k_factor = float(p["k_factor"])
        index.train(base[np.sort(np.random.default_rng(0).choice(n, min(n, 65536), replace=False))])
        index.add(base)
        advise_huge_pages(graph)  # the same memory advice VectorIndex gives its graph
        return index

    results: dict[str, tuple[float, dict[str, float]]] = {}
    flat = _flat(base)
    truth = flat.search(q, K)[1]
    del flat
    sweep, bulk = "", []
    for kind, raw_name, raw_build in [("exact", "raw faiss IndexFlatIP", lambda: _flat(base)),
                                      ("hnsw", "raw faiss HNSW-SQ8 + refine", raw_hnsw)]:
        t_raw, raw = best_time(raw_build, 1)
        if kind == "hnsw" and n > share_hnsw_above:  # one graph build (~10+ min at 1M): ours wraps it
            t_ours, ours = t_raw, VectorIndex(raw, ids, "hnsw", dict(p))
        else:
            t_ours, ours = best_time(lambda: build_index(base, ids, kind=kind), 1)
        ours_name = f"VectorIndex {kind}"
        # single queries on one OpenMP thread, as VectorIndex runs them (a second thread only
        # spins on one query, and stalls when the machine is busy)
        m = measure([(raw_name, lambda v: _one_thread(raw.search, v[None, :], K), lambda b: raw.search(b, K)[1]),
                     (ours_name, lambda v: ours.search(v, K), lambda b: to_pos(ours.search(b, K).ids))],
                    q, truth, repeats, nq)
        results[raw_name], results[ours_name] = (t_raw, m[raw_name]), (t_ours, m[ours_name])
        if kind == "hnsw":
            sweep = _ef_sweep(raw, q, truth)
        if n <= bulk_max_rows:  # VectorIndex.search_positions(all rows, 10): quality/select use
            t_bulk, _ = best_time(lambda: ours.search_positions(base, K), 1)
            bulk.append([f"{n:,}", f"{ours_name} search_positions, q = n (bulk kNN)", "", "", "",
                         f"{1e3 * t_bulk / n:.4f}", f"total {t_bulk:.1f} s", ""])
        print(f"  n={n} {kind}: {results[raw_name]} {results[ours_name]}", file=sys.stderr, flush=True)
        del raw, ours
        gc.collect()

    n_sk = nq if n <= SKLEARN_SINGLE_MAX_ROWS else min(nq, 20)
    t_build, nn = best_time(lambda: NearestNeighbors(n_neighbors=K, metric="cosine",
                                                     algorithm="brute").fit(base), 1)
    name = "sklearn NearestNeighbors brute cosine"
    m = measure([(name, lambda v: nn.kneighbors(v[None, :]), lambda b: nn.kneighbors(b)[1])], q, truth,
                1 if n > SKLEARN_SINGLE_MAX_ROWS else repeats, n_sk)
    note = "" if n_sk == nq else f" (single loop: {n_sk} queries, 1 run)"
    results[name + note] = (t_build, m[name])
    del nn

    rows: list[list[str]] = []
    raws = {"VectorIndex exact": "raw faiss IndexFlatIP", "VectorIndex hnsw": "raw faiss HNSW-SQ8 + refine"}
    for name, (t_build, m) in results.items():
        ratio = ""
        if name in raws:
            rb, rm = results[raws[name]]
            build = "shared graph" if t_build == rb and name == "VectorIndex hnsw" else f"{t_build / rb:.2f}"
            ratio = f"{build} / {m['single'] / rm['single']:.2f} / {m['batch'] / rm['batch']:.2f}"
        rows.append([f"{n:,}", name, f"{t_build:.2f}", f"{m['single']:.3f}", f"{m['cpu']:.3f}",
                     f"{m['batch']:.4f}", f"{m['recall']:.4f}", ratio])
    rows.append([f"{n:,}", "ef_search sweep (raw faiss, same graph; single-query ms/q, recall@10)",
                 "", "", "", "", sweep, ""])
    rows.extend(bulk)
    return rows


def _flat(base: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return index


def _ef_sweep(index: faiss.Index, q: np.ndarray, truth: np.ndarray) -> str:
    parts = []
    for ef in (64, 96, 128, 160, 192, 256):  # single-query loop, best of 2
        graph_of(index).hnsw.efSearch = ef
        t, got = best_time(lambda: np.stack([_one_thread(index.search, v[None, :], K)[1][0] for v in q]), 2)
        parts.append(f"ef={ef}: {1e3 * t / len(q):.3f} ms, {recall_at_k(got, truth):.3f}")
    graph_of(index).hnsw.efSearch = HNSW_DEFAULTS["ef_search"]
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    ap.add_argument("--queries", type=int, default=200, help="held-out queries per size")
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=3, help="timing runs; the best is kept")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--share-hnsw-above", type=int, default=300_000,
                    help="above this size VectorIndex wraps the raw HNSW graph instead of building "
                         "its own (same faiss call; saves a 10+ minute build at 1M)")
    ap.add_argument("--bulk-max-rows", type=int, default=100_000,
                    help="also time search_positions with every row as a query up to this size")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"# bench_search: d={args.dims}, k={K}, queries={args.queries}, repeats={args.repeats}, "
          f"seed={args.seed}; HNSW {HNSW_DEFAULTS}; EXACT_MAX_ROWS={EXACT_MAX_ROWS}")
    print(f"# cpus={os.cpu_count()} faiss={faiss.__version__} numpy={np.__version__} "
          f"sklearn={sklearn.__version__} omp_threads={faiss.omp_get_max_threads()} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} "
          f"loadavg_at_start={os.getloadavg()[0]:.1f}")
    print("\n| rows | method | build s | single ms/q | single CPU ms/q | batched ms/q | recall@10 "
          "| ours/raw (build / single / batched) |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        for row in run_size(n, args.dims, args.queries, args.repeats, args.seed + n, args.bulk_max_rows,
                            args.share_hnsw_above):
            print("| " + " | ".join(row) + " |", flush=True)
    print(f"# loadavg_at_end={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
