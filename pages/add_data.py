"""Add data: a folder of images or a table (CSV, Parquet, JSONL) from a path on the
server or an upload; preview, map the columns, add (a background job), embed."""

import streamlit as st

from ui import add_data as ad
from ui import loaders
from ui.messages import show_flash

ws = loaders.get_workspace()
st.title("Add data")
show_flash()
ad.render_started(ws)

by_path, by_upload = st.tabs(["Path on the server", "Upload"])
with by_path:
    st.caption(ad.roots_caption(ws))
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    text = left.text_input("Folder of images, or a CSV / Parquet / JSONL file", key="add:path",
                           placeholder="/data/my-images")
    if right.button("Preview", key="add:path_btn", icon=":material/visibility:"):
        source = ad.source_from_path(ws, text)
        if source is not None:
            ad.load_preview(source)
with by_upload:
    st.caption("A CSV, TSV, Parquet or JSONL table, or a .zip of images (a folder per label "
               "gives the labels). Archives are checked before anything is written.")
    upload = st.file_uploader("File", type=ad.UPLOAD_TYPES, key="add:upload")
    if st.button("Upload and preview", key="add:upload_btn", icon=":material/upload:"):
        source = ad.source_from_upload(ws, upload) if upload is not None else None
        if source is not None:
            ad.load_preview(source)

preview = ad.current_preview()
if preview is not None:
    st.subheader("Preview")
    ad.preview_table(preview)
    mapping = ad.mapping_widgets(preview)
    predictions = ad.prediction_widgets(preview)
    left, mid, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    name = left.text_input("Dataset name", value=ad.suggested_name(preview.path), key="add:name")
    embed = mid.checkbox("Embed it after adding (default encoder)", value=True, key="add:embed")
    update = ad.update_choice(ws, name)
    if right.button("Add dataset", key="add:go", type="primary", icon=":material/add:"):
        ad.start(ws, preview, mapping, name, embed, update, predictions)
