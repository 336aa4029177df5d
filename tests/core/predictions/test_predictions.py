"""Predictions as data: import by id, ingest columns, bad input refused with nothing changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import AlreadyExistsError, InputError, NotFoundError, SchemaError
from core.ingest import ingest
from core.predictions import (
    PredictionColumns,
    build_predictions,
    import_predictions,
    load_predictions,
    model_names,
)
from tests.conftest import tree_hash


@pytest.fixture
def pets(ws, tmp_path):
    csv = tmp_path / "pets.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["w", "x", "y", "z"],
                  "label": ["cat", "dog", "dog", "cat"]}).to_csv(csv, index=False)
    ingest(ws, csv, "pets")
    return ws


def write(tmp_path, name: str, frame: pd.DataFrame) -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def test_probabilities_round_trip_by_id_whatever_the_file_order(pets, tmp_path):
    frame = pd.DataFrame({"id": ["c", "a", "d"], "p_dog": [0.7, 0.2, 0.45], "p_cat": [0.3, 0.8, 0.55]})
    report = import_predictions(pets, "pets", write(tmp_path, "p.csv", frame), "vit",
                                columns=PredictionColumns(probs_col="p_*"))
    assert (report.rows, report.classes, report.uncovered) == (3, ("cat", "dog"), 1)
    preds = load_predictions(pets.dataset("pets"), "vit")
    probs, has = preds.aligned(["a", "b", "c", "d"], ["cat", "dog"])
    assert has.tolist() == [True, False, True, True]
    np.testing.assert_allclose(probs, [[0.8, 0.2], [0, 0], [0.3, 0.7], [0.55, 0.45]], atol=1e-6)
    assert preds.predicted_labels.tolist() == ["dog", "cat", "cat"]  # c, a, d in file order
    np.testing.assert_allclose(preds.score, [0.7, 0.8, 0.55], atol=1e-6)
    # the rows table is untouched: no prediction column in it
    assert "p_dog" not in pets.dataset("pets").rows().columns


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_a_list_column_is_in_the_order_of_the_sorted_labels(pets, tmp_path, suffix):
    frame = pd.DataFrame({"id": ["a", "b"], "probs": [[0.9, 0.1], [0.25, 0.75]]})
    import_predictions(pets, "pets", write(tmp_path, f"p.{suffix}", frame), "m")
    preds = load_predictions(pets.dataset("pets"), "m")
    assert preds.classes == ("cat", "dog")
    assert preds.predicted_labels.tolist() == ["cat", "dog"]


def test_a_predicted_label_with_a_score_makes_probabilities(pets, tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "prediction": ["dog", "dog"], "confidence": [0.9, 0.6]})
    import_predictions(pets, "pets", write(tmp_path, "p.csv", frame), "m")
    preds = load_predictions(pets.dataset("pets"), "m")
    assert not preds.has_probs
    np.testing.assert_allclose(preds.probs, [[0.1, 0.9], [0.4, 0.6]], atol=1e-6)


def test_several_models_are_kept_side_by_side(pets, tmp_path):
    for model, p in (("a-model", 0.9), ("b-model", 0.2)):
        frame = pd.DataFrame({"id": ["a"], "p_cat": [p], "p_dog": [1 - p]})
        import_predictions(pets, "pets", write(tmp_path, f"{model}.csv", frame), model,
                           columns=PredictionColumns(probs_col="p_*"))
    ds = pets.dataset("pets")
    assert model_names(ds) == ["a-model", "b-model"]
    assert load_predictions(ds, "b-model").predicted_labels.tolist() == ["dog"]
    with pytest.raises(AlreadyExistsError, match="--replace"):
        import_predictions(pets, "pets", str(tmp_path / "a-model.csv"), "a-model",
                           columns=PredictionColumns(probs_col="p_*"))
    with pytest.raises(NotFoundError, match="a-model"):
        load_predictions(ds, "c-model")


@pytest.mark.parametrize("frame, columns, error, mentions", [
    (pd.DataFrame({"id": ["a", "b"], "p_cat": [0.5, 0.9], "p_dog": [0.2, 0.1]}), "p_*", InputError,
     "'a' sums to 0.700"),
    (pd.DataFrame({"id": ["a", "b"], "p_cat": [np.nan, 0.9], "p_dog": [0.5, 0.1]}), "p_*", InputError, "'a'"),
    (pd.DataFrame({"id": ["a", "b"], "p_cat": [0.5, 0.9], "p_cow": [0.5, 0.1]}), "p_*", SchemaError, "'cow'"),
    (pd.DataFrame({"id": ["a", "zz", "yy"], "p_cat": [0.5, 0.9, 1], "p_dog": [0.5, 0.1, 0]}), "p_*",
     SchemaError, "'zz', 'yy'"),
    (pd.DataFrame({"id": ["a", "a"], "p_cat": [0.5, 0.9], "p_dog": [0.5, 0.1]}), "p_*", SchemaError,
     "duplicate ids"),
    (pd.DataFrame({"id": ["a"], "prediction": ["horse"]}), None, SchemaError, "'horse'"),
    (pd.DataFrame({"id": ["a"], "p_cat": [1.0]}), "q_*", SchemaError, "no probability columns"),
    (pd.DataFrame({"name": ["a"], "prediction": ["cat"]}), None, SchemaError, "no 'id' column"),
])
def test_bad_predictions_are_refused_and_nothing_changes(pets, tmp_path, frame, columns, error, mentions):
    import_predictions(pets, "pets", write(tmp_path, "good.csv", pd.DataFrame(
        {"id": ["a"], "prediction": ["cat"]})), "m")
    before = tree_hash(pets.home)
    with pytest.raises(error, match=mentions.replace("(", r"\(")):
        import_predictions(pets, "pets", write(tmp_path, "bad.csv", frame), "m", replace=True,
                           columns=PredictionColumns(probs_col=columns))
    assert tree_hash(pets.home) == before
    assert load_predictions(pets.dataset("pets"), "m").predicted_labels.tolist() == ["cat"]


def test_ingest_stores_prediction_columns_as_predictions_not_metadata(ws, tmp_path):
    frame = pd.DataFrame({"id": [1, 2, 3], "text": ["a", "b", "c"], "label": ["x", "y", "y"],
                          "pred": ["y", "y", "x"], "conf": [0.8, 0.9, 0.7], "colour": ["r", "g", "b"]})
    ingest(ws, write(tmp_path, "t.csv", frame), "t",
           predictions=PredictionColumns(pred_col="pred", score_col="conf"), model="bert")
    ds = ws.dataset("t")
    assert set(ds.rows().columns) >= {"colour"} and not {"pred", "conf"} & set(ds.rows().columns)
    preds = load_predictions(ds, "bert")
    assert preds.ids.tolist() == ["1", "2", "3"]
    assert preds.predicted_labels.tolist() == ["y", "y", "x"]


def test_ingest_with_bad_prediction_columns_writes_no_dataset(ws, tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["a", "b"], "label": ["x", "y"],
                          "p_x": [0.5, 0.5], "p_y": [0.9, 0.5]})
    before = tree_hash(ws.home)
    with pytest.raises(InputError, match="'a' sums to 1.400"):
        ingest(ws, write(tmp_path, "t.csv", frame), "t", predictions=PredictionColumns(probs_col="p_*"))
    assert tree_hash(ws.home) == before and not ws.has_dataset("t")


def test_build_predictions_needs_something_to_predict():
    with pytest.raises(InputError, match="probabilities or a predicted label"):
        build_predictions("m", ["a"])
    with pytest.raises(InputError, match="shape"):
        build_predictions("m", ["a", "b"], probs=np.ones((3, 2)) / 2, classes=["x", "y"])
    with pytest.raises(InputError, match="scores must be numbers in 0-1"):
        build_predictions("m", ["a"], predicted=["x"], score=[1.5])
