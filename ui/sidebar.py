"""Sidebar shared by every page: workspace path, dataset and embedding pickers."""

from __future__ import annotations

import streamlit as st

from ui import loaders, state
from ui.bootstrap import ensure_demo
from ui.grid import safe_code


def render_sidebar() -> None:
    """Draw the pickers; the chosen names are read with ui.state.active_*()."""
    ws = loaders.get_workspace()
    ensure_demo(ws)
    with st.sidebar:
        st.caption(f"Workspace: {safe_code(ws.home)}")
        names = ws.dataset_names()
        if not names:
            st.info("No datasets yet. Run `catalog ingest SOURCE --name NAME` or wait for the demos.")
            return
        if st.session_state.get(state.DATASET_KEY) not in names:
            st.session_state[state.DATASET_KEY] = names[0]
        dataset = st.selectbox("Dataset", names, key=state.DATASET_KEY)
        ds = ws.dataset(dataset)
        embs = ds.embedding_names()
        if not embs:
            st.session_state.pop(state.EMBEDDING_KEY, None)
            st.caption(f"No embeddings yet: {safe_code(f'catalog embed {dataset}')}")
            return
        if st.session_state.get(state.EMBEDDING_KEY) not in embs:
            st.session_state[state.EMBEDDING_KEY] = ds.default_embedding()
        infos = {e.name: e for e in loaders.embeddings(ws, dataset)}

        def describe(name: str) -> str:
            info = infos.get(name)
            return f"{name} ({info.dims}-d, {info.encoder or 'imported'})" if info else name

        st.selectbox("Active embedding", embs, key=state.EMBEDDING_KEY, format_func=describe)
