"""core.locations: paths and URIs as a pyarrow filesystem + path, their reads, typed errors
naming the URI, and $CATALOG_STORAGE_OPTIONS for pyarrow and LanceDB. No network: local
paths, file:// and fsspec's memory:// (object stores: tests/cli/test_object_store_cli.py)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from core.errors import InputError, NotFoundError
from core.locations import (
    STORAGE_OPTIONS_ENV,
    Location,
    is_uri,
    lance_storage_options,
    parse_location,
    storage_options,
)


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (STORAGE_OPTIONS_ENV, "AWS_ENDPOINT_URL", "AZURE_STORAGE_ACCOUNT_NAME",
                 "AZURE_STORAGE_ACCOUNT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def memory_dir():
    """A unique folder in fsspec's in-process memory filesystem, as a memory:// URI."""
    fsspec = pytest.importorskip("fsspec")
    root = f"catalog-test-{secrets.token_hex(4)}"
    fs = fsspec.filesystem("memory")
    fs.pipe({f"/{root}/a.txt": b"alpha\n", f"/{root}/sub/b.txt": b"beta", f"/{root}/v.ids.txt": b"x\n"})
    yield f"memory://{root}"
    fs.rm(f"/{root}", recursive=True)


def test_plain_paths_are_local_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("id,text\n1,a\n")
    loc = parse_location("t.csv")
    assert isinstance(loc.fs, pafs.LocalFileSystem)
    assert loc.local == tmp_path / "t.csv" and loc.uri == str(tmp_path / "t.csv") == str(loc)
    assert (loc.name, loc.stem, loc.suffix) == ("t.csv", "t", ".csv")
    assert loc.require_file() == 12 and loc.is_file() and not loc.is_dir()
    assert loc.read_bytes() == b"id,text\n1,a\n"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_location("~/t.csv").local == tmp_path / "t.csv"
    assert not is_uri("t.csv") and not is_uri(tmp_path) and is_uri("s3://b/k") and is_uri("file:///x")


def test_file_uris_read_the_same_bytes_as_the_path(tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    path.write_bytes(b"\x93NUMPY data")
    loc = parse_location(path.as_uri())
    assert loc.uri == path.as_uri() and loc.local == path and loc.path == str(path)
    with loc.open_stream() as stream, loc.open_file() as file:
        assert stream.read() == file.read() == path.read_bytes()
    with loc.readable() as src:
        assert src == path  # numpy and pandas get the path itself: memory maps stay possible
    sibling = loc.sibling("v.ids.npy")
    assert sibling.uri == (tmp_path / "v.ids.npy").as_uri() and sibling.local == tmp_path / "v.ids.npy"


def test_fsspec_schemes_pyarrow_lacks(memory_dir: str) -> None:
    loc = parse_location(f"{memory_dir}/a.txt")
    assert loc.local is None and isinstance(loc.fs, pafs.PyFileSystem)
    assert loc.read_bytes() == b"alpha\n" and loc.require_file() == 6
    with loc.open_lines() as lines:
        assert list(lines) == [b"alpha\n"]
    with loc.readable() as src:
        assert src.read() == b"alpha\n"  # a stream, closed after the block
    assert loc.sibling("v.ids.txt").read_bytes() == b"x\n"
    folder = parse_location(memory_dir)
    assert folder.is_dir()
    assert [f.uri for f in folder.list_files()] == [f"{memory_dir}/{n}" for n in ("a.txt", "sub/b.txt", "v.ids.txt")]
    assert [f.uri for f in folder.list_files(recursive=False)] == [f"{memory_dir}/a.txt", f"{memory_dir}/v.ids.txt"]


def test_local_folders_list_their_files(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    for rel in ("d/x.csv", "d/e/y.csv"):
        (tmp_path / rel).write_text("id\n")
    files = parse_location(tmp_path / "d").list_files()
    assert [f.local for f in files] == [tmp_path / "d" / "e" / "y.csv", tmp_path / "d" / "x.csv"]
    assert [f.uri for f in files] == [str(tmp_path / "d" / "e" / "y.csv"), str(tmp_path / "d" / "x.csv")]


@pytest.mark.parametrize("uri, kind, path", [
    ("s3://bucket/a/t.parquet", pafs.S3FileSystem, "bucket/a/t.parquet"),
    ("gs://bucket/t.csv", pafs.GcsFileSystem, "bucket/t.csv"),
    ("gcs://bucket/t.csv", pafs.GcsFileSystem, "bucket/t.csv"),
    ("abfss://data@acct.dfs.core.windows.net/t.csv", pafs.AzureFileSystem, "data/t.csv"),
])
def test_object_store_uris_parse_without_the_network(uri: str, kind: type, path: str) -> None:
    loc = parse_location(uri)
    assert isinstance(loc.fs, kind) and loc.path == path and loc.local is None and loc.uri == uri
    assert loc.sibling("ids.txt").uri == uri.rsplit("/", 1)[0] + "/ids.txt"


def test_az_uris_take_the_account_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match=r"'az://data/t.csv' needs an Azure storage account: set AZURE_STORAGE_ACCOUNT_NAME"):
        parse_location("az://data/t.csv")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
    loc = parse_location("az://data/t.csv")
    assert isinstance(loc.fs, pafs.AzureFileSystem) and loc.path == "data/t.csv"


@pytest.mark.parametrize("text, message", [
    ("foo://bucket/x.csv", "unknown scheme 'foo' in 'foo://bucket/x.csv'; use a local path or file://, s3://"),
    ("", "no location given"),
    ("s3:///x.csv", "'s3:///x.csv' names no bucket or container"),
    ("file://host/x.csv", "cannot use the location 'file://host/x.csv'"),
])
def test_bad_locations_are_input_errors_naming_them(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_location(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_objects_and_folders_are_typed_errors(tmp_path: Path, memory_dir: str) -> None:
    for uri in (str(tmp_path / "nope.csv"), (tmp_path / "nope.csv").as_uri(), f"{memory_dir}/nope.csv"):
        loc = parse_location(uri)
        with pytest.raises(NotFoundError, match=f"'{uri}' does not exist"):
            loc.require_file("source")
        with pytest.raises(NotFoundError, match=f"'{uri}' does not exist"):
            loc.open_stream()
    with pytest.raises(InputError, match="is a folder, not a file"):
        parse_location(tmp_path).require_file()


@pytest.mark.skipif(getattr(os, "geteuid", lambda: 1)() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_name_the_location(tmp_path: Path) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("id\n")
    path.chmod(0)
    with pytest.raises(InputError, match="cannot read .*secret.csv.*"):
        parse_location(path).read_bytes()


def test_storage_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert storage_options() == {} and lance_storage_options("s3://b/lance") is None
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps({
        "endpoint_override": "http://localhost:9000", "region": "eu-west-1", "access_key": "AK",
        "secret_key": "SK", "anonymous": False, "account_name": "acct", "aws_request_payer": "requester"}))
    assert lance_storage_options("s3://b/lance") == {
        "aws_endpoint": "http://localhost:9000", "aws_region": "eu-west-1", "aws_access_key_id": "AK",
        "aws_secret_access_key": "SK", "aws_skip_signature": "false", "allow_http": "true",
        "aws_request_payer": "requester"}
    assert lance_storage_options("az://c/lance")["azure_storage_account_name"] == "acct"
    assert lance_storage_options("/tmp/lance") is None and lance_storage_options("file:///tmp/l") is None
    s3 = parse_location("s3://b/k")  # pyarrow got endpoint, region and keys (not LanceDB's aws_*)
    assert s3.fs.region == "eu-west-1"
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps({"region": "us-west-2", "scheme": "http"}))
    assert lance_storage_options("s3://b/lance") == {"aws_region": "us-west-2", "allow_http": "true"}


@pytest.mark.parametrize("value, message", [
    ("{not json", "$CATALOG_STORAGE_OPTIONS is not valid JSON"),
    ('["endpoint_override"]', "$CATALOG_STORAGE_OPTIONS holds a JSON list"),
    ('{"endpoint": "http://x"}', "unknown key(s) 'endpoint' in $CATALOG_STORAGE_OPTIONS; use pyarrow's"),
])
def test_bad_storage_options_are_input_errors(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, value)
    for call in (storage_options, lambda: lance_storage_options("s3://b/l"), lambda: parse_location("s3://b/k")):
        with pytest.raises(InputError) as caught:
            call()
        assert message in str(caught.value)


def test_locations_are_values() -> None:
    loc = parse_location("/data/t.csv")
    assert isinstance(loc, Location) and loc == parse_location("/data/t.csv")
    with pytest.raises(AttributeError):
        loc.uri = "/elsewhere"  # type: ignore[misc]
