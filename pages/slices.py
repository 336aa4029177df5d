"""Slices: saved selections with their recipes; open in the Catalog, rename, delete
(with undo) and export for labeling (CSV / JSONL / NDJSON + the recipe JSON)."""

import json

import streamlit as st

from core.errors import CatalogError
from core.export import EXPORT_FORMATS
from ui import slice_widgets as slw
from ui.grid import safe_text
from ui.messages import show_error
from ui.page import start_page

ws, dataset, _ = start_page("Slices")
undo = slw.deleted(dataset)
if undo:
    st.button(f"Undo delete of '{safe_text(undo[-1])}'", key="slices:undo", on_click=slw.undo_delete,
              args=(ws, dataset))

table = slw.slice_table(ws, dataset)
if table.empty:
    st.info("No slices yet: save one from Smart select, a search, or the Catalog selection bar.")
    st.stop()
st.dataframe(table, key="slices:table", hide_index=True, width="stretch")

names = table["name"].tolist()
if st.session_state.get(slw.PICK_KEY) not in names:
    st.session_state[slw.PICK_KEY] = names[0]
name = st.selectbox("Slice", names, key=slw.PICK_KEY)
try:
    sl = ws.store.get_slice(dataset, name)
except CatalogError as err:
    show_error(err)
    st.stop()
st.markdown(f"**{len(sl.ids):,} rows** · method {safe_text(sl.method)} · created {sl.created}")
with st.expander("Recipe"):
    st.json(sl.recipe, expanded=False)

a1, a2, a3, a4 = st.columns([1, 3, 1, 1], vertical_alignment="bottom")
if a1.button("Open in Catalog", key="slices:open", type="primary", on_click=slw.open_in_catalog,
             args=(sl,), help="The Catalog of this slice's dataset, filtered to exactly its rows."):
    st.switch_page("pages/catalog.py")
a2.text_input("New name", key=slw.NEW_NAME_KEY, placeholder="e.g. batch-2")
a3.button("Rename", key="slices:rename", on_click=slw.rename, args=(ws, dataset, name))
a4.button("Delete", key="slices:delete", on_click=slw.delete, args=(ws, dataset, name))

st.subheader("Export for labeling")
fmt = st.selectbox("Format", EXPORT_FORMATS, key="slices:format",
                   help="CSV and JSONL can be ingested again; NDJSON is one labeling-tool data row "
                        "per line (global_key, row_data, media_type, metadata_fields, label).")
try:
    download = slw.cached_export(ws, dataset, sl, fmt)
except CatalogError as err:
    show_error(err)
    st.stop()
d1, d2 = st.columns(2)
d1.download_button(f"Download {download.file_name}", download.data, file_name=download.file_name,
                   mime=download.mime, key="slices:download", on_click="ignore")
d2.download_button("Download the recipe JSON", download.recipe, file_name=download.recipe_name,
                   mime="application/json", key="slices:download_recipe", on_click="ignore")
st.caption(f"{download.rows:,} rows; edited labels are exported as edited. Recipe hash "
           f"{json.loads(download.recipe)['ids_hash'][:12]}.")
