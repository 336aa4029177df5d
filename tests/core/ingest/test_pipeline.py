"""Tests for core.ingest.pipeline: folders and tables in, rows.parquet + dataset.json out."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from core.errors import (
    AlreadyExistsError,
    InputError,
    MediaError,
    NotFoundError,
    SchemaError,
)
from core.ingest import (
    FORMATS,
    IngestReport,
    detect_format,
    ingest,
    ingest_folder,
    ingest_table,
)
from core.workspace import Workspace, open_workspace

CORE = ["id", "modality", "text", "image", "label", "ingest_issue"]


def png(path: Path, value: int = 0, size: tuple[int, int] = (5, 4)) -> Path:
    """Write a small RGB image (width, height = ``size``); format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def truncated_png(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a content hash (files) or 'dir'."""
    return {p.relative_to(root).as_posix(): ("dir" if p.is_dir() else
                                             hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))}


def rows_of(ws: Workspace, name: str) -> pd.DataFrame:
    return pd.read_parquet(ws.dataset_path(name) / "rows.parquet")


def info_of(ws: Workspace, name: str) -> dict:
    return json.loads((ws.dataset_path(name) / "dataset.json").read_text())


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "home")


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    """cat/ (2 png), dog/ (1 jpg + sidecar), top.bmp, captions.csv, notes.md, hidden file."""
    root = tmp_path / "pets"
    png(root / "cat" / "b.png", 10)
    png(root / "cat" / "a.png", 20, size=(7, 3))
    png(root / "dog" / "x.jpg", 30)
    (root / "dog" / "x.txt").write_text("a sleepy dog\n", encoding="utf-8")
    png(root / "top.bmp", 40)
    (root / "captions.csv").write_text("file,text\ncat/a.png,a grey cat\n", encoding="utf-8")
    (root / "notes.md").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"junk")
    return root


# ---- folders ------------------------------------------------------------------------------
def test_folder_labels_captions_sidecars_and_layout(ws: Workspace, pets: Path) -> None:
    report = ingest(ws, pets, "pets")
    df = rows_of(ws, "pets")
    assert list(df.columns[:6]) == CORE
    assert {"file_size", "width", "height"} <= set(df.columns)
    assert df["id"].tolist() == ["cat/a.png", "cat/b.png", "dog/x.jpg", "top.bmp"]
    assert df["image"].tolist() == df["id"].tolist()
    assert set(df["modality"]) == {"image"}
    labels = dict(zip(df["id"], df["label"]))
    assert labels["cat/a.png"] == "cat" and labels["dog/x.jpg"] == "dog"
    assert pd.isna(labels["top.bmp"])
    texts = dict(zip(df["id"], df["text"]))
    assert texts["cat/a.png"] == "a grey cat" and texts["dog/x.jpg"] == "a sleepy dog"
    assert pd.isna(texts["cat/b.png"])
    a = df.set_index("id").loc["cat/a.png"]
    assert (a["width"], a["height"]) == (7, 3)
    assert a["file_size"] == (pets / "cat" / "a.png").stat().st_size
    assert df["ingest_issue"].isna().all()
    schema = pq.read_schema(ws.dataset_path("pets") / "rows.parquet")
    assert all(str(schema.field(c).type) == "string" for c in CORE)

    assert report == IngestReport("pets", 4, {"image": 4}, {"cat": 2, "dog": 1}, {}, (),
                                  {"not an image file": 1, "hidden file or folder": 1})
    assert ws.has_dataset("pets")
    info = info_of(ws, "pets")
    assert info["name"] == "pets" and info["format"] == "folder" and info["rows"] == 4
    assert info["media_root"] == str(pets.resolve()) and info["source"] == str(pets.resolve())
    assert info["default_embedding"] is None and info["created"].endswith("+00:00")


def test_folder_ids_stable_between_ingests(ws: Workspace, pets: Path) -> None:
    ingest_folder(ws, pets, "one")
    ingest_folder(ws, pets, "two")
    ingest_folder(ws, pets, "one", replace=True)
    assert rows_of(ws, "one")["id"].tolist() == rows_of(ws, "two")["id"].tolist()


def test_broken_images_are_flagged_and_counted(ws: Workspace, pets: Path) -> None:
    truncated_png(pets / "cat" / "trunc.png")
    (pets / "cat" / "empty.png").write_bytes(b"")
    (pets / "dog" / "noise.jpg").write_bytes(b"this is not a jpeg")
    seen: list[tuple[int, int]] = []
    report = ingest_folder(ws, pets, "pets", progress=lambda d, t: seen.append((d, t)))
    df = rows_of(ws, "pets").set_index("id")
    assert report.rows == 7 and len(df) == 7
    assert df.loc["cat/trunc.png", "ingest_issue"].startswith("corrupt image")
    assert df.loc["cat/empty.png", "ingest_issue"] == "zero-byte file"
    assert df.loc["dog/noise.jpg", "ingest_issue"] == "unrecognised image format"
    assert pd.isna(df.loc["cat/a.png", "ingest_issue"])
    assert report.flagged == {"corrupt image": 1, "zero-byte file": 1,
                              "unrecognised image format": 1}
    assert set(report.flagged_ids) == {"cat/trunc.png", "cat/empty.png", "dog/noise.jpg"}
    summary = report.summary()
    assert "flagged 3" in summary and "zero-byte file 1" in summary and "7 rows" in summary
    assert seen[-1] == (7, 7) and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_all_broken_or_empty_folder_errors_and_writes_nothing(ws: Workspace,
                                                              tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    truncated_png(png(bad / "a.png"))
    (bad / "b.png").write_bytes(b"")
    before = tree(ws.home)
    with pytest.raises(MediaError, match=r"all 2 images in .*bad.* unreadable"):
        ingest(ws, bad, "bad")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no pictures")
    with pytest.raises(MediaError, match=r"no images found in .*empty.*0 image files"):
        ingest(ws, empty, "empty")
    assert tree(ws.home) == before


def test_folder_symlink_outside_root_fails(ws: Workspace, pets: Path, tmp_path: Path) -> None:
    outside = png(tmp_path / "elsewhere" / "secret.png")
    os.symlink(outside, pets / "cat" / "link.png")
    before = tree(ws.home)
    with pytest.raises(MediaError, match=r"'cat/link.png'.*outside the data root .*pets"):
        ingest(ws, pets, "pets")
    assert tree(ws.home) == before


def test_folder_rejects_table_options(ws: Workspace, pets: Path) -> None:
    with pytest.raises(InputError, match="label_col only apply to tables"):
        ingest(ws, pets, "pets", label_col="x")


def write_bytes_path(folder: Path, rel: bytes, data: bytes) -> None:
    """Write ``data`` at ``folder/rel`` given as raw bytes (a name that may not be UTF-8);
    skip the test if the filesystem refuses or rewrites such a name."""
    path = os.path.join(os.fsencode(folder), rel)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    except (OSError, UnicodeError):
        pytest.skip("the filesystem refuses file names that are not valid UTF-8")
    if os.path.basename(path) not in os.listdir(os.path.dirname(path)):
        pytest.skip("the filesystem rewrites file names that are not valid UTF-8")


def test_folder_skips_names_that_are_not_utf8(ws: Workspace, pets: Path) -> None:
    image = (pets / "cat" / "a.png").read_bytes()
    write_bytes_path(pets, b"cat/caf\xe9.png", image)       # Latin-1 'café.png'
    write_bytes_path(pets, b"cat/caf\xe9.txt", b"a sidecar")  # its sidecar
    write_bytes_path(pets, b"ni\xf1o/c.png", image)           # label folder 'niño'
    with open(pets / "captions.csv", "a", encoding="utf-8") as fh:
        fh.write("cat/café.png,a UTF-8 name that matches no file\n")
    report = ingest(ws, pets, "pets")
    df = rows_of(ws, "pets")
    assert df["id"].tolist() == ["cat/a.png", "cat/b.png", "dog/x.jpg", "top.bmp"]
    assert report.rows == 4 and report.labels == {"cat": 2, "dog": 1}
    assert report.skipped == {"not an image file": 1, "hidden file or folder": 1,
                              "file name is not valid UTF-8": 2,
                              "folder name is not valid UTF-8": 1}
    assert "file name is not valid UTF-8 2" in report.summary()
    assert info_of(ws, "pets")["ingest"]["skipped"] == report.skipped


def test_folder_with_only_non_utf8_names_is_empty(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_bytes_path(src, b"cat/caf\xe9.png", png(tmp_path / "a.png").read_bytes())
    before = tree(ws.home)
    with pytest.raises(MediaError, match=r"no images found in .*src.*0 image files "
                                         r"\(file name is not valid UTF-8 1\)"):
        ingest(ws, src, "src")
    assert tree(ws.home) == before


# ---- tables -------------------------------------------------------------------------------
def test_csv_mapping_metadata_dtypes_and_string_ids(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "docs.csv"
    src.write_text("key,body,topic,score,views\n007,first doc,1,0.5,10\n"
                   "008,second doc,2,0.25,20\n009,third doc,1,1.5,30\n", encoding="utf-8")
    report = ingest(ws, src, "docs", id_col="key", text_col="body", label_col="topic")
    df = rows_of(ws, "docs")
    assert list(df.columns) == CORE + ["score", "views"]
    assert df["id"].tolist() == ["007", "008", "009"]
    assert df["text"].tolist() == ["first doc", "second doc", "third doc"]
    assert df["label"].tolist() == ["1", "2", "1"]
    assert set(df["modality"]) == {"text"} and df["image"].isna().all()
    assert df["score"].dtype == np.float64 and df["views"].dtype == np.int64
    assert report.labels == {"1": 2, "2": 1} and report.modalities == {"text": 3}
    info = info_of(ws, "docs")
    assert info["columns"] == {"id": "key", "text": "body", "image": None, "label": "topic"}
    assert info["media_root"] is None and info["format"] == "csv"


def test_generated_ids_are_zero_padded(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "t.tsv"
    src.write_text("text\tlabel\n" + "".join(f"doc {i}\t{i % 2}\n" for i in range(12)))
    ingest(ws, src, "t")
    ids = rows_of(ws, "t")["id"].tolist()
    assert ids[0] == "row-00" and ids[-1] == "row-11" and len(set(ids)) == 12


def test_parquet_images_relative_to_image_root(ws: Workspace, tmp_path: Path) -> None:
    media = tmp_path / "media"
    png(media / "a.png")
    png(media / "sub" / "b.png", size=(3, 3))
    (media / "empty.png").write_bytes(b"")
    src = tmp_path / "tables" / "t.parquet"
    src.parent.mkdir()
    pd.DataFrame({
        "id": [1, 2, 3, 4, 5], "image_path": ["a.png", "./sub/b.png", "empty.png",
                                              str(media / "a.png"), None],
        "text": [None, "a caption", None, None, "just text"],
        "n": pd.array([1, 2, 3, 4, 5], dtype="int16"),
        "ok": [True, False, True, True, False],
        "when": pd.to_datetime(["2024-01-01"] * 5),
    }).to_parquet(src)
    report = ingest(ws, src, "mixed", image_root=media)
    df = rows_of(ws, "mixed")
    assert df["id"].tolist() == ["1", "2", "3", "4", "5"]
    assert df["image"].tolist()[:4] == ["a.png", "sub/b.png", "empty.png", "a.png"]
    assert pd.isna(df["image"].iloc[4])
    assert df["modality"].tolist() == ["image"] * 4 + ["text"]
    assert df["ingest_issue"].tolist()[2] == "zero-byte file"
    assert df["ingest_issue"].isna().sum() == 4
    assert df["n"].dtype == np.int16 and df["ok"].dtype == bool
    assert str(df["when"].dtype).startswith("datetime64")
    assert report.flagged == {"zero-byte file": 1} and report.flagged_ids == ("3",)
    assert report.modalities == {"image": 4, "text": 1}
    assert info_of(ws, "mixed")["media_root"] == str(media.resolve())


def test_jsonl_mapping_and_default_image_root(ws: Workspace, tmp_path: Path) -> None:
    png(tmp_path / "imgs" / "p.png")
    src = tmp_path / "rows.jsonl"
    lines = [{"uid": "a", "file": "imgs/p.png", "species": "cat", "w": 1.5, "mixed": 1},
             {"uid": "b", "caption": "hello", "species": "dog", "w": 2.5, "mixed": "x"}]
    src.write_text("\n".join(json.dumps(x) for x in lines[:2]) + "\n\n", encoding="utf-8")
    report = ingest(ws, src, "j", id_col="uid", text_col="caption", label_col="species")
    df = rows_of(ws, "j")
    assert df["id"].tolist() == ["a", "b"] and df["image"].tolist()[0] == "imgs/p.png"
    assert df["modality"].tolist() == ["image", "text"] and df["w"].dtype == np.float64
    assert report.labels == {"cat": 1, "dog": 1}
    assert df["mixed"].tolist() == ["1", "x"]  # mixed JSON types are stored as text
    assert info_of(ws, "j")["media_root"] == str(tmp_path.resolve())


def test_skip_invalid_skips_empty_text(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("id,text\na,hello\nb,\nc,   \nd,world\n")
    report = ingest_table(ws, src, "t", skip_invalid=True)
    assert rows_of(ws, "t")["id"].tolist() == ["a", "d"]
    assert report.skipped == {"empty text": 2} and report.rows == 2


def test_metadata_named_like_core_column_is_kept(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("key,id,text\nk1,5,hi\nk2,6,there\n")
    ingest(ws, src, "t", id_col="key")
    df = rows_of(ws, "t")
    assert df["id"].tolist() == ["k1", "k2"] and df["id_source"].tolist() == ["5", "6"]


def test_metadata_rename_picks_a_free_name(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "t.jsonl"
    src.write_text('{"key": "k1", "id": "5", "id_source": "a", "text": "hi"}\n'
                   '{"key": "k2", "id": "6", "id_source": "b", "text": "yo"}\n')
    ingest(ws, src, "t", id_col="key")
    df = rows_of(ws, "t")
    assert df["id"].tolist() == ["k1", "k2"]
    assert df["id_source"].tolist() == ["a", "b"] and df["id_source2"].tolist() == ["5", "6"]
    src.write_text('{"key": "k1", "id": "5", "id_source": "a", "id_source2": "c", "text": "x"}\n')
    ingest(ws, src, "t", id_col="key", replace=True)
    df = rows_of(ws, "t")
    assert (df["id_source"].tolist(), df["id_source2"].tolist(),
            df["id_source3"].tolist()) == (["a"], ["c"], ["5"])


def test_summary_lists_top_ten_labels(tmp_path: Path) -> None:
    labels = {f"l{i:02d}": 20 - i for i in range(13)}
    report = IngestReport("d", 200, {"text": 200}, labels, {}, (), {"empty text": 1})
    text = report.summary()
    assert "l00 20" in text and "l09 11" in text and "l10" not in text and "3 more" in text
    assert "empty text 1" in text
    assert json.loads(json.dumps(report.to_json()))["labels"]["l12"] == 8


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "folder"
    for suffix, fmt in [(".csv", "csv"), (".TSV", "csv"), (".pq", "parquet"),
                        (".parquet", "parquet"), (".ndjson", "jsonl"), (".json", "jsonl")]:
        assert detect_format(tmp_path / f"x{suffix}") == fmt
    with pytest.raises(InputError, match=r"x\.xml.*folder, csv, parquet, jsonl"):
        detect_format(tmp_path / "x.xml")
    assert FORMATS == ("folder", "csv", "parquet", "jsonl")


# ---- errors leave the workspace untouched ---------------------------------------------------
def _table_cases(tmp_path: Path):
    """(file name, file bytes, ingest kwargs, error type, message regex)."""
    return [
        ("latin1.csv", "id,text\n1,ok\n2,caf\xe9\n".encode("latin-1"), {}, InputError,
         r"latin1\.csv.*not UTF-8.*offset 18 \(line 3\).*save it as UTF-8"),
        ("bad.jsonl", b'{"text": "ok"}\n{"text": oops}\n', {}, InputError,
         r"bad\.jsonl.*line 2 is not valid JSON"),
        ("m.csv", b"id,text\n1,a\n", {"label_col": "species"}, SchemaError,
         r"label column 'species' not found.*'id', 'text'"),
        ("n.csv", b"id,body\n1,a\n", {}, SchemaError,
         r"neither a text nor an image column.*'id', 'body'"),
        ("d.csv", b"id,text\n1,a\n2,b\n1,c\n2,d\n3,e\n", {}, SchemaError,
         r"2 ids appear more than once.*'1', '2'"),
        ("e.csv", b"id,text\n1,a\n,b\n3,c\n", {}, SchemaError,
         r"1 rows have a null or empty id in column 'id' \(row numbers, 0-based: 1\)"),
        ("t.csv", b"id,text\na,x\nb,\nc,y\n", {}, SchemaError,
         r"1 rows have no image and empty or null text.*'b'.*--skip-invalid"),
        ("h.csv", b"id,text\n", {}, SchemaError, r"h\.csv.*no rows"),
        ("z.csv", b"", {}, SchemaError, r"z\.csv.*empty"),
        ("up.csv", b"id,image\n1,../outside.png\n", {}, MediaError,
         r"'\.\./outside\.png' is outside the data root"),
        ("abs.csv", f"id,image\n1,{tmp_path / 'outside.png'}\n".encode(),
         {"image_root": tmp_path / "media"}, MediaError, r"outside\.png' is outside the data root"),
        ("gone.csv", b"id,image\n1,missing.png\n2,also-missing.png\n", {}, MediaError,
         r"all 2 images .* unreadable.*file not found"),
        ("x.csv", b"id,text\n1,a\n", {"format": "xml"}, InputError,
         r"^unknown format 'xml'; choose one of folder, csv, parquet, jsonl$"),
    ]


@pytest.mark.parametrize("replace", [False, True])
def test_table_errors_are_typed_and_leave_workspace_unchanged(ws: Workspace, tmp_path: Path,
                                                              pets: Path, replace: bool) -> None:
    png(tmp_path / "outside.png")
    (tmp_path / "media").mkdir()
    (tmp_path / "t").mkdir()
    ingest(ws, pets, "existing")
    for fname, data, kwargs, error, pattern in _table_cases(tmp_path):
        src = tmp_path / "t" / fname
        src.write_bytes(data)
        target = "existing" if replace else "fresh"
        before = tree(ws.home)
        with pytest.raises(error, match=pattern):
            ingest(ws, src, target, replace=replace, **kwargs)
        assert tree(ws.home) == before, fname
    assert rows_of(ws, "existing")["id"].tolist()[0] == "cat/a.png"


def test_symlink_escaping_image_root_in_table(ws: Workspace, tmp_path: Path) -> None:
    media = tmp_path / "media"
    png(media / "ok.png")
    os.symlink(png(tmp_path / "secret.png"), media / "sneaky.png")
    src = media / "t.csv"
    src.write_text("id,image\n1,ok.png\n2,sneaky.png\n")
    before = tree(ws.home)
    with pytest.raises(MediaError, match=r"'sneaky\.png' is outside the data root .*media"):
        ingest(ws, src, "t")
    assert tree(ws.home) == before


def test_name_and_source_errors(ws: Workspace, pets: Path, tmp_path: Path) -> None:
    ingest(ws, pets, "pets")
    before = tree(ws.home)
    with pytest.raises(AlreadyExistsError, match=r"'pets' already exists.*--replace"):
        ingest(ws, pets, "pets")
    with pytest.raises(InputError, match=r"invalid dataset name '\.\./up'"):
        ingest(ws, pets, "../up")
    with pytest.raises(NotFoundError, match=r"nope\.csv.*does not exist"):
        ingest(ws, tmp_path / "nope.csv", "other")
    with pytest.raises(NotFoundError, match="image root"):
        src = tmp_path / "i.csv"
        src.write_text("id,image\n1,a.png\n")
        ingest(ws, src, "other", image_root=tmp_path / "no-such-dir")
    assert tree(ws.home) == before


def test_replace_swaps_in_the_new_dataset(ws: Workspace, pets: Path, tmp_path: Path) -> None:
    ingest(ws, pets, "d")
    src = tmp_path / "t.csv"
    src.write_text("id,text\nq,hello\n")
    report = ingest(ws, src, "d", replace=True)
    assert report.rows == 1 and rows_of(ws, "d")["id"].tolist() == ["q"]
    assert info_of(ws, "d")["format"] == "csv"
    assert [p.name for p in ws.datasets_dir.iterdir()] == ["d"]


def test_csv_keeps_na_like_strings_in_mapped_columns(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("id,text,label,score\nnull,NA,NA,NA\n2,None,,1.5\n")
    ingest(ws, src, "t")
    df = rows_of(ws, "t")
    assert df["id"].tolist() == ["null", "2"] and df["text"].tolist() == ["NA", "None"]
    assert df["label"].iloc[0] == "NA" and pd.isna(df["label"].iloc[1])
    assert df["score"].dtype == np.float64 and pd.isna(df["score"].iloc[0])


def test_float_labels_and_ids_lose_the_trailing_zero(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "t.parquet"
    pd.DataFrame({"id": [1.0, 2.0, 3.0], "text": ["a", "b", "c"],
                  "label": [1.0, None, 2.0]}).to_parquet(src)
    report = ingest(ws, src, "t")
    df = rows_of(ws, "t")
    assert df["id"].tolist() == ["1", "2", "3"]
    assert df["label"].iloc[0] == "1" and pd.isna(df["label"].iloc[1])
    assert report.labels == {"1": 1, "2": 1}


def test_workspace_inside_the_source_folder_is_not_ingested(tmp_path: Path, pets: Path) -> None:
    ws = open_workspace(pets / "catalog-data")
    ingest(ws, pets, "first")
    png(ws.dataset_path("first") / "thumbs" / "t.png")
    report = ingest(ws, pets, "second")
    assert report.rows == 4 and report.skipped["workspace folder"] == 1
    assert not any(i.startswith("catalog-data") for i in rows_of(ws, "second")["id"])
