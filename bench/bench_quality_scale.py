"""Quality passes at scale: the stored neighbours pass (``core.quality.compute_neighbours``)
side by side with the per-row index query pass it replaces, then label issues,
near-duplicates and uniqueness scored from the stored pass.

Writes synthetic clustered N x 384 unit vectors (``bench/bench_ivf.py``'s generator) and a
rows table into a work folder (``--work``, reused when it holds the same set), stores them
as an embedding with an ``ivf`` index (``--kind``), then prints, per step, wall and CPU
seconds and peak anonymous RSS (``RssAnon``: page cache of the memory-mapped vectors is
not counted):

- stored pass: ``compute_neighbours`` (k = 16) from nothing (``lists`` method on ivf:
  partition + list by list; ``search`` method on exact/hnsw);
- per-row pass: ``VectorIndex.search_positions`` of ``--sample`` rows (batches of 4096, as
  ``nearest_neighbours`` runs it), extrapolated to every row;
- recall@10 of both against an exact scan, on 1,000 random rows (self excluded);
- label issues (k = 10), near-duplicates (0.95), uniqueness (k = 10) and the Catalog's
  quality columns, each from the memory-mapped stored pass.

``--predictions`` runs another part instead (issue 19: "at 1M rows the quality pass with
predictions adds <= 20% to the neighbour pass's time"), on the same rows:

- one-off import: synthetic out-of-sample probabilities of a model over the 10 label classes
  (softmax of noisy logits favouring each row's "true" class, which is its label except for
  ``--noise`` of the rows), checked by ``build_predictions`` and stored by ``save_predictions``;
- (a) the neighbour quality pass: ``compute_neighbours`` (recomputed once, from nothing, at
  ``pass_width()``, the width the app and ``catalog quality`` store),
  ``load_neighbours`` and ``rank_label_issues(source="neighbours")``;
- (b) = (a) plus what predictions add: ``load_predictions``,
  ``rank_label_issues(source="combined")``, ``model_mistakes`` and ``confusion_matrix``;

then prints wall / CPU seconds and peak anon RSS per step, both totals and (b)/(a) (target
<= 1.20), also without the stored pass (when it is already stored). ``--profile`` then runs
the (b) steps once more under cProfile and prints their top functions.

    python bench/bench_quality_scale.py --rows 1000000 [--data isotropic|spectrum]
        [--work /tmp/bench-quality-1m] [--sample 20000] [--kind ivf]
        [--predictions [--noise 0.05] [--profile]]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_ivf import PeakAnon, write_vectors
from core.embeddings import load_index, write_embedding
from core.ingest import ingest_table
from core.predictions import build_predictions, load_predictions, save_predictions
from core.quality import (
    DEFAULT_K,
    compute_neighbours,
    confusion_matrix,
    find_label_issues,
    find_near_duplicates,
    load_neighbours,
    model_mistakes,
    pass_width,
    quality_columns,
    rank_label_issues,
    score_outliers,
)
from core.quality.bulk import MANIFEST, QUALITY_DIR
from core.workspace import open_workspace

DIMS, K, RECALL_ROWS, SCAN = 384, 10, 1000, 100_000
LABELS = np.array([f"class-{i}" for i in range(10)], dtype=object)


def timed(name: str, fn, figures: list):
    """Run ``fn()``; record (name, wall s, CPU s, peak anon GB); return its result."""
    with PeakAnon() as mem:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures.append((name, wall, cpu, mem.peak / 1e9))
    print(f"  {name}: wall {wall:.1f} s, CPU {cpu:.1f} s, peak anon {mem.peak / 1e9:.2f} GB", flush=True)
    return out


def setup(work: Path, n: int, data: str, kind: str, seed: int):
    """The workspace dataset ``bench`` with embedding ``e`` (n x 384, index ``kind``)."""
    tag = work / f"set-{n}-{data}-{kind}-{seed}"
    home = work / "home"
    if not tag.exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        t = time.perf_counter()
        write_vectors(work / "vectors.npy", n, DIMS, data, seed)
        ids = np.array([f"r{i:08d}" for i in range(n)], dtype=object)
        labels = LABELS[np.random.default_rng(seed).integers(0, len(LABELS), n)]
        pd.DataFrame({"id": ids, "text": ids, "label": labels}).to_parquet(work / "rows.parquet")
        ws = open_workspace(home)
        ingest_table(ws, work / "rows.parquet", "bench")
        vectors = np.load(work / "vectors.npy", mmap_mode="r")
        write_embedding(ws.dataset("bench"), "e", list(ids), vectors, {"encoder": None, "source": "imported"},
                        index_kind=kind)
        (work / "vectors.npy").unlink()
        tag.touch()
        print(f"setup (vectors, rows, {kind} index): {time.perf_counter() - t:.0f} s", flush=True)
    ds = open_workspace(home).dataset("bench")
    return ds, pd.read_parquet(work / "rows.parquet", columns=["id", "label"])


def exact_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows), K) exact top K of each row over ``x``, self excluded."""
    q = np.ascontiguousarray(x[rows])
    best_s, best_i = np.full((len(q), 0), -np.inf, np.float32), np.zeros((len(q), 0), np.int64)
    for s in range(0, len(x), SCAN):
        sc, ix = faiss.knn(q, np.ascontiguousarray(x[s:s + SCAN]), K + 1, metric=faiss.METRIC_INNER_PRODUCT)
        best_s, best_i = np.concatenate([best_s, sc], 1), np.concatenate([best_i, ix + s], 1)
        order = np.argsort(-best_s, axis=1)[:, :K + 1]
        best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
    return np.array([[p for p in r if p != own][:K] for r, own in zip(best_i, rows)])


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a[:K].tolist()) & set(b.tolist())) / K for a, b in zip(got, truth)]))


MODEL = "bench-model"


def synthetic_probs(given: np.ndarray, n_classes: int, noise: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """((n, C) float32 probabilities, (n,) bool label-is-wrong): a softmax of logits
    N(0, 1) per class plus a per-row margin U(1.5, 5) on the row's true class, which is its
    label ``given`` except for a ``noise`` fraction of the rows (another class, uniformly)."""
    rng = np.random.default_rng(seed + 7)
    n = len(given)
    flipped = rng.random(n) < noise
    true = given.copy()
    true[flipped] = (given[flipped] + rng.integers(1, n_classes, int(flipped.sum()))) % n_classes
    logits = rng.standard_normal((n, n_classes), dtype=np.float32)
    logits[np.arange(n), true] += rng.uniform(1.5, 5.0, n).astype(np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32), flipped


def found(issues, wrong: set, top: int) -> float:
    """Share of the ``top`` worst-ranked rows whose label is wrong."""
    return sum(i in wrong for i in issues.ids[:top]) / max(top, 1)


def print_table(title: str, figures: list) -> None:
    print(f"\n{title}")
    print(f"{'step':62} {'wall s':>9} {'CPU s':>9} {'peak anon GB':>13}")
    for name, wall, cpu, mem in figures:
        print(f"{name:62} {wall:9.1f} {cpu:9.1f} {mem:13.2f}")


def predictions_part(ds, rows: pd.DataFrame, n: int, args) -> None:
    """The ``--predictions`` part (see the module doc)."""
    k = DEFAULT_K
    ids = rows["id"].to_numpy(dtype=object)
    labels = pd.Series(rows["label"].to_numpy(), index=ids)
    classes = sorted(set(labels))
    one_off: list = []
    given = pd.Index(classes).get_indexer(labels.to_numpy()).astype(np.int64)
    probs, flipped = timed("make synthetic probabilities (not timed as import)",
                           lambda: synthetic_probs(given, len(classes), args.noise, args.seed), one_off)
    preds = timed("import: build_predictions (checks)",
                  lambda: build_predictions(MODEL, ids, probs=probs, classes=classes, label_classes=classes,
                                            known_ids=ids, dataset=ds.name), one_off)
    timed("import: save_predictions", lambda: save_predictions(ds, preds, replace=True), one_off)
    del preds, probs
    wrong = set(ids[flipped].tolist())

    a: list = []
    index = timed("load index", lambda: load_index(ds, "e"), a)
    width = pass_width(k)  # what Label review and `catalog quality` store
    timed(f"stored pass (compute_neighbours, k={width}, recomputed)",
          lambda: compute_neighbours(ds, "e", k=width, index=index), a)
    shared = timed("load stored pass (memory-mapped)", lambda: load_neighbours(ds, "e", width), a)
    nb = timed(f"rank_label_issues(source=neighbours, k={k})",
               lambda: rank_label_issues(index, labels, source="neighbours", k=k, neighbours=shared), a)
    b: list = []
    loaded = timed("load_predictions", lambda: load_predictions(ds, MODEL), b)
    comb = timed(f"rank_label_issues(source=combined, k={k})",
                 lambda: rank_label_issues(index, labels, source="combined", predictions=loaded, k=k,
                                           neighbours=shared), b)
    mistakes = timed("model_mistakes", lambda: model_mistakes(labels, loaded), b)
    confusion = timed("confusion_matrix", lambda: confusion_matrix(labels, loaded), b)

    print(f"\n{n:,} rows x {DIMS} ({args.data}, index {args.kind}), {len(classes)} classes, "
          f"{faiss.omp_get_max_threads()} threads; {int(flipped.sum()):,} labels wrong ({args.noise:.0%})")
    print_table("one-off import of the predictions", one_off)
    print_table("(a) neighbour quality pass", a)
    print_table("(b) = (a) + what predictions add", b)

    def total(fig: list, skip_stored: bool = False) -> tuple[float, float]:
        kept = [f for f in fig if not (skip_stored and f[0].startswith(("stored pass", "load index")))]
        return sum(f[1] for f in kept), sum(f[2] for f in kept)
    aw, ac = total(a)
    ew, ec = total(b)
    print(f"\n{'totals':62} {'wall s':>9} {'CPU s':>9}")
    print(f"{'(a) neighbour pass':62} {aw:9.1f} {ac:9.1f}")
    print(f"{'(b) neighbour pass + predictions':62} {aw + ew:9.1f} {ac + ec:9.1f}")
    print(f"{'    of which predictions add':62} {ew:9.1f} {ec:9.1f}")
    print(f"ratio (b)/(a): wall {(aw + ew) / aw:.3f}, CPU {(ac + ec) / ac:.3f} (target <= 1.20)")
    sw, sc = total(a, skip_stored=True)
    print(f"stored pass already there (a = load stored pass + rank neighbours, {sw:.1f} s wall, {sc:.1f} s CPU): "
          f"ratio wall {(sw + ew) / sw:.2f}, CPU {(sc + ec) / sc:.2f}")
    top = int(flipped.sum())
    alone = rank_label_issues(index, labels, source="model", predictions=loaded)  # not timed: precision only
    print(f"\nwrong labels among the {top:,} worst rows: neighbours {found(nb, wrong, top):.3f}, "
          f"model {found(alone, wrong, top):.3f}, combined {found(comb, wrong, top):.3f} "
          "(labels here are random w.r.t. the vectors: the neighbours know nothing)")
    print(f"rows scored: neighbours {len(nb):,}, combined {len(comb):,}; combined flagged by confident "
          f"learning {int(np.sum(comb.model_flagged)):,}; model mistakes {len(mistakes):,} of {mistakes.compared:,}; "
          f"accuracy vs labels {confusion.accuracy:.3f}")
    print(f"peak anon over the run: {max(f[3] for f in one_off + a + b):.2f} GB")

    if args.profile:
        import cProfile
        import pstats

        for name, fn in [("load_predictions", lambda: load_predictions(ds, MODEL)),
                         ("rank_label_issues(combined)",
                          lambda: rank_label_issues(index, labels, source="combined", predictions=loaded,
                                                    k=k, neighbours=shared)),
                         ("model_mistakes", lambda: model_mistakes(labels, loaded)),
                         ("confusion_matrix", lambda: confusion_matrix(labels, loaded)),
                         ("rank_label_issues(neighbours)",
                          lambda: rank_label_issues(index, labels, source="neighbours", k=k, neighbours=shared))]:
            prof = cProfile.Profile()
            prof.runcall(fn)
            print(f"\n--- cProfile: {name} (top 15 by own time) ---")
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--data", choices=["isotropic", "spectrum"], default="isotropic")
    ap.add_argument("--kind", default="ivf")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--sample", type=int, default=20_000, help="rows of the per-row pass (extrapolated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--predictions", action="store_true",
                    help="the predictions part instead: neighbour pass vs neighbour pass + predictions")
    ap.add_argument("--noise", type=float, default=0.05, help="--predictions: share of wrong labels")
    ap.add_argument("--profile", action="store_true", help="--predictions: cProfile the prediction steps")
    args = ap.parse_args()
    n = args.rows
    work = args.work or Path(f"/tmp/bench-quality-{n}-{args.data}")
    faiss.omp_set_num_threads(2)
    print(f"{n:,} rows x {DIMS}, {args.data}, index {args.kind}", flush=True)
    ds, rows = setup(work, n, args.data, args.kind, args.seed)
    shutil.rmtree(ds.embedding_dir("e") / QUALITY_DIR, ignore_errors=True)
    if args.predictions:
        predictions_part(ds, rows, n, args)
        return
    figures: list = []
    index = timed("load index", lambda: load_index(ds, "e"), figures)
    marks: dict = {}

    def progress(done: int, total: int) -> None:  # lists method: rows assigned count first
        if total == 2 * n and done >= n and "partition" not in marks:
            marks["partition"] = (time.perf_counter(), time.process_time())
    start = (time.perf_counter(), time.process_time())
    stored = timed("stored pass (compute_neighbours, k=16)",
                   lambda: compute_neighbours(ds, "e", k=16, index=index, progress=progress), figures)
    if "partition" in marks:
        wall, cpu = (m - s for m, s in zip(marks["partition"], start))
        print(f"    of which partition (k-means + assignment): wall {wall:.1f} s, CPU {cpu:.1f} s")
    sample = np.sort(np.random.default_rng(1).choice(n, min(args.sample, n), replace=False))
    ids = np.asarray(index.ids)

    def per_row():
        out = []
        for s in range(0, len(sample), 4096):
            q = index.vectors_for(ids[sample[s:s + 4096]])
            out.append(index.search_positions(q, 17)[1])
        return np.concatenate(out)
    per_row_pos = timed(f"per-row pass ({len(sample):,} rows of search_positions)", per_row, figures)
    name, wall, cpu, mem = figures[-1]
    figures.append((f"per-row pass, every row (x {n / len(sample):.0f})", wall * n / len(sample),
                    cpu * n / len(sample), mem))

    check = np.sort(np.random.default_rng(2).choice(len(sample), min(RECALL_ROWS, len(sample)), replace=False))
    rows_checked = sample[check]
    x = np.load(ds.embedding_dir("e") / "vectors.npy", mmap_mode="r")
    truth = exact_rows(x, rows_checked)
    row_pos = np.array([[p for p in r if p != own][:K] for r, own in zip(per_row_pos[check], rows_checked)])
    r_stored, r_row = recall(np.asarray(stored.positions[rows_checked]), truth), recall(row_pos, truth)

    labels = pd.Series(rows["label"].to_numpy(), index=rows["id"].to_numpy())
    shared = timed("load stored pass (memory-mapped)", lambda: load_neighbours(ds, "e", 16), figures)
    issues = timed("label issues (k=10) from the stored pass",
                   lambda: find_label_issues(index, labels, k=10, neighbours=shared), figures)
    dups = timed("near-duplicates (0.95) from the stored pass",
                 lambda: find_near_duplicates(index, 0.95, labels, neighbours=shared), figures)
    timed("uniqueness (k=10) from the stored pass",
          lambda: score_outliers(index, k=10, neighbours=shared), figures)
    timed("quality columns (Catalog) from the stored pass",
          lambda: quality_columns(index, labels, neighbours=shared), figures)

    print(f"\n{n:,} rows x {DIMS} ({args.data}), {faiss.omp_get_max_threads()} threads")
    print(f"{'step':58} {'wall s':>9} {'CPU s':>9} {'peak anon GB':>13}")
    for name, wall, cpu, mem in figures:
        print(f"{name:58} {wall:9.1f} {cpu:9.1f} {mem:13.2f}")
    stored_wall = next(f[1] for f in figures if f[0].startswith("stored pass"))
    row_wall = figures[3][1]
    print(f"\nrecall@10 on {len(rows_checked):,} rows vs exact: stored pass {r_stored:.4f}, per-row pass {r_row:.4f}")
    print(f"per-row pass / stored pass (wall): {row_wall / stored_wall:.1f}x")
    manifest = json.loads((ds.embedding_dir("e") / QUALITY_DIR / MANIFEST).read_text())
    print(f"stored pass: {manifest}")
    print(f"label issues: {len(issues):,} rows scored; duplicates: {len(dups.pairs):,} pairs")


if __name__ == "__main__":
    main()
