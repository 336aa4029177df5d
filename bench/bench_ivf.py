"""Large-set index benchmark: the hnsw and ivf kinds of ``VectorIndex`` side by side over
memory-mapped vectors, as the app opens them.

Writes synthetic clustered N x d unit vectors in chunks to ``vectors.npy`` in a work
folder (``--work``, reused when it holds the same set) and memory-maps them; 1,000
held-out queries with their exact top 10 (a chunked flat scan). Then, for each kind:

- build: wall and CPU seconds, index memory = anonymous RSS (``RssAnon``, Linux; else
  psutil USS) sampled every 20 ms during the build, peak and retained after it, less the
  RSS before. Page cache of the mapped vectors is file-backed and not counted;
- save to / load from ``<work>/<kind>/`` (``vectors.npy`` hard-linked beside it);
- single queries (top 10, one thread, as ``VectorIndex`` runs them): median / p95 ms and
  recall@10 against exact; every returned score is checked against the exact cosine;
- filtered queries inside random 1% and 30% subsets (``VectorIndex.subset``, made once per
  filter; its cost is printed apart): median / p95 ms and recall@10 against exact-in-subset;
- bulk kNN (``search_positions``, all cores): ms per query over ``--bulk`` queries;
- add 10,000 rows after the build, then query with 200 of them (found as their own top 1?).

``--sweep`` adds the ivf nprobe x k_factor grid (recall@10, median ms) and the filtered
probe factor grid that chose the defaults in ``core.index.kinds``.

    python bench/bench_ivf.py --rows 1000000 [--data isotropic|spectrum] [--kinds hnsw,ivf]
        [--work /tmp/bench-ivf-1m] [--sweep]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.index import HNSW_DEFAULTS, IVF_DEFAULTS, VectorIndex, build_index, open_index
from core.index.faiss_build import bitmap_selector
from core.index.ivf import ivf_knn

K = 10
SPECTRUM_FILE = Path(__file__).with_name("minilm_spectrum.json")  # as bench_search.py
CHUNK = 100_000
SWEEP_SHARES = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


def x_of(index: VectorIndex) -> np.ndarray:
    """The memory-mapped base rows an ivf index re-ranks from."""
    return index._source.base


def anon_bytes() -> int:
    """Anonymous resident memory of this process (RssAnon; psutil USS off Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return psutil.Process().memory_full_info().uss


class PeakAnon:
    """Samples :func:`anon_bytes` every 20 ms in a thread; ``peak`` and ``start`` in bytes."""

    def __enter__(self) -> PeakAnon:  # noqa: PYI034
        self.start = self.peak = anon_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, anon_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, anon_bytes())


def write_vectors(path: Path, n: int, d: int, data: str, seed: int) -> np.ndarray:
    """(n + 1000, d) clustered unit rows: ``vectors.npy`` gets the first n (written in
    chunks, never whole in memory); returns the last 1000 as queries. isotropic: 100
    centers ~ N(0, 1) + equal noise (hard: 1st/10th neighbour cosines ~0.61/0.59);
    spectrum: 1000 centers with the covariance spectrum of real MiniLM embeddings."""
    rng = np.random.default_rng(seed)
    if data == "isotropic":
        centers, noise, scale = rng.standard_normal((100, d), dtype=np.float32), 1.0, None
    else:
        import json

        ev = np.asarray(json.loads(SPECTRUM_FILE.read_text())["eigenvalues"], np.float32)[:d]
        rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
        scale = (np.sqrt(ev)[:, None] * rot.T).astype(np.float32)
        centers, noise = rng.standard_normal((1000, d), dtype=np.float32) @ scale, 0.7

    def block(m: int) -> np.ndarray:
        z = rng.standard_normal((m, d), dtype=np.float32)
        x = centers[rng.integers(0, len(centers), m)] + noise * (z if scale is None else z @ scale)
        faiss.normalize_L2(x)
        return x

    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, CHUNK):
        out[s:s + CHUNK] = block(min(CHUNK, n - s))
    out.flush()
    del out
    path.with_suffix(".tmp.npy").rename(path)
    return block(1000)


def exact_top(x: np.ndarray, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(q, K) int64 row numbers of the exact top K of ``q`` over ``x`` (or its ``rows``)."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    n = len(x) if rows is None else len(rows)
    for s in range(0, n, CHUNK):
        part = np.arange(s, min(n, s + CHUNK)) if rows is None else rows[s:s + CHUNK]
        sc, ix = faiss.knn(q, np.ascontiguousarray(x[part]), K, metric=faiss.METRIC_INNER_PRODUCT)
        best_s = np.concatenate([best_s, sc], axis=1)
        best_i = np.concatenate([best_i, part[ix]], axis=1)
        order = np.argsort(-best_s, axis=1)[:, :K]
        best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
    return best_i


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(got, truth)]))


class Timings(list):
    """Per-query wall ms, with ``cpu``: the process's mean CPU ms per query over the loop."""

    cpu = 0.0


def timed_queries(fn: Callable[[np.ndarray], object], q: np.ndarray) -> tuple[Timings, list[object]]:
    """Per-query wall ms of ``fn`` over the rows of ``q`` (after one warm-up) and the results."""
    fn(q[0])
    ms, out = Timings(), []
    c0 = time.process_time()
    for v in q:
        t0 = time.perf_counter()
        out.append(fn(v))
        ms.append(1e3 * (time.perf_counter() - t0))
    ms.cpu = 1e3 * (time.process_time() - c0) / len(q)
    return ms, out


def to_rows(hits_list: list, ids_to_row: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.stack([ids_to_row(h.ids[0]) for h in hits_list])


def check_exact_scores(x: np.ndarray, q: np.ndarray, got: np.ndarray, hits_list: list) -> float:
    """Largest |returned score - exact cosine| over every returned hit."""
    worst = 0.0
    for qi, (rows, h) in enumerate(zip(got, hits_list)):
        keep = rows >= 0
        exact = np.asarray(x[rows[keep]]) @ q[qi]
        worst = max(worst, float(np.abs(exact - h.scores[0][keep]).max(initial=0.0)))
    return worst


def fmt_ms(ms: Timings) -> str:
    """median / p95 wall ms (the p95 shows how busy the machine was) and mean CPU ms."""
    return f"{np.median(ms):.2f} / {np.percentile(ms, 95):.2f} ms, CPU {ms.cpu:.2f}"


def run_kind(kind: str, x: np.ndarray, ids: np.ndarray, q: np.ndarray, truth: np.ndarray,
             subsets: dict[str, tuple[np.ndarray, np.ndarray]], work: Path, bulk: int, sweep: bool
             ) -> list[list[str]]:
    """Build, save/load and query one kind (``backend:kind`` for another backend, e.g.
    ``lancedb`` or ``lancedb:ivf_pq``); rows of the result table."""
    backend, _, of_backend = kind.partition(":") if ":" in kind or kind == "lancedb" else ("faiss", "", kind)
    gc.collect()
    with PeakAnon() as mem:
        first: list[float] = []  # when the first rows were added: checks + training before it
        t0, c0 = time.perf_counter(), time.process_time()
        index = build_index(x, ids, kind=of_backend or "auto", backend=backend,
                            progress=lambda done, total: first or first.append(time.perf_counter()))
        build_wall, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        to_first = (first[0] if first else time.perf_counter()) - t0
    retained = anon_bytes() - mem.start
    print(f"# {kind} built: {build_wall:.1f} s wall, {build_cpu:.1f} s CPU, {index.params}", flush=True)
    folder = work / kind.replace(":", "-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    os.link(work / "vectors.npy", folder / "vectors.npy")
    t0 = time.perf_counter()
    index.save(folder)
    t_save = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "vectors.npy")
    del index
    gc.collect()
    before_load = anon_bytes()
    t0 = time.perf_counter()
    index = open_index(folder)
    t_load = time.perf_counter() - t0
    loaded = anon_bytes() - before_load
    to_row = np.vectorize(lambda s: int(s) if s else -1, otypes=[np.int64])

    ms, hits = timed_queries(lambda v: index.search(v, K), q)
    got = to_rows(hits, to_row)
    worst = check_exact_scores(x, q, got, hits)
    gib = 2 ** 30
    rows = [[kind, "build", (f"{build_wall:.1f} s wall ({to_first:.1f} s to the first rows added), "
             f"{build_cpu:.1f} s CPU"),
             f"peak {(mem.peak - mem.start) / gib:.2f} GiB, retained {retained / gib:.2f} GiB"],
            [kind, "save / load", f"{t_save:.1f} s / {t_load:.1f} s",
             f"{disk / gib:.2f} GiB on disk (not counting vectors.npy); loaded {loaded / gib:.2f} GiB"],
            [kind, "single query, top 10", f"{fmt_ms(ms)} (median / p95 / CPU)",
             f"recall@10 {recall(got, truth):.3f}; max |score - exact| {worst:.1e}"]]
    for name, (rows_in, sub_truth) in subsets.items():
        t0 = time.perf_counter()
        subset = index.subset(ids[rows_in])
        t_subset = time.perf_counter() - t0
        ms, hits = timed_queries(lambda v, subset=subset: index.search(v, K, within=subset), q[:200])
        got = to_rows(hits, to_row)
        inside = bool(np.isin(got[got >= 0], rows_in).all())
        rows.append([kind, f"filtered {name} ({len(rows_in):,} rows)", fmt_ms(ms),
                     (f"recall@10 {recall(got, sub_truth[:200]):.3f}; only subset rows: {inside}; "
                      f"subset() once: {1e3 * t_subset:.0f} ms")])
    t0 = time.perf_counter()
    index.search_positions(x[:bulk], K)
    rows.append([kind, f"bulk kNN, {bulk:,} queries", f"{1e3 * (time.perf_counter() - t0) / bulk:.3f} ms/query",
                 "search_positions, all cores"])
    rows.append(added_rows(kind, index, x, q))
    if sweep and kind == "ivf":
        rows += ivf_sweep(index, q, truth, subsets, ids, to_row)
    return rows


def added_rows(kind: str, index, x: np.ndarray, q: np.ndarray, m: int = 10_000) -> list[str]:
    """Add ``m`` new rows (stored rows with noise) after the build, then query each kind with
    200 of them: add time, query latency, and how often the new row is its own top 1."""
    rng = np.random.default_rng(7)
    new = np.asarray(x[rng.choice(len(x), m, replace=False)], np.float32)
    new += 0.05 * rng.standard_normal(new.shape, dtype=np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    new_ids = np.array([f"new-{i}" for i in range(m)])
    t0 = time.perf_counter()
    index.add(new, new_ids)
    t_add = time.perf_counter() - t0
    ms, hits = timed_queries(lambda v: index.search(v, K), new[:200])
    own = np.mean([h.ids[0][0] == i for h, i in zip(hits, new_ids[:200])])
    return [kind, f"add {m:,} rows, then query them", f"add {t_add:.1f} s; {fmt_ms(ms)}",
            f"the added row is its own top 1: {own:.3f}"]


def ivf_sweep(index: VectorIndex, q: np.ndarray, truth: np.ndarray,
              subsets: dict[str, tuple[np.ndarray, np.ndarray]], ids: np.ndarray, to_row) -> list[list[str]]:
    """nprobe x k_factor grid (single queries), then the filtered nprobe grid."""
    out, saved = [], dict(index.params)
    for nprobe in (8, 16, 24, 32, 48, 64):
        cells = []
        for k_factor in (2, 5, 10, 20):
            index.params.update(nprobe=nprobe, k_factor=k_factor)
            ms, hits = timed_queries(lambda v: index.search(v, K), q[:300])
            cells.append(f"kf {k_factor}: {recall(to_rows(hits, to_row), truth[:300]):.3f} @ {np.median(ms):.2f}")
        out.append(["ivf", f"sweep nprobe={nprobe}", "recall@10 @ median ms", "; ".join(cells)])
    index.params.update(saved)
    n, rng = len(ids), np.random.default_rng(2)
    for share in SWEEP_SHARES:  # inside a subset: the inverted file with an id filter, or exact
        slots = np.sort(rng.choice(n, max(1, int(n * share)), replace=False))
        sub_truth = exact_top(x_of(index), q[:200], slots)
        mask = np.zeros(n, bool)
        mask[slots] = True
        sel, _bits = bitmap_selector(mask)
        cells = []
        for probes in (1, 2, 4, 8, 16, 32, 64):
            nprobe = saved["nprobe"] * probes
            ms, got = timed_queries(lambda v, nprobe=nprobe, sel=sel: ivf_knn(
                index._index, index._source, v[None, :], K, saved["k_factor"], nprobe, sel)[1], q[:200])
            cells.append(f"x{probes}: {recall(np.concatenate(got), sub_truth):.3f} @ {np.median(ms):.2f}")
            if nprobe >= index.params["nlist"]:
                break
        ms, got = timed_queries(lambda v, slots=slots: faiss.knn(
            v[None, :], index._source.rows(slots), K, metric=faiss.METRIC_INNER_PRODUCT)[1], q[:200])
        cells.append(f"exact over its rows: {np.median(ms):.2f}")
        out.append(["ivf", f"sweep inside {share:.1%} ({len(slots):,} rows): nprobe x factor",
                    "recall@10 @ median ms", "; ".join(cells)])
    return out


def main(default_kinds: str = "hnsw,ivf", description: str | None = None) -> None:
    ap = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--data", choices=("isotropic", "spectrum"), default="isotropic")
    ap.add_argument("--kinds", default=default_kinds,
                    help="comma-separated: exact, hnsw, ivf, or backend:kind (lancedb, lancedb:ivf_pq)")
    ap.add_argument("--work", type=Path, help="folder for vectors.npy and the indexes (default: a temp folder)")
    ap.add_argument("--bulk", type=int, default=10_000, help="queries of the bulk kNN pass")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep", action="store_true", help="also sweep the ivf query parameters")
    args = ap.parse_args()
    n, d = args.rows, args.dims
    work = args.work or Path(f"/tmp/bench-ivf-{args.data}-{n}")
    work.mkdir(parents=True, exist_ok=True)
    tag = work / f"set-{args.data}-{n}x{d}-{args.seed}.npy"
    print(f"# bench_ivf: rows={n:,} dims={d} data={args.data} k={K} cpus={os.cpu_count()} "
          f"faiss={faiss.__version__} loadavg_at_start={os.getloadavg()[0]:.1f}")
    print(f"# HNSW {HNSW_DEFAULTS}; IVF {IVF_DEFAULTS}")
    if tag.exists() and (work / "vectors.npy").exists():
        q = np.load(tag)
    else:
        t0 = time.perf_counter()
        q = write_vectors(work / "vectors.npy", n, d, args.data, args.seed + n)
        np.save(tag, q)
        print(f"# wrote {work / 'vectors.npy'} in {time.perf_counter() - t0:.1f} s")
    x = np.load(work / "vectors.npy", mmap_mode="r")
    ids = np.array([str(i) for i in range(n)])
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    truth = exact_top(x, q)
    subsets = {}
    for name, share in (("1%", 0.01), ("30%", 0.30)):
        rows_in = np.sort(rng.choice(n, int(n * share), replace=False))
        subsets[name] = (rows_in, exact_top(x, q[:200], rows_in))
    print(f"# exact truth in {time.perf_counter() - t0:.1f} s", flush=True)
    table = []
    for kind in [k for k in args.kinds.split(",") if k]:
        table += run_kind(kind, x, ids, q, truth, subsets, work, min(args.bulk, n), args.sweep)
        print(f"# {kind} done; loadavg {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\n| kind | step ({n:,} x {d}, {args.data}) | time | memory / quality |")
    print("|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print(f"# loadavg_at_end={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
