"""Ingest from a URI: a table at ``file://``, fsspec's ``memory://`` or ``s3://`` (a local moto
server) goes through the same readers as a local path and makes the same rows. Images stay
local (a remote table's image paths need a local image root); folders at an object store,
missing objects, unknown schemes and unreadable tables are typed errors that write nothing."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.errors import InputError, NotFoundError, SchemaError
from core.ingest import ingest, ingest_table
from core.workspace import Workspace, open_workspace
from tests.helpers.object_store import s3_store, use_store

N = 10
TABLE = pd.DataFrame({"id": [f"r{i:02d}" for i in range(N)], "text": [f"note number {i}" for i in range(N)],
                      "label": ["a", "b"] * (N // 2), "score": np.arange(N) / 4, "count": np.arange(N)})


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """``df`` as CSV, Parquet or JSONL by ``path``'s suffix."""
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True)
    return path


def rows_of(ws: Workspace, name: str) -> pd.DataFrame:
    return pd.read_parquet(ws.dataset_path(name) / "rows.parquet")


def info_of(ws: Workspace, name: str) -> dict:
    return json.loads((ws.dataset_path(name) / "dataset.json").read_text())


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "home")


class Memory:
    """A unique folder of fsspec's in-process memory filesystem (``memory://...``)."""

    def __init__(self) -> None:
        fsspec = pytest.importorskip("fsspec")
        self.fs, self.root = fsspec.filesystem("memory"), f"catalog-{secrets.token_hex(4)}"
        self.prefix = f"memory://{self.root}"

    def put(self, local: Path, name: str | None = None) -> str:
        name = name or local.name
        self.fs.pipe(f"/{self.root}/{name}", local.read_bytes())
        return f"{self.prefix}/{name}"

    def put_bytes(self, data: bytes, name: str) -> str:
        self.fs.pipe(f"/{self.root}/{name}", data)
        return f"{self.prefix}/{name}"


@pytest.fixture
def memory():
    store = Memory()
    yield store
    if store.fs.exists(f"/{store.root}"):
        store.fs.rm(f"/{store.root}", recursive=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_table_at_a_uri_makes_the_rows_its_path_makes(ws: Workspace, tmp_path: Path, memory: Memory,
                                                        suffix: str) -> None:
    src = write_table(TABLE, tmp_path / f"t{suffix}")
    ingest_table(ws, src, "local")
    file_report = ingest_table(ws, src.as_uri(), "file")
    mem_report = ingest_table(ws, memory.put(src), "mem", batch_rows=3)  # streamed, 4 batches
    for name in ("file", "mem"):
        pd.testing.assert_frame_equal(rows_of(ws, name), rows_of(ws, "local"))
    assert file_report.rows == mem_report.rows == N
    assert info_of(ws, "file")["source"] == str(src.resolve()) == info_of(ws, "local")["source"]
    assert info_of(ws, "mem")["source"] == f"{memory.prefix}/t{suffix}"
    assert info_of(ws, "mem")["format"] == suffix.strip(".") and info_of(ws, "mem")["media_root"] is None


def test_progress_and_update_work_on_a_uri(ws: Workspace, tmp_path: Path, memory: Memory) -> None:
    uri = memory.put(write_table(TABLE, tmp_path / "t.csv"))
    seen: list[tuple[int, int]] = []
    ingest(ws, uri, "notes", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (N, N)
    changed = TABLE.assign(text=TABLE["text"].where(TABLE.index != 3, "rewritten")).iloc[1:]
    report = ingest(ws, memory.put(write_table(changed, tmp_path / "t2.csv"), "t.csv"), "notes", update=True)
    assert report.rows == N - 1
    assert rows_of(ws, "notes").set_index("id").loc["r03", "text"] == "rewritten"


def _png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 5, 3), value, np.uint8)).save(path)
    return path


def test_a_remote_tables_images_come_from_a_local_image_root(ws: Workspace, tmp_path: Path, memory: Memory) -> None:
    images = tmp_path / "imgs"
    _png(images / "a.png", 10), _png(images / "b.png", 200)
    table = write_table(pd.DataFrame({"id": ["a", "b"], "image": ["a.png", "b.png"]}), tmp_path / "i.csv")
    uri = memory.put(table)
    before = tree(ws.home)
    with pytest.raises(InputError) as caught:
        ingest_table(ws, uri, "pics")
    assert f"table '{uri}' has image paths (2 rows)" in str(caught.value)
    assert "local disk only: pass --image-root DIR" in str(caught.value)
    with pytest.raises(InputError, match="image root 's3://bucket/imgs' is a URI; images are read from the local disk"):
        ingest_table(ws, uri, "pics", image_root="s3://bucket/imgs")
    assert tree(ws.home) == before
    report = ingest_table(ws, uri, "pics", image_root=images)
    rows = rows_of(ws, "pics")
    assert report.rows == 2 and rows["modality"].tolist() == ["image", "image"] and rows["ingest_issue"].isna().all()
    assert info_of(ws, "pics")["media_root"] == str(images.resolve())
    ingest_table(ws, uri, "pics2", image_root=images.as_uri())  # a file:// root is a local folder
    assert info_of(ws, "pics2")["media_root"] == str(images.resolve())


def test_folders_at_an_object_store_are_refused(ws: Workspace, tmp_path: Path, memory: Memory) -> None:
    memory.put(_png(tmp_path / "x.png", 5), "pets/cat/x.png")
    before = tree(ws.home)
    with pytest.raises(InputError, match="is a folder at an object store; image folders are read from the local disk"):
        ingest(ws, f"{memory.prefix}/pets", "pets")
    assert tree(ws.home) == before


def test_bad_sources_at_a_uri_are_typed_errors_naming_it(ws: Workspace, tmp_path: Path, memory: Memory) -> None:
    bad_utf8 = memory.put_bytes("id,text\nr1,caf".encode() + b"\xff\n", "latin.csv")
    bad_json = memory.put_bytes(b'{"id": "a", "text": "x"}\n{nope\n', "bad.jsonl")
    bad_parquet = memory.put_bytes(b"PAR1 not really", "bad.parquet")
    empty = memory.put_bytes(b"", "empty.csv")
    cases = [
        (f"{memory.prefix}/nope.csv", NotFoundError, f"source '{memory.prefix}/nope.csv' does not exist"),
        ("gopher://host/t.csv", InputError, "unknown scheme 'gopher' in 'gopher://host/t.csv'"),
        (bad_utf8, InputError, f"file '{bad_utf8}' is not UTF-8 text: byte 0xff at offset 14 (line 2)"),
        (bad_json, InputError, f"'{bad_json}' line 2 is not valid JSON"),
        (bad_parquet, InputError, f"cannot read '{bad_parquet}' as Parquet"),
        (empty, SchemaError, f"table '{empty}' is empty"),
        (f"{memory.prefix}/t.txt", InputError, f"cannot tell the format of '{memory.prefix}/t.txt'"),
    ]
    memory.put_bytes(b"id,text\n", "t.txt")
    before = tree(ws.home)
    for uri, error, message in cases:
        with pytest.raises(error) as caught:
            ingest(ws, uri, "x")
        assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert tree(ws.home) == before


# ---- a real S3 API: moto's server on 127.0.0.1 ---------------------------------------
@pytest.fixture(scope="module")
def s3():
    with s3_store() as store:
        yield store


@pytest.mark.parametrize("suffix, via", [(".csv", "options"), (".parquet", "options"), (".jsonl", "options"),
                                         (".parquet", "env")])
def test_s3_tables_ingest_like_local_ones(ws: Workspace, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch,
                                          suffix: str, via: str) -> None:
    use_store(monkeypatch, s3, via=via)
    src = write_table(TABLE, tmp_path / f"t{suffix}")
    uri = s3.put(src, f"tables/{via}/t{suffix}")
    ingest_table(ws, src, "local")
    report = ingest_table(ws, uri, "remote", batch_rows=4)
    assert report.rows == N
    pd.testing.assert_frame_equal(rows_of(ws, "remote"), rows_of(ws, "local"))
    assert info_of(ws, "remote")["source"] == uri


def test_s3_missing_objects_and_buckets(ws: Workspace, s3, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, s3)
    before = tree(ws.home)
    for uri in (s3.uri("nope/t.csv"), "s3://no-such-bucket-here/t.csv"):
        with pytest.raises(NotFoundError, match=f"source '{uri}' does not exist"):
            ingest(ws, uri, "x")
    assert tree(ws.home) == before
