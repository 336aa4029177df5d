"""Keyword relevance for text search: BM25 via ``bm25s`` (Lucene variant, k1 1.5, b 0.75) over
each row's descriptive text (:func:`core.search.row_text.row_descriptions`), stored in
``<dataset>/keywords/`` (bm25s's arrays and vocabulary, ``rows.json``, ``meta.json``) and rebuilt
when a row's text changes; :func:`reciprocal_rank_fusion` merges it with a semantic ranking."""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core import atomic
from core._shared import check_positive_int, now_iso
from core.errors import IndexStateError, InputError, SchemaError, format_list
from core.search.row_text import descriptions_hash, row_descriptions

if TYPE_CHECKING:
    from core.workspace import Dataset

log = logging.getLogger(__name__)

KEYWORD_DIR = "keywords"
MAX_QUERY_CHARS = 1000
FORMAT_VERSION = 1
_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits (``_`` and punctuation split)


@functools.cache
def _stop_words() -> frozenset[str]:  # bm25s's English list; lazily (bm25s imports scipy, numba)
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def _words(text: str) -> list[str]:  # case-folded letter/digit runs, stop words kept
    return _WORD.findall(text.casefold())


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens of ``text``: split on anything not a letter or digit
    (``'numpy.cumsum'`` → ``['numpy', 'cumsum']``, ``'img_0001.png'`` → ``['img', '0001', 'png']``),
    bm25s's English stop words removed."""
    stop = _stop_words()
    return [w for w in _words(text) if w not in stop]


def _check_query(query: Any) -> str:
    if not isinstance(query, str):
        raise InputError(f"the search query must be text, got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"the search query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    return query


@dataclass(frozen=True, eq=False)
class KeywordHits:
    """``positions``: ``(m,) int64`` row positions into :attr:`KeywordIndex.ids`, best first;
    ``scores``: ``(m,) float32`` BM25 scores, all > 0; ``coverage``: ``(m,) float32`` the share
    of the query's word weight each row holds (:meth:`KeywordIndex.coverage`)."""

    positions: np.ndarray
    scores: np.ndarray
    coverage: np.ndarray


class KeywordIndex:
    """A BM25 index over one text per row (make one with :meth:`build` or :meth:`load`): ``ids``
    ``(n,) object`` in row order, ``texts`` the indexed text of each, ``text_hash`` their
    :func:`~core.search.row_text.descriptions_hash`."""

    def __init__(self, ids: np.ndarray, texts: list[str], text_hash: str, retriever: Any) -> None:
        self.ids = ids
        self.texts = texts
        self.text_hash = text_hash
        self._bm25 = retriever  # bm25s.BM25, or None when no row has a token
        self._lookup: pd.Index | None = None  # id -> position, built on first use

    @classmethod
    def build(cls, ids: Sequence[Any], texts: Sequence[Any]) -> KeywordIndex:
        """Index ``texts[i]`` for ``ids[i]`` (ids made strings, None texts empty). Raises
        InputError if the lengths differ, SchemaError (an InputError) on duplicate ids."""
        ids_list = [str(i) for i in ids]
        texts_list = ["" if t is None else str(t) for t in texts]
        if len(ids_list) != len(texts_list):
            raise InputError(f"got {len(ids_list)} ids but {len(texts_list)} texts; give one text per id")
        if len(set(ids_list)) != len(ids_list):
            dupes = [i for i, count in Counter(ids_list).items() if count > 1]
            raise SchemaError(f"duplicate row ids: {format_list(dupes)}; each row needs its own id")
        tokens, retriever = [tokenize(t) for t in texts_list], None
        if any(tokens):  # bm25s cannot index a corpus without a single token
            from bm25s import BM25

            retriever = BM25(backend="numpy")
            retriever.index(tokens, show_progress=False)
        return cls(np.array(ids_list, dtype=object), texts_list,
                   descriptions_hash(ids_list, texts_list), retriever)

    def __len__(self) -> int:
        return len(self.ids)

    def has_text(self) -> bool:
        """True if at least one row has an indexable token."""
        return self._bm25 is not None

    def positions_of(self, ids: Sequence[str]) -> np.ndarray:
        """``(m,) int64`` row positions of ``ids`` (-1 for an id not indexed); the lookup
        table is built on first use and kept."""
        if self._lookup is None:
            self._lookup = pd.Index(self.ids)
        return self._lookup.get_indexer(pd.Index([str(i) for i in ids])).astype(np.int64)

    def _postings(self, words: list[str]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Per query word: (rows holding it, their BM25 terms), from bm25s's stored matrix."""
        vocab, stored = self._bm25.vocab_dict, self._bm25.scores
        out = []
        for word in words:
            if word not in vocab:
                out.append((np.zeros(0, np.int64), None))
                continue
            start, end = stored["indptr"][vocab[word]], stored["indptr"][vocab[word] + 1]
            out.append((stored["indices"][start:end], stored["data"][start:end]))
        return out

    def _scores_and_coverage(self, query: str) -> tuple[np.ndarray, np.ndarray] | None:
        """BM25 scores ``(n,)`` (bm25s's stored terms, summed with ``bincount``: bm25s's numpy
        scorer uses ``np.add.at``, several times slower) and :meth:`coverage` of every row."""
        words = list(dict.fromkeys(tokenize(query)))
        if self._bm25 is None or not words:
            return None
        n = len(self)
        scores, held, total = np.zeros(n, np.float64), np.zeros(n, np.float64), 0.0
        for rows, terms in self._postings(words):
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            total += idf
            if terms is not None and len(rows):
                scores += np.bincount(rows, weights=terms, minlength=n)
                held += np.bincount(rows, minlength=n) * idf
        return scores.astype(np.float32), (held / total).astype(np.float32)

    def search(self, query: str, k: int, *, within: np.ndarray | None = None) -> KeywordHits:
        """The ≤ ``k`` rows best matching ``query`` with score > 0, best first, equal scores in
        row order, with their :meth:`coverage`; ``within``: ``(n,)`` bool mask of the rows
        allowed (None: all). A query with no indexable token (only stop words/punctuation)
        gives no hits. Raises InputError on an empty or over-long query, ``k`` < 1 or a bad mask."""
        if not _check_query(query).strip():
            raise InputError("the search query is empty; type a few words")
        k = check_positive_int(k, "k")
        if within is not None:
            within = np.asarray(within)
            if within.dtype != np.bool_ or within.shape != (len(self),):
                raise InputError(f"within must be a ({len(self)},) bool mask, "
                                 f"got {within.dtype} of shape {within.shape}")
        found = self._scores_and_coverage(query)
        if found is None:
            return KeywordHits(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))
        scores, coverage = found
        allowed = scores > 0
        if within is not None:
            allowed &= within
        rows = np.flatnonzero(allowed)
        found = scores[rows]
        if len(rows) > k:  # keep every row tying the k-th best score, then order exactly
            kth = np.partition(found, len(found) - k)[len(found) - k]
            keep = found >= kth
            rows, found = rows[keep], found[keep]
        order = np.lexsort((rows, -found))[:k]
        rows = rows[order].astype(np.int64)
        return KeywordHits(rows, found[order].astype(np.float32), coverage[rows])

    def coverage(self, query: str, positions: np.ndarray) -> np.ndarray:
        """``(p,) float32`` share of the query's word weight each row at ``positions`` holds:
        Σ idf(t) over the query words t in the row / Σ idf(t) over the query words, with
        BM25's idf ``ln(1 + (n - df + 0.5) / (df + 0.5))`` (a word no row has counts with df 0).
        1.0: the row has every query word; a query without indexable words: zeros."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        found = self._scores_and_coverage(_check_query(query))
        return np.zeros(len(positions), np.float32) if found is None else found[1][positions]

    def phrase_positions(self, query: str, positions: np.ndarray) -> np.ndarray:
        """The ``(p,) int64`` members of ``positions`` (order kept) whose text holds ``query`` as
        an exact phrase: the same case-folded word sequence (stop words kept), any whitespace or
        punctuation between (``'cumulative sum'`` matches ``'Return the Cumulative  sum.'``).
        < 2 words: none. InputError on an over-long query or a position outside ``[0, n)``."""
        words = _words(_check_query(query))
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if len(positions) and (positions.min() < 0 or positions.max() >= len(self)):
            raise InputError(f"row positions must lie in [0, {len(self)}), "
                             f"got {int(positions.min())}..{int(positions.max())}")
        if len(words) < 2:
            return np.zeros(0, np.int64)
        needle = f" {' '.join(words)} "
        keep = [p for p in positions.tolist() if needle in f" {' '.join(_words(self.texts[p]))} "]
        return np.array(keep, dtype=np.int64)

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` atomically (a complete temp folder, then a rename)."""
        with atomic.atomic_dir(folder) as tmp:
            if self._bm25 is not None:
                self._bm25.save(tmp, show_progress=False)
            atomic.write_json(tmp / "rows.json", {"ids": self.ids.tolist(), "texts": self.texts})
            atomic.write_json(tmp / "meta.json", {
                "format": FORMAT_VERSION, "text_hash": self.text_hash, "rows": len(self),
                "has_text": self.has_text(), "created": now_iso()})

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        """Read an index written by :meth:`save`; IndexStateError if missing, corrupt or inconsistent."""
        from bm25s import BM25

        folder = Path(folder)
        try:
            meta, stored = atomic.read_json(folder / "meta.json"), atomic.read_json(folder / "rows.json")
            ids, texts = stored["ids"], stored["texts"]
            retriever = BM25.load(folder, backend="numpy", show_progress=False) if meta["has_text"] else None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise IndexStateError(f"the keyword index in {folder} is missing or corrupt "
                                  f"({type(err).__name__}: {err})") from err
        if problem := _inconsistency(meta, ids, texts, retriever):
            raise IndexStateError(f"the keyword index in {folder} is inconsistent: {problem}")
        return cls(np.array(ids, dtype=object), texts, meta["text_hash"], retriever)


def _inconsistency(meta: dict, ids: Any, texts: Any, retriever: Any) -> str:  # '' if none
    if not (isinstance(ids, list) and isinstance(texts, list)) or len(ids) != len(texts) \
            or meta.get("format") != FORMAT_VERSION or meta.get("rows") != len(ids):
        return "its ids, texts and meta.json (format, rows) do not agree"
    if descriptions_hash(ids, texts) != meta.get("text_hash"):
        return "its texts do not match the stored text hash"
    if retriever is not None:
        n_terms = len(retriever.scores["indptr"]) - 1
        term_ids = [i for t, i in retriever.vocab_dict.items() if t]
        if retriever.scores["num_docs"] != len(ids) or max(term_ids, default=-1) >= n_terms:
            return "its BM25 arrays do not match its rows or vocabulary"
    return ""


def _stored_hash(folder: Path) -> str | None:
    try:
        return atomic.read_json(folder / "meta.json").get("text_hash")
    except (OSError, ValueError, AttributeError):
        return None


def ensure_keyword_index(ds: Dataset, rows: pd.DataFrame | None = None) -> KeywordIndex:
    """The keyword index of ``ds`` over ``row_descriptions(rows)`` (``rows`` default ``ds.rows()``):
    loaded from ``<dataset>/keywords/`` when its stored text hash matches, else built and saved
    (one process at a time; a corrupt folder is rebuilt). InputError: no ``id``, duplicate ids."""
    rows = ds.rows() if rows is None else rows
    texts = row_descriptions(rows)
    ids = rows["id"].astype(str).tolist()
    digest = descriptions_hash(ids, texts)
    folder = ds.path / KEYWORD_DIR
    with atomic.exclusive(ds.path / f".{KEYWORD_DIR}.lock"):
        if _stored_hash(folder) == digest:
            try:
                return KeywordIndex.load(folder)
            except IndexStateError as err:
                log.warning("rebuilding the keyword index of %s: %s", ds.name, err)
        log.info("building the keyword index of %d rows of %s", len(ids), ds.name)
        index = KeywordIndex.build(ids, texts)
        index.save(folder)
        return index


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k: int = 60,
                           weights: Sequence[Sequence[float] | None] | None = None) -> tuple[list[str], np.ndarray]:
    """Fuse rankings (ids, best first) by RRF (Cormack et al. 2009): ``score(id) = Σ w/(k + rank)``
    over the rankings holding it, rank from 1 (an id twice in one ranking counts at its best);
    ``weights[i]`` gives ranking i a weight per position (None: 1 each). Returns ``(ids best
    first, (m,) float32 scores)``; equal (float32) scores are ordered by best rank in any
    ranking, then first appearance (earlier ranking, then position), so the result depends
    only on the inputs. InputError if ``k`` < 0, a ranking is a bare string, or a weight list
    does not match its ranking."""
    k = check_positive_int(k, "k", minimum=0)
    weights = list(weights) if weights is not None else [None] * len(rankings)
    if len(weights) != len(rankings):
        raise InputError(f"{len(weights)} weight lists for {len(rankings)} rankings")
    ranks: dict[str, list[int]] = {}
    parts: dict[str, list[float]] = {}
    first: dict[str, tuple[int, int]] = {}
    for li, (ranking, weight) in enumerate(zip(rankings, weights)):
        if isinstance(ranking, str):
            raise InputError(f"each ranking must be a list of ids, not the string {ranking[:40]!r}")
        if weight is not None and len(weight) != len(ranking):
            raise InputError(f"ranking {li} has {len(ranking)} ids but {len(weight)} weights")
        best: dict[str, int] = {}
        for pos, rid in enumerate(ranking):
            best.setdefault(rid, pos)
        for rid, pos in best.items():
            ranks.setdefault(rid, []).append(pos + 1)
            parts.setdefault(rid, []).append((1.0 if weight is None else float(weight[pos])) / (k + pos + 1))
            first.setdefault(rid, (li, pos))
    # fsum is exactly rounded, so equal rank multisets give bit-equal scores in any order
    scores = {rid: np.float32(math.fsum(ps)) for rid, ps in parts.items()}
    order = sorted(ranks, key=lambda rid: (-scores[rid], min(ranks[rid]), first[rid]))
    return order, np.array([scores[rid] for rid in order], dtype=np.float32)
