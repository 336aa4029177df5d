"""Quality benchmark: label-mistake ranking against cleanlab, and speed at 100k rows.

Part A: the digits demo (1,797 images) embedded with ``image:efficientnet-lite0``
through the app's own path (write_digits_folder → ingest_folder → compute_embeddings)
in a temporary workspace. For each seed, 5% of labels are flipped to a different
random digit; we rank rows with :func:`core.quality.find_label_issues` (k=10) and with
cleanlab given out-of-fold kNN probabilities on the same vectors
(KNeighborsClassifier(metric="cosine", weights="distance", n_neighbors=10),
cross_val_predict(method="predict_proba", cv=5)):

- ``cleanlab filter``: ``cleanlab.filter.find_label_issues(..., return_indices_ranked_by=
  "self_confidence")`` — only the rows it flags, in its order;
- ``cleanlab rank``: all rows by ``cleanlab.rank.get_label_quality_scores(method=
  "self_confidence")`` (the score the filter ranks by), so every cut-off is filled.

Precision and recall of the flipped rows are printed at 1x, 2x and 3x the number of flips
(mean over seeds), plus the size/precision/recall of the filter's own flagged set.

Part B: 100k × 384 clustered synthetic vectors with labels (5% flipped) and planted
near-duplicates; prints the time of the index build, label issues, duplicates at 0.95,
outliers and quality_columns (each alone, then from one shared ``nearest_neighbours``
pass), wall and CPU seconds (the CPU figure does not depend on other load on the box),
plus what was found.

    /work/venv/bin/python bench/bench_quality.py [--seeds 0,1,2] [--skip-a] [--skip-b]
        [--rows 100000] [--dims 384] [--kind hnsw] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.index import build_index
from core.quality import (
    Duplicates,
    LabelIssues,
    find_label_issues,
    find_near_duplicates,
    nearest_neighbours,
    quality_columns,
    score_outliers,
)

K = 10
FLIP_FRACTION = 0.05
MULTIPLES = (1, 2, 3)
T = TypeVar("T")


# ------------------------------------------------------------------ Part A


def digits_embedding(workdir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (n,), vectors (n, d) float32, labels (n,) int) of the embedded digits demo."""
    from core.demo import write_digits_folder
    from core.embeddings import load_embedding
    from core.embeddings import compute_embeddings
    from core.ingest import ingest_folder
    from core.workspace import open_workspace

    ws = open_workspace(workdir / "home")
    if not ws.has_dataset("digits") or not ws.dataset("digits").embedding_names():
        folder = workdir / "digits-src"
        t0 = time.perf_counter()
        write_digits_folder(folder)
        ingest_folder(ws, folder, "digits", replace=True)
        compute_embeddings(ws.dataset("digits"), replace=True)
        print(f"built the digits embedding in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    ds = ws.dataset("digits")
    emb = load_embedding(ds)
    rows = ds.rows().set_index("id")
    ids = np.asarray(emb.ids).astype(str)
    labels = rows.loc[list(ids), "label"].astype(int).to_numpy()
    return ids, np.asarray(emb.vectors, dtype=np.float32), labels


def flip(labels: np.ndarray, fraction: float, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, positions flipped): ``fraction`` of rows moved to a different class."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), round(fraction * len(labels)), replace=False)
    noisy = labels.copy()
    for p in chosen:
        noisy[p] = rng.choice([c for c in range(classes) if c != labels[p]])
    return noisy, np.sort(chosen)


def precision_recall(ranked: np.ndarray, flipped: set[int], cut: int) -> tuple[float, float]:
    top = ranked[:cut]
    hit = sum(int(p) in flipped for p in top)
    return (hit / len(top) if len(top) else 0.0), hit / len(flipped)


def part_a(workdir: Path, seeds: list[int]) -> None:
    import cleanlab
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    ids, vecs, labels = digits_embedding(workdir)
    index = build_index(vecs, list(ids))
    pos_of = {v: i for i, v in enumerate(ids)}
    print(f"\n## Part A: digits ({len(ids)} rows, {vecs.shape[1]}-d efficientnet-lite0), "
          f"{FLIP_FRACTION:.0%} flipped, k={K}, seeds {seeds}, cleanlab {cleanlab.__version__}\n")
    methods = ("catalog find_label_issues", "cleanlab rank (self_confidence)", "cleanlab filter (ranked)")
    results: dict[str, list[list[tuple[float, float]]]] = {m: [] for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    flagged: list[tuple[int, float, float]] = []
    for seed in seeds:
        noisy, chosen = flip(labels, FLIP_FRACTION, seed)
        flipped = {int(p) for p in chosen}
        n_flip = len(chosen)
        t0 = time.perf_counter()
        ours = find_label_issues(index, dict(zip(ids, noisy.astype(str))), k=K)
        times[methods[0]].append(time.perf_counter() - t0)
        ours_ranked = np.array([pos_of[i] for i in ours.ids])
        t0 = time.perf_counter()
        knn = KNeighborsClassifier(metric="cosine", weights="distance", n_neighbors=K)
        probs = cross_val_predict(knn, vecs, noisy, method="predict_proba", cv=5)
        t_probs = time.perf_counter() - t0
        t0 = time.perf_counter()
        quality = get_label_quality_scores(noisy, probs, method="self_confidence")
        rank_ranked = np.lexsort((np.arange(len(quality)), quality))
        times[methods[1]].append(t_probs + time.perf_counter() - t0)
        t0 = time.perf_counter()
        filt = np.asarray(cl_find(noisy, probs, return_indices_ranked_by="self_confidence"))
        times[methods[2]].append(t_probs + time.perf_counter() - t0)
        hit = sum(int(p) in flipped for p in filt)
        flagged.append((len(filt), hit / max(len(filt), 1), hit / n_flip))
        for name, ranked in zip(methods, (ours_ranked, rank_ranked, filt)):
            results[name].append([precision_recall(ranked, flipped, m * n_flip) for m in MULTIPLES])
    n_flip = round(FLIP_FRACTION * len(labels))
    head = " | ".join(f"P@{m}x ({m * n_flip}) | R@{m}x" for m in MULTIPLES)
    print(f"| method | {head} | time / seed |")
    print("|---" * (2 + 2 * len(MULTIPLES)) + "|")
    for name in methods:
        mean = np.mean(np.array(results[name]), axis=0)  # (multiples, 2)
        cells = " | ".join(f"{p:.3f} | {r:.3f}" for p, r in mean)
        print(f"| {name} | {cells} | {np.mean(times[name]):.2f} s |")
    size, prec, rec = np.mean(np.array(flagged), axis=0)
    print(f"\ncleanlab filter flagged {size:.0f} rows on average (precision {prec:.3f}, recall {rec:.3f}); "
          "its P/R at cut-offs beyond that count are over the rows it flagged.")
    print("per seed, flipped rows in catalog's top 1x: "
          + ", ".join(f"seed {s}: {round(r[0][1] * n_flip)}" for s, r in zip(seeds, results[methods[0]])))


# ------------------------------------------------------------------ Part B


def synthetic(rows: int, dims: int, seed: int, clusters: int = 200, noise: float = 0.034,
              dup_pairs: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clustered unit vectors with labels = cluster (5% flipped) and planted near-copies.

    Returns vectors (rows, dims) float32, true labels (rows,), noisy labels (rows,), and the
    (dup_pairs, 2) positions of planted near-duplicate pairs (cosine ≈ 0.99).
    """
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dims)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    truth = rng.integers(0, clusters, rows)
    x = centers[truth] + noise * rng.standard_normal((rows, dims)).astype(np.float32)
    src = rng.choice(rows // 2, dup_pairs, replace=False)
    dst = rows // 2 + rng.choice(rows - rows // 2, dup_pairs, replace=False)
    x[dst] = x[src] + 0.003 * rng.standard_normal((dup_pairs, dims)).astype(np.float32)
    truth[dst] = truth[src]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    noisy, _ = flip(truth, FLIP_FRACTION, seed + 1, classes=clusters)
    return x, truth, noisy, np.stack([src, dst], axis=1)


def timed(fn: Callable[[], T]) -> tuple[T, float, float, float]:
    """(result, wall seconds, CPU seconds of this process (all threads), 1-min load average)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0, os.getloadavg()[0]


def part_b(rows: int, dims: int, kind: str, seed: int = 0) -> None:
    x, truth, noisy, planted = synthetic(rows, dims, seed)
    ids = np.array([f"row-{i:06d}" for i in range(rows)])
    labels = dict(zip(ids, noisy.astype(str)))
    flipped = set(ids[noisy != truth])
    want = {tuple(sorted((ids[a], ids[b]))) for a, b in planted}
    print(f"\n## Part B: {rows:,} × {dims} clustered synthetic vectors, 200 labels "
          f"({len(flipped)} flipped), {len(planted)} planted near-duplicate pairs, index kind {kind!r}, k={K}\n")
    table: list[tuple[str, float, float, float, str]] = []

    def issues_note(issues: LabelIssues) -> str:
        caught = sum(i in flipped for i in issues.ids[:len(flipped)])
        return f"{caught}/{len(flipped)} flipped rows in the top {len(flipped)}"

    def dups_note(dups: Duplicates) -> str:
        found = {(a, b) for a, b, _ in dups.pairs}
        return (f"{len(dups.pairs)} pairs, {len(dups.groups)} groups "
                f"({sum(g.conflict for g in dups.groups)} conflicts), planted found {len(want & found)}/{len(want)}")

    def run(name: str, fn: Callable[[], T], note: Callable[[T], str]) -> T:
        out, wall, cpu, load = timed(fn)
        table.append((name, wall, cpu, load, note(out)))
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr, flush=True)
        return out

    index = run("build_index", lambda: build_index(x, list(ids), kind=kind), repr)
    run("find_label_issues", lambda: find_label_issues(index, labels, k=K), issues_note)
    run("find_near_duplicates(0.95)", lambda: find_near_duplicates(index, 0.95, labels), dups_note)
    run("score_outliers", lambda: score_outliers(index, k=K), lambda o: f"top score {o.scores[0]:.3f}")
    run("quality_columns", lambda: quality_columns(index, labels, k=K), lambda t: f"{len(t)} rows")
    nb = run("nearest_neighbours(k=16) (shared pass)", lambda: nearest_neighbours(index, 16),
             lambda n: f"{n.positions.shape} neighbours")
    run("  find_label_issues(neighbours=)", lambda: find_label_issues(index, labels, k=K, neighbours=nb),
        issues_note)
    run("  find_near_duplicates(0.95, neighbours=)",
        lambda: find_near_duplicates(index, 0.95, labels, neighbours=nb), dups_note)
    run("  quality_columns(neighbours=)", lambda: quality_columns(index, labels, k=K, neighbours=nb),
        lambda t: f"{len(t)} rows")

    print("| step | wall s | CPU s | load avg | result |\n|---|---|---|---|---|")
    for name, wall, cpu, load, note in table:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {load:.1f} | {note} |")
    sec = {name.strip(): (wall, cpu) for name, wall, cpu, _, _ in table}
    alone = [sec["find_label_issues"], sec["find_near_duplicates(0.95)"]]
    shared = [sec["nearest_neighbours(k=16) (shared pass)"], sec["find_label_issues(neighbours=)"],
              sec["find_near_duplicates(0.95, neighbours=)"]]
    for what, parts in (("separately", alone), ("with one shared kNN pass", shared)):
        wall, cpu = (sum(p[i] for p in parts) for i in (0, 1))
        cores = os.cpu_count() or 1
        print(f"label issues + duplicates {what}: {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"(CPU / {cores} cores = {cpu / cores:.1f} s: the wall time on an idle box with "
              "every core busy); target ≤ 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="flip seeds for part A (comma separated)")
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--kind", default="hnsw", choices=("auto", "exact", "hnsw"))
    parser.add_argument("--workdir", type=Path, default=None,
                        help="reuse this folder for the digits workspace (default: a temp dir)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if not args.skip_a:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            part_a(args.workdir, [int(s) for s in args.seeds.split(",")])
        else:
            with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
                part_a(Path(tmp), [int(s) for s in args.seeds.split(",")])
    if not args.skip_b:
        part_b(args.rows, args.dims, args.kind)


if __name__ == "__main__":
    main()
