"""Placeholder: being built (see the open issue)."""

import streamlit as st

st.title("similarity")
st.info("This page is being built.")
