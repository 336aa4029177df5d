"""core.labels: relabels are edits beside the source rows; the effective label is the
latest live edit, export uses it, and undo brings the original label back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputError, NotFoundError
from core.export import export_rows
from core.ingest import ingest_table
from core.labels import effective_rows, relabel_rows, undo_relabel


@pytest.fixture
def pets(ws, tmp_path: Path):
    src = tmp_path / "pets.csv"
    pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "text": ["a cat on a mat", "a dog in the fog", "a cat in a hat", "an unlabelled row"],
        "label": ["cat", "dog", "cat", None],
    }).to_csv(src, index=False)
    ingest_table(ws, src, "pets")
    return ws


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _exported_labels(ws, out: Path) -> dict[str, str | None]:
    export_rows(effective_rows(ws, "pets"), out, "jsonl")
    return {r["id"]: r["label"] for r in map(json.loads, out.read_text().splitlines())}


def test_relabel_undo_export_keeps_the_source_file_untouched(pets, tmp_path):
    source = pets.dataset("pets").rows_path
    before = _sha(source)

    edits = relabel_rows(pets, "pets", ["a"], "dog")
    assert len(edits) == 1
    assert undo_relabel(pets, "pets", edits) == 1
    assert _exported_labels(pets, tmp_path / "undone.jsonl")["a"] == "cat"

    relabel_rows(pets, "pets", ["a", "d"], "dog")
    exported = _exported_labels(pets, tmp_path / "kept.jsonl")
    assert exported == {"a": "dog", "b": "dog", "c": "cat", "d": "dog"}

    assert _sha(source) == before
    assert pets.dataset("pets").rows()["label"].tolist()[:3] == ["cat", "dog", "cat"]


def test_latest_live_edit_wins_and_undo_falls_back_to_the_previous_one(pets):
    first = relabel_rows(pets, "pets", ["b"], "wolf")
    second = relabel_rows(pets, "pets", ["b"], "fox")
    label = dict(zip(effective_rows(pets, "pets")["id"], effective_rows(pets, "pets")["label"]))
    assert label["b"] == "fox"
    undo_relabel(pets, "pets", second)
    assert effective_rows(pets, "pets").set_index("id").loc["b", "label"] == "wolf"
    undo_relabel(pets, "pets", first)
    assert effective_rows(pets, "pets").set_index("id").loc["b", "label"] == "dog"
    history = pets.store.label_history("pets", "b")
    assert [(h.old_label, h.new_label) for h in history] == [("dog", "wolf"), ("wolf", "fox")]
    assert all(h.reverted for h in history)
    assert undo_relabel(pets, "pets", first) == 0  # already undone: nothing to do


def test_relabel_skips_rows_already_carrying_the_label_and_records_the_source(pets):
    edits = relabel_rows(pets, "pets", ["a", "b", "a"], " cat ", source="label review")
    assert len(edits) == 1  # only b changes; a is already 'cat', duplicates dropped
    (edit,) = pets.store.label_history("pets", "b")
    assert (edit.old_label, edit.new_label, edit.source) == ("dog", "cat", "label review")
    assert pets.store.label_history("pets", "a") == []
    assert relabel_rows(pets, "pets", ["a"], "cat") == []


def test_relabel_refuses_unknown_rows_and_empty_labels_without_writing(pets):
    with pytest.raises(NotFoundError, match="zz"):
        relabel_rows(pets, "pets", ["a", "zz"], "dog")
    with pytest.raises(InputError, match="empty"):
        relabel_rows(pets, "pets", ["a"], "   ")
    assert pets.store.label_overrides("pets") == {}
