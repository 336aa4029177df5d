"""`catalog quality`: computes the stored neighbours pass once (then reuses it), prints a
summary; `label-issues` and `duplicates` give the same answers from the stored pass."""

from __future__ import annotations

import json

from core.quality import DEFAULT_K, load_neighbours
from tests.cli.test_cli import catalog


def _json(ws, *args: str) -> dict:
    out = catalog(ws.home, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_quality_stores_the_pass_then_reuses_it_and_scoring_uses_it(digits_ws):
    before_issues = _json(digits_ws, "label-issues", "digits")
    before_dups = _json(digits_ws, "duplicates", "digits", "--threshold", "0.97")
    ds = digits_ws.dataset("digits")
    assert load_neighbours(ds) is None  # small sets score in memory: nothing stored

    first = _json(digits_ws, "quality", "digits")
    assert first["rows"] == 1797 and first["k"] == DEFAULT_K and first["reused"] is False
    assert first["recall_estimate"] is None  # an exact index: every neighbour is the exact one
    assert first["label_issues"] > 0 and first["duplicate_pairs"] >= 0
    stored = load_neighbours(ds)
    assert stored is not None and stored.scores.shape == (1797, DEFAULT_K)  # as wide as label-issues reads

    again = _json(digits_ws, "quality", "digits")
    assert again["reused"] is True and again["label_issues"] == first["label_issues"]

    assert _json(digits_ws, "label-issues", "digits") == before_issues
    assert _json(digits_ws, "duplicates", "digits", "--threshold", "0.97") == before_dups


def test_quality_prints_a_summary_and_a_wider_k_recomputes(digits_ws):
    out = catalog(digits_ws.home, "quality", "digits")
    assert out.returncode == 0, out.stderr
    assert "neighbours of 1,797 rows" in out.stdout and "label issues (score >= 0.5)" in out.stdout
    wide = _json(digits_ws, "quality", "digits", "--k", str(DEFAULT_K + 10))
    assert wide["k"] == DEFAULT_K + 10 and wide["reused"] is False


def test_quality_of_an_unknown_dataset_is_bad_input(digits_ws):
    out = catalog(digits_ws.home, "quality", "nope")
    assert out.returncode == 2 and "nope" in out.stderr
