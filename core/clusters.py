"""Cluster map capability: 2-D projections (UMAP / PCA, cached on disk), KMeans clusters
and their summaries, and plotly selections back to row ids.

The front door of three internal modules, one per feature; import from here:

- :mod:`core.clusters_projection`: :func:`project`, :class:`Projection`,
  :func:`vectors_hash`, :func:`estimate_projection_seconds` (cache layout, the
  ``_fit_model`` / ``_transform_rows`` test hooks).
- :mod:`core.clusters_kmeans`: :func:`cluster`, :class:`Clustering`, :class:`ClusterSummary`.
- :mod:`core.clusters_selection`: :func:`selection_to_ids`.
"""

from __future__ import annotations

from core.clusters_kmeans import (
    N_REPRESENTATIVES,
    N_TOP_TERMS,
    Clustering,
    ClusterSummary,
    cluster,
)
from core.clusters_projection import (
    PCA_ABOVE,
    PCA_DIMS,
    PROJECTION_METHODS,
    SAMPLE_THRESHOLD,
    TRANSFORM_BATCH,
    ProgressFn,
    Projection,
    estimate_projection_seconds,
    project,
    vectors_hash,
)
from core.clusters_selection import selection_to_ids

__all__ = [
    "N_REPRESENTATIVES", "N_TOP_TERMS", "PCA_ABOVE", "PCA_DIMS", "PROJECTION_METHODS",
    "SAMPLE_THRESHOLD", "TRANSFORM_BATCH", "ClusterSummary", "Clustering", "ProgressFn",
    "Projection", "cluster", "estimate_projection_seconds", "project", "selection_to_ids",
    "vectors_hash",
]
