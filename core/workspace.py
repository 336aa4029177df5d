"""Workspace layout on disk: datasets, their rows, media root and embeddings.

::

    <home>/catalog.sqlite                     tags, slices, label edits (core.store)
    <home>/datasets/<name>/rows.parquet       one row per data row (id, modality, ...)
    <home>/datasets/<name>/dataset.json       media_root, source, created, default_embedding
    <home>/datasets/<name>/media/             images copied in by demos (optional)
    <home>/datasets/<name>/thumbs/            thumbnail cache
    <home>/datasets/<name>/embeddings/<emb>/  vectors.npy, ids.npy, meta.json, index.faiss, index.json
    <home>/datasets/<name>/projections/       cached 2-D coordinates

The home is ``--home DIR``, else ``$CATALOG_HOME``, else ``./catalog-data``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from core import atomic
from core.errors import InputError, MediaError, NotFoundError

DEFAULT_HOME = "catalog-data"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """``home`` if given, else ``$CATALOG_HOME``, else ``./catalog-data`` (absolute)."""
    value = home or os.environ.get("CATALOG_HOME") or DEFAULT_HOME
    return Path(value).expanduser().resolve()


def check_name(name: str, what: str = "dataset") -> str:
    """Return ``name`` if it is a safe directory name, else raise :class:`InputError`."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InputError(
            f"invalid {what} name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def is_within(path: Path, root: Path) -> bool:
    """True if ``path`` (symlinks resolved) lies inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Dataset:
    """One dataset directory. Cheap to create; reads files lazily."""

    name: str
    path: Path

    @property
    def rows_path(self) -> Path:
        return self.path / "rows.parquet"

    @property
    def info_path(self) -> Path:
        return self.path / "dataset.json"

    @property
    def embeddings_dir(self) -> Path:
        return self.path / "embeddings"

    @property
    def projections_dir(self) -> Path:
        return self.path / "projections"

    @property
    def thumbs_dir(self) -> Path:
        return self.path / "thumbs"

    def info(self) -> dict:
        """The contents of ``dataset.json`` (empty dict if absent)."""
        if not self.info_path.exists():
            return {}
        return atomic.read_json(self.info_path)

    def update_info(self, **changes) -> dict:
        """Atomically merge ``changes`` into ``dataset.json``; returns the new info."""
        info = self.info()
        info.update(changes)
        atomic.write_json(self.info_path, info)
        return info

    def rows(self) -> pd.DataFrame:
        """The rows table (string ``id`` column first). Raises NotFoundError if missing."""
        if not self.rows_path.exists():
            raise NotFoundError(f"dataset {self.name!r} has no rows.parquet at {self.rows_path}")
        return pd.read_parquet(self.rows_path)

    def row_count(self) -> int:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.rows_path).metadata.num_rows

    @property
    def media_root(self) -> Path:
        """Directory that relative ``image`` paths are resolved against."""
        root = self.info().get("media_root")
        return Path(root) if root else self.path / "media"

    def resolve_media(self, relpath: str) -> Path:
        """Absolute path of an ``image`` value; raises MediaError if it escapes the root."""
        root = self.media_root
        candidate = Path(relpath)
        full = candidate if candidate.is_absolute() else root / candidate
        if not is_within(full, root):
            raise MediaError(f"image path {relpath!r} is outside the data root {root}")
        return full

    def embedding_names(self) -> list[str]:
        """Names of complete embeddings (those with a meta.json), sorted."""
        if not self.embeddings_dir.exists():
            return []
        return sorted(
            p.name
            for p in self.embeddings_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "meta.json").exists()
        )

    def embedding_dir(self, name: str) -> Path:
        return self.embeddings_dir / check_name(name, "embedding")

    def default_embedding(self) -> str | None:
        """The embedding marked default, else the first one, else None."""
        names = self.embedding_names()
        chosen = self.info().get("default_embedding")
        if chosen in names:
            return chosen
        return names[0] if names else None

    def require_embedding(self, name: str | None) -> str:
        """Resolve ``name`` (None → default) to an existing embedding name."""
        names = self.embedding_names()
        if name is None:
            name = self.default_embedding()
            if name is None:
                raise NotFoundError(
                    f"dataset {self.name!r} has no embeddings yet; run: catalog embed {self.name}"
                )
            return name
        if name not in names:
            raise NotFoundError(
                f"dataset {self.name!r} has no embedding {name!r}; "
                f"it has: {', '.join(names) or 'none'}"
            )
        return name


@dataclass(frozen=True)
class Workspace:
    """A Catalog home directory."""

    home: Path

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def store_path(self) -> Path:
        return self.home / "catalog.sqlite"

    @cached_property
    def store(self):
        """The SQLite store (tags, slices, label edits) of this workspace."""
        from core.store import Store

        return Store(self.store_path)

    def dataset_names(self) -> list[str]:
        """Names of datasets with a rows table, sorted."""
        if not self.datasets_dir.exists():
            return []
        return sorted(
            p.name
            for p in self.datasets_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "rows.parquet").exists()
        )

    def has_dataset(self, name: str) -> bool:
        return name in self.dataset_names()

    def dataset_path(self, name: str) -> Path:
        return self.datasets_dir / check_name(name)

    def dataset(self, name: str) -> Dataset:
        """The dataset called ``name``; NotFoundError lists the ones that exist."""
        check_name(name)
        if not self.has_dataset(name):
            names = self.dataset_names()
            raise NotFoundError(
                f"no dataset {name!r} in {self.home}; datasets: {', '.join(names) or 'none'}"
            )
        return Dataset(name, self.dataset_path(name))


def open_workspace(home: str | os.PathLike | None = None) -> Workspace:
    """Open (creating if needed) the workspace at ``home`` (see :func:`resolve_home`).

    Raises InputError if ``home`` (or one of its parents, or ``home/datasets``) is a
    file rather than a folder.
    """
    path = resolve_home(home)
    if path.exists() and not path.is_dir():
        raise InputError(f"the workspace home {str(path)!r} is not a folder; give a folder with "
                         "--home or CATALOG_HOME")
    blocker = atomic.non_folder_ancestor(path / "datasets")
    if blocker is not None:
        raise InputError(f"cannot create the workspace home {str(path)!r}: {str(blocker)!r} is a file, "
                         "not a folder")
    try:
        (path / "datasets").mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise InputError(f"cannot use {str(path)!r} as the workspace home: "
                         f"{str(path / 'datasets')!r} is not a folder") from err
    return Workspace(path)
