"""Sidebar shared by every page: workspace path, dataset and embedding pickers, and the
background jobs panel (:mod:`ui.jobs`)."""

from __future__ import annotations

import streamlit as st

from ui import jobs, loaders, state
from ui.bootstrap import FIRST_DEMO, ensure_demo
from ui.grid import safe_code

ADD_DATA_PAGE = "pages/add_data.py"


def render_sidebar() -> None:
    """Draw the pickers; the chosen names are read with ui.state.active_*()."""
    ws = loaders.get_workspace()
    ensure_demo(ws)
    jobs.render_jobs(ws)
    with st.sidebar:
        names = ws.dataset_names()
        if not names:
            if not jobs.active_jobs(ws):
                st.info("No datasets yet.")
                st.page_link(ADD_DATA_PAGE, label="Add data", icon=":material/add:")
            st.caption(f"Workspace: {safe_code(ws.home)}")
            return
        if st.session_state.get(state.DATASET_KEY) not in names:
            st.session_state[state.DATASET_KEY] = FIRST_DEMO if FIRST_DEMO in names else names[0]
        dataset = st.selectbox("Dataset", names, key=state.DATASET_KEY)
        ds = ws.dataset(dataset)
        embs = [e for e in ds.embedding_names() if e not in loaders.derived_embeddings(ws, dataset)]
        if not embs:
            st.session_state.pop(state.EMBEDDING_KEY, None)
            st.caption("No embedding yet.")
        else:
            if st.session_state.get(state.EMBEDDING_KEY) not in embs:
                st.session_state[state.EMBEDDING_KEY] = ds.default_embedding() \
                    if ds.default_embedding() in embs else embs[0]
            infos = {e.name: e for e in loaders.embeddings(ws, dataset)}

            def describe(name: str) -> str:
                info = infos.get(name)
                return f"{name} ({info.dims}-d, {info.encoder or 'imported'})" if info else name

            st.selectbox("Active embedding", embs, key=state.EMBEDDING_KEY, format_func=describe)
        st.caption(f"Workspace: {safe_code(ws.home)}")
