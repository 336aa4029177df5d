"""Every step of issue 16 at N rows, on the code of this checkout and, side by side, on the
code before the large-dataset work (``--baseline``): one table of wall time, CPU time and
peak memory per step, with the old/new ratios.

    /work/venv/bin/python bench/bench_scale.py --rows 1000000 --work DIR
    /work/venv/bin/python bench/bench_scale.py --rows 10000000 --work DIR --impls new

Data (written once into ``--work`` and reused): an N-row Parquet table (``id``, ``text``,
``label``, ``group`` int64, ``score`` float64) and N × 384 clustered unit vectors as a
Parquet file (``id`` + ``list<float32>``), 100 centres + equal noise (the hard
"isotropic" set of bench/bench_ivf.py); a row's label is its centre, 5 % of rows get a
random other label. 1,000 held-out queries and their exact top 10 over all rows and over
fixed random 1 % / 30 % subsets (a chunked flat scan) are computed once.

Steps, each in a fresh Python process (its own memory), for each implementation:

- ``ingest``: :func:`core.ingest.ingest_table` of the table;
- ``import``: :func:`core.embeddings.import_embeddings` of the vectors, without an index
  (the index is its own step);
- ``index``: :func:`core.embeddings.rebuild_index` with kind ``auto`` (new: IVF above 50k
  rows; today's: HNSW);
- ``query``: 1,000 single queries (top 10) through ``VectorIndex.search``: median / p95 ms
  and recall@10 against exact; then 100 queries inside the 1 % and 30 % subsets
  (``within=``: the ids resolved once per filter with ``VectorIndex.subset`` where the code
  has it, as the search pages do, its cost printed apart; today's code takes the ids per
  query);
- ``catalog``: the Catalog page in AppTest: first load (the first script run of a fresh
  process), warm rerun (median of 5) and a label filter on / off (median of 6);
- ``select``: smart select by cluster, n = 1,000, k = 10, over every row;
- ``label_issues``, ``duplicates``: the CLI's path (``core.quality``) over every row;
- ``map_cold``, ``map_warm``: the cluster map (``core.clusters.project``, UMAP) with an
  empty cache, then from the cache;
- ``update`` (last: it changes the dataset): ``ingest_table(..., update=True)`` of the table
  with its first 1 % of rows removed, the label of the next 1 % changed and 1 % new rows
  (the vectors of the kept rows stay; today's path has no update: it re-ingests, re-imports
  and rebuilds the index, the sum of those steps).

Memory is the peak of RssAnon + RssShmem sampled every 20 ms (the page cache of the
memory-mapped vectors is file-backed, not the process's memory; "hwm" is the kernel's
VmHWM, which counts it). ``--steps`` runs a subset; results are kept in
``<work>/results.json`` (merged across runs) and the table is printed from it, so steps can
be run one at a time. Targets at 10M are printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DIMS, K, CHUNK, CENTRES, NOISE_LABELS = 384, 10, 1 << 16, 100, 0.05
STEPS = ("ingest", "import", "index", "query", "catalog", "select", "label_issues", "duplicates",
         "map_cold", "map_warm", "update")
TARGETS_10M = {"ingest": "≤ 300 s, ≤ 3 GB", "import": "≤ 600 s, ≤ 4 GB", "index": "≤ 1,800 s, ≤ 4 GB",
               "query": "≤ 10 ms, recall ≥ 0.95; filtered ≤ 30 ms",
               "catalog": "first ≤ 5 s, warm ≤ 300 ms, label filter ≤ 500 ms", "select": "≤ 180 s",
               "label_issues": "≤ 5,400 s", "duplicates": "≤ 5,400 s", "map_cold": "≤ 1,200 s",
               "map_warm": "≤ 2 s", "update": "(no target)"}
DATASET, EMBEDDING = "bench", "emb"


# ---- data ------------------------------------------------------------------------------------------
def write_inputs(work: Path, rows: int, seed: int = 0) -> None:
    """table.parquet, vectors.parquet, queries.npy and the exact answers (kept when present)."""
    import faiss
    import pyarrow as pa
    import pyarrow.parquet as pq

    if (work / "truth.npz").exists():
        return
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, DIMS), dtype=np.float32)
    words = np.array([f"w{i}" for i in range(5000)])
    t_schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string()),
                          ("group", pa.int64()), ("score", pa.float64())])
    v_schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32()))])
    vec = np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float32, shape=(rows, DIMS))
    with pq.ParquetWriter(work / "table.parquet", t_schema) as tw, \
            pq.ParquetWriter(work / "vectors.parquet", v_schema) as vw:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            which = rng.integers(0, CENTRES, n)
            x = centres[which] + rng.standard_normal((n, DIMS), dtype=np.float32)
            faiss.normalize_L2(x)
            vec[start:start + n] = x
            noisy = rng.random(n) < NOISE_LABELS
            label = np.where(noisy, rng.integers(0, CENTRES, n), which)
            ids = np.char.add("row-", np.char.zfill(np.arange(start, start + n).astype(str), 8))
            text = [" ".join(p) for p in words[rng.integers(0, len(words), (n, 8))]]
            tw.write_table(pa.table({"id": ids, "text": text,
                                     "label": np.char.add("class-", label.astype(str)),
                                     "group": rng.integers(0, 1000, n), "score": rng.random(n)},
                                    schema=t_schema))
            offsets = pa.array(np.arange(n + 1, dtype=np.int32) * np.int32(DIMS))
            vw.write_table(pa.table([pa.array(ids), pa.ListArray.from_arrays(offsets, pa.array(x.reshape(-1)))],
                                    schema=v_schema))
    vec.flush()
    q = centres[rng.integers(0, CENTRES, 1000)] + rng.standard_normal((1000, DIMS), dtype=np.float32)
    faiss.normalize_L2(q)
    subsets = {name: np.sort(rng.choice(rows, max(K, int(rows * share)), replace=False))
               for name, share in (("p1", 0.01), ("p30", 0.30))}
    truth = {"all": exact_top(vec, q), **{name: exact_top(vec, q[:100], rows=s) for name, s in subsets.items()}}
    np.save(work / "queries.npy", q)
    np.savez(work / "truth.npz", **truth, **{f"rows_{k}": v for k, v in subsets.items()})
    del vec
    (work / "vectors.npy").unlink()  # only the answers needed it (15 GB at 10M)


def write_update_table(work: Path) -> Path:
    """table_update.parquet: table.parquet less its first 1 % of rows, the labels of the next
    1 % changed, 1 % new rows appended (kept when present)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = work / "table_update.parquet"
    if out.exists():
        return out
    source = pq.ParquetFile(work / "table.parquet")
    rows = source.metadata.num_rows
    cut = rows // 100
    with pq.ParquetWriter(out, source.schema_arrow) as writer:
        start = 0
        for batch in source.iter_batches(CHUNK):
            t = pa.Table.from_batches([batch])
            pos = np.arange(start, start + t.num_rows)
            start += t.num_rows
            t = t.filter(pa.array(pos >= cut))
            pos = pos[pos >= cut]
            relabel = pa.array(pos < 2 * cut)
            t = t.set_column(t.schema.get_field_index("label"), "label",
                             pc.if_else(relabel, pa.scalar("class-changed"), t.column("label")))
            writer.write_table(t)
        extra = pa.table({"id": np.char.add("new-", np.arange(cut).astype(str)),
                          "text": np.full(cut, "a new row"), "label": np.full(cut, "class-0"),
                          "group": np.zeros(cut, np.int64), "score": np.zeros(cut)},
                         schema=source.schema_arrow)
        writer.write_table(extra)
    return out


def exact_top(x: np.ndarray, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(len(q), K) row numbers of the exact top K of ``q`` over ``x`` (or its ``rows``), chunked."""
    import faiss

    best_s, best_i = np.full((len(q), 0), -np.inf, np.float32), np.zeros((len(q), 0), np.int64)
    n = len(x) if rows is None else len(rows)
    for s in range(0, n, 4 * CHUNK):
        part = np.arange(s, min(n, s + 4 * CHUNK)) if rows is None else rows[s:s + 4 * CHUNK]
        sc, ix = faiss.knn(q, np.ascontiguousarray(x[part]), K, metric=faiss.METRIC_INNER_PRODUCT)
        best_s, best_i = np.concatenate([best_s, sc], 1), np.concatenate([best_i, part[ix]], 1)
        order = np.argsort(-best_s, axis=1)[:, :K]
        best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
    return best_i


# ---- child: one step in a fresh process --------------------------------------------------------------
def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "RssAnon", "RssShmem"):
                out[name] = int(value.split()[0]) * 1024
    return out


class PeakAnon(threading.Thread):
    """RssAnon + RssShmem sampled every 20 ms; ``peak`` in bytes."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.halt = 0, threading.Event()

    def sample(self) -> None:
        s = _status()
        self.peak = max(self.peak, s.get("RssAnon", 0) + s.get("RssShmem", 0))

    def run(self) -> None:
        while not self.halt.wait(0.02):
            self.sample()


def _ms(seconds: list[float]) -> dict:
    ms = sorted(1000 * s for s in seconds)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}


def _recall(got: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(g.tolist()) & set(t.tolist())) / K for g, t in zip(got, truth)]))


def _query(ds, work: Path) -> dict:
    from core.embeddings import load_index

    index = load_index(ds, EMBEDDING)
    q, truth = np.load(work / "queries.npy"), np.load(work / "truth.npz")
    def row_of(hit_ids) -> np.ndarray:  # "row-00001234" -> 1234
        return np.array([int(i[4:]) for i in hit_ids if i])

    out: dict = {"index_kind": index.kind}
    for name, queries, within in (("all", q, None), ("p1", q[:100], truth["rows_p1"]),
                                  ("p30", q[:100], truth["rows_p30"])):
        scope = None if within is None else [f"row-{r:08d}" for r in within]
        made = 0.0
        if scope is not None and hasattr(index, "subset"):  # resolved once per filter, as the app does
            t0 = time.perf_counter()
            scope = index.subset(scope)
            made = time.perf_counter() - t0
        times, got = [], []
        for v in queries:
            t0 = time.perf_counter()
            hits = index.search(v[None, :], K, within=scope)
            times.append(time.perf_counter() - t0)
            got.append(row_of(hits.ids[0]))
        out[name] = {**_ms(times), "recall": round(_recall(got, truth[name]), 4),
                     "subset_s": round(made, 2)}
    return out


def _catalog(home: Path) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path.cwd() / "app.py"), default_timeout=3600)
    at.session_state["sidebar:dataset"] = DATASET

    def run() -> float:
        t0 = time.perf_counter()
        at.run()
        took = time.perf_counter() - t0
        if at.exception:
            raise SystemExit(f"the Catalog page failed: {at.exception[0].message}")
        return took

    first = run()
    warm = [run() for _ in range(5)]
    labels = at.multiselect(key=f"flt:{DATASET}:labels")
    filtered = []
    for i in range(6):
        labels.set_value(["class-3"] if i % 2 == 0 else [])
        filtered.append(run())
        labels = at.multiselect(key=f"flt:{DATASET}:labels")
    shown = " ".join(str(m.value) for m in [*at.markdown, *at.caption] if " rows" in str(m.value))[:200]
    return {"first_s": round(first, 2), "warm": _ms(warm), "label_filter": _ms(filtered), "shown": shown}


def child(step: str, home: Path, work: Path) -> dict:
    sys.path.insert(0, str(Path.cwd()))
    os.environ["CATALOG_HOME"], os.environ["CATALOG_NO_DEMO"] = str(home), "1"
    from core.workspace import open_workspace

    ws = open_workspace(home)
    base = _status()
    sampler = PeakAnon()
    sampler.start()
    cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    extra: dict = {}
    if step == "ingest":
        from core.ingest import ingest_table

        ingest_table(ws, work / "table.parquet", DATASET, replace=True)
    elif step == "import":
        from core.embeddings import files, import_embeddings

        class NoIndex:
            kind = "none"

            def save(self, directory) -> None:
                pass

        files.build_index = lambda *a, **k: NoIndex()
        import_embeddings(ws.dataset(DATASET), work / "vectors.parquet", EMBEDDING, replace=True)
    elif step == "index":
        from core.embeddings import rebuild_index

        extra = {"index_kind": rebuild_index(ws.dataset(DATASET), EMBEDDING, "auto").index_kind}
    elif step == "query":
        extra = _query(ws.dataset(DATASET), work)
    elif step == "catalog":
        extra = _catalog(home)
    elif step == "select":
        from core.embeddings import load_embedding
        from core.select import scope_vectors, select_by_cluster

        emb = load_embedding(ws.dataset(DATASET), EMBEDDING)
        ids = list(emb.ids)
        scope, scoped = scope_vectors(ids, emb.vectors, ids)
        extra = {"selected": len(select_by_cluster(scope, scoped, 1_000, 10, seed=0).ids)}
    elif step in ("label_issues", "duplicates"):
        extra = _quality(ws, step)
    elif step == "update":
        from core.ingest import ingest_table

        report = ingest_table(ws, write_update_table(work), DATASET, update=True)
        extra = {"counts": report.update.text(), "vectors_dropped": report.update.vectors_dropped}
    elif step in ("map_cold", "map_warm"):
        from core.clusters import project
        from core.embeddings import load_embedding

        ds = ws.dataset(DATASET)
        emb = load_embedding(ds, EMBEDDING)
        proj = project(emb.ids, emb.vectors, method="umap", seed=0, cache_dir=ds.projections_dir)
        extra = {"from_cache": proj.from_cache, "finite": bool(np.isfinite(proj.coords).all())}
    else:
        raise SystemExit(f"unknown step {step!r}")
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    sampler.halt.set()
    sampler.join()
    sampler.sample()
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 1),
            "peak_anon_gb": round(sampler.peak / 1e9, 3), "base_anon_gb": round(base.get("RssAnon", 0) / 1e9, 3),
            "hwm_gb": round(_status().get("VmHWM", 0) / 1e9, 3), **extra}


def _quality(ws, step: str) -> dict:
    """The CLI's path for label issues / near-duplicates over every row (the stored, resumable
    pass where the code has one: ``core.quality.compute_neighbours``)."""
    from core import quality
    from core.embeddings import load_index
    from core.labels import effective_labels

    ds = ws.dataset(DATASET)
    index = load_index(ds, EMBEDDING)
    neighbours = (quality.compute_neighbours(ds, EMBEDDING, index=index)  # as `catalog quality`
                  if hasattr(quality, "compute_neighbours") else None)
    try:  # as `catalog label-issues` reads them: two columns, not a dict of every row
        from core.rows import labels_by_id
        labels = labels_by_id(ws, DATASET)
    except ImportError:  # today's path (4326863)
        labels = effective_labels(ws, DATASET)
    if step == "label_issues":
        issues = quality.find_label_issues(index, labels, k=10, neighbours=neighbours)
        out = {"issues": len(issues.ids), "stored_pass": neighbours is not None}
        if neighbours is not None:
            out["sample_check"] = _pass_check(ds, neighbours, labels)
        return out
    dups = quality.find_near_duplicates(index, 0.95, labels, neighbours=neighbours)
    return {"pairs": len(dups.pairs), "stored_pass": neighbours is not None}


def _pass_check(ds, neighbours, labels, rows: int = 200, k: int = 10) -> dict:
    """The stored pass against exact neighbours for ``rows`` seeded sample rows: recall@k of
    its neighbours, and how often the label most of the k neighbours carry is the same
    (what a label-issue score is made of), with the mean gap of the share agreeing with the
    row's own label."""
    from core.embeddings import load_embedding
    from core.quality.lists import exact_top

    emb = load_embedding(ds, EMBEDDING)
    n = len(neighbours.ids)
    sample = np.sort(np.random.default_rng(1).choice(n, rows, replace=False))
    truth = exact_top(lambda r: np.asarray(emb.vectors[r], dtype=np.float32), n, sample, k)
    found = np.asarray(neighbours.positions[sample, :k], dtype=np.int64)
    ids = neighbours.ids

    def label_of(pos):
        return np.array([labels.get(str(ids[p])) for p in pos], dtype=object)

    recall, same_vote, gaps = [], [], []
    for r, t, f in zip(sample, truth, found):
        recall.append(len(set(t) & set(f)) / k)
        lt, lf, own = label_of(t), label_of(f), labels.get(str(ids[r]))
        vt, ct = np.unique(lt.astype(str), return_counts=True)
        vf, cf = np.unique(lf.astype(str), return_counts=True)
        same_vote.append(vt[np.argmax(ct)] == vf[np.argmax(cf)])
        gaps.append(abs((lt == own).mean() - (lf == own).mean()))
    return {"rows": rows, "recall_at_10": round(float(np.mean(recall)), 4),
            "same_majority_label": round(float(np.mean(same_vote)), 4),
            "mean_gap_own_label_share": round(float(np.mean(gaps)), 4)}


# ---- driver --------------------------------------------------------------------------------------------
def old_tree(work: Path, rev: str) -> Path:
    target = work / f"old-{rev}"
    if not (target / "core").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(target), rev], check=True,
                       capture_output=True)
    return target


def run_step(step: str, tree: Path, home: Path, work: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", step, str(home), str(work)],
                          cwd=tree, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {"error": tail[:300], "wall_s": round(time.perf_counter() - t0, 1)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def describe(step: str, r: dict | None) -> str:
    if r is None:
        return "not run"
    if "error" in r:
        return f"failed after {r['wall_s']} s: {r['error']}"
    base = f"{r['wall_s']:>9.1f} {r['cpu_s']:>8.1f} {r['peak_anon_gb']:>7.2f} {r['hwm_gb']:>7.2f}"
    if step == "query":
        base += (f"  {r['index_kind']}: {r['all']['median_ms']}/{r['all']['p95_ms']} ms recall {r['all']['recall']}; "
                 f"1% {r['p1']['median_ms']} ms ({r['p1']['recall']}), 30% {r['p30']['median_ms']} ms "
                 f"({r['p30']['recall']}); filter resolved once in {r['p1'].get('subset_s', 0)} / "
                 f"{r['p30'].get('subset_s', 0)} s")
    elif step == "catalog":
        base += (f"  first {r['first_s']} s, warm {r['warm']['median_ms']} ms, label filter "
                 f"{r['label_filter']['median_ms']} ms")
    elif step == "index":
        base += f"  {r['index_kind']}"
    elif step == "update":
        base += f"  {r['counts']}; vectors dropped {r['vectors_dropped']}"
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, help="kept: inputs, homes, results.json (required)")
    parser.add_argument("--baseline", default="4326863", help="today's path: the commit before issue 16")
    parser.add_argument("--impls", default="new,old")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, home, work = args.child
        print(json.dumps(child(step, Path(home), Path(work))))
        return
    if args.work is None:
        parser.error("--work DIR is required")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    write_inputs(work, args.rows)
    print(f"inputs ready in {time.perf_counter() - t0:.0f} s", flush=True)
    trees = {"new": REPO, "old": old_tree(work, args.baseline)}
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for step in [s for s in args.steps.split(",") if s]:
        if step not in STEPS:
            sys.exit(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        for impl in [i for i in args.impls.split(",") if i]:
            r = run_step(step, trees[impl], work / f"home-{impl}", work)
            results.setdefault(impl, {})[step] = {**r, "at": time.strftime("%Y-%m-%d %H:%M"),
                                                  "load": round(os.getloadavg()[0], 1)}
            results_path.write_text(json.dumps(results, indent=1))
            print(f"{step:<13}{impl:<4}{describe(step, r)}", flush=True)
    print(f"\n{args.rows:,} rows × {DIMS}; {os.cpu_count()} cpus; baseline {args.baseline}")
    print(f"{'step':<13}{'impl':<4}{'wall s':>9} {'cpu s':>8} {'anon GB':>7} {'hwm GB':>7}  (details) | old/new wall")
    for step in STEPS:
        for impl in ("new", "old"):
            r = results.get(impl, {}).get(step)
            if r is None and impl == "old":
                continue
            ratio = ""
            n = results.get("new", {}).get(step)
            if impl == "old" and r and n and "error" not in r and "error" not in n and n["wall_s"]:
                ratio = f" | {r['wall_s'] / n['wall_s']:.2f}×"
            target = f"  [10M target {TARGETS_10M[step]}]" if impl == "new" and args.rows >= 10_000_000 else ""
            print(f"{step:<13}{impl:<4}{describe(step, r)}{ratio}{target}")


if __name__ == "__main__":
    main()
