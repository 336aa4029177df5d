"""LanceIndex: the :class:`core.index.backend.VectorBackend` over an embedded LanceDB table.

The table (:mod:`core.index.lance_table`) is in a LanceDB database at ``<index folder>/lance/``
(recorded as ``"lance"``) or at the URI given to :func:`build_lance_index`. Kinds: ``exact``
(LanceDB scans the rows), ``ivf_pq`` / ``ivf_hnsw_sq`` (dot product over unit rows = cosine);
``auto``: IVF_PQ from ``INDEX_MIN_ROWS`` rows. Scores are exact cosines of the stored float32
rows: ``refine_factor`` re-ranks ``refine_factor * k`` code candidates on them, and LanceDB
returns ``_distance = 1 - dot``.

- search inside a subset: :mod:`core.index.lance_subset` (no id list sent per query).
- add appends a fragment (no rewrite), searched by LanceDB's scan of un-indexed rows until
  :meth:`LanceIndex.optimize`; remove deletes by slot (removed rows never come back).
- writes go to the table at once; :meth:`LanceIndex.save` writes ``index.json`` (backend, uri,
  table, kind, dims, count, params), moving a scratch table into ``<folder>/lance/``.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from core import atomic
from core._shared import ProgressFn, check_positive_int
from core.errors import EmbeddingError, IndexStateError, InputError, NotFoundError, format_list
from core.index.faiss_build import (
    Hits, RangeHits, as_matrix, check_ids, checked_norms, finite_threshold, unit_query_rows,
)
from core.index.lance_subset import (
    LOCAL_MAX_ROWS, LanceSubset, keep_members, local_top, make_subset, post_limit, read_row_ids, take_vectors,
)
from core.index.lance_table import (
    ANN_KINDS, TABLE, batches, check_lance_params, connect, create_table, create_vector_index,
    has_vector_index, in_slots, open_table, partitions, read_slots, resolve_lance_kind,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_URI = "lance"          # relative: the folder beside index.json
QUERY_BATCH = 64               # query vectors per LanceDB call
RANGE_FIRST = 256              # range search: first candidate count, x4 until the threshold
RANGE_PROBES = 2               # a range reaches further than a top 10: probe more lists


class LanceIndex:
    """Cosine kNN over string ids in a LanceDB table; from :func:`build_lance_index` or
    :meth:`load`. Attributes ``kind``, ``dims``, ``params``, ``uri`` (as recorded)."""

    backend = "lancedb"

    def __init__(self, table: Any, uri: str, root: str, kind: str, dims: int, params: dict[str, int],
                 scratch: Path | None = None) -> None:
        self.kind, self.dims, self.params, self.uri = kind, int(dims), dict(params), uri
        self._table, self._root, self._scratch = table, root, scratch
        self._cleanup = weakref.finalize(self, shutil.rmtree, scratch, True) if scratch else None  # unsaved
        self._indexed = has_vector_index(table)
        self._set_rows(*read_slots(table))

    def _set_rows(self, slots: np.ndarray, ids: np.ndarray) -> None:
        """Live ``slots`` (ascending) and their ``ids``; resets lookups and subsets."""
        self._live, self._ids = slots, ids
        self._ids.flags.writeable = False
        self._pos_of = dict(zip(ids.tolist(), range(len(ids))))
        self._next_slot = int(slots[-1]) + 1 if len(slots) else 0
        self._row_ids: np.ndarray | None = None  # LanceDB row ids of the live slots, read when needed
        self._state = object()

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"LanceIndex(kind={self.kind!r}, dims={self.dims}, rows={len(self)}, uri={self.uri!r})"

    @property
    def ids(self) -> np.ndarray:
        """(n,) object array of live ids in insertion order (read-only)."""
        return self._ids

    # -- lookups --------------------------------------------------------------------
    def _positions(self, ids: Sequence[str], strict: bool = True) -> np.ndarray:
        if isinstance(ids, str):
            raise InputError(f"expected a sequence of ids, got the single string {ids!r}")
        values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
        found = np.fromiter(map(self._pos_of.get, values, repeat(-1)), np.int64, count=len(values))
        if strict and (found < 0).any():
            missing = [values[i] for i in np.flatnonzero(found < 0)]
            raise NotFoundError(f"{len(missing)} id(s) not in the index: {format_list(missing)}")
        return found[found >= 0]

    def _queries(self, queries: Any) -> np.ndarray:
        q = np.asarray(queries)
        return unit_query_rows(q[None, :] if q.ndim == 1 else q, self.dims)

    def _subset_of(self, positions: np.ndarray) -> LanceSubset:
        slots = np.unique(self._live[positions])
        return make_subset(slots, self._state, local=len(slots) <= LOCAL_MAX_ROWS or not self._indexed,
                           vectors_of_slots=self._slot_vectors, next_slot=self._next_slot)

    def _slot_vectors(self, slots: np.ndarray) -> np.ndarray:
        """(m, d) stored rows of live ``slots`` (sorted), taken by LanceDB row id."""
        if self._row_ids is None:
            self._row_ids = read_row_ids(self._table)[1]
        return take_vectors(self._table, self._row_ids[np.searchsorted(self._live, slots)], slots, self.dims)

    def subset(self, ids: Sequence[str] | None = None, *, positions: np.ndarray | None = None) -> LanceSubset:
        """``ids`` (or ``positions`` into :attr:`ids`) resolved once for ``within=``; stale
        after add/remove. NotFoundError on unknown ids, InputError on positions out of range."""
        if positions is None:
            return self._subset_of(self._positions(ids))
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(self)):
            raise InputError(f"subset positions must be in 0..{len(self) - 1}")
        return self._subset_of(pos)

    def _within(self, within: Sequence[str] | LanceSubset, excluded: np.ndarray | None = None) -> LanceSubset:
        if not isinstance(within, LanceSubset):
            within = self.subset(within)
        elif within.state is not self._state:
            raise IndexStateError("the subset was made before rows were added to or removed from "
                                  "the index; make it again with LanceIndex.subset")
        if excluded is not None and len(excluded):
            keep = ~np.isin(within.slots, excluded)
            if within.local:
                return LanceSubset(within.slots[keep], within.vectors[keep], None, within.state)
            member = within.member.copy()
            member[within.slots[~keep]] = False
            return LanceSubset(within.slots[keep], None, member, within.state)
        return within

    # -- LanceDB queries ------------------------------------------------------------
    def _probes(self, m: int | None, factor: int = 1) -> int:
        """Lists probed: ``nprobes`` (x ``factor``), x sqrt(n / m) inside a subset of m rows."""
        base = self.params["nprobes"] * factor
        if m:
            base = math.ceil(base * math.sqrt(len(self) / m))
        return min(base, self.params.get("num_partitions", base))

    def _candidates(self, q: np.ndarray, limit: int, subset: LanceSubset | None = None,
                    factor: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per unit query of ``q`` (q, d): (exact scores float32, slots int64) of up to
        ``limit`` rows (inside ``subset`` if given), best first, ties by slot."""
        if subset is None:
            return self._lance(q, limit, None, factor)
        if subset.local:
            return local_top(subset, q, min(limit, len(subset)))
        want = post_limit(limit, len(self), len(subset))
        while True:  # post-filter: grow the candidates until each query keeps `limit` members
            found = keep_members(self._lance(q, want, len(subset), factor), subset, limit)
            if want >= len(self) or all(len(sc) >= min(limit, len(subset)) for sc, _ in found):
                return found
            want = min(len(self), 4 * want)

    def _lance(self, q: np.ndarray, limit: int, m: int | None, factor: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """LanceDB's best ``limit`` rows per query of ``q`` (probes as for a subset of ``m``)."""
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for s in range(0, len(q), QUERY_BATCH):
            block = q[s:s + QUERY_BATCH]
            query = self._table.search(list(block) if len(block) > 1 else block[0], vector_column_name="vector")
            query = query.distance_type("dot").limit(limit).select(["slot", "_distance"])
            if not self._indexed:
                query = query.bypass_vector_index()
            else:
                query = query.nprobes(self._probes(m, factor)).refine_factor(self.params["refine_factor"])
                if self.kind == "ivf_hnsw_sq":
                    query = query.ef(max(self.params["ef"], limit))
            got = query.to_arrow()
            owner = (got["query_index"].to_numpy() if "query_index" in got.column_names
                     else np.zeros(got.num_rows, np.int64))
            slots = got["slot"].to_numpy().astype(np.int64)
            scores = (1.0 - got["_distance"].to_numpy().astype(np.float64)).astype(np.float32)
            for i in range(len(block)):
                mine = owner == i
                order = np.lexsort((slots[mine], -scores[mine]))
                out.append((scores[mine][order], slots[mine][order]))
        return out

    def _top(self, q: np.ndarray, k: int, subset: LanceSubset | None = None,
             excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores (q, k) float32 -inf padded, positions (q, k) int64 -1 padded)."""
        scores = np.full((len(q), k), -np.inf, np.float32)
        pos = np.full((len(q), k), -1, np.int64)
        if len(self) == 0 or (subset is not None and len(subset) == 0):
            return scores, pos
        extra = len(excluded) if excluded is not None else 0
        for i, (sc, slots) in enumerate(self._candidates(q, k + extra, subset)):
            if extra:
                keep = ~np.isin(slots, excluded)
                sc, slots = sc[keep], slots[keep]
            sc, slots = sc[:k], slots[:k]
            scores[i, :len(sc)], pos[i, :len(sc)] = sc, np.searchsorted(self._live, slots)
        return scores, pos

    def _hits(self, scores: np.ndarray, pos: np.ndarray) -> Hits:
        ids = np.full(pos.shape, "", dtype=object)
        ids[pos >= 0] = self._ids[pos[pos >= 0]]
        return Hits(ids=ids, scores=scores)

    # -- search ---------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, within: Sequence[str] | LanceSubset | None = None,
               exclude: Sequence[str] | None = None) -> Hits:
        """Top-``k`` rows by cosine for ``queries`` (d,) or (q, d) float32 -> :class:`Hits`.
        ``within``: only these ids or this :meth:`subset` (a LanceDB prefilter); ``exclude``:
        ids never returned (unknown ones ignored). EmbeddingError (bad queries), InputError
        (k < 1), NotFoundError (``within``), IndexStateError (a stale subset)."""
        q, k = self._queries(queries), check_positive_int(k, "k")
        excluded = self._live[self._positions(exclude, strict=False)] if exclude is not None else None
        if within is not None:
            return self._hits(*self._top(q, k, self._within(within, excluded)))
        return self._hits(*self._top(q, k, None, excluded))

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bulk kNN over all rows: (scores (q, k) float32, positions (q, k) int64 into :attr:`ids`)."""
        return self._top(self._queries(queries), check_positive_int(k, "k"))

    def _range(self, v: np.ndarray, t: float, subset: LanceSubset | None) -> tuple[np.ndarray, np.ndarray]:
        """(exact scores, slots) >= ``t`` among the re-ranked candidates of unit query ``v``:
        asks for ``RANGE_FIRST`` rows, x4 while the last one still clears ``t``."""
        total = len(subset) if subset is not None else len(self)
        if total == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        limit = min(RANGE_FIRST, total)
        while True:
            scores, slots = self._candidates(v[None, :], limit, subset, RANGE_PROBES)[0]
            if len(scores) < limit or limit >= total or scores[-1] < t:
                keep = scores >= np.float32(t)
                return scores[keep], slots[keep]
            limit = min(4 * limit, total)

    def range_search(self, query: np.ndarray, threshold: float, *,
                     within: Sequence[str] | LanceSubset | None = None) -> RangeHits:
        """All rows (optionally only ``within``) with cosine >= ``threshold`` for one
        ``query`` (d,), best first: exact without a vector index and in small subsets, else
        those the probed lists hold. InputError (threshold), NotFoundError, IndexStateError."""
        q, t = self._queries(query), finite_threshold(threshold)
        if len(q) != 1:
            raise EmbeddingError(f"range_search takes one query vector, got {len(q)}")
        scores, slots = self._range(q[0], t, self._within(within) if within is not None else None)
        return RangeHits(ids=self._ids[np.searchsorted(self._live, slots)].astype(object), scores=scores)

    def range_search_positions(self, queries: np.ndarray, threshold: float
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Range search of (q, d) ``queries``: (lims (q+1,) int64, positions int64, scores float32)."""
        q, t = self._queries(queries), finite_threshold(threshold)
        parts = [self._range(v, t, None) for v in q]
        lims = np.concatenate([[0], np.cumsum([len(p[0]) for p in parts])]).astype(np.int64)
        if not parts or lims[-1] == 0:
            return lims, np.empty(0, np.int64), np.empty(0, np.float32)
        pos = np.searchsorted(self._live, np.concatenate([p[1] for p in parts])).astype(np.int64)
        return lims, pos, np.concatenate([p[0] for p in parts]).astype(np.float32)

    # -- changes --------------------------------------------------------------------
    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        """Append ``vectors`` (n, d) under new unique ``ids`` as one new fragment (searched by
        LanceDB until :meth:`optimize`). EmbeddingError on wrong dims, NaN/Inf, zero rows,
        duplicate or existing ids; SchemaError on empty/non-str ids."""
        new_ids = check_ids(ids, vectors)
        taken = [v for v in new_ids.tolist() if v in self._pos_of]
        if taken:
            raise EmbeddingError(f"{len(taken)} ids are already in the index: {format_list(taken)}")
        x = as_matrix(vectors, self.dims)
        norms = checked_norms(x, new_ids)
        if len(x) == 0:
            return
        start = self._next_slot
        for batch in batches(x, norms, new_ids, start):
            self._table.add(batch)
        self._set_rows(np.concatenate([self._live, np.arange(start, start + len(x), dtype=np.int64)]),
                       np.concatenate([self._ids, new_ids]))

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids`` (a LanceDB delete by slot); how many. NotFoundError on unknown ids."""
        pos = np.unique(self._positions(ids))
        if len(pos) == 0:
            return 0
        self._table.delete(in_slots(self._live[pos]))
        keep = np.ones(len(self), bool)
        keep[pos] = False
        self._set_rows(self._live[keep], self._ids[keep])
        return len(pos)

    def optimize(self) -> None:
        """Compact the fragments and retrain the vector index over every live row (rows added
        since folded in). LanceDB's incremental fold keeps old codebooks: 5k rows, +1k, 1/3
        removed: recall@10 1.0 -> 0.92-0.95; retrained (partitions re-sized): 1.0."""
        self._table.optimize()
        self._row_ids = None  # compaction gives the rows new LanceDB row ids
        if self.kind in ANN_KINDS:
            self.params["num_partitions"] = partitions(len(self))
            self._indexed = create_vector_index(self._table, self.kind, self.dims, len(self), self.params)

    def rebase(self, vectors: np.ndarray) -> None:
        """No-op: the table holds its own vectors."""

    def coarse_lists(self) -> None:
        """None: LanceDB's partitions are not handed out."""

    def vectors_for(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), d) float32 stored (normalised) vectors. NotFoundError on unknown ids."""
        slots = self._live[self._positions(ids)]
        uniq, back = np.unique(slots, return_inverse=True)
        return self._slot_vectors(uniq)[back]

    # -- files ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``index.json`` in ``directory`` (atomically). A table at the default
        location goes to ``directory/lance/`` first (moved from a scratch folder, copied
        from another index folder); a table at a URI stays there."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.uri == DEFAULT_URI:
            self._place(directory / DEFAULT_URI)
        meta = {"format_version": FORMAT_VERSION, "backend": self.backend, "uri": self.uri,
                "table": TABLE, "kind": self.kind, "dims": self.dims, "count": len(self),
                "params": self.params}
        atomic.write_json(directory / "index.json", meta)

    def _place(self, target: Path) -> None:
        """Put this table's database folder at ``target`` (replacing what is there) and reopen it."""
        current = Path(self._root)
        if current.resolve() == target.resolve():
            return
        staged = target.with_name(f".{target.name}.new")
        shutil.rmtree(staged, ignore_errors=True)
        if self._scratch is not None:
            shutil.move(str(current), staged)
        else:
            shutil.copytree(current, staged)
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        staged.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        if self._scratch is not None:
            self._cleanup()  # the scratch folder, now empty
            self._scratch = self._cleanup = None
        self._table = connect(str(target)).open_table(TABLE)
        self._root = str(target)

    @classmethod
    def load(cls, directory: str | Path) -> LanceIndex:
        """Open the index whose ``index.json`` is in ``directory``. IndexStateError if it is
        unreadable, its table is missing or unreadable, or holds vectors of another width."""
        directory = Path(directory)
        try:
            meta = atomic.read_json(directory / "index.json")
            uri, kind, dims = str(meta["uri"]), str(meta["kind"]), int(meta["dims"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise IndexStateError(f"index.json in {directory} is missing or corrupt: {err}") from err
        try:
            resolve_lance_kind(kind, 0)
            params = check_lance_params(kind, meta.get("params") or {})
        except InputError as err:
            raise IndexStateError(f"index.json in {directory} is inconsistent: {err}") from err
        root = str(directory / uri) if uri == DEFAULT_URI else uri
        index = cls(open_table(root, dims, directory), uri, root, kind, dims, params)
        if len(index._pos_of) != len(index):
            raise IndexStateError(f"LanceDB table at {root!r} holds duplicate ids")
        return index


def build_lance_index(vectors: np.ndarray, ids: Sequence[str], kind: str = "auto", *,
                      uri: str | None = None, progress: ProgressFn | None = None,
                      **params: int) -> LanceIndex:
    """Index ``vectors`` (n, d) under ``ids`` (n unique non-empty str) in a LanceDB table.

    ``uri``: a LanceDB database (folder or object-store URI) for the table; None: a
    scratch folder that :meth:`LanceIndex.save` moves to ``<folder>/lance/``. ``kind``:
    "auto" (exact below ``INDEX_MIN_ROWS`` rows, else "ivf_pq"), "exact", "ivf_pq" or
    "ivf_hnsw_sq"; ``params``: nprobes, refine_factor, num_partitions, num_sub_vectors,
    m, ef_construction, ef. Every row is checked before anything is written. Raises
    InputError (kind, params, a URI that cannot be written), EmbeddingError (rows, ids,
    a table at ``uri`` of another width), SchemaError (ids)."""
    resolve_lance_kind(kind, 0)
    id_arr = check_ids(ids, vectors)
    x = as_matrix(vectors, None)
    resolved = resolve_lance_kind(kind, len(x))
    checked = check_lance_params(resolved, params)
    norms = checked_norms(x, id_arr)
    scratch = Path(tempfile.mkdtemp(prefix="catalog-lance-")) if uri is None else None
    root = str(scratch / DEFAULT_URI) if scratch is not None else str(uri)
    log.info("building lancedb %s index over %d rows of %d dims at %s", resolved, len(x), x.shape[1], root)
    try:
        table = create_table(root, x.shape[1], batches(x, norms, id_arr, 0, progress))
        create_vector_index(table, resolved, x.shape[1], len(x), checked)
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    return LanceIndex(table, DEFAULT_URI if scratch is not None else root, root, resolved, x.shape[1],
                      checked, scratch)
