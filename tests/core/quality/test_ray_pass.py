"""The stored neighbours pass on the Ray engine, run for real on a local Ray (``num_cpus=2``,
one per module): the same stored files as the local engine for both methods, a killed job
resumes without recomputing its finished chunks, a bad engine or address is refused."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from core.embeddings import rebuild_index
from core.engines import compute_chunks_ray
from core.errors import EngineError, IndexStateError, InputError
from core.quality import bulk, compute_neighbours, load_neighbours
from tests.conftest import tree_hash
from tests.core.quality.test_bulk import Killed, _dataset, _kill_after

ray = pytest.importorskip("ray")

STORED = (bulk.MANIFEST, bulk.SCORES_FILE, bulk.POSITIONS_FILE)


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _stored(ds) -> dict[str, bytes]:
    where = ds.embedding_dir("e") / bulk.QUALITY_DIR
    return {name: (where / name).read_bytes() for name in STORED}


def _forget(ds) -> None:
    """Drop the finished pass (its manifest), so the next call computes it again."""
    (ds.embedding_dir("e") / bulk.QUALITY_DIR / bulk.MANIFEST).unlink()


def _pass_dataset(tmp_path, method: str):
    """A dataset whose embedding 'e' is passed by ``method``: 600 rows with an exact index
    (search), or 3000 rows with an ivf index (lists)."""
    if method == "search":
        return _dataset(tmp_path, 600, "exact")[0]
    ds = _dataset(tmp_path, 3000, "exact")[0]
    rebuild_index(ds, "e", kind="ivf")
    return ds


@pytest.mark.parametrize("method", ["search", "lists"])
def test_the_ray_pass_stores_the_local_engines_files_bit_for_bit(ray_cluster, tmp_path, method):
    ds = _pass_dataset(tmp_path, method)
    local = compute_neighbours(ds, "e", k=8, chunk_rows=300)
    local_scores, local_positions = np.array(local.scores), np.array(local.positions)
    local_files = _stored(ds)
    assert json.loads(local_files[bulk.MANIFEST])["method"] == method
    _forget(ds)
    calls: list[tuple[int, int]] = []
    shared = compute_neighbours(ds, "e", k=8, chunk_rows=300, engine="ray",
                                progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_array_equal(shared.scores, local_scores)
    np.testing.assert_array_equal(shared.positions, local_positions)
    assert _stored(ds) == local_files  # manifest, scores and positions: the same bytes
    n = len(shared.ids)
    total = 2 * n if method == "lists" else n
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)  # progress only goes forward
    assert not (ds.embedding_dir("e") / bulk.QUALITY_DIR / bulk.PARTIAL_DIR).exists()
    assert compute_neighbours(ds, "e", k=8, engine="ray") is not None  # stored: returned as is


@pytest.mark.parametrize(("method", "resume_on"), [("search", "ray"), ("lists", "ray"), ("lists", "local")])
def test_a_killed_ray_pass_resumes_without_recomputing_its_finished_chunks(ray_cluster, tmp_path, monkeypatch,
                                                                          method, resume_on):
    ds = _pass_dataset(tmp_path, method)
    partial = ds.embedding_dir("e") / bulk.QUALITY_DIR / bulk.PARTIAL_DIR
    written: list[str] = []
    real_write = bulk._write_npz

    def counted(target, **arrays):
        written.append(target.name)
        return real_write(target, **arrays)
    monkeypatch.setattr(bulk, "_write_npz", counted)
    # progress: (lists) one call for the partition, then one per chunk written by the driver
    with pytest.raises(Killed):
        compute_neighbours(ds, "e", k=8, chunk_rows=300, engine="ray",
                           progress=_kill_after(2 if method == "lists" else 1))
    assert load_neighbours(ds, "e", 8) is None
    finished = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in partial.glob("chunk-*.npz")}
    assert len(finished) == 1 and [w for w in written if w.startswith("chunk-")] == list(finished)

    seen: dict = {}
    real_finish = bulk._finish

    def finish(part, *args, **kwargs):  # the partial as the resumed run leaves it, before it is removed
        seen.update({p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in part.glob("chunk-*.npz")})
        return real_finish(part, *args, **kwargs)
    monkeypatch.setattr(bulk, "_finish", finish)
    written.clear()
    resumed = compute_neighbours(ds, "e", k=8, chunk_rows=300, engine=resume_on)
    assert {name: seen[name] for name in finished} == finished  # the finished chunk was not rewritten
    assert sorted(written) == sorted(set(seen) - set(finished))  # every other chunk computed once
    assert "partition.npz" not in written  # the lists partition was made once, by the killed run
    resumed_files = _stored(ds)
    assert resumed.k == 8 and load_neighbours(ds, "e", 8) is not None

    _forget(ds)
    compute_neighbours(ds, "e", k=8, chunk_rows=300)  # uninterrupted, local
    assert _stored(ds) == resumed_files


def test_a_bad_engine_or_address_is_refused_before_anything_is_written(ray_cluster, tmp_path):
    ds = _pass_dataset(tmp_path, "search")
    before = tree_hash(ds.path)
    with pytest.raises(EngineError, match="unreachable"):
        compute_neighbours(ds, "e", engine="ray", address="127.0.0.1:1")
    with pytest.raises(EngineError, match="not auto, ray://HOST:PORT or HOST:PORT"):
        compute_neighbours(ds, "e", engine="ray", address="no address")
    with pytest.raises(EngineError, match="unknown engine 'spark'; choose one of local, ray"):
        compute_neighbours(ds, "e", engine="spark")
    assert tree_hash(ds.path) == before


def _opener():
    """An opener of a chunk function that doubles its part and tags it with the actor's pid
    (defined in a function, so Ray ships it to the actors by value)."""
    def opener(spec: dict):
        if spec.get("fail"):
            raise InputError("the opener refused its spec")
        pid = os.getpid()
        return lambda part: (pid, part * spec["scale"])
    return opener


def test_chunks_spread_over_an_actor_pool_and_a_typed_error_arrives_as_itself(ray_cluster):
    got: dict[int, tuple[int, np.ndarray]] = {}
    plans: list[tuple[int, int]] = []
    chunks = [(c, np.arange(c * 10, c * 10 + 10)) for c in range(8)]
    actors = compute_chunks_ray(chunks, _opener(), {"scale": 2}, got.__setitem__, threads=1,
                                on_plan=lambda a, t: plans.append((a, t)))
    assert actors == 2 and plans == [(2, 1)]  # one single-threaded actor per CPU
    assert sorted(got) == list(range(8))
    for c, part in chunks:
        np.testing.assert_array_equal(got[c][1], part * 2)
    assert len({pid for pid, _ in got.values()}) == 2
    assert compute_chunks_ray([], _opener(), {}, got.__setitem__) == 0  # nothing to do: no pool
    with pytest.raises(InputError, match="the opener refused its spec"):
        compute_chunks_ray(chunks, _opener(), {"fail": True}, got.__setitem__)


def test_an_actor_refuses_files_changed_since_the_pass_began(ray_cluster, tmp_path):
    ds = _pass_dataset(tmp_path, "search")
    stale = bulk._ChunkWork(ds, "e", "search", 4, {"format": bulk.FORMAT, "meta": "old", "index": "old"})
    with pytest.raises(IndexStateError, match="changed while its neighbours pass ran"):
        compute_chunks_ray([(0, np.arange(10))], bulk._chunk_compute, stale, lambda c, r: None)
