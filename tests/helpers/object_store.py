"""A local S3 for tests: moto's server on a free port, a bucket, and the environment that
points Catalog (pyarrow and LanceDB) at it. No network: everything stays on 127.0.0.1.

Use :func:`s3_store` as a context manager (or the ``s3`` fixtures built on it). The server is
the real S3 HTTP API as moto implements it, so pyarrow's and LanceDB's own S3 clients run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

KEY, SECRET, REGION = "testing-key", "testing-secret", "us-east-1"


@dataclass(frozen=True)
class S3Store:
    """A bucket on a running moto server: ``endpoint`` (``http://127.0.0.1:PORT``),
    ``bucket``, ``fs`` (a pyarrow S3FileSystem on it) and the settings Catalog reads."""

    endpoint: str
    bucket: str
    fs: pafs.S3FileSystem

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, local: Path, key: str) -> str:
        """Upload the file ``local`` as ``key``; returns its ``s3://`` URI."""
        with self.fs.open_output_stream(f"{self.bucket}/{key}") as out:
            out.write(Path(local).read_bytes())
        return self.uri(key)

    def keys(self, prefix: str = "") -> list[str]:
        """Keys of the bucket under ``prefix`` (files only), sorted."""
        infos = self.fs.get_file_info(pafs.FileSelector(f"{self.bucket}/{prefix}".rstrip("/"),
                                                        recursive=True, allow_not_found=True))
        return sorted(i.path.split("/", 1)[1] for i in infos if i.type == pafs.FileType.File)

    def storage_options(self) -> str:
        """``$CATALOG_STORAGE_OPTIONS`` for this server (pyarrow keywords; Catalog maps them
        to LanceDB's ``aws_endpoint``, ``aws_region``, ``allow_http``...)."""
        return json.dumps({"endpoint_override": self.endpoint, "region": REGION,
                           "access_key": KEY, "secret_key": SECRET})


@contextlib.contextmanager
def s3_store() -> Iterator[S3Store]:
    """A moto server on a free port with one empty bucket; stopped at exit."""
    server_module = pytest.importorskip("moto.server", reason="moto[server] is in requirements-dev.txt")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request lines on stderr
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        fs = pafs.S3FileSystem(endpoint_override=endpoint, access_key=KEY, secret_key=SECRET,
                               region=REGION, allow_bucket_creation=True)
        bucket = f"catalog-{secrets.token_hex(4)}"
        fs.create_dir(bucket)
        yield S3Store(endpoint, bucket, fs)
    finally:
        server.stop()


def use_store(monkeypatch: pytest.MonkeyPatch, store: S3Store, *, via: str = "options") -> None:
    """Point Catalog at ``store``: ``via="options"`` sets only $CATALOG_STORAGE_OPTIONS (keys
    and endpoint in it); ``via="env"`` only the standard AWS variables (AWS_ENDPOINT_URL...,
    AWS_ALLOW_HTTP for LanceDB). Either way no real AWS is reachable (metadata lookups off)."""
    for name in ("CATALOG_STORAGE_OPTIONS", "AWS_ENDPOINT_URL", "AWS_PROFILE",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    if via == "options":
        monkeypatch.setenv("CATALOG_STORAGE_OPTIONS", store.storage_options())
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", store.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
