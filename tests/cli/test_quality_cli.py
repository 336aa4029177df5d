"""`catalog label-issues` and `catalog duplicates` on the digits: --json shapes, order,
and label edits taken into account."""

from __future__ import annotations

import json

from core.embeddings import load_index
from core.labels import effective_rows, relabel_rows
from core.quality import find_label_issues, find_near_duplicates
from tests.cli.test_cli import catalog


def _issues(ws, *extra: str) -> list[dict]:
    out = catalog(ws.home, "label-issues", "digits", "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["issues"]


def test_label_issues_json_is_worst_first_with_the_documented_fields(digits_ws):
    issues = _issues(digits_ws)
    assert len(issues) == 100  # default --limit
    assert all(set(i) == {"id", "label", "suggested", "score", "flagged_by", "neighbour_score",
                          "model_score"} for i in issues)
    assert all(i["model_score"] is None and i["neighbour_score"] == i["score"] for i in issues)
    scores = [i["score"] for i in issues]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
    assert all(0.0 <= s <= 1.0 for s in scores)
    labels = effective_rows(digits_ws, "digits").set_index("id")["label"]
    assert all(i["label"] == labels[i["id"]] and i["suggested"] != i["label"] for i in issues)
    ds = digits_ws.dataset("digits")
    expected = find_label_issues(load_index(ds), dict(zip(labels.index, labels)))
    assert [i["id"] for i in issues] == list(expected.ids[:100])


def test_duplicates_json_shape_and_threshold(digits_ws):
    out = catalog(digits_ws.home, "duplicates", "digits", "--threshold", "0.99", "--json")
    assert out.returncode == 0, out.stderr
    strict = json.loads(out.stdout)
    assert isinstance(strict["pairs"], list)
    assert all(p["score"] >= 0.99 - 1e-5 for p in strict["pairs"])

    out = catalog(digits_ws.home, "duplicates", "digits", "--threshold", "0.95", "--json")
    assert out.returncode == 0, out.stderr
    pairs = json.loads(out.stdout)["pairs"]
    assert pairs and all(set(p) == {"a", "b", "score"} for p in pairs)
    assert all(p["a"] < p["b"] and p["score"] >= 0.95 - 1e-5 for p in pairs)
    scores = [p["score"] for p in pairs]
    assert scores == sorted(scores, reverse=True)
    assert len(strict["pairs"]) <= len(pairs)
    expected = find_near_duplicates(load_index(digits_ws.dataset("digits")), threshold=0.95)
    assert [(p["a"], p["b"]) for p in pairs] == [(a, b) for a, b, _ in expected.pairs]


def test_label_issues_use_the_effective_label_after_a_relabel(digits_ws):
    before = _issues(digits_ws, "--limit", "2000")
    calm = next(i for i in reversed(before) if i["score"] == 0.0)  # neighbours all agree
    wrong = "8" if calm["label"] != "8" else "1"
    relabel_rows(digits_ws, "digits", [calm["id"]], wrong)
    after = {i["id"]: i for i in _issues(digits_ws, "--limit", "2000")}
    moved = after[calm["id"]]
    assert moved["label"] == wrong and moved["suggested"] == calm["label"]
    assert moved["score"] > 0.9
    top = _issues(digits_ws, "--limit", "100")
    assert calm["id"] in [i["id"] for i in top]
