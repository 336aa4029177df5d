"""The exact vectors behind an ``ivf`` index, read where they already are: nothing is copied.

An ivf index keeps only compressed codes in memory; its candidates are re-ranked with
exact cosines read from :class:`MappedVectors`:

- slots ``0 .. base_rows-1``: rows of the matrix the index was built from, by reference
  (the memory map of the embedding's ``vectors.npy``, as :mod:`core.embeddings` opens it,
  or the array handed to ``build_index``), with their L2 norms (``index_norms.npy``, 4
  bytes a row) so un-normalised input gives exact cosines too;
- slots from ``base_rows`` on: unit rows added later, in a small side array
  (``index_added.npy``) that :meth:`core.index.VectorIndex.save` writes next to the index.

Removed slots stay where they are (the codes are dropped from the faiss index), so slot
numbers never move. ``base_fingerprint`` (a hash of 64 fixed rows) ties a saved index
to its ``vectors.npy``: a file rewritten or reordered since is refused, never misread.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from pathlib import Path

import numpy as np

from core import atomic
from core.errors import IndexStateError

VECTORS_FILE = "vectors.npy"        # the embedding's own file: the base rows
NORMS_FILE = "index_norms.npy"      # (slots,) float32 norms of every slot's source row
ADDED_FILE = "index_added.npy"      # (slots - base_rows, d) float32 unit rows added later
FINGERPRINT_ROWS = 64
COPY_ROWS = 65_536                  # rows copied at a time when vectors.npy is written
# A re-rank reads ~50-100 rows scattered over vectors.npy. Where the file outgrows what
# stays in the page cache (10M x 384 = 15 GB), each is a page fault that waits on the disk
# in turn; asking the kernel for all of them first (posix_fadvise WILLNEED) lets the reads
# overlap. Below this size the file stays cached and the calls would only cost time.
PREFETCH_MIN_BYTES = 4 << 30
PREFETCH_MAX_ROWS = 16_384          # larger reads are batches: the kernel's readahead serves them


def _probe_rows(n: int) -> np.ndarray:
    """The (<= FINGERPRINT_ROWS,) fixed row numbers a fingerprint of ``n`` rows reads."""
    return np.unique(np.linspace(0, n - 1, min(n, FINGERPRINT_ROWS)).astype(np.int64)) if n else np.empty(0, np.int64)


def fingerprint(matrix: np.ndarray, rows: int) -> str:
    """sha256 of the shape and the bytes of fixed rows among the first ``rows`` of ``matrix``."""
    probe = np.ascontiguousarray(matrix[_probe_rows(rows)], dtype=np.float32)
    return hashlib.sha256(f"{rows}x{matrix.shape[1]}:".encode() + probe.tobytes()).hexdigest()


class MappedVectors:
    """Exact rows of every slot: ``base`` (n0, d) float32 (referenced, not copied) with
    ``norms`` for all slots, then ``added`` (m, d) float32 unit rows."""

    def __init__(self, base: np.ndarray, norms: np.ndarray, added: np.ndarray | None = None) -> None:
        self.base = base
        self.dims = int(base.shape[1])
        self.base_rows = int(base.shape[0])
        self.norms = np.asarray(norms, dtype=np.float32)
        self.added = np.empty((0, self.dims), np.float32) if added is None else added
        self.base_fingerprint = fingerprint(base, self.base_rows)
        self._fd = self._prefetch_fd(base)

    def _prefetch_fd(self, base: np.ndarray) -> int | None:
        """A read-only descriptor of ``base``'s file for prefetching (closed with this
        object), or None: not a large memory-mapped file, or no posix_fadvise here."""
        name = getattr(base, "filename", None)
        if (not isinstance(base, np.memmap) or name is None or base.nbytes < PREFETCH_MIN_BYTES
                or not hasattr(os, "posix_fadvise")):
            return None
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError:
            return None
        weakref.finalize(self, os.close, fd)
        return fd

    def _prefetch(self, ascending: np.ndarray) -> None:
        """Ask the kernel to read the base rows ``ascending`` (sorted slots) ahead."""
        if self._fd is None or not 0 < len(ascending) <= PREFETCH_MAX_ROWS:
            return
        row = self.dims * 4
        start = int(getattr(self.base, "offset", 0))
        for slot in ascending.tolist():
            os.posix_fadvise(self._fd, start + slot * row, row, os.POSIX_FADV_WILLNEED)

    def __len__(self) -> int:
        return self.base_rows + len(self.added)

    def rows(self, slots: np.ndarray) -> np.ndarray:
        """(len(slots), d) float32 unit rows of ``slots`` (int64, any order, repeats allowed).

        Base rows are read in ascending slot order (sequential pages of the map)."""
        slots = np.asarray(slots, dtype=np.int64)
        out = np.empty((len(slots), self.dims), np.float32)
        order = np.argsort(slots, kind="stable")
        ascending = slots[order]
        split = int(np.searchsorted(ascending, self.base_rows))
        self._prefetch(ascending[:split])
        out[order[:split]] = self.base[ascending[:split]]
        out[order[split:]] = self.added[ascending[split:] - self.base_rows]
        out /= self.norms[slots, None]
        return out

    def append(self, unit_rows: np.ndarray) -> None:
        """Add ``unit_rows`` (m, d) float32 (already L2-normalised) as the next slots."""
        self.added = np.concatenate([self.added, np.asarray(unit_rows, np.float32)])
        self.norms = np.concatenate([self.norms, np.ones(len(unit_rows), np.float32)])

    def save(self, directory: Path) -> None:
        """Write the norms and added rows; write ``vectors.npy`` (in chunks) only if the
        directory has none. IndexStateError if it holds a different one."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / VECTORS_FILE
        if target.is_file():
            check_base(directory, self.base_rows, self.dims, self.base_fingerprint)
        else:
            atomic.write_with(target, self._write_base)
        atomic.write_npy(directory / NORMS_FILE, self.norms)
        atomic.write_npy(directory / ADDED_FILE, self.added)

    def _write_base(self, path: Path) -> None:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=self.base.shape)
        for s in range(0, self.base_rows, COPY_ROWS):
            out[s:s + COPY_ROWS] = self.base[s:s + COPY_ROWS]
        out.flush()
        del out

    @classmethod
    def load(cls, directory: Path, meta: dict, slots: int) -> MappedVectors:
        """The vectors of the ivf index saved in ``directory`` (``meta``: its index.json,
        ``slots`` its slot count): ``vectors.npy`` memory-mapped, norms and added rows read.
        IndexStateError if a file is missing, unreadable or does not match."""
        rows, dims = int(meta.get("base_rows", -1)), int(meta["dims"])
        base = check_base(directory, rows, dims, str(meta.get("base_fingerprint")))
        try:
            norms = np.load(directory / NORMS_FILE, allow_pickle=False)
            added = np.load(directory / ADDED_FILE, allow_pickle=False)
        except FileNotFoundError as err:
            raise IndexStateError(f"index in {directory} is missing {Path(err.filename).name}") from err
        except (OSError, ValueError) as err:
            raise IndexStateError(f"index in {directory} is corrupt: {err}") from err
        if (norms.dtype != np.float32 or added.dtype != np.float32 or added.ndim != 2
                or added.shape[1] != dims or norms.shape != (rows + len(added),) or len(norms) != slots):
            raise IndexStateError(f"index in {directory} is inconsistent: {NORMS_FILE} {norms.shape} "
                                  f"and {ADDED_FILE} {added.shape} for {rows} base rows of {dims} dims "
                                  f"and {slots} slots")
        return cls(base[:rows], norms, added)


def check_base(directory: Path, rows: int, dims: int, expected: str) -> np.ndarray:
    """``directory/vectors.npy`` memory-mapped, if its first ``rows`` rows are the ones the
    index was built from (float32, ``dims`` wide, same fingerprint); IndexStateError if not."""
    path = directory / VECTORS_FILE
    try:
        base = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise IndexStateError(f"the ivf index in {directory} re-ranks from {VECTORS_FILE}, "
                              f"which is missing or unreadable: {err}") from err
    if base.dtype != np.float32 or base.ndim != 2 or base.shape[1] != dims or base.shape[0] < rows:
        raise IndexStateError(f"{path} is {base.dtype} {base.shape}; the ivf index needs at least "
                              f"{rows} float32 rows of {dims} dims")
    if fingerprint(base, rows) != expected:
        raise IndexStateError(f"{path} is not the matrix the ivf index was built from (rows "
                              "rewritten or reordered since); rebuild the index")
    return base
