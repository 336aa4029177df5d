"""Streamlit glue of the Label review page: the review queue, the actions and their undo,
and the cards (issues, duplicate groups).

Every review action is written to the store at once and pushed on a per-session undo
stack (``st.session_state["qa:undo_stack"]``) of :class:`Action`. The cached data
(label issues, duplicates, quality columns) lives in :mod:`ui.quality_data`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.errors import CatalogError, InputError
from core.labels import (
    LABEL_ISSUE_REVIEW,
    REVIEW_DECISIONS,
    review_label_issue,
    undo_relabel,
)
from core.quality import DuplicateGroup, LabelIssues
from core.workspace import Dataset, Workspace
from ui import state
from ui.grid import card_image, safe_code, safe_text
from ui.messages import flash, flash_error, show_error

REVIEW_KIND = LABEL_ISSUE_REVIEW
NEAR_PX = 48  # neighbour thumbnail width in an issue card
NEAREST_COLUMNS = 5  # neighbour columns per card (fixed, so thumbnails keep their size)
BATCH = 20
UNDO_KEY = "qa:undo_stack"
BATCH_KEY = "qa:batch_start"
MAX_UNDO = 200


# ---- the review queue ---------------------------------------------------------------
@dataclass(frozen=True)
class Issue:
    """One row of the review queue."""

    id: str
    given: str
    suggested: str
    score: float
    flagged_by: tuple[str, ...] = ()  # which sources flag the row: neighbours, model


def issue_queue(ws: Workspace, dataset: str, issues: LabelIssues, min_score: float,
                show_skipped: bool = False) -> list[Issue]:
    """Issues with score ≥ ``min_score`` not yet reviewed (relabelled or marked correct;
    skipped rows only if ``show_skipped``), worst first."""
    hide = hidden_rows(ws, dataset, show_skipped)
    n = int((issues.scores >= min_score - 1e-9).sum())  # scores are sorted worst first
    return [Issue(i, g, s, float(sc), issues.flagged_by(at)) for at, (i, g, s, sc) in
            enumerate(zip(issues.ids[:n], issues.given[:n], issues.suggested[:n], issues.scores[:n]))
            if i not in hide]


def hidden_rows(ws: Workspace, dataset: str, show_skipped: bool = False) -> set[str]:
    """Rows already reviewed (relabelled or marked correct; skipped ones unless ``show_skipped``)."""
    done = ws.store.reviewed(dataset, REVIEW_KIND)
    return {r for r, s in done.items() if s != "skipped" or not show_skipped}


def batch_start(dataset: str, total: int) -> int:
    """First queue position of the current batch (clamped to the queue)."""
    starts = st.session_state.setdefault(BATCH_KEY, {})
    last = max(0, (total - 1) // BATCH * BATCH)
    starts[dataset] = min(int(starts.get(dataset, 0)), last)
    return starts[dataset]


def move_batch(dataset: str, step: int) -> None:
    """Callback: go ``step`` batches forward (negative: back)."""
    starts = st.session_state.setdefault(BATCH_KEY, {})
    starts[dataset] = max(0, int(starts.get(dataset, 0)) + step * BATCH)


# ---- actions and undo ---------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """One undoable review action: label edits made, review marks set (with the
    status each row had before, None = none) and rows newly tagged."""

    dataset: str
    description: str
    edit_ids: tuple[int, ...] = ()
    reviewed: tuple[tuple[str, str | None], ...] = ()
    tag: str | None = None
    tagged: tuple[str, ...] = ()


def undo_stack() -> list[Action]:
    return st.session_state.setdefault(UNDO_KEY, [])


def _push(action: Action, message: str) -> None:
    stack = undo_stack()
    stack.append(action)
    del stack[:-MAX_UNDO]
    flash(message)


_DECISION_OF = {status: decision for decision, status in REVIEW_DECISIONS.items()}


def relabel(ws: Workspace, dataset: str, rid: str, new_label: str | None, prefix: str = "qa") -> None:
    """Callback: set ``rid``'s label (edit, source kept) and take it out of the queue.
    ``new_label`` None reads it from the row's "another label" selectbox (keys ``prefix``)."""
    if new_label is None:
        new_label = st.session_state.get(f"{prefix}:other:{rid}")
        if not new_label:
            return
    try:
        done = review_label_issue(ws, dataset, rid, "accept", label=new_label)
    except CatalogError as err:
        flash_error(err)
        return
    text = f"Relabelled {rid} as {new_label}"
    _push(Action(dataset, text, edit_ids=done.edit_ids, reviewed=((rid, done.previous_status),)),
          text + ".")


def mark(ws: Workspace, dataset: str, rid: str, status: str) -> None:
    """Callback: mark ``rid`` 'correct' (stops showing) or 'skipped'."""
    try:
        done = review_label_issue(ws, dataset, rid, _DECISION_OF[status])
    except CatalogError as err:
        flash_error(err)
        return
    text = f"Marked {rid} as {status}"
    _push(Action(dataset, text, reviewed=((rid, done.previous_status),)), text + ".")


def keep_one(ws: Workspace, dataset: str, group: tuple[str, ...], key: str) -> None:
    """Callback: tag every member of ``group`` but the keeper chosen in radio ``key``."""
    keeper = st.session_state.get(key, group[0])
    tag = str(st.session_state.get("qa:dup_tag") or "").strip()
    others = [r for r in group if r != keeper]
    try:
        if not tag:
            raise InputError("the tag for the other rows is empty; type one, e.g. 'duplicate'")
        before = ws.store.tags_by_row(dataset)
        ws.store.tag_rows(dataset, others, tag)
    except CatalogError as err:
        flash_error(err)
        return
    new = tuple(r for r in others if tag not in before.get(r, []))
    text = f"Kept {keeper}, tagged {len(others)} other(s) '{tag}'"
    _push(Action(dataset, text, tag=tag, tagged=new), text + ".")


def undo_last(ws: Workspace) -> None:
    """Callback: revert the last action of this session (edits, review marks, tags)."""
    stack = undo_stack()
    if not stack:
        return
    action = stack.pop()
    if action.edit_ids:
        undo_relabel(ws, action.dataset, list(action.edit_ids))
    store = ws.store
    store.unmark_reviewed(action.dataset, [r for r, prev in action.reviewed if prev is None], REVIEW_KIND)
    for rid, prev in action.reviewed:
        if prev is not None:
            store.mark_reviewed(action.dataset, [rid], REVIEW_KIND, prev)
    if action.tagged and action.tag:
        store.untag_rows(action.dataset, list(action.tagged), action.tag)
    flash(f"Undone: {action.description}.", "info")


def render_undo(ws: Workspace) -> None:
    """The "Undo last action" button and what it would undo."""
    stack = undo_stack()
    left, right = st.columns([1, 4], vertical_alignment="center")
    left.button("Undo last action", key="qa:undo", disabled=not stack, on_click=undo_last, args=(ws,))
    right.caption(f"Last: {safe_text(stack[-1].description)} ({len(stack)} undoable in this session)"
                  if stack else "Every action is saved at once and can be undone here.")


# ---- drawing --------------------------------------------------------------------------
def _media(ds: Dataset, row: pd.Series | None) -> None:
    if row is None:
        st.caption("(row no longer in the dataset)")
    elif row.get("modality") == "image" and isinstance(row.get("image"), str):
        thumb = card_image(ds, row["image"])
        if thumb:
            st.image(thumb, width="stretch")
        else:
            st.caption(":material/broken_image: unreadable image")
    else:
        st.markdown(safe_text(row.get("text", ""), 300))


def _lookup(rows: pd.DataFrame, ids: list[str]) -> list[pd.Series | None]:
    pos = pd.Index(rows["id"].astype(str)).get_indexer(ids)
    return [rows.iloc[p] if p >= 0 else None for p in pos]


def render_neighbours(ds: Dataset, rows: pd.DataFrame, near: Sequence[tuple[str, float]]) -> None:
    """Why a row was flagged: its nearest rows side by side, each a NEAR_PX thumbnail over
    "label · similarity" (the id in its tooltip); text rows one line each, "label ·
    similarity — snippet" (the ids in the tooltip)."""
    if not near:
        st.caption("(no neighbours: the row has no vector)")
        return
    st.caption("Nearest rows (label · similarity):")
    found = _lookup(rows, [n for n, _ in near])
    if not any(r is not None and r.get("modality") == "image" for r in found):  # text: one line each
        lines = []
        for (nid, score), row in zip(near, found):
            label = safe_text(row.get("label") if row is not None else None, 14) or "—"
            snippet = safe_text(row.get("text", ""), 60) if row is not None else ""
            lines.append(f"**{label}** · {score:.2f}" + (f" — {snippet}" if snippet else ""))
        st.caption("  \n".join(lines), help="Ids: " + ", ".join(safe_text(n) for n, _ in near))
        return
    cols = st.columns(max(len(near), NEAREST_COLUMNS), gap="small")
    for col, (nid, score), row in zip(cols, near, found):
        with col:
            if row is not None and row.get("modality") == "image" and isinstance(row.get("image"), str):
                thumb = card_image(ds, row["image"])
                st.image(thumb, width=NEAR_PX) if thumb else st.caption("⚠")
            elif row is not None:
                st.caption(safe_text(row.get("text", ""), 40))
            label = safe_text(row.get("label") if row is not None else None, 14) or "—"
            st.caption(f"**{label}** · {score:.2f}", help=safe_text(nid))


def render_model_evidence(model: str, top: Sequence[tuple[str, float]]) -> None:
    """Why the model flagged a row: its most probable classes with their probabilities."""
    if top:
        st.caption(f"Model {safe_text(model, 30)}: " + " · ".join(f"**{safe_text(c, 20)}** {p:.2f}" for c, p in top))
    else:
        st.caption(f"Model {safe_text(model, 30)}: no prediction for this row")


def render_issue_batch(ws: Workspace, dataset: str, rows: pd.DataFrame, batch: list[Issue],
                       labels: list[str], nearest: Sequence[Sequence[tuple[str, float]]] = (),
                       columns: int = 4, *, model: str | None = None,
                       evidence: Sequence[Sequence[tuple[str, float]]] = (), what: str = "suggested",
                       prefix: str = "qa") -> None:
    """Cards of ``batch``: media, given → suggested label, score, which source flagged the
    row and why: the nearest rows (``nearest``: one ``(id, cosine)`` list per issue, as
    :func:`ui.quality_data.nearest_of` gives; none: not shown) and the model's top classes
    (``evidence``, with ``model``); then the four actions. ``what`` names the suggestion;
    ``prefix`` starts the widget keys (``qa:accept:<id>``...), one per list on the page."""
    ds = ws.dataset(dataset)
    cols = st.columns(columns)
    nearest = list(nearest) or [None] * len(batch)
    evidence = list(evidence) or [None] * len(batch)
    for i, (issue, row, near, top) in enumerate(zip(batch, _lookup(rows, [b.id for b in batch]), nearest,
                                                   evidence)):
        rid = issue.id
        with cols[i % columns].container(border=True):
            _media(ds, row)
            st.caption(f"{safe_code(rid, 40)} · score {issue.score:.3f}")
            st.markdown(f"**{safe_text(issue.given, 30)}** → {what} **{safe_text(issue.suggested, 30)}**")
            if issue.flagged_by:
                st.markdown(" ".join(f":{'violet' if s == 'model' else 'blue'}-badge[{s}]"
                                     for s in issue.flagged_by), help="The sources that flag this row")
            if near is not None:
                render_neighbours(ds, rows, near)
            if top is not None and model is not None:
                render_model_evidence(model, top)
            st.button(f"Accept {safe_text(issue.suggested, 20)}", key=f"{prefix}:accept:{rid}", type="primary",
                      on_click=relabel, args=(ws, dataset, rid, issue.suggested, prefix), width="stretch")
            b1, b2 = st.columns(2)
            b1.button("Correct", key=f"{prefix}:correct:{rid}", on_click=mark, args=(ws, dataset, rid, "correct"),
                      help="The given label is right: stop showing this row", width="stretch")
            b2.button("Skip", key=f"{prefix}:skip:{rid}", on_click=mark, args=(ws, dataset, rid, "skipped"),
                      width="stretch")
            st.selectbox("Set another label", [lab for lab in labels if lab != issue.given], index=None,
                         placeholder="Another label…", key=f"{prefix}:other:{rid}", label_visibility="collapsed",
                         on_change=relabel, args=(ws, dataset, rid, None, prefix))
            st.button("Details and label history", key=f"{prefix}:open:{rid}", type="tertiary",
                      on_click=state.open_detail, args=(rid,))


def open_groups(ws: Workspace, dataset: str, groups: tuple[DuplicateGroup, ...],
                tag: str) -> list[DuplicateGroup]:
    """Groups not yet resolved: more than one member lacks ``tag``."""
    tagged = ws.store.tags_by_row(dataset)
    return [g for g in groups if sum(tag not in tagged.get(r, []) for r in g.ids) > 1]


def render_group(ws: Workspace, dataset: str, rows: pd.DataFrame, group: DuplicateGroup,
                 partners: Mapping[str, tuple[str, float]] | None = None, max_shown: int = 6) -> None:
    """One duplicate group side by side, a conflict badge, and "keep one, tag the others".

    A pair (2 rows) is headed by its similarity; in a larger group each row also names
    its most similar member and their similarity (``partners``, as
    :func:`ui.quality_data.duplicate_partners` gives)."""
    ds, gid = ws.dataset(dataset), group.ids[0]
    partners = partners or {}
    with st.container(border=True):
        pair = len(group.ids) == 2
        head = (f"**{len(group.ids)} rows** · similarity {'' if pair else 'up to '}"
                f"{group.max_score:.3f}")
        st.markdown(head + (" · :red-badge[conflicting labels]" if group.conflict else ""))
        shown = list(group.ids[:max_shown])
        cols = st.columns(max_shown)
        for col, rid, row in zip(cols, shown, _lookup(rows, shown)):
            with col:
                _media(ds, row)
                label = row.get("label") if row is not None else None
                st.caption(f"{safe_code(rid, 30)} · **{safe_text(label, 20)}**")
                if not pair and rid in partners:
                    other, score = partners[rid]
                    st.caption(f"closest: {safe_code(other, 30)} · {score:.3f}")
        if len(group.ids) > max_shown:
            st.caption(f"+{len(group.ids) - max_shown} more rows in this group")
        key = f"qa:keep:{gid}"
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        left.radio("Keep", group.ids, key=key, horizontal=True, format_func=lambda r: safe_text(r, 40))
        right.button("Keep it, tag the others", key=f"qa:dedup:{gid}", on_click=keep_one,
                     args=(ws, dataset, group.ids, key))


def wait_for_quality(ws: Workspace, dataset: str, job) -> None:
    """The page's state while the first kNN pass of a large embedding runs as a job: its
    one-line error if it failed, else its live progress (the page fills in when it ends)."""
    from ui import jobs

    if job.status == "failed":
        show_error(f"Scoring {dataset} failed: {job.error}")
        return
    st.info(f"Label review of {safe_text(dataset)} needs one nearest-neighbour pass over "
            "its vectors, computed once in the background.")
    jobs.watch_job(ws, job)


def offer_quality_pass(ws: Workspace, dataset: str, embedding: str, rows: int) -> None:
    """A large embedding whose neighbours pass is not computed yet: say so, and a button
    that starts it as a background job (:func:`ui.jobs.start_quality`), then its progress."""
    from ui import jobs

    last = jobs.board(ws).latest(dataset, "quality")
    if last is not None and last.status in ("failed", "interrupted"):
        show_error(f"The last neighbours pass of {dataset} {last.status}: {last.error or 'stopped'} "
                   "(starting it again resumes from its finished chunks)")
    st.info(f"Label review of {safe_text(dataset)} needs the nearest neighbours of each of its "
            f"{rows:,} rows in {safe_text(embedding)}: one pass, computed once in the background "
            "and stored (an interrupted pass resumes where it stopped). Until then the Catalog "
            "shows the rows without quality columns. From a terminal: "
            f"`catalog quality {dataset} --embedding {embedding}`.")
    if st.button("Find nearest neighbours", key="qa:start_pass", type="primary"):
        jobs.watch_job(ws, jobs.start_quality(ws, dataset, embedding))
