"""Placeholder: being built (see the open issue)."""

import streamlit as st

st.title("text_search")
st.info("This page is being built.")
