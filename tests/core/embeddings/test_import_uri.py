"""import_embeddings from a URI: Parquet, NPY (+ ids file beside it or given) and CSV at
``file://``, fsspec's ``memory://`` or ``s3://`` (a local moto server) store the same vectors
as the local file, bit for bit; a Fortran-order or truncated .npy at a URI, a missing object,
a folder and an unknown scheme are typed errors that change nothing."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.embeddings import import_embeddings, load_embedding
from core.errors import EmbeddingError, InputError, NotFoundError
from core.ingest import ingest_table
from tests.conftest import tree_hash
from tests.helpers.object_store import s3_store, use_store

N, DIMS = 40, 12
IDS = [f"r{i:02d}" for i in range(N)]
VECTORS = (np.random.default_rng(3).standard_normal((N, DIMS)) * 3).astype(np.float32)


def write_vectors(folder: Path, fmt: str, ids_suffix: str = ".ids.npy") -> list[Path]:
    """The files of ``VECTORS`` as ``fmt`` (npy: the array and its ids file) in ``folder``."""
    if fmt == "parquet":
        path = folder / "v.parquet"
        pq.write_table(pa.table({"id": IDS, "vector": pa.array(list(VECTORS), pa.list_(pa.float32()))}), path)
        return [path]
    if fmt == "csv":
        path = folder / "v.csv"
        frame = pd.DataFrame(VECTORS, columns=[f"d{j}" for j in range(DIMS)])
        frame.insert(0, "id", IDS)
        frame.to_csv(path, index=False, float_format="%.9g")
        return [path]
    path, ids = folder / "v.npy", folder / f"v{ids_suffix}"
    np.save(path, VECTORS)
    if ids_suffix == ".ids.npy":
        np.save(ids, np.asarray(IDS))
    elif ids_suffix == ".ids.txt":
        ids.write_text("".join(f"{i}\n" for i in IDS))
    else:
        pd.DataFrame({"id": IDS}).to_csv(ids, index=False)
    return [path, ids]


@pytest.fixture
def ds(ws, tmp_path: Path):
    src = tmp_path / "texts.csv"
    pd.DataFrame({"id": IDS, "text": [f"sentence {i}" for i in range(N)]}).to_csv(src, index=False)
    ingest_table(ws, src, "texts")
    return ws.dataset("texts")


@pytest.fixture
def memory():
    """Upload files to a unique folder of fsspec's memory filesystem: ``put(path) -> uri``."""
    fsspec = pytest.importorskip("fsspec")
    fs, root = fsspec.filesystem("memory"), f"catalog-{secrets.token_hex(4)}"

    def put(local: Path, name: str | None = None) -> str:
        fs.pipe(f"/{root}/{name or local.name}", local.read_bytes())
        return f"memory://{root}/{name or local.name}"

    yield put
    if fs.exists(f"/{root}"):
        fs.rm(f"/{root}", recursive=True)


def stored(ds, name: str) -> tuple[np.ndarray, np.ndarray]:
    emb = load_embedding(ds, name)
    return np.asarray(emb.ids).astype(str), np.asarray(emb.vectors)


@pytest.mark.parametrize("fmt, ids_suffix", [("parquet", None), ("csv", None), ("npy", ".ids.npy"),
                                             ("npy", ".ids.txt"), ("npy", ".ids.csv")])
def test_vectors_at_a_uri_store_what_the_local_file_stores(ds, tmp_path: Path, memory, fmt: str,
                                                           ids_suffix: str | None) -> None:
    files = write_vectors(tmp_path, fmt, ids_suffix or ".ids.npy")
    import_embeddings(ds, files[0], "local")
    file_report = import_embeddings(ds, files[0].as_uri(), "file")
    uris = [memory(f) for f in files]
    mem_report = import_embeddings(ds, uris[0], "mem")
    assert file_report.info.rows == mem_report.info.rows == N
    ids, vecs = stored(ds, "local")
    for name in ("file", "mem"):
        got_ids, got = stored(ds, name)
        np.testing.assert_array_equal(got_ids, ids)
        np.testing.assert_array_equal(got.view(np.uint32), vecs.view(np.uint32))  # bit for bit
    assert load_embedding(ds, "mem").meta["imported_from"] == files[0].name


def test_an_ids_file_may_be_a_uri_too(ds, tmp_path: Path, memory) -> None:
    vectors, ids = write_vectors(tmp_path, "npy", ".ids.txt")
    ids_uri = memory(ids, "elsewhere.txt")
    import_embeddings(ds, memory(vectors, "lonely.npy"), "given", ids_file=ids_uri)
    np.testing.assert_array_equal(stored(ds, "given")[0], IDS)


def test_bad_vector_files_at_a_uri_change_nothing(ds, tmp_path: Path, memory) -> None:
    np.save(tmp_path / "f.npy", np.asfortranarray(VECTORS))
    np.save(tmp_path / "f.ids.npy", np.asarray(IDS))
    np.save(tmp_path / "t.npy", VECTORS)
    np.save(tmp_path / "t.ids.npy", np.asarray(IDS))
    np.save(tmp_path / "o.npy", np.asarray([{"a": 1}] * N, dtype=object), allow_pickle=True)
    np.save(tmp_path / "o.ids.npy", np.asarray(IDS))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) - 100])  # the header still says (40, 12)
    fortran, _ = memory(tmp_path / "f.npy"), memory(tmp_path / "f.ids.npy")
    truncated, _ = memory(tmp_path / "cut.npy"), memory(tmp_path / "t.ids.npy", "cut.ids.npy")
    objects, _ = memory(tmp_path / "o.npy"), memory(tmp_path / "o.ids.npy")
    folder = fortran.rsplit("/", 1)[0]
    before = tree_hash(ds.path)
    cases = [
        (fortran, InputError, f"'{fortran}' is a Fortran-order .npy; at a URI only C order streams"),
        (truncated, InputError, f"'{truncated}' is truncated"),
        (objects, EmbeddingError, "holds non-numeric values (object)"),
        (f"{folder}/nope.parquet", NotFoundError, f"embedding file '{folder}/nope.parquet' does not exist"),
        (folder + "/", InputError, "unknown embedding file format"),
        ("gopher://host/v.npy", InputError, "unknown scheme 'gopher'"),
    ]
    for uri, error, message in cases:
        with pytest.raises(error) as caught:
            import_embeddings(ds, uri, "bad")
        assert message in str(caught.value), str(caught.value)
    with pytest.raises(InputError, match="is a folder; give the vectors file"):
        import_embeddings(ds, folder, "bad", format="npy")
    assert tree_hash(ds.path) == before and ds.embedding_names() == []


# ---- a real S3 API: moto's server on 127.0.0.1 ---------------------------------------
@pytest.fixture(scope="module")
def s3():
    with s3_store() as store:
        yield store


@pytest.mark.parametrize("fmt", ["parquet", "npy", "csv"])
def test_s3_vectors_import_like_local_ones(ds, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    use_store(monkeypatch, s3)
    files = write_vectors(tmp_path, fmt)
    uris = [s3.put(f, f"vectors/{fmt}/{f.name}") for f in files]
    import_embeddings(ds, files[0], "local")
    report = import_embeddings(ds, uris[0], "remote")
    assert report.info.rows == N and report.uncovered == 0
    np.testing.assert_array_equal(stored(ds, "remote")[1], stored(ds, "local")[1])
    with pytest.raises(NotFoundError, match="does not exist"):
        import_embeddings(ds, s3.uri(f"vectors/{fmt}/missing.{fmt}"), "missing")
