"""Label review page: accept / set / correct / skip with undo, seen from the Catalog;
keep one of a duplicate group; the outlier grid; quality columns in the Catalog filter
and Smart select; the kNN pass is not repeated when a label changes."""

from __future__ import annotations

from core.embeddings import load_index
from core.labels import effective_rows
from core.quality import (
    find_label_issues,
    find_near_duplicates,
    quality_columns,
    score_outliers,
)
from core.workspace import open_workspace
from tests.conftest import REPO
from tests.helpers.apptest import grid_ids, grid_payload, open_row

PAGE = "pages/quality.py"


def _queue(at) -> list[str]:
    return [b.key.split(":", 2)[2] for b in at.button if b.key.startswith("qa:accept:")]


def _texts(at) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


def _to_review(at) -> str:
    return next(m.value for m in at.markdown if "rows to review" in m.value)


def _count(at) -> int:
    """The queue length the page states ("**N rows to review**")."""
    return int(_to_review(at).split("**")[1].split()[0].replace(",", ""))


def _labels(ws) -> dict[str, str]:
    rows = effective_rows(ws, "digits")
    return dict(zip(rows["id"].astype(str), rows["label"]))


def _issues(home):
    ws = open_workspace(home)
    return find_label_issues(load_index(ws.dataset("digits")), _labels(ws))


def _catalog_label(at, rid: str) -> str:
    """The label badge of ``rid``'s card on the Catalog page, found with the text filter."""
    at.switch_page(str(REPO / "pages/catalog.py")).run()
    at.text_input(key="flt:digits:text").input(rid).run()
    assert not at.exception, at.exception
    assert "**1 of 1,797 rows**" in _texts(at)
    (card,) = grid_payload(at, "catalog")["rows"]
    assert card["id"] == rid
    return card["label"]


def test_accept_leaves_the_queue_shows_in_the_catalog_and_undo_brings_it_back(make_app, app_home):
    issues = _issues(app_home)
    rid, given, suggested = issues.ids[0], issues.given[0], issues.suggested[0]
    at = make_app(PAGE)
    assert not at.exception, at.exception
    assert at.title[0].value == "Label review"
    assert rid in _queue(at) and len(_queue(at)) == 20
    total = _count(at)
    assert total == int((issues.scores >= 0.5).sum())

    at.button(key=f"qa:accept:{rid}").click().run()
    assert not at.exception, at.exception
    assert rid not in _queue(at) and len(_queue(at)) == 20
    # the new label changes its neighbours' votes too: the queue is the re-scored rows at >= 0.5, less rid
    rescored = _issues(app_home)
    assert _count(at) == int((rescored.scores >= 0.5).sum()) - int(rescored.scores[rescored.ids.index(rid)] >= 0.5)
    ws = open_workspace(app_home)
    assert _labels(ws)[rid] == suggested
    assert ws.dataset("digits").rows().set_index("id").loc[rid, "label"] == given  # source kept

    assert _catalog_label(at, rid) == suggested
    open_row(at, "catalog", rid)
    assert not at.exception, at.exception
    assert f"`{rid}` · 1 of 1" in [m.value for m in at.markdown]  # the detail dialog
    history = at.dataframe[1].value
    assert history[["from", "to", "by", "undone"]].values.tolist() == [[given, suggested, "label review", ""]]

    at.switch_page(str(REPO / PAGE)).run()
    at.button(key="qa:undo").click().run()
    assert not at.exception, at.exception
    assert rid in _queue(at)
    assert _count(at) == total
    assert _labels(open_workspace(app_home))[rid] == given
    assert at.button(key="qa:undo").disabled
    assert _catalog_label(at, rid) == given


def test_correct_skip_and_another_label_are_saved_and_undone_in_reverse(make_app, app_home):
    issues = _issues(app_home)
    correct, skipped, other = issues.ids[1], issues.ids[2], issues.ids[3]
    new_label = next(lab for lab in "0123456789" if lab not in (issues.given[3], issues.suggested[3]))
    at = make_app(PAGE)
    at.button(key=f"qa:correct:{correct}").click().run()
    at.button(key=f"qa:skip:{skipped}").click().run()
    at.selectbox(key=f"qa:other:{other}").select(new_label).run()
    assert not at.exception, at.exception
    queue = _queue(at)
    assert not {correct, skipped, other} & set(queue) and len(queue) == 20
    ws = open_workspace(app_home)
    assert ws.store.reviewed("digits", "label-issue") == {
        correct: "correct", skipped: "skipped", other: "relabeled"}
    assert _labels(ws)[other] == new_label

    at.checkbox(key="qa:show_skipped").check().run()
    assert skipped in _queue(at) and correct not in _queue(at)
    at.checkbox(key="qa:show_skipped").uncheck().run()

    at.button(key="qa:undo").click().run()  # the relabel
    assert _labels(ws)[other] == issues.given[3] and other in _queue(at)
    assert ws.store.reviewed("digits", "label-issue") == {correct: "correct", skipped: "skipped"}
    at.button(key="qa:undo").click().run()  # the skip
    at.button(key="qa:undo").click().run()  # the correct mark
    assert ws.store.reviewed("digits", "label-issue") == {}
    assert {correct, skipped, other} <= set(_queue(at))
    assert [h.reverted is not None for h in ws.store.label_history("digits", other)] == [True]


def test_next_batch_shows_the_next_twenty(make_app, app_home):
    issues = _issues(app_home)
    at = make_app(PAGE)
    at.button(key="qa:next").click().run()
    assert set(_queue(at)) == set(issues.ids[20:40])
    assert "showing 21-40" in _to_review(at)
    at.button(key="qa:prev").click().run()
    assert set(_queue(at)) == set(issues.ids[:20])


def test_keep_one_tags_the_others_and_undo_removes_only_the_new_tags(make_app, app_home):
    ws = open_workspace(app_home)
    dups = find_near_duplicates(load_index(ws.dataset("digits")), 0.95, _labels(ws))
    group = dups.groups[0]
    keeper, already = group.ids[1], group.ids[0]
    ws.store.tag_rows("digits", [already], "duplicate")  # tagged before: undo must keep it
    at = make_app(PAGE)
    summary = next(m.value for m in at.markdown if "pairs in" in m.value)
    assert summary.startswith(f"**{len(dups.pairs):,} pairs in {len(dups.groups):,} groups**")
    assert group.conflict and any("conflicting labels]" in m.value for m in at.markdown)

    at.radio(key=f"qa:keep:{group.ids[0]}").set_value(keeper).run()
    at.button(key=f"qa:dedup:{group.ids[0]}").click().run()
    assert not at.exception, at.exception
    tagged = {r for r, tags in ws.store.tags_by_row("digits").items() if "duplicate" in tags}
    assert tagged == set(group.ids) - {keeper}
    assert f"qa:keep:{group.ids[0]}" not in [r.key for r in at.radio]  # resolved: hidden

    at.button(key="qa:undo").click().run()
    tagged = {r for r, tags in ws.store.tags_by_row("digits").items() if "duplicate" in tags}
    assert tagged == {already}
    assert f"qa:keep:{group.ids[0]}" in [r.key for r in at.radio]


def test_outliers_grid_is_sorted_by_uniqueness(make_app, app_home):
    ws = open_workspace(app_home)
    outliers = score_outliers(load_index(ws.dataset("digits")))
    at = make_app(PAGE)
    shown = grid_ids(at, "qa:out")
    assert len(shown) == 100 and set(shown) == set(outliers.ids[:100])  # one page, most unique first
    assert shown[0] == outliers.ids[0]
    top = grid_payload(at, "qa:out")["rows"][0]
    assert top["badge"] == "1.000" and "score 1.000" in top["hover"].splitlines()


def test_quality_columns_filter_the_catalog_and_order_smart_select(make_app, app_home):
    ws = open_workspace(app_home)
    index = load_index(ws.dataset("digits"))
    table = quality_columns(index, _labels(ws))
    at = make_app()
    assert at.multiselect(key="flt:digits:cat:suggested_label").options
    at.slider(key="flt:digits:rng:uniqueness").set_value((0.6, 1.0)).run()
    assert not at.exception, at.exception
    expected = int(table["uniqueness"].between(0.6, 1.0).sum())
    assert 0 < expected < 1797 and f"**{expected:,} of 1,797 rows**" in _texts(at)
    at.slider(key="flt:digits:rng:uniqueness").set_value((0.0, 1.0)).run()

    at.switch_page(str(REPO / "pages/smart_select.py")).run()
    at.selectbox(key="sel:method").select("ordered").run()
    at.number_input(key="sel:n").set_value(5).run()
    at.selectbox(key="sel:by").select("uniqueness").run()
    at.checkbox(key="sel:desc").check().run()
    at.button(key="sel:preview_btn").click().run()
    assert not at.exception, at.exception
    shown = grid_ids(at, "sel:grid")
    assert set(shown) == set(score_outliers(index).ids[:5])


def test_accepting_rescores_labels_without_a_new_knn_pass(make_app, monkeypatch):
    import ui.quality_data as qd

    calls = {"knn": 0, "scoring": 0}

    def counted(name, func):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return func(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(qd, "nearest_neighbours", counted("knn", qd.nearest_neighbours))
    monkeypatch.setattr(qd, "find_label_issues", counted("scoring", qd.find_label_issues))
    at = make_app(PAGE)
    assert calls == {"knn": 1, "scoring": 1}
    at.run()  # a plain rerun computes nothing
    assert calls == {"knn": 1, "scoring": 1}
    at.button(key=f"qa:accept:{_queue(at)[0]}").click().run()
    assert calls == {"knn": 1, "scoring": 2}



def test_each_flagged_row_shows_its_nearest_rows_with_label_and_similarity(make_app, app_home):
    import numpy as np

    from core.embeddings import load_embedding
    from tests.pages.shown import unescaped
    from tests.pages.tree import path_of, under

    ws = open_workspace(app_home)
    issues, labels = _issues(app_home), _labels(ws)
    emb = load_embedding(ws.dataset("digits"))
    ids, vectors = [str(i) for i in emb.ids], np.asarray(emb.vectors)
    at = make_app(PAGE)
    assert not at.exception, at.exception
    for rid in _queue(at)[:3]:
        card = path_of(at, f"qa:accept:{rid}")[:-1]
        near = [c for c in under(at, card, "caption") if c.help]
        cosine = dict(zip(ids, vectors @ vectors[ids.index(rid)]))
        cosine.pop(rid)
        fifth = sorted(cosine.values(), reverse=True)[4]
        shown = [unescaped(c.help) for c in near]
        assert len(shown) == 5 and len(set(shown)) == 5 and rid not in shown
        assert all(cosine[n] >= fifth - 1e-5 for n in shown)  # the 5 nearest (ties in any order)...
        assert [cosine[n] for n in shown] == sorted((cosine[n] for n in shown), reverse=True)  # best first
        assert [c.value for c in near] == [f"**{labels[n]}** · {cosine[n]:.2f}" for n in shown]
        assert len(under(at, card, "image")) == 1 + 5  # the row and its neighbours' thumbnails
    assert issues.ids[0] in _queue(at)


def test_duplicate_pairs_show_their_similarity_and_rows_their_closest_twin(make_app, app_home):
    from core.quality import closest_partners

    ws = open_workspace(app_home)
    dups = find_near_duplicates(load_index(ws.dataset("digits")), 0.95, _labels(ws))
    partners = closest_partners(dups)
    at = make_app(PAGE)
    big = dups.groups[0]
    assert len(big.ids) > 2
    closest = [c.value for c in at.caption if c.value.startswith("closest: ")]
    for rid in big.ids[:6]:
        other, score = partners[rid]
        assert f"closest: `{other}` · {score:.3f}" in closest
        assert other in big.ids and score >= 0.95 - 1e-5

    pairs = [g for g in dups.groups if len(g.ids) == 2]
    at.number_input(key="qa:dup_page").set_value(dups.groups.index(pairs[0]) // 10 + 1).run()
    assert not at.exception, at.exception
    (a, b), score = pairs[0].ids, pairs[0].max_score
    assert (a, b, score) in dups.pairs
    heads = [m.value for m in at.markdown if m.value.startswith("**2 rows** · similarity ")]
    assert any(h.startswith(f"**2 rows** · similarity {score:.3f}") for h in heads)
    assert any(c.value.startswith(f"`{a}` · ") for c in at.caption)
    assert any(c.value.startswith(f"`{b}` · ") for c in at.caption)
