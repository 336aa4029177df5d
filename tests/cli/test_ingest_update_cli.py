"""``catalog ingest --update [--keep-missing]`` and the ``embed`` that follows it, as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.cli.test_cli import assert_bad_input, catalog


def _notes(path, texts):
    pd.DataFrame({"id": [f"t{i}" for i in range(len(texts))], "text": texts,
                  "label": ["x"] * len(texts)}).to_csv(path, index=False)
    return path


TEXTS = ["a cat sleeps on the sofa", "stock prices fell sharply", "how to bake bread",
         "a recipe for sourdough"]


def test_update_then_embed_encodes_only_new_and_changed_rows(home, tmp_path):
    src = _notes(tmp_path / "notes.csv", TEXTS)
    assert catalog(home, "ingest", src, "--name", "notes").returncode == 0
    assert catalog(home, "embed", "notes").returncode == 0
    vectors = np.load(home / "datasets/notes/embeddings/minilm/vectors.npy")
    frame = pd.read_csv(src)
    frame.loc[0, "label"] = "pets"                     # metadata only: vector kept
    frame.loc[1, "text"] = "markets dropped today"     # content: encoded again
    frame = frame[frame["id"] != "t3"]                 # removed
    frame = pd.concat([frame, pd.DataFrame({"id": ["t9"], "text": ["a kitten naps"], "label": ["pets"]})])
    frame.to_csv(src, index=False)

    result = catalog(home, "ingest", src, "--name", "notes", "--update", "--json")
    assert result.returncode == 0, result.stderr
    update = json.loads(result.stdout)["update"]
    assert {k: update[k] for k in ("added", "changed", "content_changed", "removed", "kept")} == \
        {"added": 1, "changed": 2, "content_changed": 1, "removed": 1, "kept": 1}
    assert update["vectors_dropped"] == {"minilm": 2}

    embedded = catalog(home, "embed", "notes", "--json")
    assert embedded.returncode == 0, embedded.stderr
    assert json.loads(embedded.stdout)["encoded_rows"] == 2
    ids = list(np.load(home / "datasets/notes/embeddings/minilm/ids.npy"))
    after = np.load(home / "datasets/notes/embeddings/minilm/vectors.npy")
    assert sorted(ids) == ["t0", "t1", "t2", "t9"]
    assert after[ids.index("t0")].tobytes() == vectors[0].tobytes()
    found = catalog(home, "search", "notes", "--id", "t9", "-k", "1", "--json")
    assert json.loads(found.stdout)["results"][0]["id"] == "t0"  # the other cat, found through the index


def test_keep_missing_keeps_rows_and_the_summary_says_so(home, tmp_path):
    src = _notes(tmp_path / "notes.csv", TEXTS)
    assert catalog(home, "ingest", src, "--name", "notes").returncode == 0
    _notes(src, TEXTS[:2])
    result = catalog(home, "ingest", src, "--name", "notes", "--update", "--keep-missing")
    assert result.returncode == 0, result.stderr
    assert "update: added 0, changed 0 (content 0), removed 0, kept 2, kept 2 missing from the source" in result.stdout
    assert len(pd.read_parquet(home / "datasets/notes/rows.parquet")) == 4


def test_bad_update_flags_are_refused_and_change_nothing(home, tmp_path):
    src = _notes(tmp_path / "notes.csv", TEXTS)
    assert_bad_input(home, "ingest", src, "--name", "notes", "--update", mentions="no dataset 'notes'")
    assert catalog(home, "ingest", src, "--name", "notes").returncode == 0
    assert_bad_input(home, "ingest", src, "--name", "notes", "--update", "--replace",
                     mentions="exclude each other")
    assert_bad_input(home, "ingest", src, "--name", "notes", "--keep-missing", "--replace",
                     mentions="only applies with --update")
