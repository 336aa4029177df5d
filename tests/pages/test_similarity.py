from __future__ import annotations

import numpy as np
import pytest

from core.embeddings import load_embedding
from core.workspace import open_workspace
from tests.helpers.apptest import grid_ids, grid_payload, press_action
from tests.pages.shown import unescaped

PAGE = "pages/similarity.py"
EMB = "efficientnet-lite0"


def _grid_ids(at) -> list[str]:
    return grid_ids(at, "sim:grid")


def _selection(at) -> set[str]:
    return set(at.session_state["selection"].get("digits", {}))


@pytest.fixture
def digits(app_home):
    ds = open_workspace(app_home).dataset("digits")
    rows = ds.rows()
    emb = load_embedding(ds, EMB)
    return rows, dict(zip(emb.ids, np.asarray(emb.vectors)))


def _ids_of(rows, label: str, n: int) -> list[str]:
    return sorted(rows.loc[rows["label"] == label, "id"])[:n]


def _brute(vectors: dict, anchors: list[str], negatives: list[str] = (), within=None) -> dict[str, float]:
    """Rocchio scores of every row (anchors and negatives excluded), by brute force."""
    q = np.mean([vectors[a] for a in anchors], axis=0)
    if negatives:
        q = q - 0.5 * np.mean([vectors[n] for n in negatives], axis=0)
    q /= np.linalg.norm(q)
    skip = set(anchors) | set(negatives)
    return {i: float(v @ q) for i, v in vectors.items()
            if i not in skip and (within is None or i in within)}


def _safe_threshold(scores: dict[str, float], rank: int) -> float:
    """A 3-decimal threshold near the rank-th best score with no score within 1e-4 of it."""
    t = round(sorted(scores.values(), reverse=True)[rank], 3)
    while any(abs(s - t) < 1e-4 for s in scores.values()):
        t = round(t + 0.001, 3)
    return t


def _add_anchors(at, ids: list[str], negative: bool = False):
    at.text_area(key="sim:ids").input("\n".join(ids)).run()
    at.button(key="sim:add_neg" if negative else "sim:add_pos").click().run()
    assert not at.exception, at.exception
    return at


def test_anchors_rank_the_same_digit_first_with_scores_on_every_card(make_app, digits):
    rows, _ = digits
    at = make_app(PAGE)
    assert not at.exception
    assert at.title[0].value == "Similarity search"
    assert any("No anchors yet" in i.value for i in at.info)
    anchors = _ids_of(rows, "8", 3)
    _add_anchors(at, anchors)
    shown = _grid_ids(at)
    assert len(shown) == 50 and not set(anchors) & set(shown)
    labels = rows.set_index("id")["label"]
    assert sum(labels[i] == "8" for i in shown[:10]) >= 9
    cards = grid_payload(at, "sim:grid")["rows"]
    badges = [float(r["badge"]) for r in cards if r["badge"]]
    assert len(badges) == 50 and badges == sorted(badges, reverse=True)  # a score on every card
    assert all(f"score {r['badge']}" in r["hover"].splitlines() for r in cards)
    strip = [b.key for b in at.button if b.key.startswith("sim:rm:")]
    assert sorted(k.split(":", 2)[2] for k in strip) == anchors


def test_threshold_select_all_and_save_slice_with_recipe(make_app, digits, app_home):
    rows, vectors = digits
    at = _add_anchors(make_app(PAGE), _ids_of(rows, "8", 3))
    anchors = _ids_of(rows, "8", 3)
    at.radio(key="sim:mode").set_value("Score ≥ threshold").run()
    brute = _brute(vectors, anchors)
    t = _safe_threshold(brute, 120)
    at.slider(key="sim:threshold").set_value(t).run()
    expected = {i for i, s in brute.items() if s >= t}
    assert any(m.value == f"**{len(expected):,} rows ≥ {t:.3f}**" for m in at.markdown)
    at.button(key="sim:select_above").click().run()
    assert not at.exception
    assert _selection(at) == expected
    at.text_input(key="sim:slice").input("like-eights").run()
    at.button(key="sim:slice_btn").click().run()
    assert not at.exception and any("Saved slice 'like-eights'" in unescaped(s.value) for s in at.success)
    saved = open_workspace(app_home).store.get_slice("digits", "like-eights")
    assert set(saved.ids) == expected
    r = saved.recipe
    assert r["kind"] == "similarity" and r["anchors"] == anchors and r["negatives"] == []
    assert r["method"] == "rocchio" and r["embedding"] == EMB and r["threshold"] == t
    assert r["filter"]["labels"] == [] and r["negative_weight"] == 0.5


def test_threshold_selection_inside_a_filter_with_negatives(make_app, digits):
    rows, vectors = digits
    at = make_app(PAGE)
    at.multiselect(key="sim:flt:digits:labels").select("8").select("3").select("9").run()
    anchors, negatives = _ids_of(rows, "8", 3), _ids_of(rows, "3", 2)
    _add_anchors(at, anchors)
    _add_anchors(at, negatives, negative=True)
    within = set(rows.loc[rows["label"].isin(["8", "3", "9"]), "id"])
    assert any(c.value.startswith(f"Searching within {len(within):,} filtered rows") for c in at.caption)
    labels = rows.set_index("id")["label"]
    assert {labels[i] for i in _grid_ids(at)} <= {"8", "3", "9"}
    at.radio(key="sim:mode").set_value("Score ≥ threshold").run()
    brute = _brute(vectors, anchors, negatives, within)
    t = _safe_threshold(brute, 200)
    at.slider(key="sim:threshold").set_value(t).run()
    at.button(key="sim:select_above").click().run()
    assert not at.exception
    assert _selection(at) == {i for i, s in brute.items() if s >= t}


def test_result_card_buttons_add_anchors_and_negatives(make_app, digits):
    rows, _ = digits
    at = _add_anchors(make_app(PAGE), _ids_of(rows, "1", 2))
    first, second = _grid_ids(at)[:2]
    assert [a["label"] for a in grid_payload(at, "sim:grid")["actions"]] == [
        "Use as anchor", "Use as negative"]
    press_action(at, "sim:grid", "Use as negative", first)
    assert not at.exception, at.exception
    press_action(at, "sim:grid", "Use as anchor", second)
    assert not at.exception, at.exception
    assert first in at.session_state["negatives"]["digits"]
    assert second in at.session_state["anchors"]["digits"]
    assert first not in _grid_ids(at) and second not in _grid_ids(at)
    at.button(key="sim:clear_anchors").click().run()
    assert any("No anchors yet" in i.value for i in at.info)


def test_unknown_typed_ids_are_reported(make_app):
    at = make_app(PAGE)
    _add_anchors(at, ["no-such-row.png"])
    assert any("not rows of digits" in unescaped(e.value) and "no-such-row.png" in unescaped(e.value) for e in at.error)


def test_uploaded_png_is_an_anchor_and_a_corrupt_one_is_an_error(make_app, digits, app_home):
    rows, _ = digits
    ds = open_workspace(app_home).dataset("digits")
    seven = _ids_of(rows, "7", 1)[0]
    data = ds.resolve_media(seven).read_bytes()
    at = make_app(PAGE)
    at.file_uploader(key="sim:upload").set_value(("my-seven.png", data, "image/png")).run()
    assert not at.exception and not at.error
    shown = _grid_ids(at)
    assert shown[0] == seven  # the same picture scores ~1
    labels = rows.set_index("id")["label"]
    assert sum(labels[i] == "7" for i in shown[:10]) >= 6  # one anchor: most neighbours are sevens
    assert any("uploaded: my\\-seven\\.png" in c.value for c in at.caption)

    at.file_uploader(key="sim:upload").set_value(("broken.png", b"\x89PNG not really", "image/png")).run()
    assert not at.exception
    assert any("cannot read image broken.png" in unescaped(e.value) for e in at.error)


def test_anchors_are_small_thumbnails_side_by_side_with_ids_as_typed(make_app, digits, monkeypatch):
    import streamlit

    from tests.pages.tree import node_at, path_of

    widths, real_image = [], streamlit.image

    def spy(image, *args, **kwargs):
        widths.append(kwargs.get("width"))
        return real_image(image, *args, **kwargs)

    monkeypatch.setattr(streamlit, "image", spy)
    rows, _ = digits
    anchors, negatives = _ids_of(rows, "7", 3), _ids_of(rows, "1", 2)
    at = _add_anchors(make_app(PAGE), anchors)
    _add_anchors(at, negatives, negative=True)
    widths.clear()
    at.run()
    assert not at.exception, at.exception
    assert widths == [96] * 5  # one small thumbnail per anchor and negative, nothing stretched

    captions = [c.value for c in at.caption]
    for rid in anchors + negatives:  # e.g. `7/digit-0007.png`: shown verbatim, no backslashes
        assert f"`{rid}`" in captions, captions
    for group in (anchors, negatives):
        paths = [path_of(at, f"sim:rm:{rid}") for rid in group]
        rows_of = {p[:-2] for p in paths}
        assert len(rows_of) == 1  # one row of columns per strip...
        assert [p[-2] for p in paths] == list(range(len(group)))  # ...one column per anchor
        assert len(node_at(at, rows_of.pop()).children) == 12  # a fixed 12 columns: stays small
    at.button(key=f"sim:rm:{anchors[0]}").click().run()
    assert at.session_state["anchors"]["digits"] == dict.fromkeys(anchors[1:], True)
