"""Tests for the streamed table ingest: batches give the rows the whole table gives, checks
that span batches (duplicate ids far apart, types that change late), progress."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import core.ingest.checks as checks_module
import core.ingest.tables as tables_module
import core.ingest.writer as writer_module
from core.errors import InputError, SchemaError
from core.ingest import ingest_table
from core.workspace import Workspace, open_workspace

N = 700
CORE = ["id", "modality", "text", "image", "label", "ingest_issue"]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "home")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def texts() -> list[str | None]:
    out: list[str | None] = [f"text {i} " + "é" * (i % 3) for i in range(N)]
    out[5], out[600] = "   ", None  # blank rows late and early: skipped with skip_invalid
    return out


def write_csv(path: Path) -> Path:
    """Columns whose pandas type only shows late: an int column with 2.5 at row 650, one with
    NA at row 640, one empty until row 600, bools, dates (text to pandas), quoted newlines."""
    lines = ["id,text,label,score,late_float,late_na,empty_early,flag,when,mixed"]
    for i, text in enumerate(texts()):
        cell = "" if text is None else f'"{text}"' if i % 50 else f'"two\nlines {text}"'
        lines.append(",".join([
            f"k{i:04d}", cell, "" if i % 7 == 0 else ["a", "b", "NA", "c"][i % 4],
            f"{i / 7:.3f}", "2.5" if i == 650 else str(i), "NA" if i == 640 else str(i),
            "" if i < 600 else str(i), ["True", "False"][i % 2], f"2024-01-{1 + i % 28:02d}",
            "x" if i == 699 else str(i)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path) -> Path:
    """An int id among strings, an int column that meets a float late, a key first seen at
    row 660, a column of ints and one string (stored as text), a list."""
    records = []
    for i, text in enumerate(texts()):
        record = {"id": f"k{i:04d}" if i != 3 else 3, "text": text, "n": 2.5 if i == 650 else i,
                  "label": None if i % 7 == 0 else ["a", "b"][i % 2]}
        if i == 660:
            record["late_key"] = "here"
        if i > 500:
            record["mixed"] = "s" if i == 690 else i
        if i == 10:
            record["lst"] = [1, 2]
        records.append(record)
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path) -> Path:
    """Pandas dtypes (nullable Int64, categorical, datetime), a named index, float labels."""
    frame = pd.DataFrame({
        "id": [f"k{i:04d}" for i in range(N)], "text": texts(),
        "label": [float(i % 3) if i % 5 else None for i in range(N)],
        "nint": pd.array([None if i % 9 == 0 else i for i in range(N)], dtype="Int64"),
        "cat": pd.Categorical([["x", "y"][i % 2] for i in range(N)]),
        "when": pd.to_datetime(["2024-01-01"] * N)})
    frame.index = pd.Index(range(100, 100 + N), name="myindex")
    frame.to_parquet(path, row_group_size=200)
    return path


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}


def ingested(ws: Workspace, src: Path, name: str, **kwargs) -> tuple[pd.DataFrame, pa.Schema, dict]:
    report = ingest_table(ws, src, name, skip_invalid=True, **kwargs)
    path = ws.dataset_path(name) / "rows.parquet"
    info = json.loads((ws.dataset_path(name) / "dataset.json").read_text())
    assert info["ingest"] == report.to_json()
    info.pop("created")
    info["ingest"].pop("dataset")
    return pd.read_parquet(path), pq.read_schema(path), info


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_batches_give_the_rows_of_the_whole_table(ws: Workspace, tmp_path: Path, fmt: str) -> None:
    src = WRITERS[fmt](tmp_path / f"t.{fmt}")
    whole = ingested(ws, src, "whole", batch_rows=10**6)
    for batch_rows in (1, 7, 64):
        rows, schema, info = ingested(ws, src, f"b{batch_rows}", batch_rows=batch_rows)
        pd.testing.assert_frame_equal(rows, whole[0])
        assert schema == whole[1]
        assert {**info, "name": "whole"} == whole[2]
    rows = whole[0]
    assert len(rows) == N - 2 and list(rows.columns[:6]) == CORE
    assert info["ingest"]["skipped"] == {"empty text": 2}
    assert "k0005" not in set(rows["id"]) and rows["id"].iloc[0] == "k0000"


def test_csv_metadata_is_typed_as_pandas_types_the_whole_file(ws: Workspace, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "t.csv")
    rows, schema, _ = ingested(ws, src, "t", batch_rows=50)
    expected = pd.read_csv(src).drop(index=[5, 600]).reset_index(drop=True)  # the blank texts
    meta = ["score", "late_float", "late_na", "empty_early", "flag", "when", "mixed"]
    pd.testing.assert_frame_equal(rows[meta], expected[meta])
    assert schema.field("late_na").type == pa.int64()  # ints with a null stay ints on disk
    assert rows.loc[rows["id"] == "k0650", "late_float"].item() == 2.5
    assert rows["text"].iloc[0] == "two\nlines text 0 "  # verbatim, quoted newline kept
    assert rows.loc[rows["id"] == "k0002", "label"].item() == "NA"  # mapped columns verbatim


def test_jsonl_keys_and_types_over_the_whole_file(ws: Workspace, tmp_path: Path) -> None:
    rows, schema, _ = ingested(ws, write_jsonl(tmp_path / "t.jsonl"), "t", batch_rows=50)
    by_id = rows.set_index("id")
    assert list(rows.columns[6:]) == ["n", "lst", "mixed", "late_key"]  # by first appearance
    assert schema.field("n").type == pa.float64() and by_id.loc["k0650", "n"] == 2.5
    assert by_id.loc["k0660", "late_key"] == "here" and by_id["late_key"].notna().sum() == 1
    assert by_id.loc["k0690", "mixed"] == "s" and by_id.loc["k0691", "mixed"] == "691"
    assert "3" in by_id.index and by_id.loc["k0010", "lst"].tolist() == [1, 2]


def test_parquet_keeps_pandas_dtypes_and_drops_its_index(ws: Workspace, tmp_path: Path) -> None:
    rows, _, _ = ingested(ws, write_parquet(tmp_path / "t.parquet"), "t", batch_rows=64)
    assert list(rows.columns[6:]) == ["nint", "cat", "when"]
    assert str(rows["nint"].dtype) == "Int64" and isinstance(rows["cat"].dtype, pd.CategoricalDtype)
    assert rows["label"].iloc[1] == "1" and pd.isna(rows["label"].iloc[0])  # 1.0 -> '1'


def _parquet_ids(path: Path, ids: list[str]) -> Path:
    pq.write_table(pa.table({"id": ids, "text": [f"t {i}" for i in range(len(ids))]}), path,
                   row_group_size=500)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_duplicate_id_in_the_last_batch_is_refused_before_writing(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    ids = [f"r{i:05d}" for i in range(5000)]
    ids[4999] = "r00007"
    src = tmp_path / f"dup.{fmt}"
    if fmt == "parquet":
        _parquet_ids(src, ids)
    else:
        src.write_text("id,text\n" + "".join(f"{i},t\n" for i in ids))
    ingest_table(ws, _parquet_ids(tmp_path / "ok.parquet", ids[:10]), "existing")
    before = tree(ws.home)

    def no_writer(*args, **kwargs):
        raise AssertionError("rows.parquet was opened for writing")

    monkeypatch.setattr(writer_module.pq, "ParquetWriter", no_writer)
    for name, replace in (("fresh", False), ("existing", True)):
        with pytest.raises(SchemaError, match=r"1 ids appear more than once in column 'id', "
                                              r"e\.g\. 'r00007'.*'r00007' at rows 7 and 4,999"):
            ingest_table(ws, src, name, batch_rows=100, replace=replace)
        assert tree(ws.home) == before


def test_a_hash_collision_is_not_a_duplicate(ws: Workspace, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks_module.pd.util, "hash_array",
                        lambda values, categorize: np.zeros(len(values), np.uint64))
    src = _parquet_ids(tmp_path / "t.parquet", [f"r{i}" for i in range(300)])
    assert ingest_table(ws, src, "t", batch_rows=64).rows == 300


def test_null_ids_late_are_named_by_row(ws: Workspace, tmp_path: Path) -> None:
    ids = [f"r{i}" for i in range(1000)]
    ids[998], ids[999] = None, " "
    with pytest.raises(SchemaError, match=r"2 rows have a null or empty id in column 'id' "
                                          r"\(row numbers, 0-based: 998, 999\)"):
        ingest_table(ws, _parquet_ids(tmp_path / "t.parquet", ids), "t", batch_rows=100)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_progress_counts_rows_to_the_total(ws: Workspace, tmp_path: Path, fmt: str) -> None:
    src = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        _parquet_ids(src, [f"r{i}" for i in range(1000)])
    else:
        src.write_text("id,text\n" + "".join(f"r{i},t\n" for i in range(1000)))
    calls: list[tuple[int, int]] = []
    ingest_table(ws, src, "t", batch_rows=100, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (1000, 1000) and len(calls) >= 20
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
    first_pass = calls[:10]  # a CSV's row count is known once it has been read
    assert all(t == (1000 if fmt == "parquet" else 0) for _, t in first_pass)


def test_csv_rows_longer_than_the_parse_block(ws: Workspace, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "long.csv"
    long = "word " * 400
    src.write_text("id,text\n" + "".join(f'r{i},"{long if i == 30 else "short"}"\n'
                                         for i in range(60)))
    monkeypatch.setattr(tables_module, "_CSV_BLOCK", 256)
    rows, _, _ = ingested(ws, src, "t", batch_rows=8)
    assert rows["id"].tolist() == [f"r{i}" for i in range(60)]
    assert rows.loc[30, "text"] == long


@pytest.mark.parametrize(("data", "pattern"), [
    (b"id,text\n1,ok\n2,caf\xe9\n", r"not UTF-8 text: byte 0xe9 at offset 18 \(line 3\)"),
    (b"id,text\n1,ok\n2,a,b\n", r"cannot parse .* as CSV: .*Expected 2 columns, got 3"),
])
def test_csv_errors_name_the_place(ws: Workspace, tmp_path: Path, data: bytes, pattern: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(data)
    with pytest.raises(InputError, match=pattern):
        ingest_table(ws, src, "bad")
    assert not ws.has_dataset("bad")
