"""The stored neighbours pass: chunked, resumable after a kill, discarded when stale, and
the same answers as the in-memory pass; chunked scoring equals unchunked scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.embeddings import load_index, rebuild_index, write_embedding
from core.ingest import ingest_table
from core.quality import (
    bulk,
    compute_neighbours,
    find_label_issues,
    find_near_duplicates,
    knn,
    lists,
    load_neighbours,
    nearest_neighbours,
    quality_columns,
    score_outliers,
)
from core.workspace import open_workspace

N, DIMS = 600, 16


class Killed(RuntimeError):
    """Stands in for the process being killed mid-pass."""


def _clustered(n: int = N, seed: int = 0) -> tuple[list[str], np.ndarray, dict[str, str]]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((12, DIMS)).astype(np.float32) * 3
    which = rng.integers(0, len(centers), n)
    vecs = centers[which] + rng.standard_normal((n, DIMS)).astype(np.float32)
    vecs[5] = vecs[4]  # an exact twin pair
    ids = [f"r{i:04d}" for i in range(n)]
    labels = {i: "abcd"[c % 4] for i, c in zip(ids, which)}
    labels[ids[7]] = None
    return ids, vecs, labels


def _dataset(tmp_path, n: int, kind: str):
    ws = open_workspace(tmp_path / "home")
    ids, vecs, _ = _clustered(n)
    table = tmp_path / "rows.parquet"
    pd.DataFrame({"id": ids, "text": ids}).to_parquet(table)
    ingest_table(ws, table, "d")
    write_embedding(ws.dataset("d"), "e", ids, vecs, {"encoder": None, "source": "imported"},
                    index_kind=kind)
    return ws.dataset("d"), vecs


@pytest.fixture
def ds(tmp_path):
    return _dataset(tmp_path, N, "exact")[0]


def _counting(monkeypatch, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(bulk, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(bulk, name, counted)
    return calls


def _kill_after(chunks: int):
    seen = [0]

    def progress(done: int, total: int) -> None:
        seen[0] += 1
        if seen[0] == chunks:
            raise Killed(f"killed at {done} of {total}")
    return progress


def test_stored_pass_equals_the_in_memory_pass_and_reads_back_memory_mapped(ds) -> None:
    index = load_index(ds, "e")
    stored = compute_neighbours(ds, "e", k=16, chunk_rows=128)
    memory = nearest_neighbours(index, k=16)
    np.testing.assert_array_equal(stored.scores, memory.scores)
    np.testing.assert_array_equal(stored.positions, memory.positions)
    assert stored.positions.dtype == np.int32 and isinstance(stored.scores, np.memmap)
    assert list(stored.ids) == list(index.ids)
    again = load_neighbours(ds, "e", 10)
    assert again is not None and again.k == 16
    assert load_neighbours(ds, "e", 17) is None  # narrower than asked
    assert not (ds.embedding_dir("e") / "quality" / bulk.PARTIAL_DIR).exists()


def test_a_killed_search_pass_resumes_without_recomputing_and_equals_an_uninterrupted_run(ds, monkeypatch) -> None:
    calls = _counting(monkeypatch, "rows_neighbours")
    with pytest.raises(Killed):
        compute_neighbours(ds, "e", k=16, chunk_rows=100, progress=_kill_after(3))
    assert len(calls) == 3 and load_neighbours(ds, "e") is None
    calls.clear()
    resumed = compute_neighbours(ds, "e", k=16, chunk_rows=100)
    assert len(calls) == 3  # 6 chunks of 100 rows: the 3 finished ones were not computed again
    fresh = nearest_neighbours(load_index(ds, "e"), k=16)
    np.testing.assert_array_equal(resumed.scores, fresh.scores)
    np.testing.assert_array_equal(resumed.positions, fresh.positions)


def test_a_killed_list_pass_resumes_and_equals_an_uninterrupted_run(tmp_path, monkeypatch) -> None:
    dset, vecs = _dataset(tmp_path, 2000, "ivf")
    calls = _counting(monkeypatch, "list_neighbours")
    with pytest.raises(Killed):  # progress: one call for the partition, then one per chunk
        compute_neighbours(dset, "e", k=8, chunk_rows=300, progress=_kill_after(4))
    finished = len(calls)
    assert finished == 3
    calls.clear()
    resumed = compute_neighbours(dset, "e", k=8, chunk_rows=300)
    resumed_scores, resumed_pos = np.array(resumed.scores), np.array(resumed.positions)
    total = finished + len(calls)
    # an uninterrupted run into a fresh folder computes every chunk once, with equal bits
    (dset.embedding_dir("e") / "quality" / bulk.MANIFEST).unlink()
    calls.clear()
    whole = compute_neighbours(dset, "e", k=8, chunk_rows=300)
    assert len(calls) == total
    np.testing.assert_array_equal(resumed_scores, whole.scores)
    np.testing.assert_array_equal(resumed_pos, whole.positions)
    # exact scores, and most true neighbours found
    truth = nearest_neighbours(load_index(dset, "e"), k=8)
    assert (whole.positions >= 0).all()
    found = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(whole.positions, truth.positions)])
    assert found >= 0.95
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    np.testing.assert_allclose(whole.scores[:, 0], np.einsum("ij,ij->i", unit, unit[whole.positions[:, 0]]),
                               atol=1e-5)


def test_a_pass_for_other_files_is_discarded(ds) -> None:
    compute_neighbours(ds, "e", k=4)
    assert load_neighbours(ds, "e", 4) is not None
    rebuild_index(ds, "e", kind="hnsw")  # index.json rewritten: the stored pass is stale
    assert load_neighbours(ds, "e", 4) is None
    with pytest.raises(Killed):
        compute_neighbours(ds, "e", k=4, chunk_rows=100, progress=_kill_after(2))
    ids, vecs, _ = _clustered(seed=1)
    write_embedding(ds, "e", ids, vecs, {"encoder": None, "source": "imported"}, replace=True,
                    index_kind="exact")
    fresh = compute_neighbours(ds, "e", k=4, chunk_rows=100)  # the old partial is not mixed in
    memory = nearest_neighbours(load_index(ds, "e"), k=4)
    np.testing.assert_array_equal(fresh.positions, memory.positions)


def test_chunked_scores_equal_unchunked_scores(ds, monkeypatch) -> None:
    labels = _clustered()[2]
    index = load_index(ds, "e")
    shared = compute_neighbours(ds, "e", k=16)
    whole = (find_label_issues(index, labels, k=10, neighbours=shared),
             score_outliers(index, k=10, neighbours=shared),
             quality_columns(index, labels, neighbours=shared),
             find_near_duplicates(index, 0.9, labels, neighbours=shared))
    monkeypatch.setattr(knn, "CHUNK_ROWS", 37)
    chunked = (find_label_issues(index, labels, k=10, neighbours=shared),
               score_outliers(index, k=10, neighbours=shared),
               quality_columns(index, labels, neighbours=shared),
               find_near_duplicates(index, 0.9, labels, neighbours=shared))
    assert chunked[0].ids == whole[0].ids and chunked[0].suggested == whole[0].suggested
    np.testing.assert_array_equal(chunked[0].scores, whole[0].scores)
    assert chunked[1].ids == whole[1].ids
    np.testing.assert_array_equal(chunked[1].scores, whole[1].scores)
    assert chunked[2].equals(whole[2])
    assert chunked[3].pairs == whole[3].pairs and ("r0004", "r0005") in {p[:2] for p in whole[3].pairs}
    # and the stored (int32, memory-mapped) pass gives what an in-memory pass gives
    memory = find_label_issues(index, labels, k=10)
    assert memory.ids == whole[0].ids
    np.testing.assert_array_equal(memory.scores, whole[0].scores)


def test_large_coarse_lists_are_split_and_still_find_the_neighbours(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(lists, "LIST_ROWS", 10)  # the index's ~39-row lists count as long (10M: ~2.4k)
    dset, vecs = _dataset(tmp_path, 2000, "ivf")
    coarse = load_index(dset, "e").coarse_lists()[1]
    shared = compute_neighbours(dset, "e", k=8, chunk_rows=300)
    manifest = json.loads(bulk.stored_pass_file(dset, "e").read_text())
    assert manifest["partition"] == "index" and manifest["nlist_used"] >= 2.5 * (coarse.max() + 1)
    truth = nearest_neighbours(load_index(dset, "e"), k=8)
    found = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(shared.positions, truth.positions)])
    assert found >= 0.95
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    got = np.einsum("ij,ij->i", unit, unit[shared.positions[:, 3]])
    np.testing.assert_allclose(shared.scores[:, 3], got, atol=1e-5)


def test_a_pass_that_cannot_reach_its_recall_says_so(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(lists, "PROBE_CHOICES", (1,))  # one list a row: most true neighbours missed
    monkeypatch.setattr(bulk, "PROBE_CHOICES", (1,))
    dset, _ = _dataset(tmp_path, 2000, "ivf")
    with caplog.at_level("WARNING", logger="core.quality.bulk"):
        shared = compute_neighbours(dset, "e", k=8, chunk_rows=300)
    manifest = json.loads(bulk.stored_pass_file(dset, "e").read_text())
    truth = nearest_neighbours(load_index(dset, "e"), k=8)
    found = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(shared.positions, truth.positions)])
    assert manifest["probes_used"] == 1 and manifest["recall"] < lists.TARGET_RECALL
    assert shared.recall == manifest["recall"]  # what `catalog quality` reports
    assert abs(manifest["recall"] - found) < 0.15  # the sample's estimate is near the pass's recall
    assert any("finds" in r.getMessage() and "exact 10 nearest" in r.getMessage() for r in caplog.records)


def test_two_passes_at_once_compute_it_once_and_both_get_it(tmp_path, monkeypatch) -> None:
    import threading

    dset, _ = _dataset(tmp_path, 2000, "ivf")
    calls = _counting(monkeypatch, "list_neighbours")
    started = threading.Event()
    real = bulk._run_chunks

    def slow(*args, **kwargs):  # the first pass holds the lock while the second arrives
        started.set()
        threading.Event().wait(0.5)
        return real(*args, **kwargs)
    monkeypatch.setattr(bulk, "_run_chunks", slow)
    results: list = []
    first = threading.Thread(target=lambda: results.append(compute_neighbours(dset, "e", k=8, chunk_rows=300)))
    first.start()
    started.wait(10)
    second = compute_neighbours(dset, "e", k=8, chunk_rows=300)  # waits, then reads the first's result
    first.join()
    once = len(calls)
    (dset.embedding_dir("e") / "quality" / bulk.MANIFEST).unlink()
    calls.clear()
    compute_neighbours(dset, "e", k=8, chunk_rows=300)
    assert once == len(calls)  # the second caller computed nothing
    np.testing.assert_array_equal(np.asarray(results[0].positions), np.asarray(second.positions))
