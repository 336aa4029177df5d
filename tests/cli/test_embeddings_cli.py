"""`catalog import-embeddings` / `export-embeddings` as a user runs them: round trips
through every format, and bad files refused with one line and nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli.test_cli import catalog
from tests.conftest import tree_hash

N, DIMS = 20, 16
IDS = [f"n{i:02d}" for i in range(N)]


def _vectors(n: int = N, dims: int = DIMS, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dims)).astype(np.float32)


def _parquet(path: Path, ids: list[str], rows: list) -> Path:
    pq.write_table(pa.table({"id": ids, "vector": [list(map(float, r)) for r in rows]}), path)
    return path


def _csv(path: Path, ids: list[str], vecs: np.ndarray) -> Path:
    frame = pd.DataFrame(vecs, columns=[f"d{j}" for j in range(vecs.shape[1])])
    frame.insert(0, "id", ids)
    frame.to_csv(path, index=False)
    return path


def _npy(path: Path, ids: list[str], vecs: np.ndarray) -> Path:
    np.save(path, vecs)
    np.save(path.with_name(path.stem + ".ids.npy"), np.asarray(ids))
    return path


def _stored(home: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    root = home / "datasets" / "notes" / "embeddings" / name
    return np.load(root / "ids.npy"), np.load(root / "vectors.npy")


@pytest.fixture
def notes(home: Path, tmp_path: Path) -> Path:
    """Dataset 'notes' (20 text rows) with embedding 'base' imported from Parquet via the CLI."""
    table = tmp_path / "notes.csv"
    pd.DataFrame({"id": IDS, "text": [f"note {i}" for i in range(N)]}).to_csv(table, index=False)
    assert catalog(home, "ingest", table, "--name", "notes").returncode == 0
    src = _parquet(tmp_path / "base.parquet", IDS, _vectors())
    out = catalog(home, "import-embeddings", "notes", src, "--embedding", "base", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["embedding"]["rows"] == N and report["uncovered"] == 0
    return home


@pytest.mark.parametrize("fmt", ["parquet", "npy", "csv"])
def test_export_then_import_round_trips_bit_for_bit(notes: Path, tmp_path: Path, fmt: str):
    out = tmp_path / "export" / f"base.{fmt}"
    out.parent.mkdir()
    result = catalog(notes, "export-embeddings", "notes", "--embedding", "base", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    files = [Path(p) for p in json.loads(result.stdout)["files"]]
    assert out in files and all(p.is_file() for p in files)
    extra = []
    if fmt == "npy":
        ids_file = out.with_name("base.ids.npy")
        assert ids_file in files
        extra = ["--ids-file", ids_file]
    result = catalog(notes, "import-embeddings", "notes", out, "--embedding", f"copy-{fmt}", *extra)
    assert result.returncode == 0, result.stderr
    assert "covers 20 of 20 rows" in result.stdout
    base_ids, base_vecs = _stored(notes, "base")
    ids, vecs = _stored(notes, f"copy-{fmt}")
    assert ids.tolist() == base_ids.tolist()
    assert vecs.tobytes() == base_vecs.tobytes()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    listed = json.loads(catalog(notes, "list", "notes", "--json").stdout)["datasets"][0]["embeddings"]
    entry = next(e for e in listed if e["name"] == f"copy-{fmt}")
    assert (entry["dims"], entry["encoder"], entry["source"]) == (DIMS, "imported", "imported")


def test_npy_with_a_text_ids_file_and_partial_coverage(notes: Path, tmp_path: Path):
    vecs = _vectors(16, seed=4)
    np.save(tmp_path / "part.npy", vecs)
    (tmp_path / "my-ids.txt").write_text("\n".join(IDS[:16]) + "\n", encoding="utf-8")
    result = catalog(notes, "import-embeddings", "notes", tmp_path / "part.npy", "--embedding", "part",
                     "--ids-file", tmp_path / "my-ids.txt", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["uncovered"] == 4 and report["embedding"]["rows"] == 16
    ids, stored = _stored(notes, "part")
    assert ids.tolist() == IDS[:16]
    np.testing.assert_allclose(stored, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), atol=1e-6)
    search = catalog(notes, "search", "notes", "--id", "n00", "-k", "50", "--embedding", "part", "--json")
    assert {r["id"] for r in json.loads(search.stdout)["results"]} == set(IDS[1:16])


def _bad_file(case: str, tmp: Path) -> tuple[Path, list[str], str]:
    """(file, extra args, words the error must contain) for one kind of invalid input."""
    vecs = _vectors()
    if case == "inconsistent dims":
        rows = [list(v) for v in vecs]
        rows[7] = rows[7][:15]
        return _parquet(tmp / "ragged.parquet", IDS, rows), [], "inconsistent dims"
    if case == "too many dims":
        return _npy(tmp / "wide.npy", IDS, _vectors(dims=4097)), [], "at most 4,096"
    if case == "NaN":
        vecs[3, 5] = np.nan
        return _csv(tmp / "nan.csv", IDS, vecs), [], "NaN"
    if case == "all-zero vector":
        vecs[11] = 0.0
        return _npy(tmp / "zero.npy", IDS, vecs), [], "all-zero"
    if case == "duplicate ids":
        ids = list(IDS)
        ids[5] = ids[4]
        return _csv(tmp / "dups.csv", ids, vecs), [], "duplicate id"
    if case == "unknown ids":
        ids = list(IDS)
        ids[2] = "stranger"
        return _parquet(tmp / "unknown.parquet", ids, vecs), [], "stranger"
    if case == "existing name":
        return _parquet(tmp / "again.parquet", IDS, vecs), ["--embedding", "base"], "already exists"
    raise AssertionError(case)


BAD_CASES = ["inconsistent dims", "too many dims", "NaN", "all-zero vector", "duplicate ids",
             "unknown ids", "existing name"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_invalid_file_exits_2_with_one_line_and_changes_nothing(notes: Path, tmp_path: Path, case: str):
    path, extra, mentions = _bad_file(case, tmp_path)
    embeddings_dir = notes / "datasets" / "notes" / "embeddings"
    before = tree_hash(embeddings_dir)
    args = extra or ["--embedding", "new"]
    result = catalog(notes, "import-embeddings", "notes", path, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("catalog: error: ") and mentions.lower() in lines[0].lower(), lines[0]
    assert tree_hash(embeddings_dir) == before
    assert sorted(p.name for p in embeddings_dir.iterdir()) == ["base"]


def test_skip_unknown_and_replace_make_the_refused_imports_work(notes: Path, tmp_path: Path):
    path, _, _ = _bad_file("unknown ids", tmp_path)
    result = catalog(notes, "import-embeddings", "notes", path, "--embedding", "new", "--skip-unknown",
                     "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["skipped_unknown"], report["uncovered"]) == (1, 1)
    assert "stranger" not in _stored(notes, "new")[0].tolist()

    old = _stored(notes, "base")[1].copy()
    fresh = _parquet(tmp_path / "fresh.parquet", IDS, _vectors(seed=9))
    result = catalog(notes, "import-embeddings", "notes", fresh, "--embedding", "base", "--replace")
    assert result.returncode == 0, result.stderr
    replaced = _stored(notes, "base")[1]
    assert replaced.shape == old.shape and not np.allclose(replaced, old)


def test_index_command_switches_the_kind_and_keeps_vectors_and_results(notes: Path):
    ids_before, vecs_before = _stored(notes, "base")
    search = ("search", "notes", "--id", "n03", "-k", "5", "--embedding", "base", "--json")
    exact = json.loads(catalog(notes, *search).stdout)["results"]

    out = catalog(notes, "index", "notes", "--embedding", "base", "--kind", "hnsw", "--m", "8", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embedding"]["index_kind"] == "hnsw"
    listed = json.loads(catalog(notes, "list", "notes", "--json").stdout)
    assert "hnsw" in json.dumps(listed)
    meta = json.loads((notes / "datasets/notes/embeddings/base/index.json").read_text())
    assert (meta["kind"], meta["params"]["M"]) == ("hnsw", 8)
    ids_after, vecs_after = _stored(notes, "base")
    assert ids_after.tolist() == ids_before.tolist() and np.array_equal(vecs_after, vecs_before)
    assert json.loads(catalog(notes, *search).stdout)["results"] == exact  # 20 rows: graph is exact

    out = catalog(notes, "index", "notes", "--embedding", "base", "--kind", "ivf", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embedding"]["index_kind"] == "ivf"
    meta = json.loads((notes / "datasets/notes/embeddings/base/index.json").read_text())
    assert meta["kind"] == "ivf" and meta["base_rows"] == len(ids_before)
    ids_after, vecs_after = _stored(notes, "base")  # ivf re-ranks from vectors.npy: left as it was
    assert ids_after.tolist() == ids_before.tolist() and np.array_equal(vecs_after, vecs_before)
    assert json.loads(catalog(notes, *search).stdout)["results"] == exact  # 20 rows: one list, exact

    bad = catalog(notes, "index", "notes", "--embedding", "base", "--kind", "annoy")
    assert bad.returncode == 2 and "unknown index kind 'annoy'; choose one of auto, exact, hnsw, ivf" in bad.stderr
    assert json.loads((notes / "datasets/notes/embeddings/base/index.json").read_text())["kind"] == "ivf"


def test_import_builds_the_index_kind_asked_for(notes: Path, tmp_path: Path):
    src = _parquet(tmp_path / "again.parquet", IDS, _vectors(seed=3))
    default = catalog(notes, "import-embeddings", "notes", src, "--embedding", "plain", "--json")
    assert json.loads(default.stdout)["embedding"]["index_kind"] == "exact"
    graph = catalog(notes, "import-embeddings", "notes", src, "--embedding", "graph", "--index", "hnsw",
                    "--json")
    assert graph.returncode == 0, graph.stderr
    assert json.loads(graph.stdout)["embedding"]["index_kind"] == "hnsw"


# ---------------------------------------------------------------- ids files and output paths

BOM = b"\xef\xbb\xbf"


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("catalog: error: "), lines[0]
    return lines[0]


def test_export_ids_file_that_is_not_utf8_names_the_file_and_byte(notes: Path, tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"n00\n\xff\xfen01\n")  # UTF-16-ish bytes on line 2
    out = tmp_path / "out.csv"
    line = _one_error_line(catalog(notes, "export", "notes", "--ids-file", bad, "--format", "csv",
                                   "--out", out))
    assert str(bad) in line and "not UTF-8" in line and "offset 4" in line, line
    assert not out.exists()


def test_export_ids_file_with_a_bom_matches_the_first_id(notes: Path, tmp_path: Path):
    ids_file = tmp_path / "notepad.txt"
    ids_file.write_bytes(BOM + b"n00\r\nn01\r\n")
    out = tmp_path / "out.csv"
    result = catalog(notes, "export", "notes", "--ids-file", ids_file, "--format", "csv", "--out", out,
                     "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 2
    assert pd.read_csv(out, dtype=str)["id"].tolist() == ["n00", "n01"]


def test_import_ids_txt_with_a_bom_matches_the_first_id(notes: Path, tmp_path: Path):
    vecs = _vectors(3, seed=5)
    np.save(tmp_path / "three.npy", vecs)
    ids_file = tmp_path / "three.ids.txt"
    ids_file.write_bytes(BOM + "\n".join(IDS[:3]).encode() + b"\n")
    result = catalog(notes, "import-embeddings", "notes", tmp_path / "three.npy", "--embedding", "three",
                     "--ids-file", ids_file, "--skip-unknown", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["skipped_unknown"] == 0 and report["embedding"]["rows"] == 3
    assert _stored(notes, "three")[0].tolist() == IDS[:3]


def test_import_ids_txt_that_is_not_utf8_exits_2(notes: Path, tmp_path: Path):
    np.save(tmp_path / "two.npy", _vectors(2, seed=6))
    bad = tmp_path / "two.ids.txt"
    bad.write_bytes(b"n00\nn\xe901\n")  # latin-1 e-acute
    line = _one_error_line(catalog(notes, "import-embeddings", "notes", tmp_path / "two.npy",
                                   "--embedding", "two", "--ids-file", bad))
    assert str(bad) in line and "not UTF-8" in line and "offset 5" in line, line


@pytest.mark.parametrize("fmt", ["npy", "csv", "parquet"])
@pytest.mark.parametrize("depth", ["in", "below"])
def test_export_embeddings_under_a_regular_file_names_the_output(notes: Path, tmp_path: Path,
                                                                 fmt: str, depth: str):
    blocker = tmp_path / "regular"
    blocker.write_text("not a folder")
    out = blocker / f"x.{fmt}" if depth == "in" else blocker / "sub" / f"x.{fmt}"
    line = _one_error_line(catalog(notes, "export-embeddings", "notes", "--embedding", "base",
                                   "--out", out))
    assert str(out) in line and f"{str(blocker)!r} is a file" in line, line
    assert blocker.read_text() == "not a folder"
