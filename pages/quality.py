"""Placeholder: being built (see the open issue)."""

import streamlit as st

st.title("quality")
st.info("This page is being built.")
