"""Placeholder: being built (see the open issue)."""

import streamlit as st

st.title("slices")
st.info("This page is being built.")
