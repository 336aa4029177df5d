"""Placeholder: being built (see the open issue)."""

import streamlit as st

st.title("smart_select")
st.info("This page is being built.")
