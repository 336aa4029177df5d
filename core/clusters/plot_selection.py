"""Map a Streamlit plotly selection event back to row ids; the selection part of
:mod:`core.clusters` (no streamlit import: the event is plain data).

Two ways: the points the browser drew and reported (:func:`selection_to_ids`), or the
box / lasso regions it reports, tested against the stored coordinates of every row
(:func:`regions_from_event`, :func:`rows_in_regions`), so a map that draws a sample of
the rows still selects every row inside the region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InputError


def _as_index(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def selection_to_ids(event: Any, trace_ids: Sequence[Sequence[str]]) -> list[str]:
    """Row ids of the points in a Streamlit plotly selection (``st.plotly_chart(...,
    on_select="rerun")``): ``trace_ids[curve_number][point_index]`` for each point.

    ``event`` is the whole event (``{"selection": {...}}``) or the selection itself;
    ``trace_ids`` lists, per trace, the ids in plotted order. De-duplicated, order of
    appearance. Malformed input gives []; an index outside ``trace_ids`` raises InputError.
    """
    if isinstance(event, Mapping) and isinstance(event.get("selection"), Mapping):
        event = event["selection"]
    if not isinstance(event, Mapping):
        return []
    pairs: list[tuple[int, int]] = []
    points = event.get("points")
    for point in points if isinstance(points, (list, tuple)) else []:
        if not isinstance(point, Mapping):
            continue
        curve = _as_index(point.get("curve_number", 0 if len(trace_ids) == 1 else None))
        raw = point.get("point_index", point.get("point_number"))
        indices = [raw] if raw is not None else point.get("point_indices") or []
        for value in indices if isinstance(indices, (list, tuple)) else []:
            if curve is not None and (index := _as_index(value)) is not None:
                pairs.append((curve, index))
    flat = event.get("point_indices")
    if not pairs and len(trace_ids) == 1 and isinstance(flat, (list, tuple)):
        pairs = [(0, i) for v in flat if (i := _as_index(v)) is not None]
    out: dict[str, None] = {}
    for curve, index in pairs:
        if not 0 <= curve < len(trace_ids):
            raise InputError(f"selection refers to trace {curve}; the chart has {len(trace_ids)} traces")
        if not 0 <= index < len(trace_ids[curve]):
            raise InputError(
                f"selection refers to point {index} of trace {curve}, which has {len(trace_ids[curve])} points"
            )
        out.setdefault(str(trace_ids[curve][index]), None)
    return list(out)


REGION_KINDS = ("box", "lasso")


@dataclass(frozen=True)
class Region:
    """A region drawn on the map, in map coordinates: a ``"box"`` (``xs`` = (x0, x1),
    ``ys`` = (y0, y1), edges included) or a ``"lasso"`` (polygon vertices ``xs``, ``ys``,
    closed implicitly; even-odd rule)."""

    kind: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def to_json(self) -> dict:
        return {"kind": self.kind, "x": list(self.xs), "y": list(self.ys)}


def _numbers(values: Any) -> tuple[float, ...] | None:
    if not isinstance(values, (list, tuple)):
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            return None
        out.append(float(v))
    return tuple(out)


def regions_from_event(event: Any) -> tuple[Region, ...]:
    """The box and lasso regions of a Streamlit plotly selection event (the whole event or
    its ``selection``; ``{"box": [{"x": [x0, x1], "y": [y0, y1]}], "lasso": [{"x": [...],
    "y": [...]}]}``), boxes first. Malformed entries (too few or non-numeric vertices) are
    left out; a click selection has none."""
    if isinstance(event, Mapping) and isinstance(event.get("selection"), Mapping):
        event = event["selection"]
    if not isinstance(event, Mapping):
        return ()
    out = []
    for kind, least in (("box", 2), ("lasso", 3)):
        entries = event.get(kind)
        for entry in entries if isinstance(entries, (list, tuple)) else []:
            if not isinstance(entry, Mapping):
                continue
            xs, ys = _numbers(entry.get("x")), _numbers(entry.get("y"))
            if xs is not None and ys is not None and len(xs) == len(ys) >= least:
                out.append(Region(kind, xs[:2], ys[:2]) if kind == "box" else Region(kind, xs, ys))
    return tuple(out)


def _inside_polygon(x: np.ndarray, y: np.ndarray, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """Even-odd point-in-polygon of points (x, y) (m,) against vertices (xs, ys): the rows
    are sorted by y once, so each edge tests only the rows in its y-range."""
    order = np.argsort(y, kind="stable")
    sy, sx = y[order], x[order]
    inside = np.zeros(len(x), dtype=bool)
    vx, vy = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    for x1, y1, x2, y2 in zip(vx, vy, np.roll(vx, -1), np.roll(vy, -1)):
        if y1 == y2:
            continue  # a horizontal edge crosses no horizontal ray
        lo, hi = np.searchsorted(sy, [min(y1, y2), max(y1, y2)], side="left")  # rows with lo <= y < hi
        if lo == hi:
            continue
        cross = x1 + (sy[lo:hi] - y1) * (x2 - x1) / (y2 - y1)
        inside[lo:hi] ^= sx[lo:hi] < cross
    out = np.zeros(len(x), dtype=bool)
    out[order] = inside
    return out


def rows_in_regions(coords: np.ndarray, regions: Sequence[Region]) -> np.ndarray:
    """(n,) bool: the rows of ``coords`` (n, 2) inside any of ``regions`` (every row, not
    only the ones drawn). Raises InputError for an unknown region kind."""
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise InputError(f"map coordinates must be (n, 2); got shape {coords.shape}")
    x, y = coords[:, 0].astype(np.float64), coords[:, 1].astype(np.float64)
    hit = np.zeros(len(coords), dtype=bool)
    for region in regions:
        if region.kind not in REGION_KINDS:
            raise InputError(f"unknown region kind {region.kind!r}; choose one of {', '.join(REGION_KINDS)}")
        left, right, low, high = min(region.xs), max(region.xs), min(region.ys), max(region.ys)
        near = np.flatnonzero((x >= left) & (x <= right) & (y >= low) & (y <= high) & ~hit)
        if region.kind == "lasso" and len(near):
            near = near[_inside_polygon(x[near], y[near], region.xs, region.ys)]
        hit[near] = True
    return hit
