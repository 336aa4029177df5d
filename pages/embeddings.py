"""Embeddings: the dataset's embeddings (computed and imported); compute a new one, import
your own vectors, export, delete, set the default and choose the active one."""

import functools

import streamlit as st

from ui import embedding_widgets as ew
from ui import loaders
from ui.grid import safe_text
from ui.page import start_page

ws, dataset, active = start_page("Embeddings")
infos = loaders.embeddings(ws, dataset)
default = ws.dataset(dataset).default_embedding()
if infos:
    st.caption(f"Embeddings of {safe_text(dataset)}. The active one (chosen in the sidebar) is used "
               "by every page; the default is the one a new session and the CLI start with.")
    st.dataframe(ew.embedding_table(infos, default, active, loaders.derived_embeddings(ws, dataset)),
                 hide_index=True, key="emb:table")
else:
    st.info(f"{safe_text(dataset)} has no embeddings yet: compute one or import your own vectors below.")

if infos:
    st.subheader("Manage")
    names = [i.name for i in infos]
    ew.prepare_pick(names, active)
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    name = c1.selectbox("Embedding", names, key=ew.PICK_KEY)
    c2.button("Make active", key="emb:activate", on_click=ew.make_active, args=(name,),
              disabled=name == active, width="stretch")
    c3.button("Set as default", key="emb:default", on_click=ew.set_default,
              args=(ws, dataset, name), disabled=name == default, width="stretch")

    e1, e2 = st.columns([2, 2], vertical_alignment="bottom")
    fmt = e1.selectbox("Export format", ew.EXPORT_FORMATS, key="emb:fmt",
                       format_func=lambda f: "npy (zip of vectors + ids)" if f == "npy" else f)
    e2.download_button(f"Download {name}", key="emb:download",
                       data=functools.partial(ew.export_bytes, ws, dataset, name, fmt),
                       file_name=ew.export_file_name(dataset, name, fmt), mime=ew.MIME[fmt],
                       on_click="ignore", width="stretch")

    x1, x2 = st.columns([2, 2], vertical_alignment="bottom")
    kind = x1.selectbox("Index", list(ew.INDEX_KINDS), key="emb:index_kind",
                        format_func=ew.INDEX_KINDS.get)
    if x2.button(f"Rebuild the index of {name}", key="emb:reindex", width="stretch") and \
            ew.run_rebuild_index(ws, dataset, name, kind):
        st.rerun()

    d1, d2 = st.columns([2, 2], vertical_alignment="bottom")
    confirm = d1.checkbox(f"I understand: delete {name} from disk", key=ew.CONFIRM_KEY)
    d2.button(f"Delete {name}", key="emb:delete", type="primary", disabled=not confirm,
              on_click=ew.delete, args=(ws, dataset, name), width="stretch")

st.subheader("Compute a new embedding")
choices = ew.encoder_choices(ws, dataset)
c1, c2 = st.columns(2)
choice = c1.selectbox("Encoder", choices, key="emb:encoder",
                      format_func=lambda c: ew.OTHER_LABEL if c == ew.OTHER else c)
custom = ""
if choice == ew.OTHER:
    custom = c2.text_input("Model spec", key="emb:custom", placeholder="clip:clip-ViT-B-32")
new_name = st.text_input("Name (empty: the encoder's name)", key="emb:new_name")
replace_computed = st.checkbox("Replace an embedding with this name", key="emb:compute_replace")
if st.button("Compute", key="emb:compute") and ew.run_compute(ws, dataset, choice, custom, new_name,
                                                            replace_computed):
    st.rerun()

st.subheader("Import your own vectors")
st.caption("Parquet (an id column and one list column, or one column per dimension), CSV (id, then "
           "one column per dimension), or .npy (rows × dims) together with its ids file (.ids.npy, "
           ".txt or .csv). Vectors are L2-normalised; rows without a vector stay out of searches.")
uploads = st.file_uploader("Vectors file(s)", type=ew.UPLOAD_TYPES, accept_multiple_files=True,
                           key="emb:upload")
i1, i2 = st.columns(2)
import_name = i1.text_input("Name (empty: the file's name)", key="emb:import_name")
id_col = i2.text_input("Id column", value="id", key="emb:id_col")
replace_imported = st.checkbox("Replace an embedding with this name", key="emb:import_replace")
skip_unknown = st.checkbox("Skip ids that are not rows of this dataset", key="emb:skip_unknown")
if st.button("Import", key="emb:import", disabled=not uploads) and ew.run_import(
        ws, dataset, uploads, import_name, replace_imported, skip_unknown, id_col):
    st.rerun()
