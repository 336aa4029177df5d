"""Cluster map page: the map and summary for the digits demo, picks (lasso across traces
after filtering, summary-table row, "Select cluster" box) landing in the grid, picks kept
per dataset, slices with their recipe, relabel + undo, colourings (quality scores from
the shared kNN pass), coverage counts, caching and the UMAP confirmation.

AppTest (Streamlit 1.67) has no API for plotly selections or dataframe row selections:
the summary table's selection is set through ``at.session_state[<its key>]`` (its
writes are allowed; the key, one per clustering, is read from the element id), and the
map's selection event is sent the way the browser sends it, as a widget state for the chart's element id (``at._tree.get_widget_states()`` +
``at._run(states)``: private AppTest API, pinned Streamlit).
"""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pandas as pd
import pytest

import ui.cluster_widgets as cw
from core.clusters import cluster, project
from core.embeddings import import_embeddings, load_embedding, load_index
from core.filters import RowFilter
from core.quality import quality_columns
from core.workspace import open_workspace
from tests.conftest import REPO
from tests.helpers.apptest import (
    click_rows,
    finish_job,
    finish_running_jobs,
    grid_payload,
    select_rows,
)
from tests.helpers.apptest import grid_ids as grid

PAGE = str(REPO / "pages/clusters.py")
EMB = "efficientnet-lite0"


class Spy:
    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.fn(*args, **kwargs)


def open_map(make_app, method: str = "pca", **session) -> object:
    """The cluster page in a new session, with session values set before it first runs."""
    at = make_app()
    at.session_state["clu:method"] = method
    for key, value in session.items():
        at.session_state[key] = value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    at.map_job = None  # the job that computed the map for this session, if one was needed
    if any("runs in the background" in c.value for c in at.caption):  # a first map: a job
        at.map_job = finish_job(at, os.environ["CATALOG_HOME"], at.session_state["sidebar:dataset"], "map")
    return at


def settle(at) -> None:
    """If the page started the map as a background job, wait for it and rerun."""
    if any("runs in the background" in c.value for c in at.caption):
        finish_running_jobs(at)


def traces(at) -> list[dict]:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)["data"]


def ids_of(trace: dict) -> list[str]:
    """The row ids of a plotted trace, in point order (the first line of each hover text)."""
    return [h.split("<br>")[0] for h in trace["hovertext"]]


def array(value) -> np.ndarray:
    """A plotly JSON array (plain list or typed ``{"dtype", "bdata"}``) as numpy."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def lasso(at, points: list[tuple[int, int]]) -> None:
    """Send a plotly selection of (curve_number, point_index) points, as the browser does."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    chart = at.get("plotly_chart")[0]
    states = at._tree.get_widget_states()
    event = {"selection": {"points": [{"curve_number": c, "point_index": i, "point_number": i}
                                      for c, i in points],
                           "point_indices": [i for _, i in points], "box": [], "lasso": []}}
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(event)))
    at._run(states)
    assert not at.exception, at.exception


def box(at):
    """The "Select cluster" box (keyed per clustering: ``cw.pick_keys``)."""
    (found,) = [s for s in at.selectbox if s.label == "Select cluster"]
    return found


def choose_row(at, row: int) -> None:
    """Select row ``row`` of the summary table (the first dataframe), as the browser does."""
    from streamlit.runtime.state.common import user_key_from_element_id

    key = user_key_from_element_id(at.dataframe[0].proto.id)
    at.session_state[key] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception, at.exception


def grid_ids(at) -> list[str]:
    return grid(at, "clu:grid")


def picked_count(at) -> int | None:
    head = [s.value for s in at.subheader if s.value.startswith("Picked rows")]
    return int(head[0].split("(")[1].rstrip(")").replace(",", "")) if head else None


def selection(at) -> list[str]:
    return list(at.session_state["selection"].get("digits", {}))


@pytest.fixture
def truth(app_home):
    """Rows, embedding, KMeans (k=10, seed 0) and PCA map of digits computed with core."""
    ws = open_workspace(app_home)
    rows = ws.dataset("digits").rows()
    emb = load_embedding(ws.dataset("digits"), EMB)
    ids = [str(i) for i in emb.ids]
    clu = cluster(ids, emb.vectors, k=10, seed=0)
    proj = project(ids, emb.vectors, method="pca", seed=0)
    return {"ws": ws, "rows": rows, "assign": dict(zip(clu.ids, clu.assignments.tolist())),
            "clu": clu, "xy": dict(zip(proj.ids, proj.coords.tolist()))}


def test_map_and_summary_render_for_digits_and_are_not_recomputed(make_app, truth, monkeypatch):
    proj_spy, clu_spy = Spy(cw.project), Spy(cw.cluster)
    monkeypatch.setattr(cw, "project", proj_spy)
    monkeypatch.setattr(cw, "cluster", clu_spy)
    at = open_map(make_app)
    assert at.title[0].value == "Cluster map"
    assert any(c.value.startswith("1,797 rows on the map") for c in at.caption)
    assert not any("no vector" in c.value for c in at.caption)

    data = traces(at)
    assert [t["name"] for t in data] == [f"cluster {c}" for c in range(10)]
    assert all(t["type"] == "scattergl" for t in data)
    for c, t in enumerate(data):
        assert ids_of(t) == truth["clu"].ids_in(c)  # dataset order within a cluster
        xy = np.column_stack([array(t["x"]), array(t["y"])])
        np.testing.assert_allclose(xy, [truth["xy"][i] for i in ids_of(t)], atol=1e-5)

    table = at.dataframe[0].value
    assert table["cluster"].tolist() == list(range(10))
    assert table["rows"].tolist() == [s.size for s in truth["clu"].summaries]
    assert table["shown"].tolist() == table["rows"].tolist() and table["rows"].sum() == 1797
    labels = truth["rows"].set_index("id")["label"]
    majority = labels[truth["clu"].ids_in(0)].value_counts()
    assert table["majority label"][0] == majority.index[0]
    assert table["purity"][0] == pytest.approx(majority.iloc[0] / majority.sum(), abs=1e-3)
    assert any("choose a cluster" in i.value for i in at.info) and picked_count(at) == 0

    # reruns and a new colouring reuse the cached map and clusters
    assert len(proj_spy.calls) == 2 and len(clu_spy.calls) == 1  # compute + read back from disk
    at.run()
    at.selectbox(key="clu:color").select(cw.COLOR_LABEL).run()
    assert [t["name"] for t in traces(at)] == [str(d) for d in range(10)]
    assert len(proj_spy.calls) == 2 and len(clu_spy.calls) == 1
    at.number_input(key="clu:k").set_value(4).run()
    assert len(at.dataframe[0].value) == 4 and len(clu_spy.calls) == 2 and len(proj_spy.calls) == 2

    fresh = open_map(make_app)  # a new session finds the map on disk: no compute step
    assert len(proj_spy.calls) == 2 and not fresh.get("progress")
    assert len(traces(fresh)) == 10


def test_choosing_a_cluster_selects_its_rows(make_app, truth):
    at = open_map(make_app)
    box(at).select(2).run()
    want = truth["clu"].ids_in(2)
    assert selection(at) == want and picked_count(at) == len(want)
    assert len(grid_ids(at)) == min(100, len(want)) and set(grid_ids(at)) <= set(want)
    assert grid_payload(at, "clu:grid")["total_selected"] == len(want)

    choose_row(at, 5)
    want = truth["clu"].ids_in(5)
    assert selection(at) == want and picked_count(at) == len(want)
    assert box(at).value is None  # the box no longer claims cluster 2

    first = grid_ids(at)[0]  # un-ticking a card sticks: the table pick is not applied again
    assert set(grid_payload(at, "clu:grid")["selected"]) == set(grid_ids(at))
    click_rows(at, "clu:grid", grid_ids(at)[1:])
    assert not at.exception, at.exception
    at.run()
    assert first not in selection(at) and len(selection(at)) == len(want) - 1
    assert picked_count(at) == len(want)


def test_a_cluster_chosen_on_one_dataset_is_not_picked_on_another(make_app, truth):
    docs = open_workspace(truth["ws"].home).dataset("api-docs").rows()["id"].astype(str).tolist()
    kept = [docs[3], docs[7]]  # api-docs rows selected earlier (e.g. ticked in the Catalog)
    at = open_map(make_app, selection={"api-docs": dict.fromkeys(kept, True)})
    box(at).select(1).run()
    choose_row(at, 4)
    want = truth["clu"].ids_in(4)
    assert selection(at) == want and picked_count(at) == len(want)

    at.selectbox(key="sidebar:dataset").select("api-docs").run()
    assert not at.exception, at.exception
    settle(at)  # api-docs' first map is a background job
    assert list(at.session_state["selection"]["api-docs"]) == kept  # not api-docs' cluster 1 or 4
    assert picked_count(at) == 0 and box(at).value is None
    assert at.session_state["clu:_picked"].get("api-docs") is None

    box(at).select(1).run()  # a pick of its own still works
    docs_1 = list(at.session_state["selection"]["api-docs"])
    assert docs_1 and set(docs_1) <= set(docs) and not set(docs_1) & set(want)

    at.selectbox(key="sidebar:dataset").select("digits").run()  # back: nothing picked again
    assert not at.exception, at.exception
    assert selection(at) == want and picked_count(at) == len(want)
    assert list(at.session_state["selection"]["api-docs"]) == docs_1


def test_lasso_across_traces_after_filtering_picks_the_plotted_rows(make_app, truth):
    keep = ("3", "5")
    at = open_map(make_app, row_filter={"digits": RowFilter(labels=keep)})
    rows = truth["rows"]
    view = rows[rows["label"].isin(keep)]["id"].tolist()
    assert any(c.value.startswith(f"{len(view):,} rows on the map") for c in at.caption)

    data = traces(at)
    shown = {int(t["name"].split()[-1]): ids_of(t) for t in data}
    for c, ids in shown.items():  # each trace: the filtered rows of its cluster, in row order
        assert ids == [i for i in view if truth["assign"][i] == c]
    assert sum(len(v) for v in shown.values()) == len(view)
    assert at.dataframe[0].value["shown"].sum() == len(view)

    clusters = [int(t["name"].split()[-1]) for t in data]
    big = sorted(range(len(data)), key=lambda j: -len(shown[clusters[j]]))[:3]
    points = [(big[0], 0), (big[1], len(shown[clusters[big[1]]]) - 1), (big[2], 1), (big[0], 0)]
    expected = list(dict.fromkeys(shown[clusters[j]][i] for j, i in points))
    lasso(at, points)
    assert selection(at) == [] and picked_count(at) == 0  # offered, not applied
    at.button(key="clu:sel:replace").click().run()
    assert selection(at) == expected and picked_count(at) == 3
    for rid, (j, i) in zip(expected, points):
        t = data[j]
        assert truth["xy"][rid] == pytest.approx([array(t["x"])[i], array(t["y"])[i]], abs=1e-5)
        assert rows.set_index("id").loc[rid, "label"] in keep
    assert sorted(grid(at, "clu:grid")) == sorted(expected)

    at.text_input(key="clu:bar:slice").input("lassoed").run()
    at.button(key="clu:bar:slice_btn").click().run()
    saved = truth["ws"].store.get_slice("digits", "lassoed")
    assert list(saved.ids) == expected
    recipe = saved.recipe
    assert recipe["method"] == "lasso" and recipe["embedding"] == EMB and recipe["k"] == 10
    assert recipe["projection"]["method"] == "pca" and recipe["projection"]["seed"] == 0
    assert recipe["filter"]["labels"] == list(keep) and recipe["colour_by"] == "cluster"
    assert recipe["combine"] == "replace"

    at.button(key="clu:bar:anchor").click().run()
    assert list(at.session_state["anchors"]["digits"]) == expected

    lasso(at, [(0, len(ids_of(data[0])))])  # an index the chart does not have
    assert any("has " + str(len(ids_of(data[0]))) + " points" in e.value for e in at.error)
    assert selection(at) == expected


def test_relabel_picked_rows_then_undo(make_app, truth):
    at = open_map(make_app)
    box(at).select(3).run()
    members = truth["clu"].ids_in(3)
    at.text_input(key="clu:new_label").input("seven").run()
    at.button(key="clu:relabel").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith(f"{len(members):,} of {len(members):,} rows relabelled") for s in at.success)
    overrides = truth["ws"].store.label_overrides("digits")
    assert set(overrides) == set(members) and set(overrides.values()) == {"seven"}
    row = at.dataframe[0].value.iloc[3]
    assert row["majority label"] == "seven" and row["purity"] == 1.0
    assert row["top labels"] == f"seven ({len(members)})"

    at.button(key="clu:undo").click().run()
    assert any(f"{len(members):,} label edits reverted" in s.value for s in at.success)
    assert truth["ws"].store.label_overrides("digits") == {}
    assert at.dataframe[0].value.iloc[3]["majority label"] != "seven"
    assert not [b for b in at.button if b.key == "clu:undo"]


def test_colourings_tag_quality_and_numeric_column(make_app, truth, app_home):
    tagged = truth["clu"].ids_in(0)[:7]
    truth["ws"].store.tag_rows("digits", tagged, "odd")
    at = open_map(make_app)
    options = at.selectbox(key="clu:color").options
    assert {cw.COLOR_TAG, cw.COLOR_ISSUE, cw.COLOR_UNIQUE, "column: file_size"} <= set(options)
    assert "column: id" not in options and "column: image" not in options

    at.selectbox(key="clu:color").select(cw.COLOR_TAG).run()
    at.selectbox(key="clu:tag").select("odd").run()
    data = {t["name"]: ids_of(t) for t in traces(at)}
    assert data["tagged odd"] == [i for i in truth["rows"]["id"] if i in set(tagged)]
    assert len(data["not tagged"]) == 1797 - 7

    at.selectbox(key="clu:color").select(cw.COLOR_UNIQUE).run()
    (trace,) = traces(at)
    scores = quality_columns(load_index(truth["ws"].dataset("digits"), EMB),
                             dict(zip(truth["rows"]["id"], truth["rows"]["label"]))).set_index("id")
    np.testing.assert_allclose(array(trace["marker"]["color"]),
                               scores.loc[list(ids_of(trace)), "uniqueness"], atol=1e-6)
    assert trace["marker"]["showscale"] is True

    at.selectbox(key="clu:color").select("column: file_size").run()
    (trace,) = traces(at)
    sizes = truth["rows"].set_index("id")["file_size"]
    np.testing.assert_array_equal(array(trace["marker"]["color"]),
                                  sizes[list(ids_of(trace))].astype(float))


def test_quality_colouring_and_relabel_reuse_the_catalog_neighbours(make_app, truth, monkeypatch):
    from core.quality import knn

    passes = Spy(knn.rows_neighbours)
    monkeypatch.setattr(knn, "rows_neighbours", passes)
    at = make_app("pages/catalog.py")  # the Catalog's quality columns: the one kNN pass
    assert not at.exception, at.exception
    assert len(passes.calls) == 1
    at.session_state["clu:method"] = "pca"
    at.switch_page(PAGE).run()
    settle(at)
    at.selectbox(key="clu:color").select(cw.COLOR_UNIQUE).run()
    at.selectbox(key="clu:color").select(cw.COLOR_ISSUE).run()
    assert not at.exception, at.exception
    assert len(passes.calls) == 1

    box(at).select(3).run()
    members = truth["clu"].ids_in(3)
    at.text_input(key="clu:new_label").input("seven").run()
    at.button(key="clu:relabel").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith(f"{len(members):,} of") for s in at.success)
    (trace,) = traces(at)
    colours = array(trace["marker"]["color"])
    assert len(passes.calls) == 1  # rescored on the cached neighbours

    labels = dict(zip(truth["rows"]["id"], truth["rows"]["label"])) | dict.fromkeys(members, "seven")
    scores = quality_columns(load_index(truth["ws"].dataset("digits"), EMB), labels).set_index("id")
    np.testing.assert_allclose(colours, scores.loc[list(ids_of(trace)), "label_issue_score"], atol=1e-6)


def test_rows_without_a_vector_are_counted(make_app, app_home, tmp_path):
    ds = open_workspace(app_home).dataset("digits")
    emb = load_embedding(ds, EMB)
    np.save(tmp_path / "part.npy", np.asarray(emb.vectors[:1000]))
    (tmp_path / "part.txt").write_text("\n".join(map(str, emb.ids[:1000])), encoding="utf-8")
    import_embeddings(ds, tmp_path / "part.npy", "partial", ids_file=tmp_path / "part.txt")
    at = open_map(make_app, **{"sidebar:embedding": "partial"})
    assert any(c.value == "1,000 rows on the map (filter: all rows) · 797 rows have no vector in this embedding"
               for c in at.caption), [c.value for c in at.caption]
    assert sum(len(ids_of(t)) for t in traces(at)) == 1000
    assert at.dataframe[0].value["rows"].sum() == 1000


def test_umap_asks_first_then_computes_once_with_progress(make_app, app_home, monkeypatch):
    monkeypatch.setattr(cw, "estimate_projection_seconds", lambda n, d: 600.0)
    calls, ticks, real = [], [], cw.project

    def spying(*args, **kwargs):
        calls.append(kwargs)
        if kwargs.get("progress") is not None:
            bar = kwargs["progress"]
            kwargs["progress"] = lambda done, total: (ticks.append((done, total)), bar(done, total))
        return real(*args, **kwargs)

    monkeypatch.setattr(cw, "project", spying)
    at = open_map(make_app, method="umap")
    assert any("takes about 10 min the first time" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not calls
    assert not list(open_workspace(app_home).dataset("digits").projections_dir.glob("proj-*.json"))

    at.button(key="clu:compute").click().run()
    assert not at.exception, at.exception
    # the map is a background job: its progress (and the estimate) is drawn meanwhile
    assert any("takes about 10 min" in p.proto.text for p in at.get("progress"))
    assert any("runs in the background" in c.value for c in at.caption)
    finish_job(at, app_home, "digits", "map")
    assert calls[0]["method"] == "umap" and ticks and ticks[-1] == (1797, 1797)
    assert len(traces(at)) == 10 and sum(len(ids_of(t)) for t in traces(at)) == 1797

    fresh = open_map(make_app, method="umap")  # on disk now: no question, no new computation
    assert not [b for b in fresh.button if b.key == "clu:compute"] and len(traces(fresh)) == 10
    assert all(c.get("progress") is None for c in calls[1:]) and len(ticks) == 1


def test_hover_text_is_plain_and_groups_are_capped():
    points = pd.DataFrame({
        "id": [f"r{i}" for i in range(30)], "x": np.arange(30.0), "y": np.arange(30.0),
        "cluster": [0] * 30, "label": ["<b>bold</b>"] * 29 + [None],
        "text": ["<script>alert(1)</script> hi"] * 30, "kind": [f"k{i % 25}" for i in range(30)],
    })
    hover = cw.hover_texts(points)
    assert hover[0] == "r0<br>label: bbold/b<br>scriptalert(1)/script hi"
    assert hover[29].startswith("r29<br>label: —<br>")
    fig, ids = cw.build_map(points, cw.color_values(points, "column: kind"), "column: kind")
    assert len(fig.data) == cw.MAX_GROUPS and fig.data[-1].name == "(other)"
    flat = [i for trace in ids for i in trace]
    assert sorted(flat) == sorted(points["id"]) and len(flat) == 30
    assert [[h.split("<br>")[0] for h in t.hovertext] for t in fig.data] == ids
    assert cw.map_selection({"selection": {"points": [{"curve_number": 19, "point_index": 0}]}},
                            ids)[0] == [ids[19][0]]


def test_a_lasso_changes_the_selection_only_through_a_button(make_app, truth):
    at = open_map(make_app)
    data = traces(at)
    c0, c1 = ids_of(data[0]), ids_of(data[1])
    before = [c0[0], c0[1], c1[0]]  # selected earlier, e.g. in the Catalog
    select_rows(at, "digits", before)
    at.run()

    lasso(at, [(0, 0), (0, 2), (1, 1)])
    assert selection(at) == before and picked_count(at) == 0  # nothing changed by the lasso
    offer = next(m.value for m in at.markdown if m.value.startswith("**The lasso caught"))
    assert offer.startswith("**The lasso caught 3 points** · 3 rows selected now (1 of them caught)")
    assert [b.key for b in at.button if b.key.startswith("clu:sel:")] == [
        "clu:sel:replace", "clu:sel:add", "clu:sel:intersect"]
    at.run()
    assert selection(at) == before  # a rerun applies nothing either

    at.button(key="clu:sel:add").click().run()  # caught: c0[0], c0[2], c1[1]
    assert not at.exception, at.exception
    union = [c0[0], c0[1], c1[0], c0[2], c1[1]]
    assert selection(at) == union and picked_count(at) == 5
    assert not [b for b in at.button if b.key.startswith("clu:sel:")]  # the offer is used up

    lasso(at, [(0, 1), (0, 2), (0, 3)])
    assert selection(at) == union
    at.button(key="clu:sel:intersect").click().run()
    assert selection(at) == [c0[1], c0[2]] and picked_count(at) == 2

    lasso(at, [(1, 3), (1, 4)])
    at.button(key="clu:sel:replace").click().run()
    assert selection(at) == [c1[3], c1[4]]
    assert at.session_state["clu:_picked"]["digits"]["recipe"]["combine"] == "replace"


def test_combine_modes():
    from core.errors import InputError
    from ui.cluster_picks import combine

    assert combine(["a", "b"], ["c", "a"], "replace") == ["c", "a"]
    assert combine(["a", "b"], ["c", "a"], "add") == ["a", "b", "c"]
    assert combine(["a", "b", "c"], ["c", "a", "x"], "intersect") == ["a", "c"]
    with pytest.raises(InputError, match="unknown selection mode 'xor'; choose one of replace, add, intersect"):
        combine([], [], "xor")


def send_selection(at, selection: dict) -> None:
    """Send a plotly selection event (points, box, lasso) for the map, as the browser does."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    chart = at.get("plotly_chart")[0]
    states = at._tree.get_widget_states()
    event = {"selection": {"points": [], "point_indices": [], "box": [], "lasso": [], **selection}}
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(event)))
    at._run(states)
    assert not at.exception, at.exception


def test_a_large_map_draws_a_sample_over_the_density_and_a_lasso_takes_every_row_inside(
        make_app, truth, monkeypatch):
    monkeypatch.setattr(cw, "MAP_POINT_CAP", 400)
    at = open_map(make_app)
    data = traces(at)
    assert data[0]["type"] == "heatmap" and all(t["type"] == "scattergl" for t in data[1:])
    drawn = [i for t in data[1:] for i in ids_of(t)]
    assert len(drawn) == len(set(drawn)) == 400
    assert any(c.value.startswith("1,797 rows on the map") and "400 of them drawn" in c.value for c in at.caption)
    assert at.dataframe[0].value["shown"].sum() == 1797  # the summary counts every row, drawn or not

    ids = truth["rows"]["id"].tolist()
    xy = np.array([truth["xy"][i] for i in ids])
    cx, cy = np.median(xy, axis=0)
    rx, ry = 0.6 * xy.std(axis=0)
    diamond = {"x": [cx - rx, cx, cx + rx, cx], "y": [cy, cy - ry, cy, cy + ry]}
    inside = np.abs(xy[:, 0] - cx) / rx + np.abs(xy[:, 1] - cy) / ry < 1
    expected = [rid for rid, hit in zip(ids, inside) if hit]
    drawn_inside = [rid for rid in expected if rid in set(drawn)]
    assert len(expected) > len(drawn_inside) > 0
    where = {rid: (j, i) for j, t in enumerate(data) if j for i, rid in enumerate(ids_of(t))}
    points = [{"curve_number": where[r][0], "point_index": where[r][1]} for r in drawn_inside]
    send_selection(at, {"points": points, "lasso": [{"xref": "x", "yref": "y", **diamond}]})
    offer = next(m.value for m in at.markdown if m.value.startswith("**The lasso caught"))
    assert offer.startswith(f"**The lasso caught {len(expected):,} points**")
    at.button(key="clu:sel:replace").click().run()
    assert selection(at) == expected and picked_count(at) == len(expected)
    recipe = at.session_state["clu:_picked"]["digits"]["recipe"]
    assert recipe["method"] == "lasso" and recipe["regions"] == [{"kind": "lasso", **diamond}]

    # a box too; and the selected rows are always among the drawn points
    send_selection(at, {"box": [{"xref": "x", "yref": "y", "x": [cx, cx + rx], "y": [cy - ry, cy]}]})
    boxed = [rid for rid, (x, y) in zip(ids, xy) if cx <= x <= cx + rx and cy - ry <= y <= cy]
    at.button(key="clu:sel:intersect").click().run()
    assert selection(at) == [rid for rid in expected if rid in set(boxed)]
    now_drawn = {i for t in traces(at)[1:] for i in ids_of(t)}
    assert set(selection(at)) <= now_drawn and len(now_drawn) == 400
