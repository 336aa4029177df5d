"""Natural-language search: the api-docs demo, the CLIP text tower, the row-text fallback."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.embeddings import (
    compute_embeddings,
    load_embedding,
    load_index,
    write_embedding,
)
from core.encoders import load_encoder
from core.errors import InputError
from core.ingest import ingest_folder
from core.search import (
    FALLBACK_EMBEDDING,
    ensure_row_text_embedding,
    fallback_is_current,
    plan_text_search,
    row_descriptions,
    search_text,
)
from core.workspace import open_workspace
from tests.helpers.tiny_clip import make_tiny_clip

LINALG_INVERSE = re.compile(r"^(numpy|scipy|torch)\.linalg\.inv$")


@pytest.fixture(scope="session")
def api_docs_home(tmp_path_factory) -> Path:
    """A workspace with the api-docs demo built (reused from $CATALOG_TEST_CACHE if set)."""
    from core.demo import build_demo

    cache = os.environ.get("CATALOG_TEST_CACHE")
    cached = Path(cache) / "api-docs-home" if cache else None
    home = tmp_path_factory.mktemp("api-docs") / "home"
    if cached is not None and (cached / "datasets" / "api-docs" / "embeddings").exists():
        shutil.copytree(cached, home)
        return home
    build_demo(open_workspace(home), "api-docs")
    if cached is not None:
        shutil.copytree(home, cached, dirs_exist_ok=True)
    return home


@pytest.fixture(scope="session")
def api_docs(api_docs_home: Path):
    ds = open_workspace(api_docs_home).dataset("api-docs")
    return load_index(ds, "minilm"), load_encoder("text:minilm")


@pytest.mark.parametrize("query, wanted", [
    ("inverse of a matrix", LINALG_INVERSE.match),
    ("read a csv file", lambda rid: rid == "pandas.read_csv"),
])
def test_api_docs_query_finds_the_function_in_the_top_5(api_docs, query, wanted):
    index, encoder = api_docs
    result = search_text(index, encoder, query, k=5, embedding="minilm")
    assert any(wanted(rid) for rid in result.ids), (query, result.ids)
    assert result.recipe["query"] == query and result.recipe["encoder"] == "text:minilm"
    assert result.recipe["truncated"] is False


def test_empty_and_over_long_queries(api_docs):
    index, encoder = api_docs
    with pytest.raises(InputError, match="empty"):
        search_text(index, encoder, "   ")
    long = search_text(index, encoder, "matrix " * 400, k=3)
    assert long.recipe["truncated"] is True and len(long) == 3


def _write_images(folder: Path, names: dict[str, list[str]], size: int = 32) -> None:
    rng = np.random.default_rng(0)
    for label, files in names.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for name in files:
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / label / name)


def test_clip_embedding_encodes_the_query_with_the_clip_text_tower(tmp_path, monkeypatch):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    import core.search.queries as search_module

    clip = make_tiny_clip(tmp_path / "tiny-clip")
    ws = open_workspace(tmp_path / "home")
    _write_images(tmp_path / "imgs", {"cat": [f"cat-{i}.png" for i in range(12)],
                                      "dog": [f"dog-{i}.png" for i in range(12)]})
    ingest_folder(ws, tmp_path / "imgs", "pets")
    ds = ws.dataset("pets")
    info = compute_embeddings(ds, f"clip:{clip}").embeddings[0]
    plan = plan_text_search("pets", info.name, info.encoder, ["image"])
    assert not plan.fallback and plan.embedding == info.name and plan.encoder.startswith("clip:")

    seen: list[np.ndarray] = []
    real = search_module.search_vector
    monkeypatch.setattr(search_module, "search_vector",
                        lambda index, query, **kw: seen.append(np.asarray(query)) or real(index, query, **kw))
    result = search_text(load_index(ds, info.name), load_encoder(plan.encoder), "a cat", k=None,
                         threshold=-1.0, embedding=info.name)

    model, processor = CLIPModel.from_pretrained(clip).eval(), CLIPProcessor.from_pretrained(clip)
    with torch.inference_mode():
        out = model.get_text_features(**processor(text=["a cat"], return_tensors="pt"))
    expected = (out.pooler_output if hasattr(out, "pooler_output") else out)[0].numpy()
    expected = expected / np.linalg.norm(expected)
    np.testing.assert_allclose(seen[0], expected, atol=1e-5)
    # every image row is ranked by its cosine to that text vector, in the image space
    emb = load_embedding(ds, info.name)
    brute = dict(zip(emb.ids, np.asarray(emb.vectors) @ expected))
    assert len(result) == 24
    np.testing.assert_allclose(result.scores, [brute[i] for i in result.ids], atol=1e-5)


@pytest.fixture
def things(tmp_path):
    """Image rows whose only embedding is imported (random vectors, no encoder)."""
    ws = open_workspace(tmp_path / "home")
    _write_images(tmp_path / "imgs", {
        "bicycle": ["red-bicycle-01.png", "mountain_bike_02.png", "road-bicycle-03.png"],
        "apple": ["green-apple-01.png", "apple_pie_02.png", "red-apple-03.png"],
        "mountain": ["snowy-peak-01.png", "alps_panorama_02.png", "volcano-03.png"],
    })
    ingest_folder(ws, tmp_path / "imgs", "things")
    ds = ws.dataset("things")
    ids = ds.rows()["id"].tolist()
    vectors = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    write_embedding(ds, "imported", ids, vectors, {"encoder": None, "source": "imported"})
    return ds


def test_image_rows_without_a_joint_embedding_search_their_text(things):
    ds = things
    plan = plan_text_search("things", "imported", None, ["image"])
    assert plan.fallback and plan.embedding == FALLBACK_EMBEDDING and plan.encoder == "text:minilm"
    assert "catalog embed things --encoder clip:clip-ViT-B-32" in plan.note
    assert plan.note.count(". ") == 0  # one sentence

    descriptions = dict(zip(ds.rows()["id"], row_descriptions(ds.rows())))
    assert descriptions["bicycle/red-bicycle-01.png"].startswith("bicycle. bicycle red bicycle 01")

    info = ensure_row_text_embedding(ds)
    assert info.name == FALLBACK_EMBEDDING and info.rows == 9
    meta = load_embedding(ds, FALLBACK_EMBEDDING).meta
    assert meta["encoder"] == "text:minilm" and meta["purpose"] == "text-fallback"
    assert fallback_is_current(ds)
    created = (ds.embedding_dir(FALLBACK_EMBEDDING) / "vectors.npy").stat().st_mtime_ns
    ensure_row_text_embedding(ds)  # reused, not recomputed
    assert (ds.embedding_dir(FALLBACK_EMBEDDING) / "vectors.npy").stat().st_mtime_ns == created

    result = search_text(load_index(ds, plan.embedding), load_encoder(plan.encoder), "a bike to ride", k=3)
    assert sum(rid.startswith("bicycle/") for rid in result.ids) >= 2, result.ids


def test_fallback_is_rebuilt_when_a_row_description_changes(things):
    from core import atomic

    ds = things
    ensure_row_text_embedding(ds)
    rows = ds.rows()
    rows.loc[rows["id"] == "mountain/volcano-03.png", "text"] = "a tandem bicycle for two riders"
    atomic.write_with(ds.rows_path, lambda path: rows.to_parquet(path, index=False))
    assert not fallback_is_current(ds)
    ensure_row_text_embedding(ds)
    assert fallback_is_current(ds)
    result = search_text(load_index(ds, FALLBACK_EMBEDDING), load_encoder("text:minilm"),
                         "tandem bicycle", k=1)
    assert result.ids == ("mountain/volcano-03.png",)


def test_text_embeddings_are_searched_directly():
    plan = plan_text_search("api-docs", "minilm", "text:minilm", ["text"])
    assert not plan.fallback and plan.embedding == "minilm" and plan.note == ""
    fallback = plan_text_search("docs", "imported", None, ["text"])
    assert fallback.fallback and "--encoder text:minilm" in fallback.note
