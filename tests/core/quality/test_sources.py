"""Label issues by source: neighbours, a model's predictions, both combined."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError, NotFoundError
from core.index import build_index
from core.predictions import build_predictions
from core.quality import choose_source, model_evidence, rank_label_issues
from tests.helpers.planted import CLASSES, add_planted_dataset, planted


def _index(data):
    return build_index(data.vectors / np.linalg.norm(data.vectors, axis=1, keepdims=True), data.ids)


def _found(data, source: str) -> int:
    preds = build_predictions("m", data.ids, probs=data.probs, classes=CLASSES)
    issues = rank_label_issues(_index(data), dict(zip(data.ids, data.noisy)), source=source, predictions=preds)
    return sum(i in data.flipped for i in issues.ids[:len(data.flipped)])


def test_combined_finds_more_flipped_labels_than_either_source_alone():
    found = {s: sum(_found(planted(seed=seed), s) for seed in range(5))
             for s in ("neighbours", "model", "combined")}
    assert found["combined"] > max(found["neighbours"], found["model"]), found
    assert found["combined"] >= 0.7 * 5 * 24, found  # 24 flips per seed


def test_the_model_source_needs_no_embedding_and_marks_what_confident_learning_flags():
    data = planted(seed=1)
    preds = build_predictions("m", data.ids, probs=data.probs, classes=CLASSES)
    issues = rank_label_issues(None, dict(zip(data.ids, data.noisy)), source="model", predictions=preds)
    assert len(issues) == len(data.ids) and issues.neighbour_scores is None
    top = issues.top(10)
    assert all("model" in top.flagged_by(i) for i in range(10))
    payload = top.to_json()
    assert payload["source"] == "model" and payload["model"] == "m"
    assert payload["issues"][0]["neighbour_score"] is None and payload["issues"][0]["model_score"] > 0.5


def test_combined_scores_rows_without_a_prediction_by_their_neighbours():
    data = planted(seed=2)
    half = len(data.ids) // 2
    preds = build_predictions("m", data.ids[:half], probs=data.probs[:half], classes=CLASSES)
    issues = rank_label_issues(_index(data), dict(zip(data.ids, data.noisy)), source="combined", predictions=preds)
    assert set(issues.ids) == set(data.ids)
    later = [i for i, rid in enumerate(issues.ids) if rid in set(data.ids[half:])]
    assert all(np.isnan(issues.model_scores[i]) for i in later)
    assert all(issues.scores[i] == pytest.approx(issues.neighbour_scores[i]) for i in later)


def test_sources_need_what_they_read():
    data = planted(seed=0)
    labels = dict(zip(data.ids, data.noisy))
    with pytest.raises(InputError, match="needs a model's predictions"):
        rank_label_issues(_index(data), labels, source="combined")
    with pytest.raises(InputError, match="needs an embedding"):
        rank_label_issues(None, labels, source="neighbours")
    with pytest.raises(InputError, match="choose one of neighbours, model, combined"):
        rank_label_issues(_index(data), labels, source="votes")


def test_model_evidence_lists_the_most_probable_classes():
    preds = build_predictions("m", ["a", "b"], probs=np.array([[0.1, 0.7, 0.2], [1.0, 0.0, 0.0]]),
                              classes=["x", "y", "z"])
    a, b, c = model_evidence(preds, ["a", "b", "nope"])
    assert [name for name, _ in a] == ["y", "z", "x"] and a[0][1] == pytest.approx(0.7)
    assert b == (("x", 1.0),) and c == ()


def test_choose_source_defaults_to_combined_when_there_are_predictions(ws, tmp_path):
    add_planted_dataset(ws, "pets", tmp=tmp_path)
    add_planted_dataset(ws, "plain", tmp=tmp_path, with_predictions=False)
    assert choose_source(ws.dataset("pets")) == ("combined", "resnet")
    assert choose_source(ws.dataset("pets"), "neighbours") == ("neighbours", None)
    assert choose_source(ws.dataset("plain")) == ("neighbours", None)
    with pytest.raises(InputError, match="has none"):
        choose_source(ws.dataset("plain"), "model")
    with pytest.raises(NotFoundError, match="resnet"):
        choose_source(ws.dataset("pets"), "model", "vgg")
