"""Placeholder: being built (see the open issue)."""

import streamlit as st

st.title("embeddings")
st.info("This page is being built.")
