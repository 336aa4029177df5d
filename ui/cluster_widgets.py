"""Streamlit glue of the Cluster map page: cached projections and clusterings, quality
scores (the shared quality table of :mod:`ui.quality_data`), the points drawn of a large
map and its density layer; the map figure (:mod:`ui.cluster_map`) and the summary table,
pick and relabel actions (:mod:`ui.cluster_picks`) are re-exported here, so the page uses
one module.

Caching: ``st.cache_resource`` wrappers (shared, read-only: a projection or clustering
of millions of rows is not copied on every rerun, as ``st.cache_data`` would) keyed by
(home, dataset, embedding, embedding file stamp, parameters, label-edit hash); ``_ws`` is
not hashed. A first projection runs outside them (:func:`compute_projection`) to drive
``st.progress`` (a cached function must not update an element created outside it, or
its replay fails); ``project`` stores it in ``ds.projections_dir``, where the cached
wrapper then reads it.

A map of more than :data:`MAP_POINT_CAP` rows draws a stable sample of them (selected
rows and anchors first: :func:`shown_points`) over a density layer of every row
(:func:`map_figure_with_density`); a box or lasso still selects every row inside it
(:func:`ui.cluster_picks.map_selection`).

Rows: the page never holds the rows table. The filter's ids come from the database
(:func:`filter_view`, :func:`view_ids`: cached per rows state and filter), the points are
ids + coordinates + cluster, and the other columns (labels, texts for hover, colourings)
are fetched for the drawn points only (:func:`drawn_rows`). The clustering's summaries
read the label column (kept as categories) and, above :data:`KMEANS_SAMPLE` rows, the
texts of a seeded sample of that many rows (the terms come from at most 5,000 texts per
cluster anyway): :func:`summary_columns`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core._shared import ids_hash
from core.clusters import (
    KMEANS_SAMPLE,
    MAP_POINT_CAP,
    Clustering,
    Projection,
    cluster,
    density_grid,
    display_sample,
    estimate_projection_seconds,
    is_projection_cached,
    project,
    projection_key,
    sample_positions,
)
from core.errors import EmbeddingError
from core.filters import RowFilter
from core.rows import RowsView, effective_rows_columns, needs_quality
from core.workspace import Workspace
from ui import loaders, state
from ui import quality_data as qd
from ui.cluster_map import (
    COLOR_CLUSTER,
    COLOR_ISSUE,
    COLOR_LABEL,
    COLOR_TAG,
    COLOR_CONFIDENCE,
    COLOR_CORRECT,
    COLOR_PREDICTION,
    COLOR_UNIQUE,
    MODEL_COLORINGS,
    COLUMN_PREFIX,
    MAX_GROUPS,
    SCORE_COLORINGS,
    SNIPPET,
    build_map,
    color_options,
    color_values,
    hover_texts,
    map_figure,
    map_points,
    plain,
    with_columns,
)
from ui.cluster_picks import (
    changed,
    cluster_ids,
    cluster_label,
    map_selection,
    pick,
    pick_keys,
    picked,
    render_picks,
    render_relabel,
    rows_of,
    summary_table,
    table_choice,
)

__all__ = [
    "COLOR_CLUSTER", "COLOR_ISSUE", "COLOR_LABEL", "COLOR_TAG", "COLOR_UNIQUE", "COLUMN_PREFIX",
    "COLOR_CONFIDENCE", "COLOR_CORRECT", "COLOR_PREDICTION", "MODEL_COLORINGS",
    "CONFIRM_ABOVE_SECONDS", "MAP_POINT_CAP", "MAX_GROUPS", "METHOD_NAMES", "SCORE_COLORINGS",
    "SNIPPET", "build_map", "changed", "cluster_ids", "cluster_label", "clustering",
    "color_options", "color_values", "compute_projection", "density_layer", "drawn_rows",
    "estimate_text", "filter_view", "first_run_estimate", "hover_texts", "map_figure",
    "map_figure_with_density", "map_points", "map_selection", "pick", "pick_keys", "picked",
    "plain", "points_on_map", "projection", "projection_on_disk", "quality_by_id", "render_picks",
    "render_relabel", "rows_of", "shown_points", "summary_columns", "summary_table",
    "table_choice", "view_ids", "with_columns",
]

METHOD_NAMES = {"umap": "UMAP (cached after the first run)", "pca": "PCA (instant)"}
CONFIRM_ABOVE_SECONDS = 30.0  # ask before a projection estimated to take longer


# ---- projections ---------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _projection_key(home: str, dataset: str, embedding: str, stamp: str, method: str, seed: int,
                    _ws: Workspace) -> str:
    emb = loaders.embedding(_ws, dataset, embedding)
    return projection_key(emb.ids, emb.vectors, method=method, seed=seed,
                          cache_dir=_ws.dataset(dataset).projections_dir)


def projection_on_disk(ws: Workspace, dataset: str, embedding: str, method: str, seed: int) -> bool:
    """True if ``project`` would read this map from ``ds.projections_dir`` (its record is
    there: see core.clusters.cache). The key is computed once per embedding version; the
    memory-mapped vectors are hashed once per file version (by the job that made the map)."""
    cache = ws.dataset(dataset).projections_dir
    if not cache.is_dir() or next(cache.glob("proj-*.json"), None) is None:
        return False  # no map yet: nothing to hash the vectors for (the job that makes one does)
    key = _projection_key(str(ws.home), dataset, embedding, loaders.embedding_stamp(ws, dataset, embedding),
                          method, int(seed), ws)
    return is_projection_cached(key, cache)


def first_run_estimate(n_rows: int, dims: int, method: str) -> float | None:
    """Seconds a cold UMAP projection should take (None for PCA: instant)."""
    return estimate_projection_seconds(n_rows, dims) if method == "umap" else None


def estimate_text(seconds: float) -> str:
    """``"about 27 s"`` / ``"about 4 min"``."""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def compute_projection(ws: Workspace, dataset: str, embedding: str, method: str, seed: int,
                       estimate: float | None = None) -> None:
    """Start (or join) the job that runs ``project`` once and fills the disk cache, and
    draw its progress and estimate; the page stops and fills in when the job ends (every
    tab sees the same job). Raises CatalogError when the job failed."""
    from ui import jobs

    def work(ctx) -> dict:
        emb = loaders.embedding(ws, dataset, embedding)
        ctx.stage(f"placing rows with {method.upper()}")
        project(emb.ids, emb.vectors, method=method, seed=seed,
                cache_dir=ws.dataset(dataset).projections_dir, progress=ctx.progress)
        return {"method": method, "seed": seed, "rows": len(emb.ids)}

    job = jobs.start_unless_failed(ws, dataset, "map", work,
                                   label=f"{method.upper()} map of {dataset} ({embedding})",
                                   params={"embedding": embedding, "method": method, "seed": seed})
    if job.status == "failed":
        raise EmbeddingError(f"the map failed: {job.error}")
    first = f" (the first time takes {estimate_text(estimate)})" if estimate is not None else ""
    jobs.watch_job(ws, job, f"{job.label}{first}")
    st.caption("It runs in the background (see the sidebar); the map appears when it is done "
               "and is read from the cache after that.")


@st.cache_resource(show_spinner="Loading the map…", max_entries=8)
def _projection(home: str, dataset: str, embedding: str, stamp: str, method: str, seed: int,
                _ws: Workspace) -> Projection:
    emb = loaders.embedding(_ws, dataset, embedding)
    return project(emb.ids, emb.vectors, method=method, seed=seed,
                   cache_dir=_ws.dataset(dataset).projections_dir)


def projection(ws: Workspace, dataset: str, embedding: str, method: str, seed: int) -> Projection:
    """The 2-D map of every row of ``embedding`` (cached, shared: never mutate it; from disk
    after the first run)."""
    return _projection(str(ws.home), dataset, embedding, loaders.embedding_stamp(ws, dataset, embedding),
                       method, int(seed), ws)


@st.cache_resource(show_spinner="Clustering…", max_entries=8)
def _clustering(home: str, dataset: str, embedding: str, stamp: str, k: int, seed: int,
                labels: str, _ws: Workspace) -> Clustering:
    emb = loaders.embedding(_ws, dataset, embedding)
    ids = [str(i) for i in emb.ids]
    labels, texts = summary_columns(RowsView(_ws, dataset), ids, seed)
    return cluster(ids, emb.vectors, k=k, seed=seed, labels=labels, texts=texts)


def _column_of(view: RowsView, ids: Sequence[str], column: str) -> pd.Series:
    """``column`` of the rows of ``ids`` (one query), aligned with ``ids`` (None where an
    id has no row)."""
    got = view.rows_of(ids, columns=["id", column])
    if len(got) == len(ids):
        return got[column].reset_index(drop=True)
    return got.set_index(got["id"].astype(str))[column].reindex(list(ids)).reset_index(drop=True)


def summary_columns(view: RowsView, ids: Sequence[str], seed: int, *,
                    text_sample: int = KMEANS_SAMPLE) -> tuple[pd.Categorical | None, list | None]:
    """(labels, texts) aligned with ``ids`` for :func:`core.clusters.cluster`'s summaries,
    queried from ``view``'s rows: every label, as categories (a few distinct strings, not
    one object per row); the texts of every row up to ``text_sample`` rows, else of a
    seeded sample of that many (None elsewhere). None for a column the rows lack."""
    schema = view.schema()
    labels = pd.Categorical(_column_of(view, ids, "label")) if "label" in schema else None
    texts = None
    if "text" in schema:
        if len(ids) <= text_sample:
            texts = _column_of(view, ids, "text").tolist()
        else:
            at = sample_positions(len(ids), text_sample, seed)
            texts = np.full(len(ids), None, dtype=object)
            texts[at] = _column_of(view, [ids[i] for i in at], "text").to_numpy(dtype=object)
            texts = list(texts)
    return labels, texts


def clustering(ws: Workspace, dataset: str, embedding: str, k: int, seed: int) -> Clustering:
    """KMeans (k, seed) of every row of ``embedding`` with label/term summaries (cached,
    shared: never mutate it; recomputed when labels are edited). Raises InputError for k
    outside 2..rows."""
    return _clustering(str(ws.home), dataset, embedding, loaders.embedding_stamp(ws, dataset, embedding),
                       int(k), int(seed), loaders.labels_key(ws, dataset), ws)


def quality_by_id(ws: Workspace, dataset: str, embedding: str) -> pd.DataFrame:
    """Per id (index): label_issue_score, suggested_label, uniqueness. The Catalog's
    cached quality table (:func:`ui.quality_data.quality_table`), scored on the shared kNN
    pass: colouring adds no neighbour search, and a relabel rescores the labels on the
    cached neighbours. Raises InputError (< 2 rows)."""
    return qd.quality_table(ws, dataset, embedding).set_index("id")


# ---- the rows: the filter's ids, the columns of the drawn points ------------------------
def filter_view(ws: Workspace, dataset: str, embedding: str, flt: RowFilter) -> RowsView:
    """The rows passing ``flt`` as a :class:`core.rows.RowsView` (the quality columns of
    ``embedding`` joined only when ``flt`` filters on one; a condition on a column the rows
    lack is dropped with a warning naming it: :func:`ui.filter_panel.catalog_view`)."""
    from ui.filter_panel import catalog_view

    quality = needs_quality(flt, effective_rows_columns(ws, dataset))
    return catalog_view(ws, dataset, embedding if quality else None, flt)


@st.cache_resource(show_spinner="Finding the filtered rows…", max_entries=8)
def _view_ids(home: str, dataset: str, view_key: str, flt_key: str, _view: RowsView) -> list[str]:
    return _view.ids()


def view_ids(ws: Workspace, dataset: str, view: RowsView) -> list[str]:
    """The ids of ``view`` in row order (one query; cached per rows state and filter, shared:
    never mutate; a tag or slice filter is asked each run)."""
    if not view.cacheable:
        return view.ids()
    return _view_ids(str(ws.home), dataset, str(view.state_key), ids_hash([repr(view.flt.to_json())]), view)


@st.cache_resource(show_spinner="Placing the filtered rows on the map…", max_entries=4)
def _points(home: str, dataset: str, view_key: str, flt_key: str, embedding: str, stamp: str,
            method: str, seed: int, k: int, labels: str, _ids: list[str], _proj: Projection,
            _clu: Clustering) -> pd.DataFrame:
    return map_points(_ids, _proj, _clu)


def points_on_map(ws: Workspace, dataset: str, embedding: str, view: RowsView, ids: list[str],
                  proj: Projection, clu: Clustering, k: int, seed: int) -> pd.DataFrame:
    """:func:`map_points` of the filter's ``ids`` (from :func:`view_ids`), cached per rows
    state, filter, map (``proj``) and clustering (``clu``, ``k`` and ``seed`` as passed to
    :func:`projection` and :func:`clustering`) (shared: never mutate; 10M rows take seconds to
    match by id, so a click on the map must not redo it)."""
    if not view.cacheable:
        return map_points(ids, proj, clu)
    return _points(str(ws.home), dataset, str(view.state_key), ids_hash([repr(view.flt.to_json())]), embedding,
                   loaders.embedding_stamp(ws, dataset, embedding), proj.method, int(seed), int(k),
                   loaders.labels_key(ws, dataset), ids, proj, clu)


def drawn_rows(view: RowsView, shown: pd.DataFrame) -> pd.DataFrame:
    """``shown`` (the drawn points: id, x, y, cluster) with every column of their rows,
    fetched in one query: hover texts, colourings."""
    joined = set(view.quality.column_names if view.quality is not None else ()) - {"id"}
    columns = [c for c in view.schema() if c not in joined]  # the rows' own columns
    return with_columns(shown, view.rows_of(shown["id"].astype(str).tolist(), columns=columns))


# ---- large maps: a sample of points over the density of every row -----------------------------
def shown_points(points: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The rows of ``points`` to draw: all of them up to :data:`MAP_POINT_CAP`, else that
    many (the selected rows and anchors first, then a sample stable across reruns and
    filters: :func:`core.clusters.display_sample`), in ``points`` order."""
    if len(points) <= MAP_POINT_CAP:
        return points
    keep = [*state.selection(dataset), *state.anchors(dataset)]
    drawn = display_sample(points["id"].to_numpy(), MAP_POINT_CAP, always=keep)
    return points.iloc[drawn].reset_index(drop=True)


def density_layer(points: pd.DataFrame) -> go.Heatmap:
    """A grey heatmap of how many rows of ``points`` (columns x, y) fall in each map cell
    (log scale; empty cells transparent), drawn under the sampled points."""
    grid = density_grid(points[["x", "y"]].to_numpy())
    shade = np.where(grid.counts > 0, np.log10(np.maximum(grid.counts, 1)) + 1.0, np.nan)
    return go.Heatmap(x=grid.x, y=grid.y, z=shade, colorscale="Greys", showscale=False,
                      opacity=0.45, hoverinfo="skip", name="all rows (density)", zsmooth=False)


def map_figure_with_density(points: pd.DataFrame, shown: pd.DataFrame, values: pd.Series,
                            title: str) -> tuple[go.Figure, list[list[str]]]:
    """:func:`map_figure` of the ``shown`` points coloured by ``values``; when they are a
    sample of ``points``, with :func:`density_layer` of every row under them as trace 0
    (its ids list is empty, so click selections still map to rows)."""
    fig, trace_ids = map_figure(shown, values, title)
    if len(shown) == len(points):
        return fig, trace_ids
    layered = go.Figure(data=[density_layer(points), *fig.data], layout=fig.layout)
    return layered, [[], *trace_ids]
