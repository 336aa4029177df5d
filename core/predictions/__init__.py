"""Model predictions as data: per-class probabilities (or a predicted label and its
confidence) of one or more models for a dataset's rows, matched by id and kept beside the
dataset like label edits (``datasets/<name>/predictions/<model>/``), never in the source.

- :mod:`core.predictions.checks`: :class:`Predictions` and :func:`build_predictions`, the
  checks every import passes (ids, NaN, sums, classes the labels use).
- :mod:`core.predictions.tables`: :class:`PredictionColumns` and
  :func:`read_prediction_table`, prediction columns read from CSV, Parquet or JSONL.
- :mod:`core.predictions.store`: :func:`import_predictions` (``catalog import-predictions``),
  :func:`save_predictions`, :func:`load_predictions`, :func:`model_names`.

Ingest reads prediction columns of the table it ingests the same way (``--pred-col``,
``--pred-score-col``, ``--probs-col``).
"""

from __future__ import annotations

from core.predictions.checks import SUM_TOLERANCE, Predictions, build_predictions, keep_rows
from core.predictions.store import (
    PREDICTIONS_DIR,
    PredictionsReport,
    import_predictions,
    load_predictions,
    model_names,
    predictions_meta,
    save_predictions,
)
from core.predictions.tables import PredictionColumns, PredictionTable, read_prediction_table

DEFAULT_MODEL = "model"  # the model name of predictions ingested with the rows

__all__ = [
    "DEFAULT_MODEL",
    "PREDICTIONS_DIR",
    "SUM_TOLERANCE",
    "PredictionColumns",
    "PredictionTable",
    "Predictions",
    "PredictionsReport",
    "build_predictions",
    "import_predictions",
    "keep_rows",
    "load_predictions",
    "model_names",
    "predictions_meta",
    "read_prediction_table",
    "save_predictions",
]
