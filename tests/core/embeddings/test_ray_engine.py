"""The Ray engine for ``embed``, run for real on a local Ray (``num_cpus=2``, one per module)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from core.embeddings import compute_embeddings, load_embedding
from core.engines import plan_actors
from core.errors import EngineError, InputError
from core.ingest import ingest_table
from tests.conftest import tree_hash

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def notes(ws, tmp_path):
    table = tmp_path / "notes.csv"
    pd.DataFrame({
        "id": [f"n{i}" for i in range(50)],
        "text": [f"note {i} about {'cats' if i % 2 else 'stocks'} and {i * 7 % 13} more" for i in range(50)],
    }).to_csv(table, index=False)
    ingest_table(ws, table, "notes")
    return ws.dataset("notes")


def hashing_loader(log_path):
    """A loader of a cheap 16-d text encoder that appends how many rows each call encoded
    to ``log_path``. Defined in a function, so Ray ships it to the actors by value."""

    class Hashing:
        spec, name, dims, modalities = "test:hash", "hash", 16, frozenset({"text"})
        device, dtype, batch_size, max_text_tokens = "cpu", "float32", 32, None

        def encode_texts(self, texts, *, batch_size=None, progress=None):
            import hashlib

            out = np.stack([np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], np.uint8)
                            .astype(np.float32) + 1 for t in texts])
            with open(log_path, "a") as f:
                f.write(f"{len(texts)}\n")
            return out / np.linalg.norm(out, axis=1, keepdims=True)

    return lambda spec, device="auto": Hashing()


def encoded_rows(log_path) -> int:
    return sum(int(x) for x in log_path.read_text().split()) if log_path.exists() else 0


def test_ray_vectors_equal_the_local_engines(ray_cluster, notes, tmp_path, monkeypatch):
    from core import encoders

    monkeypatch.setattr(encoders, "load_encoder", hashing_loader(tmp_path / "calls.txt"))
    local = compute_embeddings(notes, "test:hash", "local", chunk_rows=16)
    calls = []
    report = compute_embeddings(notes, "test:hash", "viaray", chunk_rows=16, batch_size=8, engine="ray",
                                progress=lambda d, t: calls.append((d, t)))
    assert report.engine == "ray" and report.encoded_rows == 50 and report.embeddings[0].rows == 50
    assert report.workers["actors"] >= 1 and report.workers["num_gpus"] == 0
    assert max(calls) == (50, 50) and len(calls) == 4  # one call per finished shard
    a, b = load_embedding(notes, "local"), load_embedding(notes, "viaray")
    assert list(a.ids) == list(b.ids) == [f"n{i}" for i in range(50)]
    np.testing.assert_allclose(b.vectors, a.vectors, atol=1e-5)
    assert (a.meta["engine"], b.meta["engine"]) == ("local", "ray")
    strip = ("name", "created", "engine")
    assert {k: v for k, v in a.meta.items() if k not in strip} == {k: v for k, v in b.meta.items() if k not in strip}
    assert local.embeddings[0].index_kind == report.embeddings[0].index_kind
    assert not any(p.name.startswith(".") for p in notes.embeddings_dir.iterdir())


def test_ray_with_the_bundled_minilm_matches_local(ray_cluster, notes):
    compute_embeddings(notes, "text:minilm", "local")
    compute_embeddings(notes, "text:minilm", "viaray", engine="ray")
    np.testing.assert_allclose(load_embedding(notes, "viaray").vectors, load_embedding(notes, "local").vectors,
                               atol=1e-5)


def test_ray_writes_the_class_name_embedding_from_the_same_pass_like_local(ray_cluster, tmp_path):
    from tests.helpers.photos import add_photo_dataset

    local = add_photo_dataset(tmp_path / "a", "photos")  # the local engine (default)
    viaray = add_photo_dataset(tmp_path / "b", "photos", embed=False)
    report = compute_embeddings(viaray, "image:efficientnet-lite0", engine="ray")
    assert [i.name for i in report.embeddings] == ["efficientnet-lite0", "efficientnet-lite0-text"]
    for name in ("efficientnet-lite0", "efficientnet-lite0-text"):
        a, b = load_embedding(local, name), load_embedding(viaray, name)
        assert list(a.ids) == list(b.ids) and b.meta["engine"] == "ray"
        np.testing.assert_allclose(b.vectors, a.vectors, atol=1e-5)


class Stop(Exception):
    pass


def test_a_killed_ray_job_resumes_without_reencoding_finished_shards(ray_cluster, notes, tmp_path, monkeypatch):
    from core import encoders

    log = tmp_path / "calls.txt"
    monkeypatch.setattr(encoders, "load_encoder", hashing_loader(log))

    def kill_after_first_shard(done, total):
        raise Stop(f"killed at {done}/{total}")

    with pytest.raises(Stop):
        compute_embeddings(notes, "test:hash", "e", chunk_rows=10, batch_size=5, engine="ray",
                           progress=kill_after_first_shard)
    assert notes.embedding_names() == []
    finished = sorted(p.name for p in (notes.embeddings_dir / ".e.partial").glob("chunk_*.ok.npy"))
    assert len(finished) == 1
    log.unlink()
    report = compute_embeddings(notes, "test:hash", "e", chunk_rows=10, batch_size=5, engine="ray")
    assert (report.resumed_rows, report.encoded_rows) == (10, 40)
    assert encoded_rows(log) == 40  # the finished shard was not encoded again
    compute_embeddings(notes, "test:hash", "ref", chunk_rows=10)
    np.testing.assert_allclose(load_embedding(notes, "e").vectors, load_embedding(notes, "ref").vectors, atol=1e-6)


def test_a_local_run_resumes_a_killed_ray_run(ray_cluster, notes, tmp_path, monkeypatch):
    from core import encoders

    log = tmp_path / "calls.txt"
    monkeypatch.setattr(encoders, "load_encoder", hashing_loader(log))
    with pytest.raises(Stop):
        compute_embeddings(notes, "test:hash", "e", chunk_rows=25, batch_size=5, engine="ray",
                           progress=lambda d, t: (_ for _ in ()).throw(Stop()))
    log.unlink()
    report = compute_embeddings(notes, "test:hash", "e", chunk_rows=25)
    assert (report.resumed_rows, report.encoded_rows, encoded_rows(log)) == (25, 25, 25)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"engine": "spark"}, r"^unknown engine 'spark'; choose one of local, ray$"),
    ({"engine": "ray", "address": "ray://127.0.0.1:1"}, r"^Ray cluster at 'ray://127\.0\.0\.1:1' is unreachable: "),
    ({"engine": "ray", "address": "nowhere"}, r"^Ray address 'nowhere' is not auto, ray://HOST:PORT or HOST:PORT$"),
])
def test_a_bad_engine_or_address_is_refused_and_nothing_is_written(notes, kwargs, message):
    before = tree_hash(notes.path)
    with pytest.raises(EngineError, match=message):
        compute_embeddings(notes, "text:minilm", **kwargs)
    assert tree_hash(notes.path) == before


def test_ray_not_installed_names_the_install_line(notes, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    before = tree_hash(notes.path)
    with pytest.raises(EngineError, match=r"needs Ray Data.*pip install -r requirements-scale\.txt"):
        compute_embeddings(notes, "text:minilm", engine="ray")
    assert tree_hash(notes.path) == before
    assert compute_embeddings(notes, "text:minilm").engine == "local"  # the local engine needs no Ray


@pytest.mark.parametrize(("resources", "device", "images", "expected"), [
    ({"CPU": 8.0, "GPU": 2.0}, "auto", False, (2, 1, "cuda", 128)),
    ({"CPU": 8.0, "GPU": 2.0}, "cuda", True, (2, 1, "cuda", 128)),
    ({"CPU": 8.0, "GPU": 2.0}, "cpu", False, (8, 0, "cpu", 32)),
    ({"CPU": 2.0}, "auto", False, (2, 0, "cpu", 32)),
    ({"CPU": 2.0}, "auto", True, (2, 0, "cpu", 32)),  # a small node: decoding shares the actors' CPUs
    ({"CPU": 8.0}, "auto", True, (7, 0, "cpu", 32)),  # one CPU kept for decoding images
    ({"CPU": 1.0, "memory": 1e9}, "auto", True, (1, 0, "cpu", 32)),
])
def test_plan_actors_gives_one_gpu_per_actor_when_the_cluster_has_gpus(resources, device, images, expected):
    plan = plan_actors(resources, device, images=images)
    assert (plan.actors, plan.num_gpus, plan.device, plan.batch_size) == expected


def test_plan_actors_limits_and_errors():
    assert plan_actors({"CPU": 16.0}, max_actors=3).actors == 3
    assert plan_actors({"CPU": 4.0, "GPU": 1.0}, batch_size=7).batch_size == 7
    with pytest.raises(EngineError, match="device 'cuda' asked, but the Ray cluster reports no GPU"):
        plan_actors({"CPU": 4.0}, "cuda")
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        plan_actors({"CPU": 4.0}, "tpu")


def mean_colour_loader():
    """A loader of a 3-d image encoder (mean RGB + 1), shipped to the actors by value."""

    class MeanColour:
        spec, name, dims, modalities = "image:mean-colour", "mean-colour", 3, frozenset({"image"})
        device, dtype, batch_size, max_text_tokens = "cpu", "float32", 32, None

        def encode_images(self, images, *, batch_size=None, progress=None):
            return np.array([np.asarray(im, np.float32).mean((0, 1)) + 1 for im in images], np.float32)

    return lambda spec, device="auto": MeanColour()


@pytest.fixture
def pets(ws, tmp_path):
    """8 small non-square PNGs in cat/ and dog/, ingested as a folder dataset, and their folder."""
    from PIL import Image

    from core.ingest import ingest_folder

    root = tmp_path / "pets"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            img = np.zeros((5 + i, 9, 3), np.uint8)
            img[: 2 + i, :, 0], img[:, : 3 + i, 1] = 200, 90 if label == "cat" else 30
            Image.fromarray(img).save(root / label / f"{i}.png")
    ingest_folder(ws, root, "pets")
    return ws.dataset("pets"), root


def test_ray_decodes_images_on_workers_like_the_local_engine(ray_cluster, pets, monkeypatch):
    from core import encoders

    ds, root = pets
    monkeypatch.setattr(encoders, "load_encoder", mean_colour_loader())
    hidden = root.parent / "hidden.png"
    (root / "dog" / "2.png").rename(hidden)  # unreadable for now
    local = compute_embeddings(ds, "image:mean-colour", "local", chunk_rows=3)
    viaray = compute_embeddings(ds, "image:mean-colour", "viaray", chunk_rows=3, engine="ray")
    assert local.skipped == viaray.skipped == {"unreadable image": 1}
    a, b = load_embedding(ds, "local"), load_embedding(ds, "viaray")
    assert list(a.ids) == list(b.ids) and len(a.ids) == 7
    np.testing.assert_allclose(b.vectors, a.vectors, atol=1e-6)

    (root / "dog" / "0.png").write_bytes(b"not a png")  # corrupt after ingest
    hidden.rename(root / "dog" / "2.png")
    again = compute_embeddings(ds, "image:mean-colour", "viaray", replace=True, chunk_rows=3, engine="ray")
    assert again.skipped == {"unreadable image": 1} and "dog/2.png" in set(load_embedding(ds, "viaray").ids)
