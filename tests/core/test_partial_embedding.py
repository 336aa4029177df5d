"""An imported embedding that covers 80% of the rows: search, smart select, clusters and
label issues work on the covered rows, and the CLI says how many rows are not covered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.clusters import cluster
from core.embeddings import import_embeddings, load_embedding, load_index
from core.errors import NotFoundError
from core.ingest import ingest
from core.quality import find_label_issues
from core.search import find_similar
from core.select import select_by_cluster, select_random
from tests.cli.test_cli import catalog

N, DIMS, CLASSES = 60, 8, ("a", "b", "c")
IDS = [f"r{i:02d}" for i in range(N)]
TRUE = {rid: CLASSES[i % 3] for i, rid in enumerate(IDS)}  # the class each vector points to
UNCOVERED = [rid for i, rid in enumerate(IDS) if i % 5 == 4]  # 12 rows = 20%
COVERED = [rid for rid in IDS if rid not in UNCOVERED]
MISLABELLED = "r00"  # covered: true class a, labelled b
MISLABELLED_UNCOVERED = "r04"  # not covered: true class b, labelled c


def _labels() -> dict[str, str]:
    labels = dict(TRUE)
    labels[MISLABELLED], labels[MISLABELLED_UNCOVERED] = "b", "c"
    return labels


def _vectors(ids: list[str]) -> np.ndarray:
    """(n, DIMS) float32: the row's class axis plus small seeded noise (deterministic)."""
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 0.15, (N, DIMS)).astype(np.float32)
    out = np.zeros((len(ids), DIMS), np.float32)
    for j, rid in enumerate(ids):
        out[j, CLASSES.index(TRUE[rid])] = 1.0
        out[j] += noise[IDS.index(rid)]
    return out


@pytest.fixture
def partial(ws, tmp_path: Path):
    """Dataset 'notes' (60 text rows) with embedding 'mine' imported for 48 of them."""
    labels = _labels()
    table = tmp_path / "notes.csv"
    pd.DataFrame({"id": IDS, "text": [f"note number {i} about {TRUE[r]}" for i, r in enumerate(IDS)],
                  "label": [labels[r] for r in IDS]}).to_csv(table, index=False)
    ingest(ws, table, "notes")
    vectors = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"id": COVERED, "vector": list(_vectors(COVERED))}), vectors)
    report = import_embeddings(ws.dataset("notes"), vectors, "mine")
    return ws, report


def test_import_reports_the_uncovered_rows(partial):
    _, report = partial
    assert report.uncovered == len(UNCOVERED) == 12
    assert report.info.rows == 48 and report.info.dataset_rows == 60
    assert report.info.coverage == pytest.approx(0.8)
    assert "covers 48 of 60 rows (12 without a vector)" in report.summary()


def test_similarity_search_returns_only_covered_rows(partial):
    ws, _ = partial
    index = load_index(ws.dataset("notes"), "mine")
    assert len(index) == 48
    everything = find_similar(index, ["r03"], k=None, threshold=-1.0, embedding="mine")
    assert set(everything.ids) == set(COVERED) - {"r03"}
    top = find_similar(index, ["r03"], k=10)
    assert {TRUE[i] for i in top.ids} == {TRUE["r03"]}  # the nearest rows share its class
    with pytest.raises(NotFoundError, match="r09"):
        find_similar(index, ["r09"], k=5)  # r09 has no vector: named, not silently ignored


def test_smart_select_on_the_covered_rows(partial):
    ws, _ = partial
    emb = load_embedding(ws.dataset("notes"), "mine")
    assert sorted(emb.ids) == COVERED
    rand = select_random(list(emb.ids), 10, seed=3)
    assert len(rand) == 10 and set(rand.ids) <= set(COVERED)
    spread = select_by_cluster(list(emb.ids), np.asarray(emb.vectors), 6, k=3, seed=0)
    assert len(spread) == 6 and set(spread.ids) <= set(COVERED)
    assert sorted(TRUE[i] for i in spread.ids) == ["a", "a", "b", "b", "c", "c"]


def test_clusters_on_the_covered_rows(partial):
    ws, _ = partial
    emb = load_embedding(ws.dataset("notes"), "mine")
    labels = _labels()
    result = cluster(list(emb.ids), np.asarray(emb.vectors), k=3, labels=[labels[i] for i in emb.ids])
    assert sum(s.size for s in result.summaries) == 48
    assert sorted(s.majority_label for s in result.summaries) == ["a", "b", "c"]
    for c in range(3):  # each cluster is one true class
        assert len({TRUE[i] for i in result.ids_in(c)}) == 1


def test_label_issues_on_the_covered_rows(partial):
    ws, _ = partial
    index = load_index(ws.dataset("notes"), "mine")
    issues = find_label_issues(index, _labels(), k=5)
    assert set(issues.ids) <= set(COVERED) and len(issues) == 48
    assert issues.ids[0] == MISLABELLED and issues.suggested[0] == "a" and issues.given[0] == "b"
    assert issues.scores[0] > 0.9 and issues.scores[1] < 0.5
    assert MISLABELLED_UNCOVERED not in issues.ids


def test_cli_reports_the_uncovered_count(partial):
    ws, _ = partial
    home = ws.home
    out = catalog(home, "label-issues", "notes", "--embedding", "mine", "--k", "5", "--json")
    assert out.returncode == 0, out.stderr
    issues = json.loads(out.stdout)
    assert issues["not_covered"] == 12 == 0.2 * N
    assert issues["issues"][0]["id"] == MISLABELLED and issues["issues"][0]["suggested"] == "a"
    assert {i["id"] for i in issues["issues"]} <= set(COVERED)

    out = catalog(home, "clusters", "notes", "--embedding", "mine", "--k", "3", "--projection", "pca",
                  "--json")
    assert out.returncode == 0, out.stderr
    clusters = json.loads(out.stdout)
    assert clusters["not_covered"] == 12
    assert sorted(p["id"] for p in clusters["points"]) == COVERED
    assert sum(c["size"] for c in clusters["clusters"]) == 48

    out = catalog(home, "select", "notes", "--method", "cluster", "-n", "6", "--k", "3",
                  "--embedding", "mine", "--json")
    assert out.returncode == 0, out.stderr
    selected = json.loads(out.stdout)
    assert selected["recipe"]["not_covered"] == 12 and selected["recipe"]["embedding"] == "mine"
    assert len(selected["ids"]) == 6 and set(selected["ids"]) <= set(COVERED)

    out = catalog(home, "search", "notes", "--id", "r03", "-k", "100", "--embedding", "mine", "--json")
    assert out.returncode == 0, out.stderr
    assert {r["id"] for r in json.loads(out.stdout)["results"]} == set(COVERED) - {"r03"}
