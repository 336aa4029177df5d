"""core.labels: relabels are edits beside the source rows; the effective label is the
latest live edit, export uses it, and undo brings the original label back; label-review
decisions (accept the neighbours' suggestion, dismiss, skip) are recorded and undoable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputError, NotFoundError
from core.export import export_rows
from core.ingest import ingest_table
from core.labels import (
    LABEL_ISSUE_REVIEW,
    REVIEW_SOURCE,
    effective_rows,
    relabel_rows,
    review_label_issue,
    row_label_history,
    suggest_label,
    undo_label_edit,
    undo_relabel,
)


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


# ---- label review decisions, undo and history ------------------------------------------
CLUSTERED_IDS = [f"r{i:02d}" for i in range(12)]
# r00-r05 point one way, r06-r11 the opposite way; r05 sits with the a's but says b;
# r11 is unlabelled.
CLUSTERED_LABELS = ["a"] * 5 + ["b"] * 6 + [None]


def build_clustered(ws, tmp_path: Path, name: str = "pts", embedding: str = "vec") -> None:
    """Dataset ``name`` of 12 text rows with an imported embedding of two opposite clusters."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.embeddings import import_embeddings

    src = tmp_path / f"{name}.csv"
    pd.DataFrame({"id": CLUSTERED_IDS, "text": [f"row {i}" for i in range(12)],
                  "label": CLUSTERED_LABELS, "score": [i / 10 for i in range(12)]}).to_csv(src, index=False)
    ingest_table(ws, src, name)
    rng = np.random.default_rng(0)
    base = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    vecs = [(base if i < 6 else -base) + rng.normal(0, 0.05, 4).astype(np.float32) for i in range(12)]
    path = tmp_path / f"{name}-{embedding}.parquet"
    pq.write_table(pa.table({"id": CLUSTERED_IDS, "vector": [v.tolist() for v in vecs]}), path)
    import_embeddings(ws.dataset(name), path, embedding)


@pytest.fixture
def clustered(ws, tmp_path: Path):
    build_clustered(ws, tmp_path)
    return ws


def _label(ws, rid: str):
    return effective_rows(ws, "pts").set_index("id").loc[rid, "label"]


def test_accept_relabels_to_the_suggestion_marks_it_and_undo_brings_it_back(clustered):
    ws = clustered
    hint = suggest_label(ws, "pts", "r05", k=4)
    assert (hint.given, hint.suggested, hint.embedding) == ("b", "a", "vec") and hint.score > 0.9
    done = review_label_issue(ws, "pts", "r05", "accept", k=4)
    assert (done.status, done.label, done.previous_status) == ("relabeled", "a", None)
    assert _label(ws, "r05") == "a" and len(done.edit_ids) == 1
    assert ws.store.reviewed("pts", LABEL_ISSUE_REVIEW) == {"r05": "relabeled"}
    (edit,) = row_label_history(ws, "pts", "r05")
    assert (edit.old_label, edit.new_label, edit.source) == ("b", "a", REVIEW_SOURCE)
    with pytest.raises(InputError, match="r05.*already reviewed"):
        review_label_issue(ws, "pts", "r05", "accept", k=4)  # a second accept would flip it again

    undone = undo_label_edit(ws, "pts")  # no id: the latest live edit
    assert undone.edit_id == done.edit_ids[0] and _label(ws, "r05") == "b"
    assert ws.store.reviewed("pts", LABEL_ISSUE_REVIEW) == {}  # back in the review queue
    assert row_label_history(ws, "pts", "r05")[0].reverted is not None


def test_dismiss_and_skip_only_mark_the_row(clustered):
    ws = clustered
    assert review_label_issue(ws, "pts", "r05", "dismiss").status == "correct"
    skipped = review_label_issue(ws, "pts", "r00", "skip")
    assert (skipped.status, skipped.label, skipped.edit_ids) == ("skipped", "a", ())
    assert ws.store.reviewed("pts", LABEL_ISSUE_REVIEW) == {"r05": "correct", "r00": "skipped"}
    assert ws.store.label_overrides("pts") == {}
    # a skipped row stays in the queue and can still be decided; the decision replaces it
    assert review_label_issue(ws, "pts", "r00", "dismiss").previous_status == "skipped"


@pytest.mark.parametrize("rid, decision, kwargs, error, match", [
    ("r06", "accept", {"k": 4}, InputError, "r06.*not flagged.*agree"),
    ("r11", "accept", {}, InputError, "r11.*not flagged.*no label"),
    ("r01", "accept", {}, InputError, r"r01.*not flagged.*mostly agree .*score 0\.\d+ < 0\.5"),
    ("r05", "accept", {"min_score": 1.5}, InputError, "min score 1.5 is outside 0-1"),
    ("zz", "accept", {}, NotFoundError, "no row 'zz'"),
    ("zz", "dismiss", {}, NotFoundError, "no row 'zz'"),
    ("r05", "approve", {}, InputError, "'approve'; choose one of accept, dismiss, skip"),
    ("r05", "accept", {"embedding": "nope"}, NotFoundError, "nope"),
    ("r05", "accept", {"label": "  "}, InputError, "empty"),
    ("r05", "accept", {"k": 0}, InputError, "k"),
])
def test_bad_review_decisions_raise_and_write_nothing(clustered, rid, decision, kwargs, error, match):
    with pytest.raises(error, match=match):
        review_label_issue(clustered, "pts", rid, decision, **kwargs)
    assert clustered.store.reviewed("pts", LABEL_ISSUE_REVIEW) == {}
    assert clustered.store.label_overrides("pts") == {}


def test_undo_by_edit_id_refuses_unknown_and_reverted_edits(pets):
    first = relabel_rows(pets, "pets", ["a"], "dog")[0]
    second = relabel_rows(pets, "pets", ["b"], "cat")[0]
    assert undo_label_edit(pets, "pets", first).row_id == "a"
    with pytest.raises(InputError, match=f"edit {first} .*already reverted"):
        undo_label_edit(pets, "pets", first)
    with pytest.raises(NotFoundError, match=f"no label edit 999 .*latest live edit is {second}"):
        undo_label_edit(pets, "pets", 999)
    assert pets.store.label_overrides("pets") == {"b": "cat"}
    undo_label_edit(pets, "pets")
    with pytest.raises(NotFoundError, match="no label edit to undo"):
        undo_label_edit(pets, "pets")
    with pytest.raises(NotFoundError, match="no row 'zz'"):
        row_label_history(pets, "pets", "zz")
