"""`catalog tag/untag/tags/slices/relabel/undo/history/review` and `search --where` as a
user runs them: --json shapes, the store after each command, and one-line errors (exit 2)
that leave the store exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.labels import LABEL_ISSUE_REVIEW, REVIEW_SOURCE, effective_rows
from tests.cli.test_cli import catalog
from tests.conftest import tree_hash
from tests.core.test_labels import build_clustered

A_ROWS = ["r00", "r01", "r02", "r03", "r04"]  # labelled a (r05, in their cluster, says b)


@pytest.fixture
def pts(ws, tmp_path: Path):
    """The 12-row clustered dataset 'pts' with embedding 'vec' (see build_clustered)."""
    build_clustered(ws, tmp_path)
    ws.store.tags("pts")  # the store file exists before the first comparison
    return ws


def run_json(home: Path, *args: str) -> dict:
    result = catalog(home, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def store_state(ws) -> tuple:
    """Everything the store holds for 'pts' (tags, slices, edits, reviews)."""
    s = ws.store
    return (s.tags_by_row("pts"), [(x.name, x.ids) for x in s.list_slices("pts")],
            s.label_overrides("pts"), [s.label_history("pts", r) for r in ("r00", "r05")],
            s.reviewed("pts", LABEL_ISSUE_REVIEW))


def assert_refused(ws, *args: str, mentions: str) -> None:
    """Exit 2, one line on stderr naming the problem, the store's content unchanged (read
    back through sqlite) and the dataset files unchanged. (The sqlite file's bytes are not
    compared: a later process may checkpoint this process's WAL into it.)"""
    before, files = store_state(ws), tree_hash(ws.home / "datasets")
    result = catalog(ws.home, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert mentions.lower() in lines[0].lower(), lines[0]
    assert store_state(ws) == before
    assert tree_hash(ws.home / "datasets") == files


def labels_of(ws) -> dict:
    rows = effective_rows(ws, "pts")
    return dict(zip(rows["id"], rows["label"]))


# ---- tag / untag / tags ------------------------------------------------------------------
def test_tag_from_ids_file_slice_and_where_then_untag_and_count(pts, tmp_path):
    home = pts.home
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\ufeffr00\n\nr06\nr00\n", encoding="utf-8")
    out = run_json(home, "tag", "pts", "sent", "--ids-file", ids_file)
    assert out == {"tag": "sent", "matched": 2, "tagged": 2, "rows_with_tag": 2}
    out = run_json(home, "tag", "pts", "sent", "--where", "label = a")
    assert (out["matched"], out["tagged"], out["rows_with_tag"]) == (5, 4, 6)  # r00 already had it
    pts.store.save_slice("pts", "batch", ["r07", "r08"])
    assert run_json(home, "tag", "pts", "batch-tag", "--slice", "batch")["tagged"] == 2
    assert run_json(home, "tags", "pts") == {"tags": {"batch-tag": 2, "sent": 6}}

    # quality columns in --where come from the embedding: r05 is the mislabelled row
    out = run_json(home, "tag", "pts", "suspect", "--where", "label_issue_score >= 0.9", "--embedding", "vec")
    assert out["tagged"] == 1 and pts.store.rows_with_tag("pts", "suspect") == ["r05"]

    out = run_json(home, "untag", "pts", "sent", "--where", "label = a and score >= 0.3")
    assert (out["matched"], out["untagged"], out["rows_with_tag"]) == (2, 2, 4)  # r03, r04
    assert set(pts.store.rows_with_tag("pts", "sent")) == {"r00", "r01", "r02", "r06"}

    text = catalog(home, "tags", "pts")
    assert text.returncode == 0 and "sent" in text.stdout and "4" in text.stdout


def test_tag_where_matching_nothing_tags_nothing_and_says_so(pts):
    before = store_state(pts)
    result = catalog(pts.home, "tag", "pts", "high", "--where", "score >= 100", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"tag": "high", "matched": 0, "tagged": 0, "rows_with_tag": 0}
    assert "no rows match" in result.stderr and "0 rows tagged" in result.stderr
    assert store_state(pts) == before


@pytest.mark.parametrize("args, mentions", [
    (("tag", "nope", "t", "--where", "label = a"), "nope"),
    (("untag", "pts", "never", "--where", "label = a"), "never"),
    (("tag", "pts", "t", "--slice", "ghost"), "ghost"),
    (("tag", "pts", "t", "--where", "label = (a"), "malformed --where"),
    (("tag", "pts", "t", "--where", "tag = missing"), "missing"),
    (("tag", "pts", "t", "--where", "colour = red"), "colour"),
    (("tag", "pts", "t", "--where", "label_issue_score >= 0.5", "--embedding", "nope-emb"), "nope-emb"),
    (("tag", "pts", "  ", "--where", "label = a"), "tag name is empty"),
    (("tag", "pts", "t", "--ids-file", "IDS"), "zz9"),
    (("tag", "pts", "t", "--ids-file", "MISSING"), "does not exist"),
    (("tags", "nope"), "nope"),
    (("tag", "pts", "t"), "one of the arguments --ids-file --slice --where is required"),
])
def test_bad_tag_input_exits_2_and_changes_nothing(pts, tmp_path, args, mentions):
    pts.store.tag_rows("pts", ["r01"], "kept")
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("r00\nzz9\n", encoding="utf-8")
    args = tuple(str(ids_file) if a == "IDS" else str(tmp_path / "no.txt") if a == "MISSING" else a
                 for a in args)
    assert_refused(pts, *args, mentions=mentions)


# ---- slices --------------------------------------------------------------------------------
def test_slices_list_show_rename_delete_restore(pts):
    home, store = pts.home, pts.store
    store.save_slice("pts", "first", ["r00", "r01"], {"method": "random", "seed": 3})
    store.save_slice("pts", "second", ["r02"])
    listed = run_json(home, "slices", "pts")["slices"]
    assert {s["name"]: (s["rows"], s["method"]) for s in listed} == {"first": (2, "random"), "second": (1, "manual")}
    assert run_json(home, "slices", "pts", "list") == {"slices": listed}
    shown = run_json(home, "slices", "pts", "show", "first")
    assert shown["ids"] == ["r00", "r01"] and shown["recipe"]["seed"] == 3
    assert catalog(home, "slices", "pts", "show", "first").stdout.split() == ["r00", "r01"]

    out = run_json(home, "slices", "pts", "rename", "first", "to-label")
    assert (out["name"], out["old_name"], out["rows"]) == ("to-label", "first", 2)
    assert store.get_slice("pts", "to-label").ids == ("r00", "r01")

    assert run_json(home, "slices", "pts", "delete", "to-label")["deleted"]["name"] == "to-label"
    assert [s.name for s in store.list_slices("pts")] == ["second"]
    restored = run_json(home, "slices", "pts", "restore", "to-label")["restored"]
    assert (restored["name"], restored["rows"]) == ("to-label", 2)
    assert store.get_slice("pts", "to-label").recipe["seed"] == 3


@pytest.mark.parametrize("args, mentions", [
    (("slices", "pts", "show", "ghost"), "ghost"),
    (("slices", "pts", "delete", "ghost"), "ghost"),
    (("slices", "pts", "rename", "first", "second"), "second"),
    (("slices", "pts", "rename", "first", " "), "slice name is empty"),
    (("slices", "pts", "rename", "first"), "rename SLICE NEW"),
    (("slices", "pts", "restore", "first"), "no deleted slice 'first'"),
    (("slices", "pts", "show"), "takes 1 slice name"),
    (("slices", "pts", "list", "first"), "takes 0 slice name"),
    (("slices", "pts", "drop", "first"), "invalid choice: 'drop'"),
    (("slices", "nope"), "nope"),
])
def test_bad_slice_input_exits_2_and_changes_nothing(pts, args, mentions):
    pts.store.save_slice("pts", "first", ["r00"])
    pts.store.save_slice("pts", "second", ["r01"])
    assert_refused(pts, *args, mentions=mentions)


# ---- relabel / undo / history ------------------------------------------------------------
def test_relabel_history_and_undo_by_id_and_latest(pts):
    home = pts.home
    out = run_json(home, "relabel", "pts", "--id", "r00", "--id", "r01", "r06", "--label", "c")
    assert out["label"] == "c" and len(out["edits"]) == 3 and out["unchanged"] == 0
    first, _, last = out["edits"]
    again = run_json(home, "relabel", "pts", "--id", "r00", "--label", "c")
    assert again == {"label": "c", "edits": [], "unchanged": 1}
    assert labels_of(pts)["r01"] == "c" and pts.dataset("pts").rows()["label"].iloc[1] == "a"

    undone = run_json(home, "undo", "pts", "--edit", str(first))
    assert undone["undone"]["edit"] == first and undone["undone"]["id"] == "r00"
    assert undone["label"] == "a" and labels_of(pts)["r00"] == "a"
    latest = run_json(home, "undo", "pts")  # the newest edit not yet reverted: r06's
    assert latest["undone"]["edit"] == last and labels_of(pts)["r06"] == "b"

    history = run_json(home, "history", "pts", "--id", "r00")
    assert history["id"] == "r00" and history["label"] == "a"
    (edit,) = history["edits"]
    assert set(edit) == {"edit", "id", "old", "new", "time", "source", "reverted"}
    assert (edit["edit"], edit["old"], edit["new"], edit["source"]) == (first, "a", "c", "manual")
    assert edit["reverted"] and edit["time"]
    assert run_json(home, "history", "pts", "--id", "r05")["edits"] == []


def test_bad_label_input_exits_2_and_changes_nothing(pts):
    edit = pts.store.relabel("pts", ["r00"], "z", ["a"])[0]
    reverted = pts.store.relabel("pts", ["r01"], "z", ["a"])[0]
    pts.store.revert_edits("pts", [reverted])
    for args, mentions in [
        (("relabel", "pts", "--id", "r00", "--label", "  "), "label is empty"),
        (("relabel", "pts", "--id", "r00", "zz9", "--label", "c"), "zz9"),
        (("relabel", "nope", "--id", "r00", "--label", "c"), "nope"),
        (("undo", "pts", "--edit", "999"), "no label edit 999"),
        (("undo", "pts", "--edit", str(reverted)), f"edit {reverted} of row 'r01' in 'pts' was already reverted"),
        (("undo", "pts", "--edit", "x"), "invalid int value: 'x'"),
        (("history", "pts", "--id", "zz9"), "no row 'zz9'"),
        (("history", "nope", "--id", "r00"), "nope"),
    ]:
        assert_refused(pts, *args, mentions=mentions)
    pts.store.revert_edits("pts", [edit])
    assert_refused(pts, "undo", "pts", mentions="no label edit to undo in 'pts'")


# ---- review ------------------------------------------------------------------------------
def test_review_accept_relabels_to_the_suggestion_dismiss_only_marks(pts):
    home = pts.home
    out = run_json(home, "review", "pts", "--id", "r05", "--accept", "--k", "4")
    assert (out["id"], out["decision"], out["status"], out["label"]) == ("r05", "accept", "relabeled", "a")
    assert out["previous_status"] is None and len(out["edits"]) == 1
    assert labels_of(pts)["r05"] == "a"
    (edit,) = pts.store.label_history("pts", "r05")
    assert edit.source == REVIEW_SOURCE and edit.edit_id == out["edits"][0]

    out = run_json(home, "review", "pts", "--id", "r00", "--dismiss")
    assert (out["status"], out["label"], out["edits"]) == ("correct", "a", [])
    assert pts.store.reviewed("pts", LABEL_ISSUE_REVIEW) == {"r05": "relabeled", "r00": "correct"}
    assert labels_of(pts)["r00"] == "a"

    run_json(home, "undo", "pts")  # the accepted edit: label back, row back in the queue
    assert labels_of(pts)["r05"] == "b"
    assert pts.store.reviewed("pts", LABEL_ISSUE_REVIEW) == {"r00": "correct"}


@pytest.mark.parametrize("args, mentions", [
    (("--id", "r06", "--accept", "--k", "4"), "row 'r06' is not flagged"),
    (("--id", "r11", "--accept"), "row 'r11' is not flagged"),
    (("--id", "r01", "--accept"), "row 'r01' is not flagged"),  # score ~0.2 < --min-score 0.5
    (("--id", "r05", "--accept", "--min-score", "2"), "min score 2.0 is outside 0-1"),
    (("--id", "r00", "--accept"), "row 'r00' was already reviewed (correct)"),
    (("--id", "zz9", "--accept"), "no row 'zz9'"),
    (("--id", "zz9", "--dismiss"), "no row 'zz9'"),
    (("--id", "r05", "--accept", "--embedding", "nope-emb"), "nope-emb"),
    (("--id", "r05", "--accept", "--k", "0"), "k"),
    (("--id", "r05"), "one of the arguments --accept --dismiss is required"),
    (("--id", "r05", "--accept", "--dismiss"), "not allowed with argument"),
])
def test_bad_review_input_exits_2_and_changes_nothing(pts, args, mentions):
    pts.store.mark_reviewed("pts", ["r00"], LABEL_ISSUE_REVIEW, "correct")
    assert_refused(pts, "review", "pts", *args, mentions=mentions)


# ---- search --where ----------------------------------------------------------------------
def test_search_where_ranks_only_the_matching_rows(pts):
    home = pts.home
    everywhere = run_json(home, "search", "pts", "--id", "r00", "-k", "5")["results"]
    assert {r["id"] for r in everywhere} <= set(A_ROWS + ["r05"])  # its own cluster
    within = run_json(home, "search", "pts", "--id", "r00", "-k", "5", "--where", "label = b")["results"]
    assert len(within) == 5 and {r["id"] for r in within} <= {f"r{i:02d}" for i in range(5, 11)}
    assert "r05" in {r["id"] for r in within}  # the closest b row is the one in r00's cluster
    pts.store.tag_rows("pts", ["r07", "r09"], "keep")
    tagged = run_json(home, "search", "pts", "--id", "r00", "--where", "tag = keep")["results"]
    assert {r["id"] for r in tagged} == {"r07", "r09"}
    none = catalog(home, "search", "pts", "--id", "r00", "--where", "score >= 100", "--json")
    assert none.returncode == 0 and json.loads(none.stdout)["results"] == []
    assert "no row with a vector matches --where" in none.stderr


@pytest.mark.parametrize("where, mentions", [
    ("label in a, b", "malformed --where"),
    ("tag = ghost", "ghost"),
    ("slice = ghost-slice", "ghost-slice"),
    ("colour = red", "colour"),
])
def test_search_with_a_bad_where_exits_2(pts, where, mentions):
    assert_refused(pts, "search", "pts", "--id", "r00", "--where", where, mentions=mentions)
