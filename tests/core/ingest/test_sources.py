"""Tests for core.ingest.sources and core.ingest.preview: sources from the browser (server paths
inside the allowed roots, uploaded tables, uploaded zips of images) and their previews."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.errors import InputError, MediaError, NotFoundError, SchemaError
from core.ingest import (
    DATA_ROOTS_ENV,
    ColumnMapping,
    allowed_roots,
    check_source_path,
    extract_image_zip,
    ingest,
    preview_source,
    save_upload,
    uploads_dir,
)
from core.workspace import Workspace


def png_bytes(value: int = 0, size: tuple[int, int] = (6, 5)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(value))
    return path


def make_zip(members: dict | list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in (members.items() if isinstance(members, dict) else members):
            zf.writestr(name, data)
    return buf.getvalue()


def upload_entries(ws: Workspace) -> list[str]:
    """Everything under uploads/, hidden temp folders included."""
    root = uploads_dir(ws)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def dataset_info(ws: Workspace, name: str) -> dict:
    return json.loads((ws.dataset_path(name) / "dataset.json").read_text())


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's working directory (the default allowed root); CATALOG_DATA_ROOTS unset."""
    root = tmp_path / "srv"
    root.mkdir()
    monkeypatch.delenv(DATA_ROOTS_ENV, raising=False)
    monkeypatch.chdir(root)
    return root.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    png(folder / "secret.png")
    (folder / "secret.csv").write_text("id,text\n1,hush\n", encoding="utf-8")
    return folder.resolve()


# ---- allowed roots ------------------------------------------------------------------------
def test_default_roots_are_the_working_directory_and_uploads(ws: Workspace, server: Path):
    assert allowed_roots(ws) == (server, (ws.home / "uploads").resolve())
    assert (ws.home / "uploads").is_dir()
    png(server / "imgs" / "a.png")
    assert check_source_path(ws, "imgs") == server / "imgs"
    assert check_source_path(ws, f"  {server / 'imgs' / 'a.png'}  ") == server / "imgs" / "a.png"


def test_a_path_outside_the_roots_is_refused_naming_the_roots(ws: Workspace, server: Path,
                                                              outside: Path):
    for path in (outside / "secret.csv", outside, server / ".." / "private" / "secret.png",
                 outside / "missing.csv"):  # missing outside: refused, not "does not exist"
        with pytest.raises(InputError) as err:
            check_source_path(ws, str(path))
        message = str(err.value)
        assert "outside the folders this server may read" in message
        assert str(server) in message and str(uploads_dir(ws)) in message
        assert DATA_ROOTS_ENV in message


def test_a_symlink_inside_a_root_to_outside_is_refused(ws: Workspace, server: Path,
                                                       outside: Path):
    os.symlink(outside / "secret.csv", server / "link.csv")
    os.symlink(outside, server / "linkdir")
    for name in ("link.csv", "linkdir", "linkdir/secret.png"):
        with pytest.raises(InputError, match="outside the folders this server may read"):
            check_source_path(ws, str(server / name))
    os.symlink(server / "linkdir", server / "chain")  # symlink to a symlink: same answer
    with pytest.raises(InputError, match="outside"):
        check_source_path(ws, "chain")


def test_empty_and_missing_paths(ws: Workspace, server: Path):
    for empty in ("", "   "):
        with pytest.raises(InputError, match="no path given"):
            check_source_path(ws, empty)
    with pytest.raises(NotFoundError, match="'nope.csv' does not exist"):
        check_source_path(ws, "nope.csv")


def test_catalog_data_roots_is_honoured(ws: Workspace, server: Path, tmp_path: Path,
                                        outside: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture):
    data = tmp_path / "data"
    png(data / "b.png")
    home = tmp_path / "userhome"
    png(home / "pics" / "c.png")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv(DATA_ROOTS_ENV, os.pathsep.join(
        [str(data), str(tmp_path / "gone"), "~/pics", ""]))
    with caplog.at_level(logging.WARNING):
        roots = allowed_roots(ws)
    assert roots == (data.resolve(), (home / "pics").resolve(), uploads_dir(ws))
    assert "gone" in caplog.text and DATA_ROOTS_ENV in caplog.text
    assert check_source_path(ws, str(data / "b.png")) == (data / "b.png").resolve()
    assert check_source_path(ws, "~/pics/c.png") == (home / "pics" / "c.png").resolve()
    png(server / "here.png")  # the working directory is no longer allowed
    with pytest.raises(InputError, match=str(data.resolve())):
        check_source_path(ws, str(server / "here.png"))
    with pytest.raises(InputError, match="outside"):
        check_source_path(ws, str(outside))


# ---- table uploads -------------------------------------------------------------------------
CSV = "id,text,label\nr1,a red apple,fruit\nr2,a green leaf,plant\nr3,a blue sky,sky\n"


def test_table_upload_round_trip_into_ingest(ws: Workspace, server: Path):
    path = save_upload(ws, "../../My Data!.CSV", CSV.encode())
    assert path.name == "My_Data.csv" and path.read_text() == CSV
    assert path.parent.parent == uploads_dir(ws) and path.parent.name.endswith("-My_Data")
    assert check_source_path(ws, str(path)) == path  # uploads are always an allowed root
    preview = preview_source(path)
    assert preview.mapping == ColumnMapping(id="id", text="text", image=None, label="label")
    report = ingest(ws, path, "typed", **preview.mapping.to_ingest_kwargs())
    assert report.rows == 3 and report.labels == {"fruit": 1, "plant": 1, "sky": 1}

    again = save_upload(ws, "My Data!.csv", io.BytesIO(CSV.encode()))  # a file object
    assert again != path and again.read_text() == CSV
    assert len(os.listdir(uploads_dir(ws))) == 2


def test_upload_sanitises_the_name(ws: Workspace):
    for given, expected in [("..\\..\\evil.parquet", "evil.parquet"), (".hidden.jsonl", "hidden.jsonl"),
                            ("a b/ç?.tsv", "upload.tsv"), ("rows.NDJSON", "rows.ndjson")]:
        assert save_upload(ws, given, b"x").name == expected


@pytest.mark.parametrize("name", ["tool.exe", "data.json", "noext", "images.zip", "x.csv.gz"])
def test_upload_of_the_wrong_kind_is_refused(ws: Workspace, name: str):
    with pytest.raises(InputError, match=r"accepted files .*\.csv, \.tsv, \.parquet.*\.jsonl"):
        save_upload(ws, name, CSV.encode())
    assert upload_entries(ws) == []


def test_oversize_and_empty_uploads_leave_nothing(ws: Workspace):
    data = b"id,text\n" + b"1,xxxxxxxxxx\n" * 200_000  # ~2.6 MB
    with pytest.raises(InputError, match=r"is 2\.5 MB, over the limit of 1\.0 MB"):
        save_upload(ws, "big.csv", data, max_bytes=1024**2)
    with pytest.raises(InputError, match=r"over the limit of 1\.0 MB"):  # streamed: stops early
        save_upload(ws, "big.csv", io.BytesIO(data), max_bytes=1024**2)
    with pytest.raises(InputError, match="is empty"):
        save_upload(ws, "empty.csv", b"")
    assert upload_entries(ws) == []


# ---- zips of images -------------------------------------------------------------------------
def symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def encrypted_zip() -> bytes:
    """A zip whose one member has the 'encrypted' flag set (zipfile cannot write one)."""
    data = bytearray(make_zip({"x.png": png_bytes()}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature) + offset
        struct.pack_into("<H", data, at, struct.unpack_from("<H", data, at)[0] | 0x1)
    return bytes(data)


def lying_zip() -> bytes:
    """A member whose central header declares 10 bytes but which holds a whole PNG."""
    data = bytearray(make_zip({"ok.png": png_bytes(1), "liar.png": png_bytes(2, (40, 40))}))
    at = data.rfind(b"PK\x01\x02")  # central entry of the last member (liar.png)
    struct.pack_into("<I", data, at + 24, 10)
    return bytes(data)


BAD_ZIPS = {
    "dotdot": (make_zip({"ok.png": png_bytes(), "../evil.png": png_bytes()}), {},
               r"member '\.\./evil\.png' climbs out of the archive"),
    "nested dotdot": (make_zip({"a/../../evil.png": png_bytes()}), {}, "climbs out"),
    "absolute": (make_zip({"ok.png": png_bytes(), "/abs.png": png_bytes()}), {},
                 r"member '/abs\.png' has an absolute path"),
    "drive": (make_zip({"C:/x.png": png_bytes()}), {}, r"member 'C:/x\.png' has an absolute path"),
    "backslash": (make_zip({"a\\..\\..\\evil.png": png_bytes()}), {}, "has a backslash"),
    "symlink": (make_zip({"ok.png": png_bytes(), symlink_member("link.png"): b"/etc/passwd"}), {},
                r"member 'link\.png' is a symbolic link"),
    "encrypted": (encrypted_zip(), {}, r"member 'x\.png' is encrypted"),
    "bomb": (make_zip({"big.png": bytes(5 * 1024**2)}), {},
             r"member 'big\.png' expands [\d,]+ times .*over the limit of 200; a decompression bomb"),
    "bomb, small limit": (make_zip({"a.png": png_bytes(), "b.png": bytes(2 * 1024**2)}),
                          {"max_ratio": 10}, r"member 'b\.png' expands"),
    "total size": (make_zip({f"{i}.png": png_bytes(i) for i in range(3)}),
                   {"max_total_bytes": 150}, r"member '\d\.png' takes the unpacked size past"),
    "too many members": (make_zip({f"{i}.png": png_bytes(i) for i in range(5)}),
                         {"max_members": 3}, "has 5 members, over the limit of 3"),
    "archive size": (make_zip({"a.png": png_bytes()}), {"max_bytes": 100},
                     r"over the limit of 0\.0 MB"),
    "not a zip": (b"PK\x03\x04 this is not really a zip archive", {}, "is not a zip archive"),
    "empty bytes": (b"", {}, "is not a zip archive"),
    "no images": (make_zip({"readme.txt": b"hi", "__MACOSX/._a.png": b"junk",
                            ".hidden.png": png_bytes()}), {}, r"holds no images \(looked for .*\.png"),
    "lying header": (lying_zip(), {}, r"liar\.png"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_a_bad_zip_is_refused_and_leaves_nothing(ws: Workspace, case: str):
    data, limits, message = BAD_ZIPS[case]
    before = upload_entries(ws)
    with pytest.raises(InputError, match=message):
        extract_image_zip(ws, "upload.zip", data, **limits)
    assert upload_entries(ws) == before == []


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_zip_failing_mid_extraction_leaves_nothing(ws: Workspace):
    data = make_zip([("a.png", png_bytes(1)), ("b.png", png_bytes(2)), ("b.png", b"x")])
    with pytest.raises(InputError, match=r"member 'b\.png' clashes"):
        extract_image_zip(ws, "dup.zip", data)
    assert upload_entries(ws) == []


def test_a_zip_must_be_named_zip(ws: Workspace):
    with pytest.raises(InputError, match="expected a .zip archive"):
        extract_image_zip(ws, "pets.tar", make_zip({"a.png": png_bytes()}))
    assert upload_entries(ws) == []


PETS_ZIP = {"pets/cat/1.png": png_bytes(10), "pets/cat/2.png": png_bytes(20),
            "pets/dog/3.png": png_bytes(30), "pets/dog/3.txt": b"a sleepy dog",
            "pets/.DS_Store": b"junk", "__MACOSX/pets/cat/._1.png": b"junk",
            "__MACOSX/pets/cat/1.png": b"junk", "pets/": b""}


def test_a_good_zip_unpacks_and_ingests_with_folder_labels(ws: Workspace):
    folder = extract_image_zip(ws, "My Pets.zip", make_zip(PETS_ZIP))
    assert folder.name == "pets" and folder.parent.parent == uploads_dir(ws)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["cat/1.png", "cat/2.png", "dog/3.png", "dog/3.txt"]  # junk skipped
    assert not (folder.parent / "__MACOSX").exists()
    assert check_source_path(ws, str(folder)) == folder
    preview = preview_source(folder)
    report = ingest(ws, folder, "pets", **preview.mapping.to_ingest_kwargs())
    assert report.rows == 3 and report.labels == {"cat": 2, "dog": 1}
    rows = pd.read_parquet(ws.dataset_path("pets") / "rows.parquet").set_index("id")
    assert rows.loc["dog/3.png", "text"] == "a sleepy dog"


def test_a_zip_without_one_top_folder_is_returned_whole(ws: Workspace):
    data = make_zip({"cat/1.png": png_bytes(1), "dog/2.png": png_bytes(2), "top.png": png_bytes(3)})
    folder = extract_image_zip(ws, "flat.zip", io.BytesIO(data))  # a file object works too
    assert folder.parent == uploads_dir(ws) and folder.name.endswith("-flat")
    report = ingest(ws, folder, "flat")
    assert report.labels == {"cat": 1, "dog": 1} and report.rows == 3


def test_a_zip_from_a_stream_that_cannot_seek(ws: Workspace):
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes):
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buf) -> int:
            chunk = self._data.read(len(buf))
            buf[:len(chunk)] = chunk
            return len(chunk)

    data = make_zip(PETS_ZIP)
    assert extract_image_zip(ws, "p.zip", Pipe(data)).name == "pets"
    with pytest.raises(InputError, match="over the limit"):
        extract_image_zip(ws, "p.zip", Pipe(data), max_bytes=len(data) - 1)
    assert len(os.listdir(uploads_dir(ws))) == 1


# ---- preview ---------------------------------------------------------------------------------
@pytest.fixture
def table(tmp_path: Path) -> pd.DataFrame:
    png(tmp_path / "t" / "img" / "a.png", 1)
    png(tmp_path / "t" / "img" / "b.png", 2)
    return pd.DataFrame({"key": ["k1", "k2", "k3", "k4", "k5"],
                         "filepath": ["img/a.png", "img/b.png", "img/a.png", "img/a.png", "img/b.png"],
                         "caption": ["one", "two", "three", "four", "five"],
                         "text": ["t1", "t2", "t3", "t4", "t5"],
                         "label": ["x", "y", "x", "y", "x"], "score": [1, 2, 3, 4, 5]})


def test_preview_of_csv_parquet_jsonl(tmp_path: Path, table: pd.DataFrame):
    folder = tmp_path / "t"
    table.to_csv(folder / "rows.csv", index=False)
    table.to_parquet(folder / "rows.parquet", index=False)
    table.to_json(folder / "rows.jsonl", orient="records", lines=True)
    for name, fmt in [("rows.csv", "csv"), ("rows.parquet", "parquet"), ("rows.jsonl", "jsonl")]:
        preview = preview_source(folder / name, rows=2)
        assert preview.format == fmt and preview.total_rows == 5
        assert preview.columns == ("key", "filepath", "caption", "text", "label", "score")
        assert preview.rows["key"].tolist() == ["k1", "k2"] and len(preview.rows) == 2
        assert preview.mapping == ColumnMapping(id=None, text="text", image="filepath", label="label")
        assert preview.mapping.to_ingest_kwargs() == {"id_col": None, "text_col": "text",
                                                      "image_col": "filepath", "label_col": "label"}
        assert any("row-0" in note for note in preview.notes)
        assert preview_source(folder / name, rows=50).total_rows == 5


def test_preview_guesses_exactly_what_ingest_picks(ws: Workspace, tmp_path: Path,
                                                   table: pd.DataFrame):
    path = tmp_path / "t" / "custom.csv"
    table.drop(columns=["text", "label"]).to_csv(path, index=False)
    mapping = preview_source(path).mapping
    assert mapping == ColumnMapping(id=None, text=None, image="filepath", label=None)  # no 'caption'
    ingest(ws, path, "guessed")
    ingest(ws, path, "previewed", **mapping.to_ingest_kwargs())
    assert dataset_info(ws, "guessed")["columns"] == dataset_info(ws, "previewed")["columns"] == {
        "id": None, "text": None, "image": "filepath", "label": None}
    edited = dataclasses.replace(mapping, id="key", text="caption")  # the user edits the guess
    report = ingest(ws, path, "edited", **edited.to_ingest_kwargs())
    rows = pd.read_parquet(ws.dataset_path("edited") / "rows.parquet")
    assert rows["id"].tolist() == ["k1", "k2", "k3", "k4", "k5"]
    assert rows["text"].tolist() == ["one", "two", "three", "four", "five"]
    assert report.rows == 5 and report.modalities == {"image": 5}


def test_preview_notes_a_table_without_text_or_image(tmp_path: Path):
    path = tmp_path / "bare.jsonl"
    path.write_text('{"id": "a", "note": "x"}\n\n{"id": "b", "note": "y"}\n', encoding="utf-8")
    preview = preview_source(path)
    assert preview.mapping == ColumnMapping(id="id") and preview.total_rows == 2
    assert any("no text or image column" in note for note in preview.notes)


def test_preview_reads_only_the_first_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "long.jsonl"
    lines = [json.dumps({"id": str(i), "text": f"t{i}"}) for i in range(30)]
    path.write_text("\n".join(lines[:10] + ["{not json"] + lines[10:]) + "\n", encoding="utf-8")
    preview = preview_source(path, rows=5)
    assert preview.rows["id"].tolist() == ["0", "1", "2", "3", "4"]
    with pytest.raises(InputError, match=r"long\.jsonl' line 11 is not valid JSON"):
        preview_source(path, rows=20)
    csv = tmp_path / "quoted.csv"
    csv.write_text('id,text\n1,"two\nlines"\n2,plain\n3,"x"\n', encoding="utf-8")
    assert preview_source(csv, rows=1).total_rows == 3
    import core.ingest.preview as preview_module

    monkeypatch.setattr(preview_module, "COUNT_ROWS_MAX_BYTES", 10)
    assert preview_source(csv, rows=1).total_rows is None  # too big to count cheaply


def test_preview_of_a_folder(tmp_path: Path):
    root = tmp_path / "pets"
    for rel in ("cat/b.png", "cat/a.png", "dog/x.png", "top.png"):
        png(root / rel)
    (root / "dog" / "x.txt").write_text("a dog\n", encoding="utf-8")
    (root / ".hidden.png").write_bytes(png_bytes())
    preview = preview_source(root, rows=3)
    assert preview.format == "folder" and preview.total_rows == 4
    assert list(preview.rows.columns) == ["image", "label", "text"] == list(preview.columns)
    assert preview.rows["image"].tolist() == ["cat/a.png", "cat/b.png", "dog/x.png"]
    assert preview.rows["label"].tolist() == ["cat", "cat", "dog"]
    assert preview.rows["text"].isna().tolist() == [True, True, False]
    assert preview.rows["text"].iloc[2] == "a dog"
    assert preview.mapping == ColumnMapping(id="image", text="text", image="image", label="label",
                                            fixed=True)
    assert set(preview.mapping.to_ingest_kwargs().values()) == {None}
    assert any("fixed" in note and "first-level subfolder" in note for note in preview.notes)


def test_preview_errors_are_typed_and_name_the_file(tmp_path: Path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError, match=r"cannot read .*broken\.parquet.* as Parquet"):
        preview_source(bad)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SchemaError, match=r"empty\.csv.* is empty"):
        preview_source(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("id,text\n")
    with pytest.raises(SchemaError, match=r"header\.csv.* has no rows"):
        preview_source(tmp_path / "header.csv")
    (tmp_path / "latin1.csv").write_bytes("id,text\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.csv.* is not UTF-8"):
        preview_source(tmp_path / "latin1.csv")
    (tmp_path / "nopics").mkdir()
    with pytest.raises(MediaError, match="no images found"):
        preview_source(tmp_path / "nopics")
    with pytest.raises(NotFoundError, match="does not exist"):
        preview_source(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="unknown format 'xls'"):
        preview_source(bad, format="xls")
    with pytest.raises(InputError, match="is a folder, not a csv source"):
        preview_source(tmp_path / "nopics", format="csv")
    with pytest.raises(InputError, match="rows must be a whole number"):
        preview_source(bad, rows=0)
