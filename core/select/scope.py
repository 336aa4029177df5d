"""The scope of a smart selection: the rows it may draw from, and how they were chosen.

A scope is the whole dataset, the rows passing a :class:`~core.filters.RowFilter` (the
Catalog filter in the app, ``--where`` on the CLI) or a slice, minus the rows of the
excluded slices and tags. The Smart select page and ``catalog select`` both build it
with :func:`resolve_scope`, so the same request gives the same ids and the same recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from core._shared import ids_hash
from core.errors import InputError
from core.filters import RowFilter
from core.rows import RowsView, matching_rows
from core.select.methods import apply_scope
from core.workspace import Workspace

SCOPE_KINDS = ("all", "filter", "slice")


@dataclass(frozen=True)
class Scope:
    """Rows a selection may draw from, in table order, and how they were chosen.

    ``kind`` is one of :data:`SCOPE_KINDS`; ``description`` is the human text (e.g.
    ``"Catalog filter: label in {3} minus slice 'sent'"``); ``detail`` is
    ``{"filter": RowFilter json}``, ``{"slice": name}`` or ``{}``; ``excluded_rows`` counts
    the rows of the base scope that the exclusions removed; ``base_filter`` is the filter
    whose rows are the base scope (none, the row filter, or the slice as a filter), so a
    database can be asked for them again (e.g. the first N sorted by a column).
    """

    ids: tuple[str, ...]
    kind: str
    description: str
    detail: dict = field(default_factory=dict)
    excluded_slices: tuple[str, ...] = ()
    excluded_tags: tuple[str, ...] = ()
    excluded_rows: int = 0
    base_filter: RowFilter = field(default_factory=RowFilter)

    @property
    def key(self) -> str:
        """Content hash of the ids (the cache key of selections in this scope)."""
        return ids_hash(list(self.ids))

    def to_recipe(self) -> dict:
        """The scope part of a selection recipe: scope, scope_detail, rows_in_scope,
        excluded_slices, excluded_tags, excluded_rows."""
        return {"scope": self.description, "scope_detail": {"kind": self.kind, **self.detail},
                "rows_in_scope": len(self.ids), "excluded_slices": list(self.excluded_slices),
                "excluded_tags": list(self.excluded_tags), "excluded_rows": self.excluded_rows}


def _base_ids(ws: Workspace, dataset: str, table: pd.DataFrame | RowsView,
              flt: RowFilter) -> list[str]:
    """Ids of the rows of ``table`` passing ``flt`` (a slice: in it), in table order."""
    if isinstance(table, RowsView):  # one query; the view's own filter is not used
        if flt.slice_name:
            ws.store.get_slice(dataset, flt.slice_name)  # NotFoundError naming the slices
        return replace(table, flt=flt).ids()
    all_ids = table["id"].astype(str).tolist()
    if not flt.active:
        return all_ids
    if flt == RowFilter(slice_name=flt.slice_name):
        return apply_scope(all_ids, within=ws.store.get_slice(dataset, flt.slice_name).ids)
    return matching_rows(ws, dataset, flt, table=table)["id"].astype(str).tolist()


def resolve_scope(
    ws: Workspace,
    dataset: str,
    table: pd.DataFrame | RowsView,
    kind: str = "all",
    *,
    row_filter: RowFilter | None = None,
    slice_name: str | None = None,
    exclude_slices: Sequence[str] = (),
    exclude_tags: Sequence[str] = (),
) -> Scope:
    """The ids of ``table`` (the rows the user sees: effective rows, plus the quality
    columns when an embedding is active) in scope ``kind``, minus the rows of
    ``exclude_slices`` and ``exclude_tags``, in table order.

    ``table`` is a DataFrame or a :class:`core.rows.RowsView` (the rows queried in DuckDB,
    never loaded whole; its own filter is not used: the scope says which rows count).

    - ``"all"``: every row of ``table``;
    - ``"filter"``: the rows passing ``row_filter``, through the one compiled SQL filter
      (:func:`core.rows.matching_rows`, or the view's query; a tag no row
      carries matches no row, as in the Catalog: callers holding user text check names
      first with :func:`core.rows.check_filter_names`);
    - ``"slice"``: the rows of slice ``slice_name`` (in table order).

    Raises InputError (unknown ``kind``, listing the choices; ``"filter"`` without a
    filter, ``"slice"`` without a name), NotFoundError (a slice of the scope, the filter
    or the exclusions, or an excluded tag, that ``dataset`` does not have, naming it) and
    SchemaError (a filter on a column ``table`` does not have).
    """
    if kind not in SCOPE_KINDS:
        raise InputError(f"unknown scope {kind!r}; choose one of {', '.join(SCOPE_KINDS)}")
    store = ws.store
    if kind == "all":
        flt, detail, text = RowFilter(), {}, "whole dataset"
    elif kind == "filter":
        if row_filter is None:
            raise InputError("scope 'filter' needs a row filter (--where EXPR)")
        flt = row_filter
        detail, text = {"filter": row_filter.to_json()}, f"Catalog filter: {row_filter.describe()}"
    else:
        if not slice_name:
            raise InputError("scope 'slice' needs a slice name (--slice NAME)")
        flt, detail, text = RowFilter(slice_name=slice_name), {"slice": slice_name}, f"slice {slice_name!r}"
    base = _base_ids(ws, dataset, table, flt)
    exclude_slices, exclude_tags = tuple(exclude_slices), tuple(exclude_tags)
    excluded: set[str] = set()
    for name in exclude_slices:
        excluded.update(store.get_slice(dataset, name).ids)
    for tag in exclude_tags:
        excluded.update(store.rows_with_tag(dataset, tag))  # NotFoundError for an unknown tag
    ids = apply_scope(base, exclude=excluded) if excluded else base
    if exclude_slices or exclude_tags:
        text += " minus " + ", ".join([f"slice {s!r}" for s in exclude_slices]
                                      + [f"tag {t!r}" for t in exclude_tags])
    return Scope(tuple(ids), kind, text, detail, exclude_slices, exclude_tags,
                 len(base) - len(ids), flt)


__all__ = ["SCOPE_KINDS", "Scope", "resolve_scope"]
