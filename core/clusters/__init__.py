"""Cluster map capability: 2-D projections (UMAP / PCA, cached on disk), KMeans clusters
and their summaries, and plotly selections back to row ids.

The front door of three internal modules, one per feature; import from here:

- :mod:`core.clusters.projection`: :func:`project`, :class:`Projection`,
  :func:`vectors_hash`, :func:`estimate_projection_seconds` (cache layout, the
  ``_fit_model`` / ``_transform_rows`` test hooks).
- :mod:`core.clusters.kmeans`: :func:`cluster`, :class:`Clustering`, :class:`ClusterSummary`.
- :mod:`core.clusters.plot_selection`: :func:`selection_to_ids`.
"""

from __future__ import annotations

from core.clusters.kmeans import (
    N_REPRESENTATIVES,
    N_TOP_TERMS,
    Clustering,
    ClusterSummary,
    KMeansFit,
    cluster,
    distinct_rows,
    fit_kmeans,
)
from core.clusters.plot_selection import selection_to_ids
from core.clusters.projection import (
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

__all__ = [
    "N_REPRESENTATIVES", "N_TOP_TERMS", "PCA_ABOVE", "PCA_DIMS", "PROJECTION_METHODS",
    "SAMPLE_THRESHOLD", "TRANSFORM_BATCH", "ClusterSummary", "Clustering", "ProgressFn",
    "Projection", "KMeansFit", "cluster", "distinct_rows", "fit_kmeans", "estimate_projection_seconds", "project", "selection_to_ids",
    "vectors_hash",
]
