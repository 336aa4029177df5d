"""Smart select: pick ``n`` rows from a scope at random, by a column, by cluster or for diversity.

Every function takes the scope's ids (after :func:`apply_scope`) and returns a
:class:`Selection` whose ``recipe`` records how to reproduce it. Vector methods take
``vectors`` aligned with ``ids`` (use :func:`scope_vectors` to cut an embedding down
to a scope) and work on cosine geometry (rows are L2-normalised first).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core._shared import ProgressFn, check_positive_int, unit_rows
from core.clusters import cluster_rows, members_by_cluster
from core.errors import InputError, SchemaError, format_list

log = logging.getLogger(__name__)

SELECT_METHODS = ("random", "ordered", "cluster", "diverse")
PER_CLUSTER_CHOICES = ("proportional", "equal")
PICK_CHOICES = ("central", "random")


@dataclass(frozen=True)
class Selection:
    """Chosen rows in selection order (no duplicates) and the JSON-serialisable recipe."""

    ids: tuple[str, ...]
    recipe: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def to_json(self) -> dict:
        """``{"ids": [...], "recipe": {...}}`` (the ``catalog select --json`` shape)."""
        return {"ids": list(self.ids), "recipe": dict(self.recipe)}


# ---- scope ------------------------------------------------------------------
def apply_scope(
    ids: Sequence[str], *, within: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> list[str]:
    """``ids`` (order kept, duplicates dropped) that are in ``within`` (None = all) and not
    in ``exclude``. Raises InputError if ``within``/``exclude`` is a single string."""
    for name, value in (("within", within), ("exclude", exclude)):
        if isinstance(value, str):
            raise InputError(f"{name} must be a collection of ids, not the string {value!r}")
    keep = None if within is None else {str(i) for i in within}
    drop = {str(i) for i in exclude}
    out = []
    for rid in dict.fromkeys(str(i) for i in ids):
        if (keep is None or rid in keep) and rid not in drop:
            out.append(rid)
    return out


def scope_vectors(
    ids: Sequence[str], vectors: np.ndarray, scope: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Rows of ``vectors`` ((n, d), aligned with ``ids``) for the ids in ``scope``, in
    scope order; scope ids without a vector are dropped (logged). Returns (ids, (m, d)):
    ``vectors`` itself (no copy) when the scope is every row in order."""
    lookup = pd.Index([str(i) for i in ids])
    scope = [str(i) for i in scope]
    pos = lookup.get_indexer(scope)
    missing = int((pos < 0).sum())
    if missing:
        log.info("%d of %d scope rows have no vector and are left out", missing, len(scope))
    keep = pos >= 0
    if len(pos) == len(lookup) and (pos == np.arange(len(pos))).all():
        return scope, vectors  # every row, in order: the vectors as they are (a memory map stays one)
    kept_ids = [rid for rid, ok in zip(scope, keep) if ok]
    return kept_ids, np.asarray(vectors)[pos[keep]]


# ---- validation -----------------------------------------------------------------
def _check_n(n: int, scope_rows: int) -> int:
    """``n`` as an int in 1..``scope_rows``; InputError naming ``n`` (and the scope size)."""
    n = check_positive_int(n, "n")
    if n > scope_rows:
        raise InputError(f"asked for {n} rows but the scope has {scope_rows}")
    return n


def _check_seed(seed: int) -> int:
    return check_positive_int(seed, "seed", minimum=0)


def _check_ids(ids: Sequence[str]) -> list[str]:
    out = [str(i) for i in ids]
    dups = pd.Index(out)
    if dups.has_duplicates:
        repeated = dups[dups.duplicated()].unique().tolist()
        raise InputError(f"{len(repeated)} ids appear more than once in the scope: "
                         f"{format_list(repeated)}")
    return out


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise InputError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value



# ---- methods --------------------------------------------------------------------
def select_random(ids: Sequence[str], n: int, seed: int = 0) -> Selection:
    """``n`` distinct ids drawn uniformly (numpy ``default_rng(seed)``), in draw order.

    Same ids and seed → same selection. Raises InputError if ``n`` <= 0, ``n`` exceeds
    the scope, or ids repeat.
    """
    ids = _check_ids(ids)
    n = _check_n(n, len(ids))
    seed = _check_seed(seed)
    order = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    chosen = tuple(ids[i] for i in order)
    return Selection(chosen, {"method": "random", "n": n, "seed": seed, "scope_rows": len(ids)})


def select_ordered(table: pd.DataFrame, n: int, by: str, descending: bool = False) -> Selection:
    """The first ``n`` rows of ``table`` (columns ``id`` and ``by``) sorted by ``by``.

    Order = ``sort_values(by, ascending=not descending, na_position="last",
    kind="stable")``: nulls last in both directions, ties keep table order. Raises
    SchemaError (missing column, listing the columns; values that cannot be compared)
    and InputError (``n`` <= 0 or larger than the table).
    """
    columns = [str(c) for c in table.columns]
    if "id" not in table.columns:
        raise SchemaError(f"the table has no 'id' column; columns: {format_list(columns, 30)}")
    if by not in table.columns:
        raise SchemaError(f"unknown column {by!r}; choose one of {format_list(columns, 30)}")
    ids = _check_ids(table["id"].tolist())
    n = _check_n(n, len(ids))
    try:
        ordered = table.sort_values(by, ascending=not descending, na_position="last",
                                    kind="stable")
    except TypeError as err:
        raise SchemaError(f"column {by!r} mixes values that cannot be ordered ({err}); "
                          "choose a column of numbers, text or dates") from err
    chosen = tuple(str(i) for i in ordered["id"].iloc[:n])
    recipe = {"method": "ordered", "n": n, "seed": None, "by": str(by),
              "descending": bool(descending), "scope_rows": len(ids)}
    return Selection(chosen, recipe)


def _largest_remainder(sizes: np.ndarray, n: int) -> np.ndarray:
    """Quotas proportional to ``sizes`` summing to ``n`` (ties → lower cluster index)."""
    raw = n * sizes / sizes.sum()
    quotas = np.floor(raw).astype(np.int64)
    short = n - int(quotas.sum())
    if short:
        order = np.lexsort((np.arange(len(sizes)), -(raw - quotas)))
        quotas[order[:short]] += 1
    return quotas


def _quotas(sizes: np.ndarray, n: int, per_cluster: str) -> np.ndarray:
    """Rows to take from each cluster: sum exactly ``n``, never above a cluster's size."""
    k = len(sizes)
    nonempty = sizes > 0
    if per_cluster == "proportional":
        quotas = _largest_remainder(sizes, n)
        if n >= int(nonempty.sum()):  # every non-empty cluster gets at least one row,
            share = n * sizes / sizes.sum()  # taken from the one most above its exact share
            for c in np.flatnonzero(nonempty & (quotas == 0)):
                donor = int(np.argmax(np.where(quotas > 1, quotas - share, -np.inf)))
                quotas[donor] -= 1
                quotas[c] += 1
        return quotas
    quotas = np.zeros(k, dtype=np.int64)  # "equal": water-filling, leftovers to clusters with room
    by_size = np.lexsort((np.arange(k), -sizes))
    remaining = n
    while remaining > 0:
        room = [c for c in by_size if quotas[c] < sizes[c]]
        share = remaining // len(room)
        if share == 0:
            for c in room[:remaining]:
                quotas[c] += 1
            break
        for c in room:
            add = min(share, int(sizes[c] - quotas[c]))
            quotas[c] += add
            remaining -= add
    return quotas



def select_by_cluster(
    ids: Sequence[str],
    vectors: np.ndarray,
    n: int,
    k: int = 10,
    *,
    per_cluster: str = "proportional",
    pick: str = "central",
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Selection:
    """``n`` rows spread over ``k`` KMeans clusters of the L2-normalised ``vectors`` ((N, d),
    e.g. the memory map of a stored embedding: it is read in chunks, never copied whole).

    KMeans (:func:`core.clusters.cluster_rows`: seeded; on every row up to 100,000 rows,
    MiniBatchKMeans above 20,000; above 100,000 fitted on a seeded sample of 100,000 and
    every row assigned in chunks; ``k`` capped at the number of distinct rows, so no
    cluster is empty). Quotas: ``"proportional"`` to cluster size (largest remainder; each
    cluster ≥ 1 when ``n`` >= k) or ``"equal"`` (leftovers of small clusters go to the
    others). Within a cluster ``pick="central"`` takes the rows closest to the centroid
    first, ``"random"`` a seeded draw. Ids come round-robin over clusters (rank 0 of every
    cluster, then rank 1, ...), so any prefix is spread too. Recipe adds ``k``,
    ``cluster_sizes`` and ``per_cluster_counts`` (and ``fitted_rows`` when KMeans was fitted
    on a sample). ``progress(done_rows, N)`` as rows are assigned. Raises InputError (bad n,
    k, choices), EmbeddingError (vectors not (N, d) or not finite).
    """
    ids = _check_ids(ids)
    per_cluster = _check_choice(per_cluster, PER_CLUSTER_CHOICES, "per_cluster")
    pick = _check_choice(pick, PICK_CHOICES, "pick")
    n = _check_n(n, len(ids))
    seed = _check_seed(seed)
    k = check_positive_int(k, "k")
    vectors = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        unit_rows(vectors, ids)  # raises EmbeddingError naming the shape
    rows = cluster_rows(vectors, min(int(k), len(ids)), seed, ids=ids, progress=progress)
    k_used = rows.k  # no empty cluster: k <= distinct rows
    if k_used < k:
        log.info("k=%d clusters but the scope has %d distinct rows; using k=%d", k, k_used, k_used)
    labels = rows.labels
    sizes = np.bincount(labels, minlength=k_used)
    quotas = _quotas(sizes, n, per_cluster)
    rng = np.random.default_rng(seed)
    members_of = members_by_cluster(labels, k_used)
    picked: list[np.ndarray] = []
    for c in range(k_used):
        members = members_of[c]
        if pick == "central":
            members = members[np.argsort(rows.distances[members], kind="stable")]
        else:
            members = rng.permutation(members)
        picked.append(members[: quotas[c]])
    rank = np.concatenate([np.arange(len(p)) for p in picked])
    cluster = np.concatenate([np.full(len(p), c) for c, p in enumerate(picked)])
    chosen = np.concatenate(picked)[np.lexsort((cluster, rank))]
    recipe = {
        "method": "cluster", "n": n, "seed": seed, "k": k_used, "per_cluster": per_cluster,
        "pick": pick, "algorithm": rows.algorithm, "cluster_sizes": sizes.tolist(),
        "per_cluster_counts": quotas.tolist(), "scope_rows": len(ids),
    }
    if rows.fitted_rows < len(ids):
        recipe["fitted_rows"] = rows.fitted_rows
    return Selection(tuple(ids[i] for i in chosen), recipe)


def select_diverse(ids: Sequence[str], vectors: np.ndarray, n: int, seed: int = 0) -> Selection:
    """``n`` rows by greedy farthest-point (k-center) sampling on cosine distance.

    The first row is drawn with ``default_rng(seed)``; each next row is the one farthest
    from everything chosen so far. One matrix-vector product per step, O(n·N·d) at most:
    rows that provably cannot move closer to the new pick (triangle inequality on the
    unit sphere, where euclidean² = 2·cosine distance) are skipped, which is exact and
    much faster on clustered embeddings. Recipe adds ``min_distance``: the cosine distance
    of the last pick to the earlier ones (the covering radius). Raises InputError (bad n,
    repeated ids) and EmbeddingError (vectors not (N, d) or not finite).
    """
    ids = _check_ids(ids)
    n = _check_n(n, len(ids))
    seed = _check_seed(seed)
    X = unit_rows(vectors, ids)
    total = len(ids)
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = int(np.random.default_rng(seed).integers(total))
    nearest = 1.0 - X @ X[chosen[0]]  # (N,) cosine distance to the closest chosen row
    nearest[chosen[0]] = -np.inf  # chosen rows stay at -inf and are never picked again
    owner = np.zeros(total, dtype=np.int64)  # step that chose each row's closest pick
    last_gap = 0.0
    for step in range(1, n):
        nxt = int(np.argmax(nearest))
        last_gap = float(nearest[nxt])
        chosen[step] = nxt
        centre = X[nxt]
        # A row owned by pick j can only get closer to `centre` if its euclidean distance
        # exceeds half the euclidean distance between pick j and `centre`.
        between = np.maximum(2.0 - 2.0 * (X[chosen[:step]] @ centre), 0.0)  # euclidean²
        limit = (between / 8.0 - 1e-6).astype(np.float32)  # (eu/2)² / 2, as cosine distance
        todo = np.flatnonzero(nearest > limit[owner])
        if len(todo) > total // 3:  # a gather would cost more than the full product
            dist = 1.0 - X @ centre
            closer = np.flatnonzero(dist < nearest)
            nearest[closer] = dist[closer]
        else:
            dist = 1.0 - X[todo] @ centre
            hit = dist < nearest[todo]
            closer = todo[hit]
            nearest[closer] = dist[hit]
        owner[closer] = step
        nearest[nxt] = -np.inf
    recipe = {"method": "diverse", "n": n, "seed": seed, "metric": "cosine",
              "min_distance": round(max(last_gap, 0.0), 6), "scope_rows": total}
    return Selection(tuple(ids[i] for i in chosen), recipe)


__all__ = [
    "SELECT_METHODS", "Selection", "apply_scope", "scope_vectors", "select_by_cluster",
    "select_diverse", "select_ordered", "select_random",
]
