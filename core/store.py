"""SQLite store of user curation state: tags, slices, label edits, reviews.

One file per workspace (``<home>/catalog.sqlite``) in WAL mode with a busy timeout,
so the app and several CLI processes can write at the same time without losing
writes. Every public method runs in its own transaction. Row data itself is never
modified here: a label edit is recorded beside the source label and the effective
label is the latest non-reverted edit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core._shared import ids_hash, now_iso
from core.errors import AlreadyExistsError, InputError, NotFoundError

BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (
    dataset TEXT NOT NULL, row_id TEXT NOT NULL, tag TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (dataset, tag, row_id)
);
CREATE TABLE IF NOT EXISTS slices (
    dataset TEXT NOT NULL, name TEXT NOT NULL, ids TEXT NOT NULL, recipe TEXT NOT NULL,
    created TEXT NOT NULL, deleted TEXT,
    PRIMARY KEY (dataset, name)
);
CREATE TABLE IF NOT EXISTS label_edits (
    edit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL, row_id TEXT NOT NULL, old_label TEXT, new_label TEXT,
    source TEXT NOT NULL DEFAULT 'manual', created TEXT NOT NULL, reverted TEXT
);
CREATE INDEX IF NOT EXISTS label_edits_row ON label_edits (dataset, row_id);
CREATE TABLE IF NOT EXISTS reviews (
    dataset TEXT NOT NULL, row_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    created TEXT NOT NULL, PRIMARY KEY (dataset, kind, row_id)
);
-- saved searches were never read; workspaces made before their removal drop the table
DROP TABLE IF EXISTS saved_searches;
"""


@dataclass(frozen=True)
class Slice:
    """A saved, named set of row ids with the recipe that produced it."""

    dataset: str
    name: str
    ids: tuple[str, ...]
    recipe: dict = field(default_factory=dict)
    created: str = ""

    @property
    def method(self) -> str:
        return str(self.recipe.get("method", "manual"))


@dataclass(frozen=True)
class LabelEdit:
    """One label change; ``reverted`` is set when it was undone."""

    edit_id: int
    dataset: str
    row_id: str
    old_label: str | None
    new_label: str | None
    source: str
    created: str
    reverted: str | None


class Store:
    """Tags, slices, label edits and saved searches of one workspace.

    Thread-safe: each thread gets its own sqlite3 connection.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connect().executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    class _Tx:
        def __init__(self, con: sqlite3.Connection) -> None:
            self.con = con

        def __enter__(self) -> sqlite3.Connection:
            self.con.execute("BEGIN IMMEDIATE")
            return self.con

        def __exit__(self, exc_type, exc, tb) -> None:
            self.con.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> Store._Tx:
        return Store._Tx(self._connect())

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self._connect().execute(sql, params).fetchall()

    # ---- tags -------------------------------------------------------------
    def tag_rows(self, dataset: str, row_ids: Iterable[str], tag: str) -> int:
        """Add ``tag`` to each row; returns the number of rows newly tagged."""
        tag = _check_label_text(tag, "tag")
        ids = list(dict.fromkeys(row_ids))
        created = now_iso()
        with self._tx() as con:
            before = con.total_changes
            con.executemany(
                "INSERT OR IGNORE INTO tags (dataset, row_id, tag, created) VALUES (?, ?, ?, ?)",
                [(dataset, rid, tag, created) for rid in ids],
            )
            return con.total_changes - before

    def untag_rows(self, dataset: str, row_ids: Iterable[str], tag: str) -> int:
        """Remove ``tag`` from the rows; returns the number removed."""
        with self._tx() as con:
            before = con.total_changes
            con.executemany(
                "DELETE FROM tags WHERE dataset=? AND tag=? AND row_id=?",
                [(dataset, tag, rid) for rid in row_ids],
            )
            return con.total_changes - before

    def tags(self, dataset: str) -> dict[str, int]:
        """Tag name → number of rows, sorted by name."""
        rows = self._query(
            "SELECT tag, COUNT(*) FROM tags WHERE dataset=? GROUP BY tag ORDER BY tag", (dataset,)
        )
        return {tag: count for tag, count in rows}

    def rows_with_tag(self, dataset: str, tag: str) -> list[str]:
        """Row ids carrying ``tag`` (NotFoundError if no row has it)."""
        rows = self._query(
            "SELECT row_id FROM tags WHERE dataset=? AND tag=? ORDER BY created, row_id",
            (dataset, tag),
        )
        if not rows:
            raise NotFoundError(
                f"no rows tagged {tag!r} in {dataset!r}; tags: {', '.join(self.tags(dataset)) or 'none'}"
            )
        return [r[0] for r in rows]

    def ids_with_tags(self, dataset: str, tags) -> list[str]:
        """Ids of the rows carrying any of ``tags`` (each once; unknown tags match nothing)."""
        tags = list(dict.fromkeys(str(t) for t in tags))
        if not tags:
            return []
        marks = ", ".join("?" for _ in tags)
        return [r[0] for r in self._query(
            f"SELECT DISTINCT row_id FROM tags WHERE dataset=? AND tag IN ({marks}) ORDER BY row_id",
            (dataset, *tags))]

    def tags_by_row(self, dataset: str) -> dict[str, list[str]]:
        """Row id → its tags (only rows with at least one tag)."""
        out: dict[str, list[str]] = {}
        for rid, tag in self._query(
            "SELECT row_id, tag FROM tags WHERE dataset=? ORDER BY tag", (dataset,)
        ):
            out.setdefault(rid, []).append(tag)
        return out

    # ---- slices -----------------------------------------------------------
    def save_slice(
        self,
        dataset: str,
        name: str,
        row_ids: Sequence[str],
        recipe: dict | None = None,
        *,
        replace: bool = False,
    ) -> Slice:
        """Save ``row_ids`` (order kept, duplicates dropped) as slice ``name``.

        The recipe gets ``ids_hash`` and ``row_count_selected`` added. Raises
        AlreadyExistsError if the name is taken and ``replace`` is False.
        """
        name = _check_label_text(name, "slice")
        ids = tuple(dict.fromkeys(str(i) for i in row_ids))
        if not ids:
            raise InputError(f"slice {name!r} would be empty; select at least one row")
        recipe = dict(recipe or {})
        recipe.setdefault("method", "manual")
        recipe["ids_hash"] = ids_hash(ids)
        recipe["rows_selected"] = len(ids)
        created = now_iso()
        with self._tx() as con:
            exists = con.execute(
                "SELECT deleted FROM slices WHERE dataset=? AND name=?", (dataset, name)
            ).fetchone()
            if exists and exists[0] is None and not replace:
                raise AlreadyExistsError(
                    f"slice {name!r} already exists in {dataset!r}; choose another name or replace it"
                )
            con.execute(
                "INSERT OR REPLACE INTO slices (dataset, name, ids, recipe, created, deleted) "
                "VALUES (?, ?, ?, ?, ?, NULL)",
                (dataset, name, json.dumps(ids), json.dumps(recipe, default=str), created),
            )
        return Slice(dataset, name, ids, recipe, created)

    def get_slice(self, dataset: str, name: str) -> Slice:
        """The slice ``name``; NotFoundError lists the slices that exist."""
        row = self._query(
            "SELECT ids, recipe, created FROM slices WHERE dataset=? AND name=? AND deleted IS NULL",
            (dataset, name),
        )
        if not row:
            names = [s.name for s in self.list_slices(dataset)]
            raise NotFoundError(
                f"no slice {name!r} in {dataset!r}; slices: {', '.join(names) or 'none'}"
            )
        ids, recipe, created = row[0]
        return Slice(dataset, name, tuple(json.loads(ids)), json.loads(recipe), created)

    def list_slices(self, dataset: str) -> list[Slice]:
        """Live slices of ``dataset``, newest first."""
        rows = self._query(
            "SELECT name, ids, recipe, created FROM slices WHERE dataset=? AND deleted IS NULL "
            "ORDER BY created DESC, name",
            (dataset,),
        )
        return [Slice(dataset, n, tuple(json.loads(i)), json.loads(r), c) for n, i, r, c in rows]

    def rename_slice(self, dataset: str, old: str, new: str) -> Slice:
        """Rename a slice; AlreadyExistsError if ``new`` is taken."""
        new = _check_label_text(new, "slice")
        current = self.get_slice(dataset, old)
        with self._tx() as con:
            taken = con.execute(
                "SELECT 1 FROM slices WHERE dataset=? AND name=? AND deleted IS NULL", (dataset, new)
            ).fetchone()
            if taken:
                raise AlreadyExistsError(f"slice {new!r} already exists in {dataset!r}")
            con.execute("DELETE FROM slices WHERE dataset=? AND name=?", (dataset, new))
            con.execute("UPDATE slices SET name=? WHERE dataset=? AND name=?", (new, dataset, old))
        return Slice(dataset, new, current.ids, current.recipe, current.created)

    def delete_slice(self, dataset: str, name: str) -> None:
        """Soft-delete a slice (undo with :meth:`restore_slice`)."""
        self.get_slice(dataset, name)
        with self._tx() as con:
            con.execute(
                "UPDATE slices SET deleted=? WHERE dataset=? AND name=?", (now_iso(), dataset, name)
            )

    def restore_slice(self, dataset: str, name: str) -> Slice:
        """Undo :meth:`delete_slice`."""
        with self._tx() as con:
            cur = con.execute(
                "UPDATE slices SET deleted=NULL WHERE dataset=? AND name=? AND deleted IS NOT NULL",
                (dataset, name),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no deleted slice {name!r} in {dataset!r} to restore")
        return self.get_slice(dataset, name)

    # ---- label edits ------------------------------------------------------
    def relabel(
        self,
        dataset: str,
        row_ids: Sequence[str],
        new_label: str | None,
        old_labels: Sequence[str | None],
        *,
        source: str = "manual",
    ) -> list[int]:
        """Record label edits (``old_labels`` = effective labels before); returns edit ids."""
        if len(row_ids) != len(old_labels):
            raise InputError(f"{len(row_ids)} row ids but {len(old_labels)} old labels")
        if new_label is not None:
            new_label = _check_label_text(new_label, "label")
        created = now_iso()
        edit_ids = []
        with self._tx() as con:
            for rid, old in zip(row_ids, old_labels):
                cur = con.execute(
                    "INSERT INTO label_edits (dataset, row_id, old_label, new_label, source, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (dataset, rid, old, new_label, source, created),
                )
                edit_ids.append(int(cur.lastrowid))
        return edit_ids

    def revert_edits(self, dataset: str, edit_ids: Sequence[int]) -> int:
        """Undo label edits by id; returns how many were reverted."""
        with self._tx() as con:
            before = con.total_changes
            con.executemany(
                "UPDATE label_edits SET reverted=? WHERE dataset=? AND edit_id=? AND reverted IS NULL",
                [(now_iso(), dataset, int(e)) for e in edit_ids],
            )
            return con.total_changes - before

    def label_overrides(self, dataset: str) -> dict[str, str | None]:
        """Row id → effective edited label (latest non-reverted edit)."""
        rows = self._query(
            "SELECT row_id, new_label FROM label_edits WHERE dataset=? AND reverted IS NULL "
            "ORDER BY edit_id",
            (dataset,),
        )
        return {rid: label for rid, label in rows}

    def label_history(self, dataset: str, row_id: str) -> list[LabelEdit]:
        """All edits of one row, oldest first (reverted ones included)."""
        rows = self._query(
            "SELECT edit_id, dataset, row_id, old_label, new_label, source, created, reverted "
            "FROM label_edits WHERE dataset=? AND row_id=? ORDER BY edit_id",
            (dataset, row_id),
        )
        return [LabelEdit(*r) for r in rows]

    def label_edit(self, dataset: str, edit_id: int) -> LabelEdit:
        """One edit of ``dataset`` by id (reverted or not); NotFoundError naming it and the
        latest live edit if ``dataset`` has no such edit."""
        rows = self._query(
            "SELECT edit_id, dataset, row_id, old_label, new_label, source, created, reverted "
            "FROM label_edits WHERE dataset=? AND edit_id=?",
            (dataset, int(edit_id)),
        )
        if not rows:
            last = self.last_live_edit(dataset)
            hint = f"the latest live edit is {last.edit_id}" if last else "it has no live label edits"
            raise NotFoundError(f"no label edit {edit_id} in {dataset!r}; {hint}")
        return LabelEdit(*rows[0])

    def last_live_edit(self, dataset: str) -> LabelEdit | None:
        """The newest edit of ``dataset`` not yet reverted, or None."""
        rows = self._query(
            "SELECT edit_id, dataset, row_id, old_label, new_label, source, created, reverted "
            "FROM label_edits WHERE dataset=? AND reverted IS NULL ORDER BY edit_id DESC LIMIT 1",
            (dataset,),
        )
        return LabelEdit(*rows[0]) if rows else None

    # ---- review marks (e.g. "label looks right, stop showing it") -----------
    def mark_reviewed(self, dataset: str, row_ids: Iterable[str], kind: str, status: str) -> None:
        """Record a review decision (``status`` e.g. 'correct', 'skipped') for rows."""
        created = now_iso()
        with self._tx() as con:
            con.executemany(
                "INSERT OR REPLACE INTO reviews (dataset, row_id, kind, status, created) VALUES (?, ?, ?, ?, ?)",
                [(dataset, rid, kind, status, created) for rid in row_ids],
            )

    def unmark_reviewed(self, dataset: str, row_ids: Iterable[str], kind: str) -> None:
        """Remove review decisions (undo)."""
        with self._tx() as con:
            con.executemany(
                "DELETE FROM reviews WHERE dataset=? AND kind=? AND row_id=?",
                [(dataset, kind, rid) for rid in row_ids],
            )

    def reviewed(self, dataset: str, kind: str) -> dict[str, str]:
        """Row id → review status for ``kind``."""
        rows = self._query(
            "SELECT row_id, status FROM reviews WHERE dataset=? AND kind=?", (dataset, kind)
        )
        return dict(rows)

    def forget_dataset(self, dataset: str) -> None:
        """Remove every record of ``dataset`` (used when a dataset is replaced or deleted)."""
        with self._tx() as con:
            for table in ("tags", "slices", "label_edits", "reviews"):
                con.execute(f"DELETE FROM {table} WHERE dataset=?", (dataset,))


def _check_label_text(value: str, what: str) -> str:
    """Strip and validate a tag/slice/label name: non-empty, ≤ 200 chars, no control chars."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InputError(f"{what} name is empty")
    if len(text) > 200:
        raise InputError(f"{what} {text[:40]!r}... is longer than 200 characters")
    if any(ord(ch) < 32 for ch in text):
        raise InputError(f"{what} {text!r} contains control characters")
    return text


__all__ = ["Store", "Slice", "LabelEdit"]
