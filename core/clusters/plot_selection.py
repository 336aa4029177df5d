"""Map a Streamlit plotly selection event back to row ids; the selection part of
:mod:`core.clusters` (no streamlit import: the event is plain data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
