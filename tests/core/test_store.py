from __future__ import annotations

import multiprocessing as mp

import pytest

from core._shared import ids_hash
from core.errors import AlreadyExistsError, InputError, NotFoundError
from core.store import Store


def _tag_many(path: str, prefix: str, barrier) -> None:
    store = Store(path)
    barrier.wait()
    for start in range(0, 1000, 50):  # many small transactions to interleave with the other process
        store.tag_rows("d", [f"{prefix}-{i}" for i in range(start, start + 50)], "to-label")


def test_tags_and_slices_survive_a_restart(tmp_path):
    path = tmp_path / "catalog.sqlite"
    store = Store(path)
    assert store.tag_rows("d", ["a", "b", "a"], "keep") == 2
    store.save_slice("d", "first", ["b", "a", "b"], {"method": "random", "seed": 3})
    reopened = Store(path)
    assert reopened.tags("d") == {"keep": 2}
    s = reopened.get_slice("d", "first")
    assert s.ids == ("b", "a")
    assert s.recipe["seed"] == 3 and s.recipe["ids_hash"] == ids_hash(["b", "a"])
    assert reopened.tags("other") == {}


def test_two_processes_tagging_at_once_lose_no_writes(tmp_path):
    path = str(tmp_path / "catalog.sqlite")
    Store(path)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_tag_many, args=(path, p, barrier)) for p in ("x", "y")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert Store(path).tags("d") == {"to-label": 2000}


def test_slice_name_taken_delete_and_undo(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.save_slice("d", "s1", ["a"])
    with pytest.raises(AlreadyExistsError, match="s1"):
        store.save_slice("d", "s1", ["b"])
    store.delete_slice("d", "s1")
    with pytest.raises(NotFoundError):
        store.get_slice("d", "s1")
    assert store.restore_slice("d", "s1").ids == ("a",)
    renamed = store.rename_slice("d", "s1", "s2")
    assert renamed.name == "s2" and [s.name for s in store.list_slices("d")] == ["s2"]
    with pytest.raises(InputError, match="empty"):
        store.save_slice("d", "s3", [])


def test_label_edits_are_undoable_and_latest_wins(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    e1 = store.relabel("d", ["r1"], "cat", ["dog"])
    store.relabel("d", ["r1"], "bird", ["cat"])
    assert store.label_overrides("d") == {"r1": "bird"}
    history = store.label_history("d", "r1")
    assert [(h.old_label, h.new_label) for h in history] == [("dog", "cat"), ("cat", "bird")]
    store.revert_edits("d", [history[1].edit_id])
    assert store.label_overrides("d") == {"r1": "cat"}
    store.revert_edits("d", e1)
    assert store.label_overrides("d") == {}


def test_bad_tag_names_are_rejected(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(InputError, match="empty"):
        store.tag_rows("d", ["a"], "   ")
    with pytest.raises(InputError, match="control"):
        store.tag_rows("d", ["a"], "bad\x00tag")


def test_a_workspace_from_before_keeps_its_tags_and_loses_the_unused_saved_searches(tmp_path):
    import sqlite3

    path = tmp_path / "catalog.sqlite"
    Store(path).tag_rows("d", ["a"], "keep")
    con = sqlite3.connect(path)  # what older versions created and wrote
    con.execute("CREATE TABLE saved_searches (dataset TEXT NOT NULL, name TEXT NOT NULL, "
                "recipe TEXT NOT NULL, scores TEXT NOT NULL, created TEXT NOT NULL)")
    con.execute("INSERT INTO saved_searches VALUES ('d', 's', '{}', '{}', 'then')")
    con.commit()
    con.close()
    reopened = Store(path)
    assert reopened.tags("d") == {"keep": 1}
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "saved_searches" not in tables and {"tags", "slices", "label_edits", "reviews"} <= tables
    assert not hasattr(reopened, "save_search")
    reopened.forget_dataset("d")
    assert reopened.tags("d") == {}
