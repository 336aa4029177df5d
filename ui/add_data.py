"""Add data from the browser: a source (a path inside the allowed roots, or an upload),
its preview with the guessed column mapping, then the ingest job (and the embedding job
after it). The checks and the summary are ``catalog ingest``'s: the job runs
``core.ingest.ingest``."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from core.errors import CatalogError, InputError
from core.ingest import (
    DATA_ROOTS_ENV,
    ColumnMapping,
    SourcePreview,
    allowed_roots,
    check_source_path,
    extract_image_zip,
    preview_source,
    save_upload,
)
from core.predictions import DEFAULT_MODEL, PredictionColumns
from core.workspace import Workspace, check_name
from ui import jobs, state
from ui.grid import safe_code, safe_text
from ui.messages import show, show_error

PREVIEW_KEY = "add:preview"
UPLOAD_TYPES = ["csv", "tsv", "parquet", "jsonl", "ndjson", "zip"]
NONE = "(none)"
ROLES = ("id", "text", "image", "label")
PRED_GUESSES = ("prediction", "predicted", "pred", "predicted_label")
SCORE_GUESSES = ("score", "confidence", "prediction_score", "pred_score")
PROBS_GUESSES = ("probs", "probabilities", "pred_probs")
PROB_PREFIXES = ("p_", "prob_", "proba_")  # per-class probability columns: p_cat, p_dog...


def roots_caption(ws: Workspace) -> str:
    roots = ", ".join(safe_code(r) for r in allowed_roots(ws))
    return (f"Paths must lie inside an allowed folder: {roots}. The server's admin sets them "
            f"with {safe_code(DATA_ROOTS_ENV)} (separated by ':').")


def source_from_path(ws: Workspace, text: str) -> Path | None:
    """Check ``text`` against the allowed roots; draw the error and return None if refused."""
    try:
        return check_source_path(ws, text)
    except CatalogError as err:
        show_error(err)
        return None


def source_from_upload(ws: Workspace, upload) -> Path | None:
    """Save an uploaded table, or extract an uploaded zip of images (every member checked
    first: nothing is created for a refused archive); draw the error and return None."""
    try:
        if upload.name.lower().endswith(".zip"):
            return extract_image_zip(ws, upload.name, upload)
        return save_upload(ws, upload.name, upload)
    except CatalogError as err:
        show_error(err)
        return None


def load_preview(path: Path) -> None:
    """Preview ``path`` and keep it for the next runs (or draw why it cannot be read)."""
    try:
        st.session_state[PREVIEW_KEY] = preview_source(path)
    except CatalogError as err:
        st.session_state.pop(PREVIEW_KEY, None)
        show_error(err)


def current_preview() -> SourcePreview | None:
    return st.session_state.get(PREVIEW_KEY)


def suggested_name(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-").lower()[:60] or "my-data"


def mapping_widgets(preview: SourcePreview) -> ColumnMapping:
    """Selectboxes for the id, text, image and label columns (the guess preselected)."""
    if preview.mapping.fixed:
        return preview.mapping
    options = [NONE, *preview.columns]
    cols = st.columns(len(ROLES))
    chosen = {}
    for col, role in zip(cols, ROLES):
        guess = getattr(preview.mapping, role)
        value = col.selectbox(f"{role} column", options, key=f"add:map:{role}",
                              index=options.index(guess) if guess in options else 0)
        chosen[role] = None if value == NONE else value
    return ColumnMapping(**chosen)


def _guess(columns: tuple[str, ...], names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in columns), None)


def _probs_guess(columns: tuple[str, ...]) -> str:
    listed = _guess(columns, PROBS_GUESSES)
    if listed:
        return listed
    prefix = next((p for p in PROB_PREFIXES if sum(c.startswith(p) for c in columns) >= 2), None)
    return f"{prefix}*" if prefix else ""


def prediction_widgets(preview: SourcePreview) -> dict:
    """An expander for a model's predictions in the table (``ingest --pred-col /
    --pred-score-col / --probs-col``, stored beside the rows as a model's predictions);
    the ingest keyword arguments (``predictions``, ``model``), empty when none is given."""
    if preview.mapping.fixed:
        return {}
    options = [NONE, *preview.columns]
    guessed = (_guess(preview.columns, PRED_GUESSES), _guess(preview.columns, SCORE_GUESSES),
               _probs_guess(preview.columns))
    with st.expander("Model predictions in this table (optional)", expanded=any(guessed)):
        c1, c2, c3, c4 = st.columns(4)
        pred = c1.selectbox("Predicted label column", options, key="add:pred",
                            index=options.index(guessed[0]) if guessed[0] else 0)
        score = c2.selectbox("Its confidence column", options, key="add:pred_score",
                             index=options.index(guessed[1]) if guessed[1] else 0)
        probs = c3.text_input("Probabilities", value=guessed[2], key="add:probs",
                              help="A list column (values in the order of the sorted labels), or "
                              "PREFIX* for one column per class (p_* reads p_cat, p_dog...)")
        model = c4.text_input("Model name", value=DEFAULT_MODEL, key="add:pred_model")
    columns = PredictionColumns(None if pred == NONE else pred, None if score == NONE else score,
                                probs.strip() or None)
    return {"predictions": columns, "model": model.strip()} if columns.given else {}


def update_choice(ws: Workspace, name: str) -> bool:
    """When dataset ``name`` exists: a checkbox to update it from the source (``ingest
    --update``: unchanged rows keep their vectors, tags, slices and label edits); its value."""
    try:
        exists = ws.has_dataset(check_name(name.strip()))
    except CatalogError:
        return False
    if not exists:
        return False
    return st.checkbox(f"Update the existing dataset {name.strip()!r} from this source",
                       key="add:update", help="New ids are added, changed rows updated, ids missing "
                       "from the source removed. Rows whose text or image is unchanged keep their "
                       "vectors, tags, slices and label edits; only new or changed rows are embedded.")


def start(ws: Workspace, preview: SourcePreview, mapping: ColumnMapping, name: str,
          embed: bool, update: bool = False, predictions: dict | None = None) -> None:
    """Check the name, then start the ingest job (``update``: of the existing dataset
    ``name``, as ``catalog ingest --update``; ``predictions``: :func:`prediction_widgets`'
    keyword arguments) and the embedding job after it."""
    try:
        name = check_name(name.strip())
        if ws.has_dataset(name) and not update:
            raise InputError(f"a dataset named {name!r} already exists; choose another name, "
                             "or tick “Update the existing dataset”")
        options = {k: v for k, v in mapping.to_ingest_kwargs().items() if v is not None}
        if update:
            options["update"] = True
        if predictions:
            check_name(predictions["model"], "model")
            options.update(predictions)
        jobs.start_ingest(ws, name, str(preview.path), options, embed=embed)
    except CatalogError as err:
        show_error(err)
        return
    st.session_state["add:started"] = name
    st.session_state.pop(PREVIEW_KEY, None)
    st.rerun()


def render_started(ws: Workspace) -> None:
    """What happened to the dataset this session last added: running, failed or added."""
    name = st.session_state.get("add:started")
    if not name:
        return
    job = jobs.board(ws).latest(name, "ingest")
    if job is None:
        return
    if job.active:
        show(f"Adding {name}: its rows appear when it is done.", "info")
        jobs.watch_job(ws, job)
    elif job.status == "done":
        summary = (job.result or {}).get("summary", "")
        done = "Updated" if (job.params or {}).get("update") == "True" else "Added"
        show(f"{done} {name}. Its embedding is computed in the background (see the sidebar).")
        if summary:
            st.code(summary, language=None)
        if st.button(f"Open {name} in the Catalog", key="add:open", icon=":material/grid_view:",
                     on_click=_make_active, args=(name,)):
            st.switch_page("pages/catalog.py")
    else:
        show_error(f"Adding {name} failed: {job.error}")


def _make_active(name: str) -> None:
    """Button callback (before the sidebar picker is drawn): ``name`` becomes the dataset."""
    st.session_state[state.DATASET_KEY] = name


def preview_table(preview: SourcePreview) -> None:
    total = f"{preview.total_rows:,} rows" if preview.total_rows is not None else "rows: unknown"
    st.markdown(f"**{safe_text(preview.path.name)}** · {preview.format} · {total}")
    for note in preview.notes:
        st.caption(safe_text(note))
    st.dataframe(preview.rows, hide_index=True, key="add:preview_rows")
