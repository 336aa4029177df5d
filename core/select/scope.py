"""The scope of a smart selection: the rows it may draw from, and how they were chosen.

A scope is the whole dataset, the rows passing a :class:`~core.filters.RowFilter` (the
Catalog filter in the app, ``--where`` on the CLI) or a slice, minus the rows of the
excluded slices and tags. The Smart select page and ``catalog select`` both build it
with :func:`resolve_scope`, so the same request gives the same ids and the same recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from core._shared import ids_hash
from core.errors import InputError
from core.filters import RowFilter
from core.rows import matching_rows
from core.select.methods import apply_scope
from core.workspace import Workspace

SCOPE_KINDS = ("all", "filter", "slice")


@dataclass(frozen=True)
class Scope:
    """Rows a selection may draw from, in table order, and how they were chosen.

    ``kind`` is one of :data:`SCOPE_KINDS`; ``description`` is the human text (e.g.
    ``"Catalog filter: label in {3} minus slice 'sent'"``); ``detail`` is
    ``{"filter": RowFilter json}``, ``{"slice": name}`` or ``{}``; ``excluded_rows`` counts
    the rows of the base scope that the exclusions removed.
    """

    ids: tuple[str, ...]
    kind: str
    description: str
    detail: dict = field(default_factory=dict)
    excluded_slices: tuple[str, ...] = ()
    excluded_tags: tuple[str, ...] = ()
    excluded_rows: int = 0

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


def resolve_scope(
    ws: Workspace,
    dataset: str,
    table: pd.DataFrame,
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

    - ``"all"``: every row of ``table``;
    - ``"filter"``: the rows passing ``row_filter``, through
      :func:`core.rows.matching_rows` (the one way a RowFilter is applied; a tag no row
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
    all_ids = table["id"].astype(str).tolist()
    if kind == "all":
        base, detail, text = all_ids, {}, "whole dataset"
    elif kind == "filter":
        if row_filter is None:
            raise InputError("scope 'filter' needs a row filter (--where EXPR)")
        base = matching_rows(ws, dataset, row_filter, table=table)["id"].astype(str).tolist()
        detail, text = {"filter": row_filter.to_json()}, f"Catalog filter: {row_filter.describe()}"
    else:
        if not slice_name:
            raise InputError("scope 'slice' needs a slice name (--slice NAME)")
        base = apply_scope(all_ids, within=store.get_slice(dataset, slice_name).ids)
        detail, text = {"slice": slice_name}, f"slice {slice_name!r}"
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
                 len(base) - len(ids))


__all__ = ["SCOPE_KINDS", "Scope", "resolve_scope"]
