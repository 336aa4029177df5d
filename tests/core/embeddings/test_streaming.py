"""Tests for vectors streamed in chunks: import equals normalising the whole array at once,
bit for bit; a ragged last batch is refused by id with nothing written; the chunk writer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import core.embeddings.readers as readers_module
from core._shared import ids_hash
from core.embeddings import (
    import_embeddings,
    load_embedding,
    load_index,
    normalise_rows,
    write_embedding_chunks,
)
from core.errors import EmbeddingError, SchemaError
from core.index import build_index
from core.ingest import ingest_table

N, DIMS = 1000, 16
IDS = [f"r{i:04d}" for i in range(N)]


def vectors(n: int = N, seed: int = 0) -> np.ndarray:
    """Random float32 rows of varied lengths, a few already of unit length."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, DIMS)) * rng.uniform(0.1, 10.0, (n, 1))).astype(np.float32)
    x[::97] /= np.linalg.norm(x[::97], axis=1, keepdims=True)
    return x


def bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def ds(ws, tmp_path: Path):
    src = tmp_path / "rows.csv"
    pd.DataFrame({"id": IDS, "text": [f"row {i}" for i in range(N)]}).to_csv(src, index=False)
    ingest_table(ws, src, "rows")
    return ws.dataset("rows")


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """256-row chunks (the smallest chunk_rows gives), so 1,000 rows span four."""
    monkeypatch.setattr(readers_module, "_CHUNK_VALUES", 1)


def list_column(rows: list[np.ndarray]) -> pa.Array:
    return pa.array([r.tolist() for r in rows], pa.list_(pa.float32()))


def write_file(path: Path, ids: list[str], vecs: np.ndarray) -> Path:
    fmt = path.suffix[1:]
    if fmt == "parquet":
        pq.write_table(pa.table({"id": ids, "vector": list_column(list(vecs))}), path, row_group_size=300)
    elif fmt == "npy":
        np.save(path, vecs)
        np.save(path.with_name(path.stem + ".ids.npy"), np.asarray(ids))
    else:
        frame = pd.DataFrame(vecs, columns=[f"d{j}" for j in range(DIMS)])
        frame.insert(0, "id", ids)
        frame.to_csv(path, index=False, float_format="%.9g")
    return path


@pytest.mark.parametrize("fmt", ["parquet", "npy", "csv"])
def test_streamed_import_equals_normalising_the_whole_array(ds, tmp_path: Path, fmt: str) -> None:
    ids = ["ghost-0", *IDS[:500], "ghost-1", *IDS[500:], "ghost-2"]  # dropped across chunks
    vecs = vectors(len(ids))
    src = write_file(tmp_path / f"v.{fmt}", ids, vecs)
    calls: list[tuple[int, int]] = []
    report = import_embeddings(ds, src, "v", skip_unknown=True, progress=lambda d, t: calls.append((d, t)))
    emb = load_embedding(ds, "v")
    kept = [i for i, name in enumerate(ids) if not name.startswith("ghost")]
    file_vecs = pd.read_csv(src)[[f"d{j}" for j in range(DIMS)]].to_numpy() if fmt == "csv" else vecs
    expected = normalise_rows(np.ascontiguousarray(file_vecs[kept], dtype=np.float32))  # the old path
    assert np.array_equal(bits(emb.vectors), bits(expected))
    assert emb.ids.tolist() == IDS and np.load(emb.path / "ids.npy").dtype == np.dtype("<U5")
    assert emb.meta["ids_hash"] == ids_hash(IDS) and report.skipped_unknown == 3
    assert calls[-1] == (N + 3, N + 3) and len(calls) == 4
    got = load_index(ds, "v").search(expected[:3], 5)  # the index saved with the vectors
    want = build_index(expected, IDS).search(expected[:3], 5)
    assert np.array_equal(got.ids, want.ids) and np.array_equal(bits(got.scores), bits(want.scores))


def test_a_ragged_last_batch_is_refused_by_id_and_writes_nothing(ds, tmp_path: Path) -> None:
    rows = list(vectors())
    rows[-1] = rows[-1][:-1]  # the last row group's last vector has 15 values
    src = tmp_path / "v.parquet"
    pq.write_table(pa.table({"id": IDS, "vector": list_column(rows)}), src, row_group_size=300)
    before = tree_hash(ds.path)
    with pytest.raises(EmbeddingError, match=r"inconsistent dims .* expected 16 values .* 1 row "
                                             r"differ, e.g. 'r0999' \(15\)"):
        import_embeddings(ds, src, "v")
    assert tree_hash(ds.path) == before and ds.embedding_names() == []


def test_a_short_last_csv_line_is_refused_by_id_and_writes_nothing(ds, tmp_path: Path) -> None:
    src = write_file(tmp_path / "v.csv", IDS, vectors())
    lines = src.read_text().splitlines()
    lines[-1] = lines[-1].rsplit(",", 3)[0]
    src.write_text("\n".join(lines) + "\n")
    before = tree_hash(ds.path)
    with pytest.raises(EmbeddingError, match=r"1 row with missing values .*fewer fields.*'r0999'"):
        import_embeddings(ds, src, "v")
    assert tree_hash(ds.path) == before


def test_nan_in_the_last_chunk_is_refused_by_id(ds, tmp_path: Path) -> None:
    vecs = vectors()
    vecs[998, 3] = np.nan
    before = tree_hash(ds.path)
    with pytest.raises(EmbeddingError, match=r"1 vector with NaN or Inf .*'r0998'"):
        import_embeddings(ds, write_file(tmp_path / "v.npy", IDS, vecs), "v")
    assert tree_hash(ds.path) == before


def test_duplicate_ids_are_named_with_their_rows_before_any_vector_is_read(
        ds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [*IDS[:-1], "r0002"]
    src = write_file(tmp_path / "v.parquet", ids, vectors())
    monkeypatch.setattr(readers_module.VectorFile, "blocks", lambda *a, **k: pytest.fail("vectors read"))
    with pytest.raises(SchemaError, match=r"has 1 duplicate id, e\.g\. 'r0002'.*'r0002' at 2, 999"):
        import_embeddings(ds, src, "v")


def test_chunk_writer_refuses_a_wrong_total_and_a_failing_source(ds) -> None:
    vecs = vectors()

    def chunks(stop: int | None = None):
        for start in range(0, N, 300):
            if start == stop:
                raise OSError("disk went away")
            yield IDS[start:start + 300], vecs[start:start + 300]

    before = tree_hash(ds.path)
    with pytest.raises(EmbeddingError, match=r"expected 1001 vectors, got 1000"):
        write_embedding_chunks(ds, "v", chunks(), {"encoder": None, "source": "imported"}, total=N + 1)
    with pytest.raises(OSError, match="disk went away"):
        write_embedding_chunks(ds, "v", chunks(stop=600), {"encoder": None, "source": "imported"}, total=N)
    assert tree_hash(ds.path) == before
    info = write_embedding_chunks(ds, "v", chunks(), {"encoder": None, "source": "imported"}, total=N)
    assert info.rows == N and info.dims == DIMS
    assert np.array_equal(bits(load_embedding(ds, "v").vectors), bits(normalise_rows(vecs.copy())))
