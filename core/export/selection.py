"""What to export: :func:`rows_for_export` resolves exactly one source (a slice, a tag,
ids, an ids file or a filter) into the rows to write, with edited labels, in the
source's order, and the recipe of how they were chosen (:class:`ExportSelection`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core._shared import read_ids_file
from core.errors import InputError, NotFoundError, format_list
from core.filters import RowFilter
from core.labels import effective_rows
from core.workspace import Workspace

EXPORT_SOURCES = ("slice", "tag", "ids", "ids_file", "where")


@dataclass(frozen=True, eq=False)
class ExportSelection:
    """Rows chosen for export, in the source's order, with edited labels, and the recipe
    of how they were chosen (what :func:`core.export.export_rows` writes to the sidecar)."""

    rows: pd.DataFrame
    recipe: dict

    @property
    def ids(self) -> list[str]:
        return self.rows["id"].astype(str).tolist()


def _filter_ids(ws: Workspace, dataset: str, where: str | RowFilter,
                embedding: str | None) -> tuple[list[str], dict]:
    from core.rows import filter_ids

    ids, flt, used = filter_ids(ws, dataset, where, embedding)
    recipe = {"method": "filter", "filter": flt.to_json(), "description": flt.describe(),
              "embedding": used}
    return ids, recipe


def rows_for_export(
    ws: Workspace,
    dataset: str,
    *,
    slice_name: str | None = None,
    tag: str | None = None,
    ids: Sequence[str] | None = None,
    ids_file: str | Path | None = None,
    where: str | RowFilter | None = None,
    embedding: str | None = None,
) -> ExportSelection:
    """The rows of exactly one source, with edited labels, in the source's order: a slice
    (slice order; recipe = the slice's recipe + ``slice``, ``slice_created``), a tag
    (tagging order), ``ids``, an ``ids_file`` (one id per line, UTF-8, BOM dropped) or a
    filter ``where`` (a ``--where`` expression or a :class:`RowFilter`; dataset order;
    ``embedding`` gives the quality columns a filter may use). The Slices page download
    and ``catalog export`` both call it.

    Raises InputError (none or several sources, naming the choices; a missing or
    unreadable ids file, naming it; a malformed ``where``; a quality filter without an
    embedding), NotFoundError (unknown slice or tag; ids not in the dataset, listing the
    first few) and SchemaError (a filter on a column the rows do not have).
    """
    given = {"slice": slice_name, "tag": tag, "ids": ids, "ids_file": ids_file, "where": where}
    chosen = [k for k, v in given.items() if v is not None]
    if len(chosen) != 1:
        got = f"got {', '.join(chosen)}" if chosen else "got none"
        raise InputError(f"say what to export with exactly one of {', '.join(EXPORT_SOURCES)}; {got}")
    source = chosen[0]
    if source == "slice":
        sl = ws.store.get_slice(dataset, slice_name)
        wanted, recipe = list(sl.ids), {**sl.recipe, "slice": sl.name, "slice_created": sl.created}
        what = f"slice {sl.name!r}"
    elif source == "tag":
        wanted, recipe = ws.store.rows_with_tag(dataset, tag), {"method": "tag", "tag": tag}
        what = f"tag {tag!r}"
    elif source == "ids":
        if isinstance(ids, str):
            raise InputError(f"ids must be a list of ids, not the string {ids!r}")
        wanted, recipe, what = [str(i) for i in ids], {"method": "ids"}, "the given ids"
    elif source == "ids_file":
        wanted = read_ids_file(ids_file)
        recipe = {"method": "ids-file", "file": str(Path(ids_file).expanduser().resolve())}
        what = f"ids file {str(ids_file)!r}"
    else:
        wanted, recipe = _filter_ids(ws, dataset, where, embedding)
        what = "the filter"
    rows = effective_rows(ws, dataset)
    pos = pd.Index(rows["id"].astype(str)).get_indexer(wanted)
    if (pos < 0).any():
        missing = [rid for rid, p in zip(wanted, pos) if p < 0]
        raise NotFoundError(f"{len(missing)} id(s) of {what} not in dataset {dataset!r}: "
                            f"{format_list(missing)}")
    return ExportSelection(rows.iloc[pos].reset_index(drop=True), recipe)


__all__ = ["EXPORT_SOURCES", "ExportSelection", "rows_for_export"]
