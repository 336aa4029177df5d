"""Tests for core.embeddings.io: import user vectors (Parquet, NPY + ids, CSV), export, round trip."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.embeddings import (
    IMPORT_FORMATS,
    MAX_DIMS,
    export_embeddings,
    import_embeddings,
    list_embeddings,
    load_embedding,
    load_index,
)
from core.errors import AlreadyExistsError, EmbeddingError, InputError, SchemaError
from core.ingest import ingest_table
from core.search import find_similar

N_ROWS, DIMS = 50, 16
IDS = [f"r{i:03d}" for i in range(N_ROWS)]


def vectors(n: int, dims: int = DIMS, seed: int = 0) -> np.ndarray:
    """(n, dims) float32 random vectors of varied lengths (never unit, never zero)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dims)) * rng.uniform(0.1, 10.0, (n, 1))).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)


def bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def write_npy(path: Path, ids: list[str], vecs: np.ndarray, ids_suffix: str = ".ids.npy") -> Path:
    np.save(path, vecs)
    ids_path = path.with_name(path.stem + ids_suffix)
    if ids_suffix.endswith(".npy"):
        np.save(ids_path, np.asarray(ids, dtype=str))
    elif ids_suffix.endswith(".txt"):
        ids_path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    else:
        pd.DataFrame({"id": ids}).to_csv(ids_path, index=False)
    return path


def write_parquet_list(path: Path, ids: list, rows: list, id_col: str = "id") -> Path:
    """Parquet with an id column and one list<float32> column (rows may differ in length)."""
    pq.write_table(pa.table({id_col: ids, "vector": pa.array([list(map(float, r)) for r in rows],
                                                             pa.list_(pa.float32()))}), path)
    return path


def write_parquet_wide(path: Path, ids: list[str], vecs: np.ndarray) -> Path:
    cols = {"id": ids, **{f"f{j}": vecs[:, j] for j in range(vecs.shape[1])}}
    pq.write_table(pa.table(cols), path)
    return path


def write_csv(path: Path, ids: list[str], vecs, **extra) -> Path:
    frame = pd.DataFrame(vecs, columns=[f"d{j}" for j in range(np.shape(vecs)[1])])
    frame.insert(0, "id", ids)
    for col, values in extra.items():
        frame[col] = values
    frame.to_csv(path, index=False, float_format="%.9g")
    return path


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def ds(ws, tmp_path: Path):
    """A 50-row text dataset ingested from a CSV, with no embeddings."""
    src = tmp_path / "texts.csv"
    pd.DataFrame({"id": IDS, "text": [f"sentence number {i}" for i in range(N_ROWS)]}).to_csv(src, index=False)
    ingest_table(ws, src, "texts")
    return ws.dataset("texts")


@pytest.fixture
def base(ds, tmp_path: Path):
    """``ds`` with one embedding, ``base``, imported from random vectors."""
    import_embeddings(ds, write_npy(tmp_path / "base.npy", IDS, vectors(N_ROWS, seed=1)), "base")
    return ds


# ---- 1. round trip -----------------------------------------------------------------
@pytest.mark.parametrize("fmt", IMPORT_FORMATS)
def test_export_then_import_is_bitwise_identical(base, tmp_path: Path, fmt: str) -> None:
    stored = load_embedding(base, "base")
    assert np.allclose(stored.vectors, unit(vectors(N_ROWS, seed=1)), atol=1e-6)
    out = tmp_path / f"exported.{fmt}"
    written = export_embeddings(base, None, out)  # None → the default embedding, "base"
    assert written == ([out, tmp_path / "exported.ids.npy"] if fmt == "npy" else [out])
    assert all(p.is_file() for p in written)

    report = import_embeddings(base, out, "again")
    again = load_embedding(base, "again")
    assert list(again.ids) == list(stored.ids) == IDS
    assert np.array_equal(bits(again.vectors), bits(stored.vectors))
    assert report.info.rows == N_ROWS and report.uncovered == 0 and report.skipped_unknown == 0
    assert again.meta["source"] == "imported" and again.meta["encoder"] is None
    assert again.meta["imported_from"] == out.name and again.meta["modalities"] == ["text"]


def test_exported_files_hold_the_stored_vectors(base, tmp_path: Path) -> None:
    stored = load_embedding(base, "base")
    export_embeddings(base, "base", tmp_path / "v.npy")
    assert np.array_equal(bits(np.load(tmp_path / "v.npy")), bits(stored.vectors))
    assert np.load(tmp_path / "v.ids.npy").dtype.kind == "U"
    export_embeddings(base, "base", tmp_path / "v.parquet")
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.schema.field("vector").type == pa.list_(pa.float32())
    assert np.array_equal(bits(np.stack(table.column("vector").to_numpy(zero_copy_only=False))),
                          bits(stored.vectors))
    export_embeddings(base, "base", tmp_path / "v.csv")
    frame = pd.read_csv(tmp_path / "v.csv", dtype={"id": str})
    assert list(frame.columns) == ["id", *(f"d{j}" for j in range(DIMS))]
    with pytest.raises(InputError, match="parquet, npy, csv"):
        export_embeddings(base, "base", tmp_path / "v.hdf5")
    export_embeddings(base, "base", tmp_path / "v.csv")  # overwrite: atomic, no temp files left
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("v.", ".v."))) == [
        "v.csv", "v.ids.npy", "v.npy", "v.parquet"]


# ---- 2. invalid files -----------------------------------------------------------------
def _pickled_npy(path: Path) -> Path:
    """An object-array .npy whose unpickling would create ``pwned`` next to it."""
    class Payload:
        def __reduce__(self):
            return (open, (str(path.with_name("pwned")), "w"))
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        pickle.dump(np.array([Payload()], dtype=object), fh, protocol=3)
    return path


def _bad_dims(tmp: Path):
    rows = [np.ones(DIMS) for _ in IDS]
    rows[3], rows[9] = np.ones(DIMS - 1), np.ones(DIMS + 2)
    return write_parquet_list(tmp / "v.parquet", IDS, rows), {}


def _with_value(value: float, rows: tuple[int, ...], fmt: str):
    def build(tmp: Path):
        vecs = vectors(N_ROWS)
        for r in rows:
            vecs[r, r % DIMS] = value
        if fmt == "csv":
            return write_csv(tmp / "v.csv", IDS, vecs), {}
        return write_npy(tmp / "v.npy", IDS, vecs), {}
    return build


def _zero_rows(tmp: Path):
    vecs = vectors(N_ROWS)
    vecs[[4, 11, 12]] = 0
    return write_parquet_list(tmp / "v.parquet", IDS, list(vecs)), {}


def _with_text(vecs: np.ndarray, row: int, text: str) -> np.ndarray:
    cells = vecs.astype(str)
    cells[row, 2] = text
    return cells


def _short_csv_row(tmp: Path):
    path = write_csv(tmp / "v.csv", IDS, vectors(N_ROWS))
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 2)[0]  # row r003 loses its last two values
    lines[8] = lines[8].replace(",", ",,", 1).rsplit(",", 1)[0]  # row r007: an empty cell
    path.write_text("\n".join(lines) + "\n")
    return path, {}


def _ids_case(ids: list[str], **kwargs):
    return lambda tmp: (write_csv(tmp / "v.csv", ids, vectors(len(ids))), kwargs)


CASES = {
    "inconsistent dims": (_bad_dims, EmbeddingError, ["inconsistent dims", "2 rows differ", "'r003' (15)", "'r009' (18)"]),
    "too many dims": (lambda t: (write_npy(t / "v.npy", IDS, np.ones((N_ROWS, MAX_DIMS + 1), np.float32)), {}),
                      EmbeddingError, ["4,097 dims", "4,096"]),
    "nan": (_with_value(np.nan, (2, 7), "npy"), EmbeddingError, ["has 2 vectors with NaN or Inf", "'r002', 'r007'"]),
    "inf in csv": (_with_value(np.inf, (5,), "csv"), EmbeddingError, ["has 1 vector with NaN or Inf", "'r005'"]),
    "short or empty csv cells": (_short_csv_row, EmbeddingError,
                                 ["has 2 rows with missing values", "fewer fields than the header", "'r003', 'r007'"]),
    "all zeros": (_zero_rows, EmbeddingError, ["has 3 all-zero vectors", "'r004', 'r011', 'r012'"]),
    "duplicate ids": (_ids_case(IDS[:10] + ["r001", "r002", "r001"]), SchemaError,
                      ["has 2 duplicate ids", "'r001', 'r002'"]),
    "unknown ids": (_ids_case(IDS[:10] + ["ghost-1", "ghost-2"]), EmbeddingError,
                    ["2 of 12 ids", "not rows of dataset 'texts'", "'ghost-1', 'ghost-2'", "--skip-unknown"]),
    "nothing left": (_ids_case(["ghost-1", "ghost-2"], skip_unknown=True), EmbeddingError,
                     ["none of the 2 ids", "'ghost-1'", "'r000'"]),
    "name exists": (lambda t: (write_npy(t / "v.npy", IDS, vectors(N_ROWS)), {"name": "base"}),
                    AlreadyExistsError, ["'base' already exists", "--replace"]),
    "unknown format": (lambda t: (write_csv(t / "v.tsv", IDS, vectors(N_ROWS)), {}), InputError,
                       ["'.tsv'", "parquet, npy, csv"]),
    "unknown format given": (lambda t: (write_csv(t / "v.csv", IDS, vectors(N_ROWS)), {"format": "hdf5"}),
                             InputError, ["'hdf5'", "parquet, npy, csv"]),
    "missing id column": (lambda t: (write_parquet_list(t / "v.parquet", IDS, list(vectors(N_ROWS)), "key"), {}),
                          SchemaError, ["no id column 'id'", "'key', 'vector'", "--id-col"]),
    "non-numeric csv": (lambda t: (write_csv(t / "v.csv", IDS, _with_text(vectors(N_ROWS), 6, "abc")), {}),
                        EmbeddingError, ["1 non-numeric value,", "column 'd2', id 'r006': 'abc'"]),
    "non-numeric parquet column": (lambda t: (write_parquet_wide(t / "v.parquet", IDS, vectors(N_ROWS).astype(str)), {}),
                                   EmbeddingError, ["non-numeric columns", "f0 (string)"]),
    "npy without ids": (lambda t: (np.save(t / "v.npy", vectors(N_ROWS)) or t / "v.npy", {}), InputError,
                        ["no ids file", "v.ids.npy", "--ids-file"]),
    "ids count differs": (lambda t: (write_npy(t / "v.npy", IDS[:-1], vectors(N_ROWS)), {}), EmbeddingError,
                          ["49 ids", "50 vectors"]),
    "pickled npy": (lambda t: (_pickled_npy(t / "v.npy"), {"ids_file": write_npy(t / "ok.npy", ["r000"], vectors(1)).with_name("ok.ids.npy")}),
                    EmbeddingError, ["non-numeric", "without pickle"]),
    "pickled ids file": (lambda t: (write_npy(t / "v.npy", IDS, vectors(N_ROWS)),
                                    {"ids_file": _pickled_npy(t / "ids.npy")}), InputError,
                         ["cannot read ids", "ids.npy", "allow_pickle=False"]),
    "null ids": (lambda t: (write_parquet_list(t / "v.parquet", [None, *IDS[1:]], list(vectors(N_ROWS))), {}),
                 SchemaError, ["has 1 row with a null or empty id", "row numbers, 0-based: 0"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_file_raises_and_changes_nothing(base, tmp_path: Path, case: str) -> None:
    build, error, fragments = CASES[case]
    src, kwargs = build(tmp_path)
    name = kwargs.pop("name", "new")
    before = tree_hash(base.path)
    with pytest.raises(error) as caught:
        import_embeddings(base, src, name, **kwargs)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)
    assert tree_hash(base.path) == before
    assert [e.name for e in list_embeddings(base)] == ["base"]
    assert not (tmp_path / "pwned").exists()


# ---- 3. partial coverage ------------------------------------------------------------
def test_partial_embedding_records_coverage_and_search_stays_within(ds, tmp_path: Path) -> None:
    covered = IDS[::5] + [i for n, i in enumerate(IDS) if n % 5 and n % 5 != 4]  # 40 ids, shuffled order
    report = import_embeddings(ds, write_npy(tmp_path / "p.npy", covered, vectors(40), ".ids.txt"), "partial")
    assert report.info.coverage == 0.8 and report.uncovered == 10
    assert "covers 40 of 50 rows (10 without a vector)" in report.summary()
    [info] = list_embeddings(ds)
    assert (info.rows, info.dataset_rows, info.coverage) == (40, 50, 0.8)
    result = find_similar(load_index(ds, "partial"), [covered[0]], k=N_ROWS)
    assert set(result.ids) == set(covered) - {covered[0]}


def test_skip_unknown_drops_them_and_keeps_the_rest_aligned(ds, tmp_path: Path) -> None:
    ids = IDS[:30]
    ids = ["ghost-a", *ids[:5], "ghost-b", *ids[5:20], "ghost-c", *ids[20:]]
    vecs = vectors(len(ids), seed=3)
    calls: list[tuple[int, int]] = []
    report = import_embeddings(ds, write_npy(tmp_path / "s.npy", ids, vecs, ".ids.csv"), "s",
                               skip_unknown=True, progress=lambda d, t: calls.append((d, t)))
    assert report.skipped_unknown == 3 and report.info.rows == 30
    assert "skipped 3 ids not in the dataset" in report.summary()
    emb = load_embedding(ds, "s")
    keep = [n for n, i in enumerate(ids) if not i.startswith("ghost")]
    assert list(emb.ids) == IDS[:30]
    assert np.allclose(emb.vectors, unit(vecs[keep]), atol=1e-6)
    assert calls[-1] == (33, 33)


# ---- 4. Parquet layouts ---------------------------------------------------------------
@pytest.mark.parametrize("layout", ["wide", "list", "fixed-size list"])
def test_parquet_layouts_import(ds, tmp_path: Path, layout: str) -> None:
    vecs = vectors(N_ROWS, seed=4)
    path = tmp_path / "v.parquet"
    if layout == "wide":
        write_parquet_wide(path, IDS, vecs)
    elif layout == "list":
        write_parquet_list(path, IDS, list(vecs))
    else:  # id column not first, named by id_col; other columns ignored beside the list column
        column = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), DIMS)
        pq.write_table(pa.table({"vector": column, "key": IDS, "label": ["x"] * N_ROWS}), path)
    report = import_embeddings(ds, path, "v", id_col="key" if layout == "fixed-size list" else "id")
    emb = load_embedding(ds, "v")
    assert list(emb.ids) == IDS and emb.dims == DIMS == report.info.dims
    assert np.allclose(emb.vectors, unit(vecs), atol=1e-6)


def test_integer_ids_match_string_row_ids(ws, tmp_path: Path) -> None:
    src = tmp_path / "numbered.csv"
    pd.DataFrame({"id": range(20), "text": [f"t{i}" for i in range(20)]}).to_csv(src, index=False)
    ingest_table(ws, src, "numbered")
    ds = ws.dataset("numbered")
    vecs = vectors(20, seed=6)
    import_embeddings(ds, write_parquet_list(tmp_path / "n.parquet", list(range(20)), list(vecs)), "v")
    emb = load_embedding(ds, "v")
    assert list(emb.ids) == [str(i) for i in range(20)]
    assert np.allclose(emb.vectors, unit(vecs), atol=1e-6)


def test_replace_overwrites_and_npy_ids_file_can_be_given(base, tmp_path: Path) -> None:
    vecs = vectors(N_ROWS, dims=8, seed=5)
    np.save(tmp_path / "w.npy", vecs.astype(np.float64))
    (tmp_path / "names.txt").write_text("\r\n".join(IDS) + "\r\n", encoding="utf-8")
    report = import_embeddings(base, tmp_path / "w.npy", "base", ids_file=tmp_path / "names.txt", replace=True)
    assert report.info.dims == 8
    emb = load_embedding(base, "base")
    assert list(emb.ids) == IDS and np.allclose(emb.vectors, unit(vecs), atol=1e-6)


def test_large_exact_import_says_how_to_build_an_ann_index_and_rebuild_index_does(
        base, tmp_path: Path, monkeypatch) -> None:
    import core.embeddings.io as eio
    from core.embeddings import rebuild_index

    monkeypatch.setattr(eio, "EXACT_MAX_ROWS", N_ROWS - 1)  # this import counts as "large"
    report = import_embeddings(base, write_npy(tmp_path / "big.npy", IDS, vectors(N_ROWS, seed=4)), "big")
    assert report.info.index_kind == "exact"
    assert "catalog index DATASET --embedding big --kind auto" in report.summary()
    emb_dir = base.embedding_dir("big")
    kept = {f: (emb_dir / f).read_bytes() for f in ("vectors.npy", "ids.npy", "meta.json")}
    before = find_similar(load_index(base, "big"), [IDS[0]], k=5)

    calls: list[tuple[int, int]] = []
    info = rebuild_index(base, "big", "hnsw", progress=lambda d, t: calls.append((d, t)), M=8)
    assert info.index_kind == "hnsw" and calls[-1] == (N_ROWS, N_ROWS)
    index = load_index(base, "big")
    assert (index.kind, index.params["M"]) == ("hnsw", 8)
    assert find_similar(index, [IDS[0]], k=5).ids == before.ids
    assert {f: (emb_dir / f).read_bytes() for f in kept} == kept
    with pytest.raises(InputError, match="unknown index kind"):
        rebuild_index(base, "big", "flat")
    with pytest.raises(InputError, match="unknown index kind"):
        import_embeddings(base, tmp_path / "big.npy", "other", index_kind="flat")
    assert load_index(base, "big").kind == "hnsw" and "other" not in base.embedding_names()
