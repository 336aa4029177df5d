"""Predictions kept beside a dataset, one folder per model, never in the source or rows table.

``datasets/<name>/predictions/<model>/``: ``meta.json`` (format, model, classes, rows,
has_probs, source file and columns, created), ``predictions.parquet`` (``id``,
``predicted``, ``score``) and ``probs.npy`` ((n, C) float32, rows in the parquet's order).
A model's folder is written whole in a temp folder and swapped in, so a failed import
leaves the previous predictions as they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import atomic
from core._shared import now_iso
from core.errors import AlreadyExistsError, IndexStateError, NotFoundError, format_list
from core.predictions.checks import Predictions, build_predictions
from core.predictions.tables import PredictionColumns, read_prediction_table

if TYPE_CHECKING:
    from core.workspace import Dataset, Workspace

log = logging.getLogger(__name__)

FORMAT = 1
PREDICTIONS_DIR = "predictions"


def predictions_dir(ds: Dataset) -> Path:
    return ds.path / PREDICTIONS_DIR


def model_names(ds: Dataset) -> list[str]:
    """The models with stored predictions for ``ds``, sorted."""
    root = predictions_dir(ds)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "meta.json").is_file())


def _model_dir(ds: Dataset, model: str) -> Path:
    from core.workspace import check_name

    return predictions_dir(ds) / check_name(model, "model")


def save_predictions(ds: Dataset, preds: Predictions, *, replace: bool = False,
                     source: str | None = None, columns: tuple[str, ...] = ()) -> Path:
    """Write ``preds`` as model ``preds.model`` of ``ds`` (atomically); returns its folder.
    Raises AlreadyExistsError if the model has predictions and not ``replace``."""
    target = _model_dir(ds, preds.model)
    if target.exists() and not replace:
        raise AlreadyExistsError(f"model {preds.model!r} already has predictions for {ds.name!r}; "
                                 "pass --replace (replace=True) to overwrite them")
    with atomic.atomic_dir(target) as tmp:
        table = pa.table({"id": pa.array(preds.ids.tolist(), pa.string()),
                          "predicted": pa.array(preds.predicted_labels.tolist(), pa.string()),
                          "score": pa.array(preds.score, pa.float32())})
        pq.write_table(table, tmp / "predictions.parquet")
        np.save(tmp / "probs.npy", np.ascontiguousarray(preds.probs, dtype=np.float32))
        atomic.write_json(tmp / "meta.json", {
            "format": FORMAT, "model": preds.model, "classes": list(preds.classes), "rows": len(preds),
            "has_probs": preds.has_probs, "source": source, "columns": list(columns), "created": now_iso()})
    return target


def load_predictions(ds: Dataset, model: str) -> Predictions:
    """Model ``model``'s stored predictions (probabilities memory-mapped).
    Raises NotFoundError (no such model, naming the stored ones), IndexStateError (files damaged)."""
    folder = _model_dir(ds, model)
    if not (folder / "meta.json").is_file():
        stored = model_names(ds)
        raise NotFoundError(f"no predictions of model {model!r} for {ds.name!r}; "
                            + (f"models: {format_list(stored)}" if stored else
                               "import some with catalog import-predictions"))
    meta = atomic.read_json(folder / "meta.json")
    try:
        table = pq.read_table(folder / "predictions.parquet")
        probs = np.load(folder / "probs.npy", mmap_mode="r")
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise IndexStateError(f"the predictions of model {model!r} in {folder} are damaged ({exc}); "
                              "import them again with --replace") from None
    classes = tuple(meta["classes"])
    if probs.shape != (table.num_rows, len(classes)):
        raise IndexStateError(f"the predictions of model {model!r} in {folder} disagree in size "
                              f"({probs.shape} vs {table.num_rows} rows, {len(classes)} classes); import them again")
    names = table.column("predicted").to_pandas()
    codes = pd.Index(classes).get_indexer(names.astype(str))
    return Predictions(model=str(meta["model"]), ids=np.asarray(table.column("id").to_pylist(), dtype=object),
                       classes=classes, probs=probs, predicted=codes.astype(np.int64),
                       score=table.column("score").to_numpy(zero_copy_only=False).astype(np.float32),
                       has_probs=bool(meta.get("has_probs", True)))


def predictions_meta(ds: Dataset, model: str) -> dict:
    """``meta.json`` of a model's predictions (NotFoundError as :func:`load_predictions`)."""
    folder = _model_dir(ds, model)
    if not (folder / "meta.json").is_file():
        load_predictions(ds, model)  # raises the NotFoundError naming the models
    return atomic.read_json(folder / "meta.json")


@dataclass(frozen=True)
class PredictionsReport:
    """What an import stored: ``rows`` predictions of ``model`` over ``classes``;
    ``uncovered`` dataset rows without one."""

    dataset: str
    model: str
    rows: int
    classes: tuple[str, ...]
    has_probs: bool
    uncovered: int
    replaced: bool

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "model": self.model, "rows": self.rows,
                "classes": list(self.classes), "has_probs": self.has_probs,
                "rows_without_prediction": self.uncovered, "replaced": self.replaced}

    def summary(self) -> str:
        kind = "probabilities" if self.has_probs else "predicted labels"
        return (f"stored {self.rows:,} predictions ({kind}, {len(self.classes)} classes) of model "
                f"{self.model!r} for {self.dataset!r}" + (" (replaced)" if self.replaced else "")
                + (f"; {self.uncovered:,} rows have no prediction" if self.uncovered else ""))


def _label_classes(ws: Workspace, dataset: str) -> tuple[list[str], list[str]]:
    """(row ids, the classes the effective labels use: ingested labels of rows without a
    live edit, plus every edited label), reading two columns of the rows table."""
    ds = ws.dataset(dataset)
    names = pq.read_schema(ds.rows_path).names
    table = pq.read_table(ds.rows_path, columns=[c for c in ("id", "label") if c in names])
    ids = [str(i) for i in table.column("id").to_pylist()]
    edits = ws.store.label_overrides(dataset)
    labels = table.column("label").to_pylist() if "label" in names else [None] * len(ids)
    used = {str(v).strip() for i, v in zip(ids, labels) if i not in edits and v is not None}
    used |= {str(v).strip() for v in edits.values() if v is not None}
    return ids, sorted(c for c in used if c)


def import_predictions(ws: Workspace, dataset: str, source: str, model: str, *,
                       columns: PredictionColumns = PredictionColumns(), id_col: str | None = None,
                       replace: bool = False) -> PredictionsReport:
    """Read model ``model``'s predictions for rows of ``dataset`` from the table ``source``
    (matched by id; see :func:`~core.predictions.tables.read_prediction_table`), check them
    against the dataset (ids, the classes its labels use, label edits included) and store them.

    Raises NotFoundError (dataset or file), AlreadyExistsError (the model has predictions and
    not ``replace``), InputError / SchemaError (see :func:`build_predictions`); nothing is
    written when it raises.
    """
    from core.workspace import check_name

    check_name(model, "model")
    ds = ws.dataset(dataset)
    existed = _model_dir(ds, model).exists()
    if existed and not replace:
        raise AlreadyExistsError(f"model {model!r} already has predictions for {dataset!r}; "
                                 "pass --replace (replace=True) to overwrite them")
    row_ids, classes = _label_classes(ws, dataset)
    table = read_prediction_table(source, columns, id_col=id_col, label_classes=classes)
    preds = build_predictions(model, table.ids, probs=table.probs, classes=table.classes,
                              predicted=table.predicted, score=table.score, label_classes=classes,
                              known_ids=row_ids, dataset=dataset)
    save_predictions(ds, preds, replace=replace, source=str(source), columns=table.columns)
    log.info("stored %d predictions of %s for %s", len(preds), model, dataset)
    return PredictionsReport(dataset, model, len(preds), preds.classes, preds.has_probs,
                             len(row_ids) - len(preds), existed)
