"""Cluster map capability: 2-D projections (UMAP / PCA, cached on disk), KMeans clusters
and their summaries, what the browser draws of a large map, and map selections back to
row ids.

The front door of the internal modules, one per feature; import from here:

- :mod:`core.clusters.projection`: :func:`project`, :func:`projection_key`,
  :class:`Projection`, :func:`estimate_projection_seconds` (small and large maps, rows
  added later).
- :mod:`core.clusters.cache`: the projection cache on disk, :func:`vectors_hash`,
  :func:`is_projection_cached`.
- :mod:`core.clusters.models`: fitting PCA / UMAP and placing rows with them (the
  ``fit_model`` / ``transform_rows`` / ``place_chunk`` test hooks).
- :mod:`core.clusters.placement`: :class:`NeighbourPlacer` (rows of a large UMAP map
  placed by their neighbours among the fitted sample), chunks saved for resuming.
- :mod:`core.clusters.kmeans`: :func:`cluster`, :class:`Clustering`, :class:`ClusterSummary`,
  :func:`cluster_rows` and :func:`assign_rows` (KMeans fitted on a sample, every row
  assigned in chunks).
- :mod:`core.clusters.display`: :func:`display_sample`, :func:`density_grid`.
- :mod:`core.clusters.plot_selection`: :func:`selection_to_ids`, :func:`regions_from_event`,
  :func:`rows_in_regions`, :class:`Region`.
"""

from __future__ import annotations

from core.clusters.cache import is_projection_cached, vectors_hash
from core.clusters.display import (
    DENSITY_BINS,
    MAP_POINT_CAP,
    DensityGrid,
    density_grid,
    display_sample,
)
from core.clusters.kmeans import (
    ASSIGN_CHUNK,
    KMEANS_SAMPLE,
    N_REPRESENTATIVES,
    N_TOP_TERMS,
    Clustering,
    ClusterSummary,
    KMeansFit,
    RowClusters,
    assign_rows,
    cluster,
    cluster_rows,
    distinct_rows,
    fit_kmeans,
    members_by_cluster,
)
from core.clusters.models import TRANSFORM_BATCH
from core.clusters.placement import NeighbourPlacer
from core.clusters.plot_selection import (
    REGION_KINDS,
    Region,
    regions_from_event,
    rows_in_regions,
    selection_to_ids,
)
from core.clusters.projection import (
    PCA_ABOVE,
    PCA_DIMS,
    PLACE_ABOVE,
    PLACE_CHUNK,
    PROJECTION_METHODS,
    SAMPLE_THRESHOLD,
    ProgressFn,
    Projection,
    estimate_projection_seconds,
    project,
    projection_key,
    sample_positions,
)

__all__ = [
    "ASSIGN_CHUNK", "DENSITY_BINS", "KMEANS_SAMPLE", "MAP_POINT_CAP", "N_REPRESENTATIVES",
    "N_TOP_TERMS", "PCA_ABOVE", "PCA_DIMS", "PLACE_ABOVE", "PLACE_CHUNK", "PROJECTION_METHODS",
    "REGION_KINDS", "SAMPLE_THRESHOLD", "TRANSFORM_BATCH", "ClusterSummary", "Clustering",
    "DensityGrid", "KMeansFit", "NeighbourPlacer", "ProgressFn", "Projection", "Region",
    "RowClusters", "assign_rows", "cluster", "cluster_rows", "density_grid", "display_sample",
    "distinct_rows", "estimate_projection_seconds", "fit_kmeans", "is_projection_cached",
    "members_by_cluster", "project", "projection_key", "regions_from_event", "rows_in_regions",
    "sample_positions", "selection_to_ids", "vectors_hash",
]
