"""Locations: where a source file or a LanceDB database lives, a local path or a URI.

:func:`parse_location` turns ``rows.csv``, ``/abs/rows.csv``, ``file:///abs/rows.csv``,
``s3://bucket/key``, ``gs://bucket/key`` (``gcs://``), ``az://container/key`` or
``abfs[s]://container@account.dfs.core.windows.net/key`` into a :class:`Location`: a
``pyarrow.fs.FileSystem`` and the path inside it. A scheme pyarrow lacks goes through fsspec
when fsspec knows it (``memory://``...). Ingest and import-embeddings read their sources
through it; :func:`lance_storage_options` gives LanceDB the same settings.

Credentials come from each SDK's standard environment: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` / ``AWS_PROFILE`` / ``AWS_REGION`` (and
``AWS_ENDPOINT_URL`` for an S3-compatible store), ``GOOGLE_APPLICATION_CREDENTIALS``,
``AZURE_STORAGE_ACCOUNT_NAME`` / ``AZURE_STORAGE_ACCOUNT_KEY`` (or Azure identity's
``AZURE_CLIENT_ID``...). ``$CATALOG_STORAGE_OPTIONS`` adds a JSON object of pyarrow
filesystem keywords (:data:`ARROW_KEYS`, e.g. ``{"endpoint_override":
"http://localhost:9000", "region": "us-east-1"}``), mapped for LanceDB (``aws_endpoint``,
``aws_region``, ``allow_http``...); keys already in LanceDB's own names (``aws_*``,
``google_*``, ``azure_*``, :data:`LANCE_KEYS`) go to LanceDB only. Errors are typed and name
the URI: InputError (unknown scheme, bad settings, unreadable), NotFoundError (missing object).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from core.errors import InputError, NotFoundError, format_list

STORAGE_OPTIONS_ENV = "CATALOG_STORAGE_OPTIONS"
SCHEMES = ("file", "s3", "gs", "gcs", "az", "abfs", "abfss")
#: the pyarrow keywords $CATALOG_STORAGE_OPTIONS may set, per filesystem
ARROW_KEYS = {
    "s3": ("access_key", "secret_key", "session_token", "region", "endpoint_override", "scheme",
           "anonymous", "force_virtual_addressing", "request_timeout", "connect_timeout"),
    "gs": ("anonymous", "access_token", "endpoint_override", "scheme", "project_id",
           "default_bucket_location"),
    "az": ("account_name", "account_key", "sas_token", "blob_storage_authority",
           "dfs_storage_authority", "blob_storage_scheme", "dfs_storage_scheme", "client_id",
           "client_secret", "tenant_id"),
}
#: pyarrow keyword -> LanceDB (object_store) storage option, per filesystem
TO_LANCE = {
    "s3": {"endpoint_override": "aws_endpoint", "region": "aws_region",
           "access_key": "aws_access_key_id", "secret_key": "aws_secret_access_key",
           "session_token": "aws_session_token", "anonymous": "aws_skip_signature",
           "force_virtual_addressing": "aws_virtual_hosted_style_request"},
    "gs": {},
    "az": {"account_name": "azure_storage_account_name", "account_key": "azure_storage_account_key",
           "sas_token": "azure_storage_sas_key", "client_id": "azure_client_id",
           "client_secret": "azure_client_secret", "tenant_id": "azure_tenant_id"},
}
#: LanceDB storage options without a provider prefix, passed to LanceDB as given
LANCE_KEYS = ("allow_http", "allow_invalid_certificates", "timeout", "client_max_retries",
              "client_retry_timeout", "proxy_url")
_KIND = {"s3": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "az", "abfss": "az"}
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BUFFER = 1 << 20


def is_uri(text: str | os.PathLike) -> bool:
    """Whether ``text`` starts with a scheme (``s3://``, ``file://``...), not a plain path."""
    return bool(_URI.match(str(text)))


def storage_options() -> dict[str, Any]:
    """``$CATALOG_STORAGE_OPTIONS`` as a dict ({} when unset or blank); InputError if it is
    not a JSON object or names a key that is neither in :data:`ARROW_KEYS` nor LanceDB's."""
    raw = os.environ.get(STORAGE_OPTIONS_ENV, "").strip()
    if not raw:
        return {}
    try:
        opts = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InputError(f"${STORAGE_OPTIONS_ENV} is not valid JSON: {err.msg} (column "
                         f"{err.colno}); give an object such as "
                         '{"endpoint_override": "http://localhost:9000"}') from None
    if not isinstance(opts, dict):
        raise InputError(f"${STORAGE_OPTIONS_ENV} holds a JSON {type(opts).__name__}; "
                         "give an object of settings")
    known = {k for keys in ARROW_KEYS.values() for k in keys}
    unknown = sorted(k for k in opts if k not in known and not _is_lance_key(k))
    if unknown:
        raise InputError(f"unknown key(s) {format_list(unknown)} in ${STORAGE_OPTIONS_ENV}; use "
                         f"pyarrow's {', '.join(sorted(known))}, or a LanceDB storage option "
                         f"(aws_*, google_*, azure_*, {', '.join(LANCE_KEYS)})")
    return opts


def _is_lance_key(key: str) -> bool:
    return key.startswith(("aws_", "google_", "azure_")) or key in LANCE_KEYS


def _lance_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def lance_storage_options(uri: str) -> dict[str, str] | None:
    """LanceDB ``storage_options`` for the database at ``uri``: $CATALOG_STORAGE_OPTIONS
    mapped by :data:`TO_LANCE` (``allow_http`` "true" for an ``http://`` endpoint or scheme
    "http"), LanceDB's own keys as given; None for a local ``uri`` or no settings."""
    match = _URI.match(str(uri))
    kind = _KIND.get(match[1].lower()) if match else None
    opts = storage_options()
    if kind is None or not opts:
        return None
    out = {TO_LANCE[kind][k]: _lance_value(v) for k, v in opts.items() if k in TO_LANCE[kind]}
    http = str(opts.get("endpoint_override", "")).startswith("http://") or opts.get("scheme") == "http"
    if kind == "s3" and http:
        out["allow_http"] = "true"
    out.update({k: _lance_value(v) for k, v in opts.items() if _is_lance_key(k)})
    return out or None


@dataclass(frozen=True)
class Location:
    """A file or folder: ``uri`` (as given; a plain path made absolute) names it in messages,
    ``fs``/``path`` reach it, ``local`` is its local path (None on an object store)."""

    uri: str
    fs: pafs.FileSystem
    path: str
    local: Path | None = None

    def __str__(self) -> str:
        return self.uri

    @property
    def name(self) -> str:
        """The last component (``rows.csv``)."""
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def stem(self) -> str:
        """``rows`` for ``.../rows.csv``."""
        return posixpath.splitext(self.name)[0]

    @property
    def suffix(self) -> str:
        """``.csv`` for ``.../rows.csv``; '' without one."""
        return posixpath.splitext(self.name)[1]

    def sibling(self, name: str) -> Location:
        """The location ``name`` in the same folder."""
        local = self.local.with_name(name) if self.local is not None else None
        uri = str(local) if local is not None and not is_uri(self.uri) else \
            posixpath.join(posixpath.dirname(self.uri.rstrip("/")), name)
        return Location(uri, self.fs, posixpath.join(posixpath.dirname(self.path.rstrip("/")), name), local)

    def info(self) -> pafs.FileInfo:
        """pyarrow's FileInfo (type NotFound when absent); InputError if it cannot be asked."""
        return self._guard(lambda: self.fs.get_file_info(self.path))

    def is_dir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self.info().type == pafs.FileType.File

    def require_file(self, what: str = "file") -> int:
        """The size in bytes of the file; NotFoundError if missing, InputError if a folder."""
        info = self.info()
        if info.type == pafs.FileType.NotFound:
            raise NotFoundError(f"{what} {self.uri!r} does not exist")
        if info.type == pafs.FileType.Directory:
            raise InputError(f"{what} {self.uri!r} is a folder, not a file")
        return int(info.size or 0)

    def open_stream(self) -> pa.NativeFile:
        """A sequential binary stream (``.gz``/``.bz2``... decompressed by suffix, as pyarrow does)."""
        return self._guard(lambda: self.fs.open_input_stream(self.path))

    def open_file(self) -> pa.NativeFile:
        """A random-access binary file (for Parquet footers, ``np.load``)."""
        return self._guard(lambda: self.fs.open_input_file(self.path))

    def read_bytes(self) -> bytes:
        """The whole file's bytes."""
        with self.open_stream() as fh:
            return self._guard(fh.read)

    @contextlib.contextmanager
    def readable(self, stream: bool = True) -> Iterator[Path | pa.NativeFile]:
        """What numpy and pandas read: the local path, else an open stream (a random-access
        file unless ``stream``) that closes with the block."""
        if self.local is not None:
            yield self.local
            return
        with self.open_stream() if stream else self.open_file() as fh:
            yield fh

    def open_lines(self) -> io.BufferedReader:
        """A buffered binary reader over :meth:`open_stream` (iterates lines)."""
        return io.BufferedReader(self.open_stream(), _BUFFER)

    def list_files(self, recursive: bool = True) -> list[Location]:
        """The files under this folder, sorted by path; NotFoundError if it does not exist."""
        selector = pafs.FileSelector(self.path.rstrip("/"), recursive=recursive)
        infos = self._guard(lambda: self.fs.get_file_info(selector))
        base = self.uri.rstrip("/")
        out = []
        for info in sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path):
            rel = posixpath.relpath(info.path, self.path.rstrip("/") or "/")
            local = self.local / rel if self.local is not None else None
            out.append(Location(f"{base}/{rel}", self.fs, info.path, local))
        return out

    def _guard(self, step):
        """``step()`` with filesystem errors as typed errors naming the URI."""
        try:
            return step()
        except FileNotFoundError:
            raise NotFoundError(f"{self.uri!r} does not exist") from None
        except PermissionError:
            raise InputError(f"cannot read {self.uri!r}: permission denied") from None
        except (OSError, pa.ArrowException) as err:
            raise InputError(f"cannot read {self.uri!r}: {err}") from None


def parse_location(text: str | os.PathLike) -> Location:
    """The :class:`Location` of ``text`` (a path, ``~`` expanded and made absolute, or a URI:
    see the module docstring). Nothing is read. InputError on an empty value, an unknown
    scheme, a malformed URI or unusable settings (the message names the URI)."""
    raw = str(text).strip() if text is not None else ""
    if not raw:
        raise InputError("no location given; pass a path or a URI such as s3://bucket/key")
    match = _URI.match(raw)
    if match is None:
        path = Path(raw).expanduser().absolute()
        return Location(str(path), pafs.LocalFileSystem(), str(path), path)
    scheme = match[1].lower()
    try:
        if scheme == "file":
            fs, path = pafs.FileSystem.from_uri(raw)
            return Location(raw, fs, path, Path(path))
        kind = _KIND.get(scheme)
        if kind is not None:
            fs, path = _object_store(kind, raw)
            return Location(raw, fs, path)
    except InputError:
        raise
    except (OSError, pa.ArrowException, TypeError, ValueError) as err:
        raise InputError(f"cannot use the location {raw!r}: {err}") from None
    return _fsspec(scheme, raw)


def _object_store(kind: str, uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and ``bucket/key`` path of an S3, GCS or Azure ``uri``."""
    netloc, _, key = uri.split("://", 1)[1].partition("/")  # keys may hold '?' or '#'
    opts = {k: v for k, v in storage_options().items() if k in ARROW_KEYS[kind]}
    if not netloc:
        raise InputError(f"{uri!r} names no bucket or container")
    path = f"{netloc}/{key}" if key else netloc
    if kind == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and "endpoint_override" not in opts:
            opts["endpoint_override"] = endpoint  # pyarrow does not read it; LanceDB does
        return pafs.S3FileSystem(**opts), path
    if kind == "gs":
        return pafs.GcsFileSystem(**opts), path
    container, _, host = netloc.partition("@")
    named = opts.pop("account_name", None) or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
    account = host.split(".", 1)[0] if host else named
    if not account:
        raise InputError(f"{uri!r} needs an Azure storage account: set AZURE_STORAGE_ACCOUNT_NAME "
                         f"or account_name in ${STORAGE_OPTIONS_ENV}, or use "
                         "abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH")
    if "account_key" not in opts and "sas_token" not in opts and os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
        opts["account_key"] = os.environ["AZURE_STORAGE_ACCOUNT_KEY"]
    return pafs.AzureFileSystem(account, **opts), f"{container}/{key}" if key else container


def _fsspec(scheme: str, uri: str) -> Location:
    """A scheme pyarrow lacks, through fsspec (``memory://``...); InputError if unknown."""
    try:
        import fsspec

        cls = fsspec.get_filesystem_class(scheme)
        handler = pafs.FSSpecHandler(fsspec.filesystem(scheme))
    except ImportError as err:
        raise InputError(f"the scheme {scheme!r} of {uri!r} needs a package that is not "
                         f"installed: {err}") from None
    except ValueError:
        raise InputError(f"unknown scheme {scheme!r} in {uri!r}; use a local path or "
                         f"{', '.join(s + '://' for s in SCHEMES)} (or a scheme fsspec knows, "
                         "e.g. memory://)") from None
    except (TypeError, OSError) as err:  # a filesystem that needs arguments (host, ...)
        raise InputError(f"cannot use the location {uri!r}: {err}") from None
    return Location(uri, pafs.PyFileSystem(handler), cls._strip_protocol(uri))


__all__ = ["ARROW_KEYS", "LANCE_KEYS", "SCHEMES", "STORAGE_OPTIONS_ENV", "TO_LANCE", "Location",
           "is_uri", "lance_storage_options", "parse_location", "storage_options"]
