"""Streamlit glue of the Text search page: the plan (which embedding and method answer),
the loaded search (index, encoder, keyword index; once per embedding and rows stamp), the
cached query, the mode switch, and the row-text fallback built as a job.

Queries run through ``st.cache_data`` keyed by plain values (dataset, stamps, plan, mode,
query, filter key, k, threshold); the loaded parts start with ``_`` and are not hashed.
"""

from __future__ import annotations

import streamlit as st

from core.errors import EmbeddingError
from core.search import (
    FALLBACK_EMBEDDING,
    FUSION_POOL,
    KEYWORD_MAX_ROWS,
    MODES,
    SearchResult,
    TextSearch,
    TextSearchPlan,
    fallback_is_current,
    keyword_index,
    open_text_search,
    plan_text_search,
    run_text_search,
)
from core.workspace import Workspace
from ui import jobs, loaders
from ui.grid import safe_code, safe_text
from ui.loaders import embedding_stamp
from ui.search_widgets import Within, within_key

QUERIES_KEY = "txt:queries"  # dataset -> the last query typed on it
MODE_LABELS = {"hybrid": "Hybrid (meaning + words)", "semantic": "Meaning", "keyword": "Words (BM25)"}
METHOD_LABELS = {
    "clip": "CLIP: images and text in one space",
    "class-names": "ImageNet class names (ConSE over EfficientNet-Lite0), no CLIP needed",
    "text": "the rows' own text embedding",
    "row-text": "each row's caption, file name, label and metadata text",
}


@st.cache_data(show_spinner=False, max_entries=32)
def _plan(home: str, dataset: str, embedding: str, rows_stamp: str, metas: tuple, _ws: Workspace) -> TextSearchPlan:
    kinds = sorted(set(loaders.source_rows(_ws, dataset)["modality"].astype(str)))
    others = {name: (spec, mods) for name, spec, mods in metas}
    spec = others.get(embedding, (None, ()))[0]
    return plan_text_search(dataset, embedding, spec, kinds, others=others)


def text_plan(ws: Workspace, dataset: str, embedding: str) -> TextSearchPlan:
    """Which embedding and method answer a text query on ``dataset`` (see
    :func:`core.search.plan_text_search`); cached per rows and embeddings."""
    infos = [i for i in loaders.embeddings(ws, dataset) if i.name != FALLBACK_EMBEDDING]
    metas = tuple((i.name, i.encoder, tuple(i.modalities)) for i in infos)
    stamp = loaders.file_stamp(ws.dataset(dataset).rows_path)
    return _plan(str(ws.home), dataset, embedding, stamp, metas, ws)


@st.cache_resource(show_spinner="Indexing the rows' words for keyword search…", max_entries=8)
def _search(home: str, dataset: str, stamp: str, rows_stamp: str, plan: TextSearchPlan, _ws: Workspace) -> TextSearch:
    rows = loaders.source_rows(_ws, dataset)
    index = loaders.vector_index(_ws, dataset, plan.embedding)
    kinds = rows.set_index(rows["id"].astype(str))["modality"].astype(str) if plan.mixed else None
    return open_text_search(plan, index, loaders.encoder(plan.encoder),
                            keyword_index(_ws.dataset(dataset), rows), kinds)


def loaded_search(ws: Workspace, plan: TextSearchPlan) -> TextSearch:
    """The plan's loaded search, shared by every session (built once per stamps)."""
    return _search(str(ws.home), plan.dataset, embedding_stamp(ws, plan.dataset, plan.embedding),
                   loaders.file_stamp(ws.dataset(plan.dataset).rows_path), plan, ws)


@st.cache_data(show_spinner="Searching…", max_entries=64)
def _query(home: str, dataset: str, stamp: str, rows_stamp: str, plan: TextSearchPlan, mode: str, query: str,
           within_key: str, k: int | None, threshold: float | None, pool: int, _ws: Workspace,
           _within: Within | list[str] | None) -> SearchResult:
    search = loaded_search(_ws, plan)
    ids = _within.ids if isinstance(_within, Within) else _within
    subset = _within.subset if isinstance(_within, Within) else None
    return run_text_search(search, query, mode=mode, k=k, threshold=threshold, within=ids,
                           within_subset=subset, pool=pool)


def text_search(ws: Workspace, plan: TextSearchPlan, query: str, mode: str, *,
                within: Within | list[str] | None, k: int | None, threshold: float | None = None,
                pool: int = FUSION_POOL) -> SearchResult:
    """Cached :func:`core.search.run_text_search` (``pool`` candidates per ranking); raises
    CatalogError like it."""
    return _query(str(ws.home), plan.dataset, embedding_stamp(ws, plan.dataset, plan.embedding),
                  loaders.file_stamp(ws.dataset(plan.dataset).rows_path), plan, mode, query.strip(),
                  within_key(within), k, threshold, int(pool), ws, within)


def mode_picker(container, search: TextSearch, key: str) -> str:
    """The ``semantic | keyword | hybrid`` switch (default: the search's default mode); only
    ``semantic`` when the dataset has no keyword index (above KEYWORD_MAX_ROWS rows)."""
    modes = list(MODES) if search.keywords is not None else ["semantic"]
    if st.session_state.get(key) not in modes:
        st.session_state[key] = search.default_mode
    if search.keywords is None:
        container.caption(f"Keyword search is built for datasets of up to {KEYWORD_MAX_ROWS:,} rows; "
                          "this one is searched by meaning.")
    return container.radio("Match by", modes, key=key, horizontal=True, format_func=lambda m: MODE_LABELS[m])


def describe_method(plan: TextSearchPlan, mode: str) -> str:
    """One line for the page: what answers the query (method, embedding) and how (mode)."""
    if mode == "keyword":
        return "Answered by **keyword** relevance (BM25 over each row's text, file name, label and metadata)."
    how = f"**{plan.method}**: {METHOD_LABELS[plan.method]} (embedding {safe_code(plan.embedding, 60)})"
    fused = ", fused with keyword relevance (reciprocal rank fusion)" if mode == "hybrid" else ""
    mixed = "; images and texts ranked together on scores calibrated per kind" if plan.mixed else ""
    return f"Answered by {how}{fused}{mixed}."


def query_key(dataset: str) -> str:
    """Widget key of the text search box of ``dataset`` (one box per dataset)."""
    return f"txt:query:{dataset}"


def query_box(container, dataset: str) -> str:
    """The text search box of ``dataset`` drawn in ``container``: its own widget per
    dataset, so a query typed on one dataset is never run on another, and the query is
    kept per dataset (``txt:queries``) so it is back when the user returns to it."""
    key, kept = query_key(dataset), st.session_state.setdefault(QUERIES_KEY, {})
    if key not in st.session_state:  # widget state is dropped while another dataset is shown
        st.session_state[key] = kept.get(dataset, "")
    query = container.text_input("Describe what you are looking for", key=key,
                                 placeholder="e.g. a handwritten seven, or: inverse of a matrix")
    kept[dataset] = query
    return query


@st.cache_data(show_spinner=False, max_entries=32)
def _fallback_current(home: str, dataset: str, rows_stamp: str, meta_stamp: str, _ws: Workspace) -> bool:
    return fallback_is_current(_ws.dataset(dataset))


def ensure_fallback(ws: Workspace, dataset: str) -> bool:
    """True when the row-text embedding is current; else start it as a visible job
    (listed as derived on the Embeddings page, never in the picker), draw where its
    progress is, and return False (the page stops; it fills in when the job ends)."""
    ds = ws.dataset(dataset)
    if _fallback_current(str(ws.home), dataset, loaders.file_stamp(ds.rows_path),
                         embedding_stamp(ws, dataset, FALLBACK_EMBEDDING), ws):
        return True
    job = jobs.start_derived_text_embedding(ws, dataset)
    if job.status == "failed":
        raise EmbeddingError(f"indexing the row text of {dataset} failed: {job.error}")
    st.info(f"Text search on {safe_text(dataset)} first indexes each row's caption, file name, "
            f"label and metadata (once, as the derived embedding {FALLBACK_EMBEDDING}). "
            "Results appear here when it is done.")
    jobs.watch_job(ws, job)
    return False
