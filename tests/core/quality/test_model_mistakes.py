"""Model mistakes and the confusion matrix, against the effective labels."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError, NotFoundError
from core.predictions import build_predictions
from core.quality import confusion_matrix, model_mistakes


@pytest.fixture
def preds():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.45, 0.55], [0.05, 0.95], [0.8, 0.2]])
    return build_predictions("m", ["a", "b", "c", "d", "e"], probs=probs, classes=["cat", "dog"])


LABELS = {"a": "cat", "b": "cat", "c": "cat", "d": "cat", "e": None, "f": "dog"}


def test_confident_disagreements_come_most_confident_first(preds):
    found = model_mistakes(LABELS, preds)
    assert found.ids == ("d", "b", "c") and found.predicted == ("dog",) * 3
    np.testing.assert_allclose(found.confidence, [0.95, 0.7, 0.55], atol=1e-6)
    assert found.compared == 4  # e has no label, f no prediction
    assert model_mistakes(LABELS, preds, min_confidence=0.6).ids == ("d", "b")
    row = found.to_json(1)["rows"][0]
    assert row == {"id": "d", "label": "cat", "predicted": "dog", "confidence": 0.95,
                   "label_probability": 0.05}
    with pytest.raises(InputError, match="outside 0-1"):
        model_mistakes(LABELS, preds, min_confidence=2)


def test_confusion_matrix_cells_list_their_rows(preds):
    cm = confusion_matrix({**LABELS, "a": "dog"}, preds)
    assert cm.classes == ("cat", "dog")
    assert cm.counts.tolist() == [[0, 3], [1, 0]]
    assert cm.rows_in("cat", "dog") == ["b", "c", "d"] and cm.rows_in("dog", "cat") == ["a"]
    assert cm.accuracy == 0.0
    with pytest.raises(NotFoundError, match="'cow'"):
        cm.rows_in("cow", "dog")


def test_a_label_the_model_never_predicts_gets_its_own_row_of_the_matrix(preds):
    cm = confusion_matrix({"a": "bird", "b": "dog"}, preds)
    assert cm.classes == ("bird", "cat", "dog")
    assert cm.rows_in("bird", "cat") == ["a"] and cm.rows_in("dog", "dog") == ["b"]
