"""Catalog: curate datasets with embeddings. Navigation only; pages live in pages/."""

import streamlit as st

from ui.sidebar import render_sidebar

st.set_page_config(page_title="Catalog", page_icon=":material/dataset:", layout="wide")

PAGES = [
    st.Page("pages/catalog.py", title="Catalog", icon=":material/grid_view:", url_path="catalog", default=True),
    st.Page("pages/similarity.py", title="Similarity search", icon=":material/join_inner:", url_path="similarity"),
    st.Page("pages/text_search.py", title="Text search", icon=":material/search:", url_path="text_search"),
    st.Page("pages/smart_select.py", title="Smart select", icon=":material/filter_center_focus:", url_path="smart_select"),
    st.Page("pages/slices.py", title="Slices", icon=":material/bookmarks:", url_path="slices"),
    st.Page("pages/clusters.py", title="Cluster map", icon=":material/scatter_plot:", url_path="clusters"),
    st.Page("pages/quality.py", title="Label review", icon=":material/rule:", url_path="quality"),
    st.Page("pages/add_data.py", title="Add data", icon=":material/add:", url_path="add_data"),
    st.Page("pages/embeddings.py", title="Embeddings", icon=":material/hub:", url_path="embeddings"),
]

navigation = st.navigation(PAGES)
render_sidebar()
navigation.run()
