"""`catalog clusters` as a user runs it: the --json shape, agreement with core, the
projection cache shared with the app, and one-line errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from core.clusters import cluster, project
from core.embeddings import load_embedding
from tests.cli.test_cli import assert_bad_input, catalog


def test_clusters_json_has_ten_clusters_and_one_point_per_row(digits_ws):
    home = digits_ws.home
    ds = digits_ws.dataset("digits")
    result = catalog(home, "clusters", "digits", "--k", "10", "--projection", "pca", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)

    clusters = payload["clusters"]
    assert [c["cluster"] for c in clusters] == list(range(10))
    sizes = [c["size"] for c in clusters]
    assert sum(sizes) == 1797 and sizes == sorted(sizes, reverse=True)  # numbered largest first
    for c in clusters:
        labels = [lab for lab, _ in c["top_labels"]]
        counts = [n for _, n in c["top_labels"]]
        assert set(labels) <= {str(d) for d in range(10)}
        assert sum(counts) == c["size"]  # every digit row is labelled
        assert counts == sorted(counts, reverse=True)

    rows = ds.rows()
    points = payload["points"]
    assert len(points) == 1797
    assert {p["id"] for p in points} == set(rows["id"])
    assert all(set(p) == {"id", "x", "y", "cluster"} for p in points)
    assert Counter(p["cluster"] for p in points) == {c["cluster"]: c["size"] for c in clusters}

    # the same answer as the core functions called directly (seed 0)
    emb = load_embedding(ds)
    ids = [str(i) for i in emb.ids]
    expected = cluster(ids, emb.vectors, k=10, seed=0)
    assigned = dict(zip(expected.ids, expected.assignments.tolist()))
    assert all(p["cluster"] == assigned[p["id"]] for p in points)
    coords = project(ids, emb.vectors, method="pca", seed=0)  # no cache: a fresh fit
    where = {rid: i for i, rid in enumerate(coords.ids)}
    got = np.array([[p["x"], p["y"]] for p in points])
    np.testing.assert_allclose(got, coords.coords[[where[p["id"]] for p in points]], atol=1e-5)

    # the labels of a cluster match the rows' labels
    by_id = dict(zip(rows["id"], rows["label"]))
    first = Counter(by_id[p["id"]] for p in points if p["cluster"] == 0)
    assert [[lab, n] for lab, n in first.most_common()] == sorted(
        clusters[0]["top_labels"], key=lambda t: (-t[1], t[0]))


def test_projection_is_cached_on_disk_and_reused(digits_ws):
    home = digits_ws.home
    projections = digits_ws.dataset("digits").projections_dir
    first = catalog(home, "clusters", "digits", "--k", "4", "--projection", "pca", "--json")
    assert first.returncode == 0, first.stderr
    records = sorted(p.name for p in projections.glob("proj-*.json"))
    assert len(records) == 1
    stamp = (projections / records[0]).stat().st_mtime_ns
    again = catalog(home, "clusters", "digits", "--k", "4", "--projection", "pca", "--json")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in projections.glob("proj-*.json")) == records
    assert (projections / records[0]).stat().st_mtime_ns == stamp  # read, not rewritten
    assert json.loads(again.stdout)["points"] == json.loads(first.stdout)["points"]


def test_bad_k_is_one_line_and_leaves_the_workspace_alone(digits_ws):
    # a first good run creates the store file (on first use) and a projection record
    assert catalog(digits_ws.home, "clusters", "digits", "--k", "3", "--projection", "pca").returncode == 0
    assert_bad_input(digits_ws.home, "clusters", "digits", "--k", "1", "--projection", "pca",
                     mentions="k must be an integer from 2")
    assert_bad_input(digits_ws.home, "clusters", "digits", "--k", "5000", "--projection", "pca",
                     mentions="(1797)")
    assert_bad_input(digits_ws.home, "clusters", "nope", "--projection", "pca", mentions="nope")
