"""Placeholder: being built (see the open issue)."""

import streamlit as st

st.title("clusters")
st.info("This page is being built.")
