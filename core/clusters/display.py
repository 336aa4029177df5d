"""What the browser draws of a map with more rows than it can hold: a stable sample of
the points (:func:`display_sample`) over the density of every row per screen cell
(:func:`density_grid`). Selections still reach every row: see
:func:`core.clusters.rows_in_regions`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core._shared import check_positive_int
from core.errors import InputError

MAP_POINT_CAP = 30_000  # points a WebGL scatter draws and a rerun ships without lag
DENSITY_BINS = 200  # cells per axis of the density layer


def display_sample(ids: Sequence[str], cap: int = MAP_POINT_CAP, *, always: Iterable[str] = (),
                   seed: int = 0) -> np.ndarray:
    """Sorted positions (int64) into ``ids`` of the rows to draw: all of them when there
    are at most ``cap``; else ``cap`` rows: those of ``always`` (selected rows, anchors;
    if more than ``cap``, a sample of them) and then the others with the smallest
    :func:`id_hashes`. The hash depends only on the id, so the same row stays drawn across
    reruns, filters and added rows. Raises InputError if ``cap`` < 1."""
    cap = check_positive_int(cap, "cap")
    n = len(ids)
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    rank = id_hashes(ids, seed)
    wanted = set(always)
    first = np.flatnonzero(pd.Series(np.asarray(ids, dtype=object)).isin(wanted).to_numpy()) if wanted \
        else np.zeros(0, dtype=np.int64)
    if len(first) >= cap:
        return np.sort(first[_smallest(rank[first], cap)])
    rest = np.ones(n, dtype=bool)
    rest[first] = False
    others = np.flatnonzero(rest)
    chosen = others[_smallest(rank[others], cap - len(first))]
    return np.sort(np.concatenate([first, chosen])).astype(np.int64)


_FNV_OFFSET, _FNV_PRIME = np.uint64(14695981039346656037), np.uint64(1099511628211)
_HASH_CHUNK = 131_072


def id_hashes(ids: Sequence[str], seed: int = 0) -> np.ndarray:
    """A seeded 64-bit hash (n,) uint64 of each id that depends only on the id and the seed
    (not on the other ids, their order or count): FNV-1a over the id's code points, then
    the splitmix64 finaliser, vectorised over fixed-width numpy strings in chunks
    (``pandas.util.hash_array`` does the same job ~5x slower on Python strings)."""
    ids = np.asarray(ids, dtype=object)
    out = np.empty(len(ids), dtype=np.uint64)
    if not len(ids):
        return out
    start_value = _FNV_OFFSET ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        for start in range(0, len(ids), _HASH_CHUNK):
            text = np.asarray(ids[start:start + _HASH_CHUNK], dtype=str)
            codes = text.view(np.uint32).reshape(len(text), -1)
            lengths = np.char.str_len(text)
            h = np.full(len(text), start_value, dtype=np.uint64)
            ragged = lengths.min() != codes.shape[1]  # shorter ids are padded with NULs: skip those
            for column in range(codes.shape[1]):
                mixed = (h ^ codes[:, column].astype(np.uint64)) * _FNV_PRIME
                h = np.where(lengths > column, mixed, h) if ragged else mixed
            h ^= h >> np.uint64(30)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
            out[start:start + len(text)] = h
    return out


def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest of ``values`` (any order)."""
    return np.argpartition(values, count - 1)[:count] if count < len(values) else np.arange(len(values))


@dataclass(frozen=True)
class DensityGrid:
    """Row counts per map cell: ``counts`` (ny, nx) int64 (row = y), cell centres ``x``
    (nx,) and ``y`` (ny,) float64, cell sizes ``dx``, ``dy``."""

    counts: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dx: float
    dy: float


def density_grid(coords: np.ndarray, bins: int = DENSITY_BINS) -> DensityGrid:
    """Counts of the rows of ``coords`` (n, 2) in a ``bins`` x ``bins`` grid over their
    extent (a flat axis gets one cell's width around its value). Raises InputError for a
    shape other than (n, 2), no rows, or non-finite coordinates."""
    bins = check_positive_int(bins, "bins")
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2 or not len(coords):
        raise InputError(f"map coordinates must be (n, 2) with n >= 1; got shape {coords.shape}")
    if not np.isfinite(coords).all():
        raise InputError("map coordinates contain NaN or Inf")
    cells, centres, steps = [], [], []
    for axis in (0, 1):
        values = coords[:, axis].astype(np.float64)
        lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        step = (hi - lo) / bins
        cells.append(np.minimum(((values - lo) / step).astype(np.int64), bins - 1))
        centres.append(lo + step * (np.arange(bins) + 0.5))
        steps.append(step)
    counts = np.bincount(cells[1] * bins + cells[0], minlength=bins * bins).reshape(bins, bins)
    return DensityGrid(counts, centres[0], centres[1], steps[0], steps[1])
