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

Part C: :mod:`core.quality.label_scores` side by side with today's find_label_issues and
cleanlab, on two planted-noise sets: the digits of Part A (neighbours on the efficientnet
vectors, the model a LogisticRegression on the raw 8x8 pixels, cross_val_predict cv=5 on the
noisy labels) and ``overlap``, a synthetic set of overlapping, imbalanced, two-mode classes
seen through two different noisy views (neighbours on one, the model on the other). Rows:
our neighbours (v2), model and combined scores, find_label_issues v1 (its formula before
label_scores, re-done here: find_label_issues now runs on label_scores and is shown too),
cleanlab's filter on out-of-fold kNN probabilities (as in Part A) and on the model's. Metric: P@N, N = number of
flipped rows (a filter returning fewer rows counts the missing places as misses), mean over
``--c-seeds`` (0-4), at 5% and 10% flips. ``--sweep`` first prints the tuning grid behind
label_scores' constants on ``--tune-seeds`` (100-104), never the reported seeds.

    /work/venv/bin/python bench/bench_quality.py [--parts a,b,c] [--seeds 0,1,2] [--skip-a] [--skip-b]
        [--rows 100000] [--dims 384] [--kind hnsw] [--workdir DIR]
        [--c-seeds 0-4] [--fractions 0.05,0.10] [--sweep] [--tune-seeds 100-104]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.index import build_index
from core.quality import (
    Duplicates,
    LabelIssues,
    Neighbours,
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


# ------------------------------------------------------------------ Part C


@dataclass(frozen=True)
class Planted:
    """A labelled set to plant noise in: ``vecs`` (n, d) unit float32 for the neighbours,
    ``features`` (n, f) float for the model (another view of the same rows), true ``labels``."""

    name: str
    vecs: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    note: str


def digits_planted(workdir: Path) -> Planted:
    """Digits: neighbours on the app's efficientnet-lite0 vectors, the model on the raw 8x8 pixels."""
    from sklearn.datasets import load_digits

    ids, vecs, labels = digits_embedding(workdir)
    digits = load_digits()
    # ids come from the file names digit-<i>.png written by write_digits_folder
    at = np.array([int(str(i).rsplit("digit-", 1)[1].split(".")[0]) for i in ids])
    if not np.array_equal(digits.target[at], labels):
        raise RuntimeError("digits ids do not map back to load_digits() rows")
    return Planted("digits", vecs, digits.data[at] / 16.0, labels,
                   "efficientnet-lite0 vectors (neighbours), raw 8x8 pixels (model)")


def overlap_planted(n: int = 3000, classes: int = 10, seed: int = 7) -> Planted:
    """Synthetic and harder than digits: overlapping, imbalanced classes (sizes 0.75^i, the
    largest ~13x the smallest), each a mix of 2 sub-clusters of unequal spread in a 12-d latent
    space. The neighbours see one noisy 64-d projection (unit vectors), the model another
    (24-d, its own noise): the two views lose different information, so neighbours and model
    make different mistakes, and a linear model cannot follow two modes where neighbours can."""
    rng = np.random.default_rng(seed)
    latent_dims, subs = 12, 2
    centres = rng.standard_normal((classes, subs, latent_dims)) * 1.2
    spread = rng.uniform(0.5, 1.2, classes)  # some classes tight, some wide
    sizes = 0.75 ** np.arange(classes)  # imbalanced: the largest class ~13x the smallest
    labels = np.repeat(np.arange(classes), np.round(n * sizes / sizes.sum()).astype(int))
    rng.shuffle(labels)
    sub = rng.integers(0, subs, len(labels))
    z = centres[labels, sub] + spread[labels, None] * rng.standard_normal((len(labels), latent_dims))
    view_a = z @ rng.standard_normal((latent_dims, 64)) + 1.5 * rng.standard_normal((len(labels), 64))
    view_a /= np.linalg.norm(view_a, axis=1, keepdims=True)
    view_b = z @ rng.standard_normal((latent_dims, 24)) + 1.0 * rng.standard_normal((len(labels), 24))
    return Planted("overlap", view_a.astype(np.float32), view_b, labels,
                   f"synthetic {classes} classes x {subs} sub-clusters, 64-d view (neighbours), "
                   "24-d other view (model)")


def knn_probs(vecs: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Out-of-fold kNN probabilities, as in Part A."""
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(metric="cosine", weights="distance", n_neighbors=K)
    return cross_val_predict(knn, vecs, noisy, method="predict_proba", cv=5)


def model_probs(features: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Out-of-fold LogisticRegression probabilities, trained on the noisy labels (cv=5)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    return cross_val_predict(model, features, noisy, method="predict_proba", cv=5)


def precision_at(order: np.ndarray, flipped: np.ndarray) -> float:
    """Hits among the first N of ``order`` / N, N = number of flipped rows (a shorter list
    counts its missing places as misses)."""
    n = len(flipped)
    return float(np.isin(np.asarray(order)[:n], flipped).sum()) / n


@dataclass
class Trial:
    """One planted-noise draw of a set: noisy labels, flipped positions, both probabilities."""

    noisy: np.ndarray
    flipped: np.ndarray
    knn: np.ndarray
    model: np.ndarray


def trials(ds: Planted, seeds: list[int], fractions: tuple[float, ...]) -> dict[tuple[float, int], Trial]:
    out = {}
    classes = int(ds.labels.max()) + 1
    for frac in fractions:
        for seed in seeds:
            noisy, chosen = flip(ds.labels, frac, seed, classes=classes)
            out[frac, seed] = Trial(noisy, chosen, knn_probs(ds.vecs, noisy), model_probs(ds.features, noisy))
    return out


def ours(votes: np.ndarray | None, trial: Trial, source: str, **kw) -> np.ndarray:
    """Our order of the rows for ``source`` (neighbours, model, combined); ``kw`` overrides the
    module's defaults (power, weight, smoothing) for the sweep."""
    from core.quality import label_scores as ls

    given = trial.noisy
    power = kw.get("power", ls.CALIBRATION_POWER)
    if source == "neighbours":
        probs = ls.calibrate(votes, given, power=power)
    elif source == "model":
        probs = ls.calibrate(trial.model.astype(np.float32), given, power=power)
    else:
        probs = ls.combine(votes, trial.model.astype(np.float32), given, power=power,
                           weight=kw.get("weight"),
                           smoothing=kw.get("smoothing", ls.COMBINE_SMOOTHING))
    return ls.issue_scores(probs, given).order(np.arange(len(given)))


def ours_confident(trial: Trial) -> np.ndarray:
    """confident.py's prune_by_noise_rate flags first (by our model issue score), then the rest."""
    from core.quality import label_scores as ls
    from core.quality.confident import confident_learning

    given = trial.noisy
    flagged = confident_learning(given, trial.model).issues
    sc = ls.issue_scores(ls.calibrate(trial.model.astype(np.float32), given), given)
    return np.lexsort((np.arange(len(given)), -sc.margin, -sc.score, ~flagged))


def v1_order(nb: Neighbours, noisy: np.ndarray, k: int = K) -> np.ndarray:
    """Row order of find_label_issues before label_scores (v1, as of commit d7d9f26), re-done
    here since find_label_issues now runs on label_scores: the first ``k`` labelled neighbours
    weighted ``max(sim, 0) + 1e-6``, score ``1 - P(given)``, ties by id (= position here);
    rows without a labelled neighbour left out."""
    m, classes = len(noisy), int(noisy.max()) + 1
    labelled = nb.positions >= 0
    labelled &= np.cumsum(labelled, axis=1) <= k
    ncode = noisy[np.clip(nb.positions, 0, None)]
    weights = np.where(labelled, np.maximum(nb.scores, 0.0) + 1e-6, 0.0)
    flat = (np.arange(m)[:, None] * classes + ncode)[labelled]
    mass = np.bincount(flat, weights=weights[labelled], minlength=m * classes).reshape(m, classes)
    total = mass.sum(axis=1)
    p_given = np.divide(mass[np.arange(m), noisy], total, out=np.zeros(m), where=total > 0)
    score = np.clip(1.0 - p_given, 0.0, 1.0).astype(np.float32)
    keep = np.flatnonzero(total > 0)
    return keep[np.lexsort((keep, -score[keep].astype(np.float64)))]


def votes_for(nb: Neighbours, noisy: np.ndarray, k: int, temperature: float) -> np.ndarray:
    from core.quality.label_scores import neighbour_votes

    return neighbour_votes(nb.scores, nb.positions, noisy.astype(np.int64), int(noisy.max()) + 1, k,
                           temperature=temperature)


SWEEP_K = (5, 10, 15, 20, 30, 40, 60)
SWEEP_T = (0.02, 0.05, 0.1, float("inf"))
SWEEP_POWER = (0.0, 0.5, 1.0)
SWEEP_WEIGHT = (0.4, 0.5, 0.6, 0.7, 0.8)
SWEEP_SMOOTHING = (0.005, 0.01, 0.02, 0.05)
PART_C_FETCH = 64  # neighbours fetched once per set (>= the largest k swept)


def sweep(sets: list[tuple[Planted, Neighbours]], seeds: list[int], fractions: tuple[float, ...]) -> None:
    """The tuning sweep behind label_scores' constants, on ``seeds`` (never the reported ones).

    Stage 1, neighbours: k x temperature x calibration power. Stage 2, at stage 1's choice:
    the combination's weight x smoothing (geometric), and the arithmetic mix for comparison.
    Each cell is the mean P@N over both sets, their seeds and flip fractions (per set in
    brackets); the best cell is starred; the module's constants should be the stars."""
    from core.quality import label_scores as ls

    runs = [(ds, nb, t) for ds, nb in sets for t in trials(ds, seeds, fractions).values()]
    names = [ds.name for ds, _ in sets]
    print(f"\n### Sweep (tuning seeds {seeds}, flips {', '.join(f'{f:.0%}' for f in fractions)}; "
          f"P@N mean over {' and '.join(names)}, per set in brackets)\n")
    grid: dict[tuple, dict[str, list[float]]] = {}

    def add(key: tuple, name: str, order: np.ndarray, flipped: np.ndarray) -> None:
        grid.setdefault(key, {}).setdefault(name, []).append(precision_at(order, flipped))

    def mean(key: tuple) -> float:
        return float(np.mean([np.mean(v) for v in grid[key].values()]))

    def cell(key: tuple, best: tuple) -> str:
        per = "/".join(f"{np.mean(grid[key][n]):.3f}" for n in names)
        return f"{'**' if key == best else ''}{mean(key):.3f}{'**' if key == best else ''} ({per})"

    for ds, nb, t in runs:
        for k in SWEEP_K:
            for temp in SWEEP_T:
                votes = votes_for(nb, t.noisy, k, temp)
                for power in SWEEP_POWER:
                    add(("nb", k, temp, power), ds.name, ours(votes, t, "neighbours", power=power), t.flipped)
        for power in SWEEP_POWER:
            add(("md", power), ds.name, ours(None, t, "model", power=power), t.flipped)
        add(("md-cl",), ds.name, ours_confident(t), t.flipped)
    nb_keys = [key for key in grid if key[0] == "nb"]
    best = max(nb_keys, key=mean)
    _, k_best, t_best, p_best = best
    print(f"Neighbours (v2), calibration power {p_best:g}: rows k, columns temperature T\n")
    print("| k | " + " | ".join(f"T={t:g}" for t in SWEEP_T) + " |\n" + "|---" * (len(SWEEP_T) + 1) + "|")
    for k in SWEEP_K:
        print(f"| {k} | " + " | ".join(cell(("nb", k, t, p_best), best) for t in SWEEP_T) + " |")
    print(f"\nNeighbours at k={k_best}, T={t_best:g}, by calibration power: "
          + "; ".join(f"{p:g}: {cell(('nb', k_best, t_best, p), best)}" for p in SWEEP_POWER))
    md_best = max([("md", p) for p in SWEEP_POWER], key=mean)
    print("Model (LogisticRegression, out-of-fold) by calibration power: "
          + "; ".join(f"{p:g}: {cell(('md', p), md_best)}" for p in SWEEP_POWER)
          + f"; confident_learning flags first: {cell(('md-cl',), md_best)}")
    for ds, nb, t in runs:
        votes = votes_for(nb, t.noisy, k_best, t_best)
        for w in SWEEP_WEIGHT:
            for eps in SWEEP_SMOOTHING:
                add(("geo", w, eps), ds.name, ours(votes, t, "combined", power=p_best, weight=w, smoothing=eps),
                    t.flipped)
            mix = w * ls.calibrate(votes, t.noisy, power=p_best) + (1 - w) * ls.calibrate(
                t.model.astype(np.float32), t.noisy, power=p_best)
            add(("arith", w), ds.name, ls.issue_scores(mix, t.noisy).order(np.arange(len(t.noisy))), t.flipped)
    geo_best = max([key for key in grid if key[0] == "geo"], key=mean)
    print(f"\nCombined at k={k_best}, T={t_best:g}, power {p_best:g}: geometric mean, rows neighbour "
          "weight, columns smoothing; last column the arithmetic mix\n")
    print("| weight | " + " | ".join(f"smoothing {e:g}" for e in SWEEP_SMOOTHING) + " | arithmetic |\n"
          + "|---" * (len(SWEEP_SMOOTHING) + 2) + "|")
    for w in SWEEP_WEIGHT:
        print(f"| {w:g} | " + " | ".join(cell(("geo", w, e), geo_best) for e in SWEEP_SMOOTHING)
              + f" | {cell(('arith', w), geo_best)} |")
    chosen = (k_best, t_best, p_best, geo_best[1], geo_best[2])
    module = (ls.DEFAULT_NEIGHBOUR_K, ls.VOTE_TEMPERATURE, ls.CALIBRATION_POWER, ls.COMBINE_WEIGHT,
              ls.COMBINE_SMOOTHING)
    print(f"\nsweep's choice k={chosen[0]}, T={chosen[1]:g}, power {chosen[2]:g}, weight {chosen[3]:g}, "
          f"smoothing {chosen[4]:g}; label_scores' constants "
          f"{'match' if chosen == module else 'DIFFER: ' + repr(module)}")


METHODS_C = ("ours-neighbours (v2)", "ours-model (issue score)", "ours-combined",
             "find_label_issues v1 (k=10, before label_scores)", "cleanlab filter on kNN probs",
             "cleanlab filter on model probs", "ours-model: confident_learning flags first",
             "find_label_issues as wired now (default k)",
             "ours-combined, weight fixed at 0.6 (before skill_weight)")


def part_c(workdir: Path, seeds: list[int], fractions: tuple[float, ...], tune_seeds: list[int] | None) -> None:
    """Side-by-side P@N of our three label-issue scores, today's v1 and cleanlab on two sets."""
    import cleanlab
    from cleanlab.filter import find_label_issues as cl_find

    from core.quality import label_scores as ls

    sets = []
    for ds in (digits_planted(workdir), overlap_planted()):
        index = build_index(ds.vecs, [f"r{i:05d}" for i in range(len(ds.vecs))])
        sets.append((ds, index, nearest_neighbours(index, PART_C_FETCH)))
    print(f"\n## Part C: label-issue scores side by side (cleanlab {cleanlab.__version__}), "
          f"k={ls.DEFAULT_NEIGHBOUR_K}, T={ls.VOTE_TEMPERATURE:g}, calibration power {ls.CALIBRATION_POWER:g}, "
          f"combine weight {ls.COMBINE_WEIGHT:g} moved by skill_weight, smoothing {ls.COMBINE_SMOOTHING:g}; reported seeds {seeds}\n")
    for ds, _, _ in sets:
        print(f"- {ds.name}: {len(ds.labels)} rows, {int(ds.labels.max()) + 1} classes; {ds.note}")
    if tune_seeds:
        sweep([(ds, nb) for ds, _, nb in sets], tune_seeds, fractions)
    print("\nP@N = flipped rows among a method's first N / N, N = number of flipped rows; cleanlab's "
          "filter returns only the rows it flags, so a shorter list counts its missing places as misses. "
          f"Mean over seeds {seeds}.\n")
    cols = [(ds.name, f) for ds, _, _ in sets for f in fractions]
    res: dict[tuple[str, str, float], list[float]] = {}
    flagged: dict[tuple[str, float, str], list[int]] = {}
    n_flips: dict[tuple[str, float], int] = {}
    weights: dict[tuple[str, float], list[float]] = {}
    for ds, index, nb in sets:
        ids = np.asarray(index.ids)
        for (frac, _), t in trials(ds, seeds, fractions).items():
            votes = votes_for(nb, t.noisy, ls.DEFAULT_NEIGHBOUR_K, ls.VOTE_TEMPERATURE)
            now = find_label_issues(index, dict(zip(ids, t.noisy.astype(str))), neighbours=nb)
            at = {v: i for i, v in enumerate(ids)}
            orders = {
                METHODS_C[0]: ours(votes, t, "neighbours"),
                METHODS_C[1]: ours(votes, t, "model"),
                METHODS_C[2]: ours(votes, t, "combined"),
                METHODS_C[3]: v1_order(nb, t.noisy),
                METHODS_C[4]: np.asarray(cl_find(t.noisy, t.knn, return_indices_ranked_by="self_confidence")),
                METHODS_C[5]: np.asarray(cl_find(t.noisy, t.model, return_indices_ranked_by="self_confidence")),
                METHODS_C[6]: ours_confident(t),
                METHODS_C[7]: np.array([at[i] for i in now.ids]),
                METHODS_C[8]: ours(votes, t, "combined", weight=ls.COMBINE_WEIGHT),
            }
            for name, order in orders.items():
                res.setdefault((name, ds.name, frac), []).append(precision_at(order, t.flipped))
            flagged.setdefault((ds.name, frac, "knn"), []).append(len(orders[METHODS_C[4]]))
            flagged.setdefault((ds.name, frac, "model"), []).append(len(orders[METHODS_C[5]]))
            n_flips[ds.name, frac] = len(t.flipped)
            weights.setdefault((ds.name, frac), []).append(ls.skill_weight(votes, t.model, t.noisy))
    def avg(name: str, col: tuple[str, float] | None = None) -> float:
        return float(np.mean([np.mean(res[name, n, f]) for n, f in ([col] if col else cols)]))

    print("| method | " + " | ".join(f"{n} {f:.0%}" for n, f in cols) + " | mean |\n"
          + "|---" * (len(cols) + 2) + "|")
    for name in METHODS_C:
        print(f"| {name} | " + " | ".join(f"{avg(name, c):.3f}" for c in cols) + f" | {avg(name):.3f} |")
    for a, b in ((METHODS_C[0], METHODS_C[4]), (METHODS_C[2], METHODS_C[5])):
        print(f"| ratio {a.split(' ')[0]} / {b} | "
              + " | ".join(f"{avg(a, c) / max(avg(b, c), 1e-9):.2f}x" for c in cols)
              + f" | {avg(a) / max(avg(b), 1e-9):.2f}x |")
    print("\ncleanlab's filter returned on average "
          + ", ".join(f"{n} {f:.0%}: {np.mean(flagged[n, f, 'knn']):.0f} (kNN) / {np.mean(flagged[n, f, 'model']):.0f} "
                      f"(model) rows for N = {n_flips[n, f]}" for n, f in cols))
    print("\nskill_weight (the neighbours' share of ours-combined), mean over seeds: "
          + ", ".join(f"{n} {f:.0%}: {np.mean(weights[n, f]):.3f}" for n, f in cols))
    print("\ntarget: ours-neighbours >= 1.05x cleanlab on kNN probs; ours-combined >= 1.05x cleanlab on model probs")


def seed_list(text: str) -> list[int]:
    """``0,1,2`` or ``100-104`` (or a mix) as a list of ints."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="a,b,c", help="parts to run (comma separated: a, b, c)")
    parser.add_argument("--seeds", default="0,1,2", help="flip seeds for part A (comma separated)")
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--kind", default="hnsw", choices=("auto", "exact", "hnsw"))
    parser.add_argument("--workdir", type=Path, default=None,
                        help="reuse this folder for the digits workspace (default: a temp dir)")
    parser.add_argument("--c-seeds", default="0-4", help="reported flip seeds for part C (default 0-4)")
    parser.add_argument("--fractions", default="0.05,0.10", help="flip fractions for part C")
    parser.add_argument("--sweep", action="store_true",
                        help="part C: also print the tuning sweep, on --tune-seeds")
    parser.add_argument("--tune-seeds", default="100-104", help="flip seeds of the sweep (default 100-104)")
    args = parser.parse_args()
    parts = set(args.parts.split(",")) - ({"a"} if args.skip_a else set()) - ({"b"} if args.skip_b else set())
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        workdir = Path(tmp) if args.workdir is None else args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        if "a" in parts:
            part_a(workdir, seed_list(args.seeds))
        if "c" in parts:
            part_c(workdir, seed_list(args.c_seeds), tuple(float(f) for f in args.fractions.split(",")),
                   seed_list(args.tune_seeds) if args.sweep else None)
    if "b" in parts:
        part_b(args.rows, args.dims, args.kind)


if __name__ == "__main__":
    main()
