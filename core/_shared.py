"""Small helpers that several packages of ``core`` need, each defined once.

- :data:`ProgressFn`: the ``progress(done, total)`` callback every long step takes.
- :data:`CORE_COLUMNS`: the rows table's own columns; every other column is user metadata.
- :func:`ids_hash`, :func:`now_iso`: content hash of an id list; the current UTC time.
- :func:`check_positive_int`: a whole number >= a minimum (not a bool), or InputError.
- :func:`as_text`: a pyarrow array as text the way ingest reads ids (``3.0`` → ``'3'``).
- :func:`read_utf8_text`, :func:`read_ids_file`: a UTF-8 text file (BOM dropped), an ids
  file (one id a line), or InputError naming the file.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import EmbeddingError, InputError, format_list

ProgressFn = Callable[[int, int], None]

# The rows table's own columns (written by ingest); every other column is user metadata.
CORE_COLUMNS = ("id", "modality", "text", "image", "label", "ingest_issue")


def now_iso() -> str:
    """Current UTC time as ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ids_hash(ids: Sequence[str], step: int = 1 << 16) -> str:
    """Content hash of an ordered id list (sha256 hex of the ids joined by newlines),
    hashed ``step`` ids at a time so ten million ids never become one string. ``ids``: a
    list or a numpy array of strings."""
    digest = hashlib.sha256()
    for start in range(0, len(ids), step):
        part = ids[start:start + step]
        part = part.tolist() if isinstance(part, np.ndarray) else part
        digest.update(("\n" if start else "").encode() + "\n".join(map(str, part)).encode("utf-8"))
    return digest.hexdigest()


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int if it is a whole number >= ``minimum`` (bools refused).

    Raises InputError naming ``name``, e.g. ``k must be a whole number >= 1, got 0``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def unit_rows(vectors: Any, ids: Sequence[str] | None = None) -> np.ndarray:
    """A C-contiguous float32 copy of ``vectors`` (n, d) with unit-length rows (zero rows stay zero).

    Raises EmbeddingError if ``vectors`` is not 2-D, does not have one row per id of
    ``ids`` (when given), or holds NaN/Inf (naming the first rows, by id when given).
    """
    x = np.asarray(vectors)
    if x.ndim != 2 or (ids is not None and x.shape[0] != len(ids)):
        what = f"do not match {len(ids)} ids; expected (n_ids, dims)" if ids is not None else "are not (n, dims)"
        raise EmbeddingError(f"vectors of shape {x.shape} {what}")
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        shown = [ids[i] for i in bad] if ids is not None else bad.tolist()
        raise EmbeddingError(f"{len(bad)} vectors contain NaN or Inf, e.g. "
                             f"{'ids' if ids is not None else 'rows'} {format_list(shown)}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def utf8_error(path: Path, data: bytes, what: str = "file") -> InputError | None:
    """InputError naming ``what`` ``path`` and the offset and line of the first byte of
    ``data`` that is not UTF-8 (a leading byte-order mark allowed), or None if it decodes."""
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        data[skip:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = skip + err.start
        line = data.count(b"\n", 0, offset) + 1
        return InputError(f"{what} {str(path)!r} is not UTF-8 text: byte 0x{data[offset]:02x} at "
                          f"offset {offset} (line {line}) cannot be decoded; save it as UTF-8")
    return None


def read_utf8_text(path: Path, what: str = "file") -> str:
    """The text of ``path`` decoded as UTF-8, a leading byte-order mark (as Notepad
    writes) dropped. Raises InputError naming the file and the byte offset and line of
    the first byte that is not UTF-8; OSError as ``read_bytes`` does."""
    data = path.read_bytes()
    error = utf8_error(path, data, what)
    if error is not None:
        raise error
    return data.decode("utf-8-sig")


def read_ids_file(path: str | Path) -> list[str]:
    """Row ids of a UTF-8 text file, one a line, in file order (blank lines and surrounding
    spaces dropped, a BOM dropped). Raises InputError (missing, unreadable or not UTF-8)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"ids file {str(path)!r} does not exist")
    try:
        text = read_utf8_text(path, "ids file")
    except OSError as err:
        raise InputError(f"cannot read ids file {str(path)!r}: {err.strerror or err}") from err
    return [line.strip() for line in text.splitlines() if line.strip()]


__all__ = ["CORE_COLUMNS", "ProgressFn", "check_positive_int", "ids_hash", "now_iso", "read_ids_file", "read_utf8_text", "unit_rows", "utf8_error"]


def number_text(value: float) -> str:
    """A float as text: whole numbers without '.0' (ids read as 3.0 give '3'), else ``str``."""
    return str(int(value)) if value.is_integer() else str(value)


def as_text(values):
    """``values`` (m,) as a string array, nulls kept: strings as they are, integers as digits,
    floats by :func:`number_text`, bools as True/False, anything else as pandas writes it
    (how ingest reads ids; prediction imports read them the same way)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return values.cast(pa.string())
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_integer(kind):
        return pc.cast(values, pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(values, "True", "False")
    if pa.types.is_floating(kind):
        return pa.array([None if v is None else number_text(v) for v in values.to_pylist()],
                        pa.string())
    series = values.to_pandas()
    text = series.astype("string").astype(object).where(series.notna().to_numpy(), None)
    return pa.array(text.to_numpy(), pa.string())
