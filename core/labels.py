"""Label edits: relabel rows and undo; the rows with their edited labels; the decisions
of the label review (accept a suggestion, dismiss it, skip). ``rows.parquet`` is never touched.

The effective label of a row is its latest non-reverted edit (see
:meth:`core.store.Store.label_overrides`), else the ingested label. The Label review
page and ``catalog review`` both decide through :func:`review_label_issue`; ``catalog
undo`` goes through :func:`undo_label_edit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from core.errors import InputError, NotFoundError, SchemaError, format_list
from core.store import LabelEdit
from core.workspace import Workspace

LABEL_ISSUE_REVIEW = "label-issue"  # the review kind of label-issue decisions in the store
REVIEW_SOURCE = "label review"  # the source recorded on edits made by accepting a suggestion
# decision -> review status stored; every status but "skipped" takes the row out of the queue
REVIEW_DECISIONS = {"accept": "relabeled", "dismiss": "correct", "skip": "skipped"}
DEFAULT_MIN_SCORE = 0.5  # the Label review page's default "Minimum score"


def apply_label_edits(rows: pd.DataFrame, overrides: dict[str, str | None]) -> pd.DataFrame:
    """A copy of ``rows`` whose ``label`` is ``overrides[id]`` where present (None clears it).

    ``overrides`` is what :meth:`core.store.Store.label_overrides` returns. Raises
    SchemaError if ``rows`` has no ``id`` column.
    """
    if "id" not in rows.columns:
        raise SchemaError(f"the rows table has no 'id' column; columns: "
                          f"{format_list([str(c) for c in rows.columns], 30)}")
    out = rows.copy()
    if "label" not in out.columns:
        out["label"] = None
    if not overrides:
        return out
    old = out["label"]
    labels = old.astype(object).where(old.notna(), None)
    ids = out["id"].astype(str)
    edited = ids.isin(overrides.keys()).to_numpy()
    labels[edited] = [overrides[i] for i in ids[edited]]
    out["label"] = labels.astype(old.dtype) if isinstance(old.dtype, pd.StringDtype) else labels
    return out


def effective_rows(ws, dataset: str) -> pd.DataFrame:
    """``ws.dataset(dataset).rows()`` with the store's label edits applied.

    Raises NotFoundError if the dataset does not exist.
    """
    rows = ws.dataset(dataset).rows()
    return apply_label_edits(rows, ws.store.label_overrides(dataset))


def relabel_rows(
    ws: Workspace, dataset: str, row_ids: Sequence[str], new_label: str, *, source: str = "manual"
) -> list[int]:
    """Set the label of ``row_ids`` to ``new_label``; returns the edit ids (for undo).

    Rows whose effective label already equals ``new_label`` are left alone.
    Raises NotFoundError for unknown ids, InputError for an empty label.
    """
    if not isinstance(new_label, str) or not new_label.strip():
        raise InputError("the new label is empty")
    new_label = new_label.strip()
    current = effective_labels(ws, dataset)
    ids = list(dict.fromkeys(str(r) for r in row_ids))
    missing = [r for r in ids if r not in current]
    if missing:
        raise NotFoundError(f"{len(missing)} row(s) not in {dataset!r}: {format_list(missing)}")
    changing = [r for r in ids if current[r] != new_label]
    if not changing:
        return []
    old = [None if current[r] is None or current[r] != current[r] else str(current[r]) for r in changing]
    return ws.store.relabel(dataset, changing, new_label, old, source=source)


def undo_relabel(ws: Workspace, dataset: str, edit_ids: Sequence[int]) -> int:
    """Revert label edits by id; returns how many were reverted."""
    return ws.store.revert_edits(dataset, list(edit_ids))


def effective_labels(ws: Workspace, dataset: str) -> dict[str, str | None]:
    """Row id → effective label (None when unlabelled). Raises NotFoundError (no dataset)."""
    rows = effective_rows(ws, dataset)
    return {rid: (None if lab is None or lab != lab else str(lab))
            for rid, lab in zip(rows["id"].astype(str), rows["label"])}


def _require_row(labels: dict[str, str | None], dataset: str, row_id: str) -> str:
    row_id = str(row_id)
    if row_id not in labels:
        raise NotFoundError(f"no row {row_id!r} in {dataset!r}")
    return row_id


def row_label_history(ws: Workspace, dataset: str, row_id: str) -> list[LabelEdit]:
    """Every label edit of ``row_id``, oldest first (reverted ones included, ``reverted``
    set). Raises NotFoundError for an unknown dataset or row."""
    row_id = _require_row(effective_labels(ws, dataset), dataset, row_id)
    return ws.store.label_history(dataset, row_id)


def undo_label_edit(ws: Workspace, dataset: str, edit_id: int | None = None) -> LabelEdit:
    """Revert label edit ``edit_id`` of ``dataset`` (None: the newest edit not yet reverted)
    and return it as it was before the undo. The row's label falls back to its previous live
    edit, else the ingested label. An edit made by accepting a label-review suggestion also
    takes the row back into the review queue (its "relabeled" mark is removed).

    Raises NotFoundError (unknown dataset; no such edit; nothing left to undo) and
    InputError (the edit was already reverted).
    """
    ws.dataset(dataset)
    if edit_id is None:
        edit = ws.store.last_live_edit(dataset)
        if edit is None:
            raise NotFoundError(f"no label edit to undo in {dataset!r}")
    else:
        edit = ws.store.label_edit(dataset, edit_id)
    if edit.reverted is not None or ws.store.revert_edits(dataset, [edit.edit_id]) == 0:
        raise InputError(f"label edit {edit.edit_id} of row {edit.row_id!r} in {dataset!r} was "
                         "already reverted")
    if edit.source == REVIEW_SOURCE and \
            ws.store.reviewed(dataset, LABEL_ISSUE_REVIEW).get(edit.row_id) == "relabeled":
        ws.store.unmark_reviewed(dataset, [edit.row_id], LABEL_ISSUE_REVIEW)
    return edit


@dataclass(frozen=True)
class LabelSuggestion:
    """A label-issue ranking's view of one row: ``score`` in (0, 1] = 1 - P(given label);
    ``source`` the ranking (neighbours, model, combined), ``model`` whose predictions."""

    id: str
    given: str
    suggested: str
    score: float
    k: int
    embedding: str | None
    source: str = "neighbours"
    model: str | None = None


def suggest_label(ws: Workspace, dataset: str, row_id: str, *, embedding: str | None = None,
                  k: int | None = None, min_score: float = DEFAULT_MIN_SCORE, ranking: str | None = None,
                  model: str | None = None) -> LabelSuggestion:
    """The label :func:`core.quality.rank_label_issues` suggests for ``row_id``: ranking
    ``ranking`` (neighbours, model or combined; None: as ``catalog label-issues``, see
    :func:`core.quality.choose_source`) over ``embedding``'s index (None: the default
    embedding) and ``model``'s predictions, with the effective labels and ``k`` neighbours
    (None: ``core.quality.auto_k``, as the Label review page); the row is flagged when its score is at least
    ``min_score`` (default 0.5) and above 0, as in the Label review page's queue.

    Raises NotFoundError (unknown dataset, embedding or row) and InputError (the ranking
    does not flag the row: no vector, no label, no labelled neighbour, or its neighbours
    mostly agree with its label; also k < 1, fewer than 2 labels, min_score outside [0, 1]).
    """
    from core.embeddings import load_index
    from core.predictions import load_predictions
    from core.quality import choose_source, rank_label_issues

    if not 0.0 <= float(min_score) <= 1.0:
        raise InputError(f"min score {min_score!r} is outside 0-1")
    labels = effective_labels(ws, dataset)
    row_id = _require_row(labels, dataset, row_id)
    ds = ws.dataset(dataset)
    ranking, model = choose_source(ds, ranking, model)
    emb = ds.require_embedding(embedding) if ranking != "model" else None
    issues = rank_label_issues(load_index(ds, emb) if emb else None, labels, source=ranking,
                               predictions=load_predictions(ds, model) if model else None,
                               k=k)
    pos = {rid: i for i, rid in enumerate(issues.ids)}.get(row_id)
    score = None if pos is None else float(issues.scores[pos])
    if score is None or score <= 0.0 or score < float(min_score) - 1e-9:
        why = ("it has no label" if labels[row_id] is None else
               f"its neighbours mostly agree with its label (score {score:.3f} < {min_score:g})"
               if score is not None else f"it has no vector in {emb!r} or no labelled neighbour")
        raise InputError(f"row {row_id!r} is not flagged by the {ranking} label-issue ranking"
                         + (f" of {emb!r} (k = {issues.k})" if emb else f" of model {model!r}")
                         + f": {why}; there is no suggestion to accept")
    return LabelSuggestion(row_id, issues.given[pos], issues.suggested[pos],
                           float(issues.scores[pos]), issues.k, emb, ranking, model)


@dataclass(frozen=True)
class ReviewOutcome:
    """What a label-review decision did: ``status`` stored for the row (``previous_status``
    before, None = never reviewed), ``label`` its effective label afterwards and
    ``edit_ids`` the label edits made (empty unless accepted with a new label)."""

    dataset: str
    row_id: str
    decision: str
    status: str
    label: str | None
    edit_ids: tuple[int, ...]
    previous_status: str | None


def review_label_issue(ws: Workspace, dataset: str, row_id: str, decision: str, *,
                       label: str | None = None, embedding: str | None = None,
                       k: int | None = None, min_score: float = DEFAULT_MIN_SCORE,
                       source: str = REVIEW_SOURCE, ranking: str | None = None,
                       model: str | None = None) -> ReviewOutcome:
    """Decide on a label-review suggestion for ``row_id`` and record it (kind
    :data:`LABEL_ISSUE_REVIEW`): ``accept`` relabels the row to ``label`` (None: the
    suggestion of :func:`suggest_label` by ``ranking`` over ``embedding`` and ``model`` with ``k`` and
    ``min_score``, refused for a row
    already reviewed other than skipped) and marks it "relabeled"; ``dismiss`` marks it
    "correct" and ``skip`` "skipped". Only a skipped row stays in the review queue.

    Raises InputError (unknown decision, naming the choices; empty label; the ranking does
    not flag the row or it was already reviewed) and NotFoundError (unknown dataset, row or
    embedding). Nothing is written when it raises.
    """
    if decision not in REVIEW_DECISIONS:
        raise InputError(f"unknown review decision {decision!r}; choose one of "
                         f"{', '.join(REVIEW_DECISIONS)}")
    labels = effective_labels(ws, dataset)
    row_id = _require_row(labels, dataset, row_id)
    previous = ws.store.reviewed(dataset, LABEL_ISSUE_REVIEW).get(row_id)
    edits: list[int] = []
    if decision == "accept":
        if label is None:
            if previous not in (None, "skipped"):
                raise InputError(f"row {row_id!r} was already reviewed ({previous}); undo that "
                                 "first or relabel it with catalog relabel")
            label = suggest_label(ws, dataset, row_id, embedding=embedding, k=k, min_score=min_score,
                                  ranking=ranking, model=model).suggested
        edits = relabel_rows(ws, dataset, [row_id], label, source=source)
        labels[row_id] = label.strip()
    status = REVIEW_DECISIONS[decision]
    ws.store.mark_reviewed(dataset, [row_id], LABEL_ISSUE_REVIEW, status)
    return ReviewOutcome(dataset, row_id, decision, status, labels[row_id], tuple(edits), previous)
