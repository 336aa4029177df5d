"""Typed errors raised by ``core``.

Every error a user can cause is a :class:`CatalogError`; the CLI maps it to exit
code 2 and prints ``str(err)`` on one line, the app shows it with ``st.error``.

::

    CatalogError
    ├── InputError          bad argument or file supplied by the user
    │   ├── SchemaError     a table lacks/has wrong columns, duplicate or missing ids
    │   ├── MediaError      an image is corrupt, empty or outside the data root
    │   ├── EmbeddingError  wrong dims, NaN/Inf, zero vectors, unknown ids in vectors
    │   └── EngineError     an unknown engine, Ray not installed, an unreachable cluster
    ├── NotFoundError       a dataset, embedding, slice, tag or row that does not exist
    ├── AlreadyExistsError  a dataset/embedding/slice name that is taken (use replace)
    ├── EncoderError        an encoder spec that does not exist or cannot load
    └── IndexStateError     an index/embedding on disk that is missing, stale or corrupt
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of every error Catalog raises on purpose."""


class InputError(CatalogError, ValueError):
    """A bad value or file supplied by the user."""


class SchemaError(InputError):
    """A table's columns or ids are not what Catalog needs."""


class MediaError(InputError):
    """An image that cannot be read, is empty, or lies outside the allowed root."""


class EmbeddingError(InputError):
    """Vectors with the wrong shape, non-finite values, zero norm or unknown ids."""


class EngineError(InputError):
    """A bulk-work engine that is unknown, not installed, or whose cluster cannot be reached."""


class NotFoundError(CatalogError, KeyError):
    """A named dataset, embedding, slice, tag or row does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


class AlreadyExistsError(CatalogError):
    """A name that is already taken (pass ``replace=True`` / ``--replace``)."""


class EncoderError(CatalogError):
    """An encoder spec that is unknown or whose model cannot be loaded."""


class IndexStateError(CatalogError):
    """Files on disk (index, vectors) are missing, inconsistent or corrupt."""


def format_list(values, limit: int = 5) -> str:
    """``'a', 'b', 'c' (+12 more)``: the first ``limit`` values, quoted, for messages."""
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    more = len(values) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown
