"""Where a browser user's data comes from: a path on the server inside the allowed roots, an
uploaded table, or an uploaded zip of images (checked member by member before anything is
unpacked). :mod:`core.ingest.preview` then shows what ingest would make of it.

Uploads land in ``<home>/uploads/<UTC time>-<random>-<stem>/`` (built in a temp folder and
renamed into place, so a refused or failed upload leaves nothing behind). They are kept:
a dataset ingested from them refers to their files.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import secrets
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from core import atomic
from core.errors import InputError, NotFoundError
from core.ingest.images import media_module
from core.ingest.pipeline import _SUFFIXES
from core.workspace import Workspace, is_within

log = logging.getLogger(__name__)

DATA_ROOTS_ENV = "CATALOG_DATA_ROOTS"
UPLOADS_DIR = "uploads"
#: table files an upload may be (every table suffix ingest knows, but ambiguous ``.json``)
UPLOAD_SUFFIXES = tuple(s for s in _SUFFIXES if s != ".json")
DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3          # one uploaded file or zip archive
ZIP_MAX_MEMBERS = 200_000
ZIP_MAX_TOTAL_BYTES = 8 * 1024**3               # declared uncompressed size of all members
ZIP_MAX_RATIO = 200                             # uncompressed / compressed, per member and overall
_RATIO_MIN_BYTES = 1024**2                      # smaller members may compress as well as they like
_CHUNK = 1024**2
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_JUNK_DIRS = ("__MACOSX",)
_JUNK_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")
_DRIVE = re.compile(r"^[A-Za-z]:")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# ---- allowed roots ------------------------------------------------------------------
def uploads_dir(ws: Workspace) -> Path:
    """``<home>/uploads`` (created if missing), resolved."""
    path = ws.home / UPLOADS_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def allowed_roots(ws: Workspace) -> tuple[Path, ...]:
    """Folders a typed server path may lie in, resolved: each of ``$CATALOG_DATA_ROOTS``
    (``os.pathsep``-separated, ``~`` expanded; missing ones skipped with a warning) or, if
    that variable is unset, the current directory; and always ``<home>/uploads``."""
    raw = os.environ.get(DATA_ROOTS_ENV)
    roots: list[Path] = []
    for part in [os.getcwd()] if raw is None else raw.split(os.pathsep):
        if not part.strip():
            continue
        try:
            root = Path(part.strip()).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            root = None
        if root is None or not root.is_dir():
            log.warning("%s: %r is not an existing folder; ignoring it", DATA_ROOTS_ENV, part)
            continue
        roots.append(root)
    roots.append(uploads_dir(ws))
    return tuple(dict.fromkeys(roots))


def check_source_path(ws: Workspace, path: str) -> Path:
    """``path`` resolved (``~`` expanded, symlinks followed) if it lies inside one of
    :func:`allowed_roots`. Raises InputError (empty, or outside every root: the message names
    the roots and :data:`DATA_ROOTS_ENV`) or NotFoundError (inside a root but missing)."""
    text = str(path).strip() if path is not None else ""
    if not text:
        raise InputError("no path given; type the path of an image folder or a CSV, Parquet "
                         "or JSONL file on the server")
    roots = allowed_roots(ws)
    try:  # outside the roots is refused before existence is checked: no probing for files
        full = Path(text).expanduser().resolve()
        if not any(is_within(full, root) for root in roots):
            raise InputError(
                f"{text!r} is outside the folders this server may read ({', '.join(map(str, roots))}); "
                f"set {DATA_ROOTS_ENV} to the folders to allow (separated by {os.pathsep!r}) "
                "and restart, or upload the file instead")
        return full.resolve(strict=True)
    except FileNotFoundError:
        raise NotFoundError(f"{text!r} does not exist") from None
    except (OSError, RuntimeError) as exc:  # symlink loop, permission denied, bad name
        raise InputError(f"cannot use the path {text!r}: {exc}") from None


# ---- uploads ----------------------------------------------------------------------
def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB"


def safe_filename(filename: str, default: str = "upload") -> str:
    """The last component of ``filename`` ('/' or '\\' separated) with every run of
    characters other than ASCII letters, digits, '.', '_', '-' made '_', leading dots and
    underscores dropped, the extension lower-cased; ``default`` for an empty stem."""
    stem, suffix = os.path.splitext(re.split(r"[/\\]", str(filename))[-1].strip())
    stem = _UNSAFE.sub("_", stem).lstrip("._").rstrip("_")[:100] or default
    return stem + _UNSAFE.sub("_", suffix.lower())[:20]


def _chunks(data: bytes | BinaryIO, max_bytes: int, what: str) -> Iterator[bytes]:
    """``data`` (bytes, or a binary file read from its position) in chunks; InputError
    naming ``what`` and both sizes once more than ``max_bytes`` have come."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > max_bytes:
            raise InputError(f"{what} is {_mb(len(data))}, over the limit of {_mb(max_bytes)}")
        yield bytes(data)
        return
    if not hasattr(data, "read"):
        raise TypeError(f"expected bytes or a binary file, got {type(data).__name__}")
    total = 0
    while chunk := data.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise InputError(f"{what} is over the limit of {_mb(max_bytes)} (read "
                             f"{_mb(total)} so far)")
        yield chunk


def _upload_folder(ws: Workspace, stem: str) -> Path:
    uploads = uploads_dir(ws)
    while True:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        folder = uploads / f"{stamp}-{secrets.token_hex(4)}-{stem}"
        if not folder.exists():
            return folder


def save_upload(ws: Workspace, filename: str, data: bytes | BinaryIO, *,
                max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> Path:
    """Store an uploaded table as ``<home>/uploads/<time>-<random>-<stem>/<safe name>`` and
    return that file's path (for :func:`preview_source` and :func:`~core.ingest.ingest`).

    ``filename`` must end in one of :data:`UPLOAD_SUFFIXES`; it is reduced with
    :func:`safe_filename`. Raises InputError (wrong kind of file, empty, over ``max_bytes``);
    nothing is left behind on error.
    """
    name = safe_filename(filename)
    suffix = os.path.splitext(name)[1]
    if suffix not in UPLOAD_SUFFIXES:
        raise InputError(f"cannot upload {str(filename)!r}: accepted files are tables ending in "
                         f"{', '.join(UPLOAD_SUFFIXES)} (CSV/TSV, Parquet, JSONL); for images "
                         "upload a .zip")
    folder = _upload_folder(ws, os.path.splitext(name)[0])
    with atomic.atomic_dir(folder) as tmp:
        size = 0
        with atomic.atomic_path(tmp / name) as part, open(part, "wb") as fh:
            for chunk in _chunks(data, max_bytes, f"the upload {name!r}"):
                size += len(chunk)
                fh.write(chunk)
        if size == 0:
            raise InputError(f"the upload {name!r} is empty (0 bytes)")
    log.info("saved upload %s (%s)", folder / name, _mb(size))
    return folder / name


# ---- zip of images ------------------------------------------------------------------
def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why the member ``info`` may not be extracted, or None."""
    name = info.filename
    if "\\" in name:
        return "has a backslash in its name; re-create the zip with '/' folder separators"
    if name.startswith("/") or _DRIVE.match(name):
        return "has an absolute path"
    if ".." in name.split("/"):
        return "climbs out of the archive with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted; password-protected zips are not supported"
    if info.compress_type not in _COMPRESSIONS:
        return f"uses an unsupported compression method ({info.compress_type})"
    return None


def _is_junk(parts: list[str]) -> bool:
    return parts[0] in _JUNK_DIRS or parts[-1] in _JUNK_FILES or parts[-1].startswith("._")


def _is_image(parts: list[str]) -> bool:
    """An image ingest_folder would see (it skips hidden files and folders)."""
    return media_module().is_image_path(parts[-1]) and not any(p.startswith(".") for p in parts)


def _check_members(zf: zipfile.ZipFile, what: str, archive_size: int, max_members: int,
                   max_total_bytes: int, max_ratio: float) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The (member, path parts) to extract, after checking every member; InputError naming
    the first bad member otherwise."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise InputError(f"{what} has {len(infos):,} members, over the limit of {max_members:,}")
    files, total = [], 0
    for info in infos:
        bad = _member_problem(info)
        total += info.file_size
        if bad is None and total > max_total_bytes:
            bad = (f"takes the unpacked size past the limit of {_mb(max_total_bytes)} "
                   f"(the archive declares {_mb(sum(i.file_size for i in infos))})")
        if bad is None and info.file_size > _RATIO_MIN_BYTES and \
                info.file_size > max_ratio * max(info.compress_size, 1):
            bad = (f"expands {info.file_size / max(info.compress_size, 1):,.0f} times (from "
                   f"{_mb(info.compress_size)} to {_mb(info.file_size)}), over the limit of "
                   f"{max_ratio:g}; a decompression bomb?")
        if bad is not None:
            raise InputError(f"{what} refused: member {info.filename!r} {bad}")
        parts = [p for p in info.filename.split("/") if p not in ("", ".")]
        if parts and not info.is_dir() and not _is_junk(parts):
            files.append((info, parts))
    if total > _RATIO_MIN_BYTES and total > max_ratio * max(archive_size, 1):
        raise InputError(f"{what} refused: it expands {total / max(archive_size, 1):,.0f} times "
                         f"(to {_mb(total)}), over the limit of {max_ratio:g}; a decompression bomb?")
    if not any(_is_image(parts) for _, parts in files):
        exts = ", ".join(sorted(media_module().IMAGE_EXTENSIONS))
        raise InputError(f"{what} holds no images (looked for {exts})")
    return files


def _seekable(data: bytes | BinaryIO, max_bytes: int, what: str,
              stack: contextlib.ExitStack) -> tuple[BinaryIO, int]:
    """A seekable binary file over ``data`` and its size; InputError if over ``max_bytes``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        fh, size = io.BytesIO(data), len(data)
    elif getattr(data, "seekable", lambda: False)():
        fh, start = data, data.tell()
        size = data.seek(0, io.SEEK_END) - start
        data.seek(start)
    else:  # a pipe-like stream: copy it (counting) into a temp file
        fh = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=64 * 1024**2))  # noqa: SIM115
        for chunk in _chunks(data, max_bytes, what):
            fh.write(chunk)
        size = fh.tell()
        fh.seek(0)
    if size > max_bytes:
        raise InputError(f"{what} is {_mb(size)}, over the limit of {_mb(max_bytes)}")
    return fh, size


def extract_image_zip(ws: Workspace, filename: str, data: bytes | BinaryIO, *,
                      max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                      max_members: int = ZIP_MAX_MEMBERS,
                      max_total_bytes: int = ZIP_MAX_TOTAL_BYTES,
                      max_ratio: float = ZIP_MAX_RATIO) -> Path:
    """Unpack an uploaded zip of images into ``<home>/uploads/<time>-<random>-<stem>/`` and
    return the folder to ingest: that folder, or its one top-level folder when every image
    lies inside it (so ``pets/cat/1.png`` keeps the label ``cat``).

    Every member is checked before anything is written; ``__MACOSX/``, ``.DS_Store`` and
    ``._*`` are skipped. Raises InputError naming the problem (and the first bad member):
    not a .zip / not a zip archive, archive over ``max_bytes``, more than ``max_members``
    members, names with '..', absolute or drive paths or backslashes, symlinks, encrypted
    members, unsupported compression, unpacked size over ``max_total_bytes``, compression
    ratio over ``max_ratio``, a member holding more data than its header says, duplicate
    names, corrupt data, no images. On any error nothing is left under ``uploads/``.
    """
    name = safe_filename(filename)
    stem, suffix = os.path.splitext(name)
    what = f"the zip {name!r}"
    if suffix != ".zip":
        raise InputError(f"cannot unpack {str(filename)!r}: expected a .zip archive of images")
    with contextlib.ExitStack() as stack:
        fh, size = _seekable(data, max_bytes, what, stack)
        try:
            zf = stack.enter_context(zipfile.ZipFile(fh))
        except zipfile.BadZipFile:
            raise InputError(f"{what} is not a zip archive (or is damaged)") from None
        files = _check_members(zf, what, size, max_members, max_total_bytes, max_ratio)
        folder = _upload_folder(ws, stem)
        with atomic.atomic_dir(folder) as tmp:
            _extract(zf, files, tmp, what, max_total_bytes)
    images = [parts for _, parts in files if _is_image(parts)]
    tops = {parts[0] for parts in images}
    log.info("unpacked %s: %d files, %d images into %s", name, len(files), len(images), folder)
    if len(tops) == 1 and all(len(parts) > 1 for parts in images):
        return folder / tops.pop()
    return folder


def _extract(zf: zipfile.ZipFile, files: list[tuple[zipfile.ZipInfo, list[str]]], tmp: Path,
             what: str, max_total_bytes: int) -> None:
    """Write ``files`` under ``tmp``, counting the bytes actually decompressed."""
    written = 0
    for info, parts in files:
        target = tmp.joinpath(*parts)
        if not is_within(target, tmp):  # unreachable after _check_members; kept as a guard
            raise InputError(f"{what} refused: member {info.filename!r} leaves the archive")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "xb") as dst:
                size = 0
                while chunk := src.read(_CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    if size > info.file_size or written > max_total_bytes:
                        raise InputError(f"{what} refused: member {info.filename!r} holds more "
                                         f"data than its header declares ({_mb(info.file_size)})")
                    dst.write(chunk)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise InputError(f"{what} refused: member {info.filename!r} clashes with another "
                             "member of the same name (or a folder of that name)") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise InputError(f"{what} is damaged: member {info.filename!r}: {exc}") from None


__all__ = ["DATA_ROOTS_ENV", "DEFAULT_MAX_UPLOAD_BYTES", "UPLOADS_DIR", "UPLOAD_SUFFIXES",
           "ZIP_MAX_MEMBERS", "ZIP_MAX_RATIO", "ZIP_MAX_TOTAL_BYTES", "allowed_roots",
           "check_source_path", "extract_image_zip", "safe_filename", "save_upload", "uploads_dir"]
