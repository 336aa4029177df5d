"""Data quality from neighbours: label issues, near-duplicates, outliers.

- :mod:`core.quality.knn`: one batched kNN pass over an index (:func:`nearest_neighbours`)
  that every score below can share; :func:`neighbours_of` reads a few rows' neighbours
  back from it (why a row was flagged).
- :mod:`core.quality.label_issues`: :func:`find_label_issues`, :func:`score_outliers`,
  :func:`quality_columns` (both scores per row from one pass).
- :mod:`core.quality.bulk`: the stored pass (:func:`compute_neighbours`: chunked,
  resumable, memory-mapped; :func:`load_neighbours`), list by list for ivf indexes
  (:mod:`core.quality.lists`).
- :mod:`core.quality.duplicates`: :func:`find_near_duplicates` (pairs and groups),
  :func:`closest_partners` (each row's most similar duplicate).
- :mod:`core.quality.confident`: confident learning over a model's out-of-sample
  probabilities (:func:`confident_learning`, :func:`label_quality_scores`; Northcutt et
  al., JAIR 2021, implemented here: cleanlab is AGPL and stays a dev-only comparison).
- :mod:`core.quality.label_scores`: the array maths of the scores (neighbour votes,
  per-class calibration, combination, margins).
- :mod:`core.quality.sources`: label issues by source, neighbours, model or combined
  (:func:`rank_label_issues`, :func:`choose_source`, :func:`model_evidence`).
- :mod:`core.quality.model_mistakes`: a model's confident disagreements with the labels
  (:func:`model_mistakes`) and the confusion matrix (:func:`confusion_matrix`).
"""

from __future__ import annotations

from core.quality.bulk import compute_neighbours, load_neighbours, stored_pass_file
from core.quality.confident import METHODS as CONFIDENT_METHODS
from core.quality.confident import RANKINGS as CONFIDENT_RANKINGS
from core.quality.confident import ConfidentLearning, confident_learning, label_quality_scores
from core.quality.duplicates import (
    DEFAULT_DUPLICATE_THRESHOLD,
    DuplicateGroup,
    Duplicates,
    closest_partners,
    find_near_duplicates,
)
from core.quality.knn import (
    DUPLICATE_CANDIDATES,
    IN_MEMORY_MAX_ROWS,
    Neighbours,
    nearest_neighbours,
    neighbours_of,
)
from core.quality.label_issues import (
    DEFAULT_K,
    OUTLIER_K,
    QUALITY_COLUMNS,
    LabelIssues,
    OutlierScores,
    auto_k,
    find_label_issues,
    pass_width,
    quality_columns,
    score_outliers,
)
from core.quality.lists import TARGET_RECALL
from core.quality.model_mistakes import (
    DEFAULT_MIN_CONFIDENCE,
    Confusion,
    ModelMistakes,
    confusion_matrix,
    model_mistakes,
)
from core.quality.sources import SOURCES, choose_source, model_evidence, rank_label_issues

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "SOURCES",
    "Confusion",
    "ModelMistakes",
    "choose_source",
    "confusion_matrix",
    "model_evidence",
    "model_mistakes",
    "rank_label_issues",
    "CONFIDENT_METHODS",
    "CONFIDENT_RANKINGS",
    "ConfidentLearning",
    "confident_learning",
    "label_quality_scores",
    "DEFAULT_DUPLICATE_THRESHOLD",
    "DEFAULT_K",
    "OUTLIER_K",
    "auto_k",
    "pass_width",
    "DUPLICATE_CANDIDATES",
    "IN_MEMORY_MAX_ROWS",
    "QUALITY_COLUMNS",
    "TARGET_RECALL",
    "DuplicateGroup",
    "Duplicates",
    "LabelIssues",
    "Neighbours",
    "OutlierScores",
    "closest_partners",
    "compute_neighbours",
    "find_label_issues",
    "find_near_duplicates",
    "load_neighbours",
    "nearest_neighbours",
    "neighbours_of",
    "quality_columns",
    "score_outliers",
    "stored_pass_file",
]
