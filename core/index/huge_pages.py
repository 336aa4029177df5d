"""Back an HNSW graph's hot memory with 2 MiB pages (Linux transparent huge pages).

A graph search reads a few thousand 384-byte codes and neighbour lists at random places
in hundreds of MB; with 4 KiB pages nearly every read also misses the TLB. faiss keeps
that memory in ``std::vector``s that glibc never marks for huge pages, so after a build or
load we ask the kernel for them: ``madvise(MADV_HUGEPAGE)`` on the 2 MiB-aligned part of
each buffer, then ``MADV_COLLAPSE`` (Linux >= 6.1) to convert it now rather than whenever
khugepaged gets to it. At 1M x 384 this takes ~1 s and cuts single-query latency by
~15% (docs/benchmarks.md, "Search (VectorIndex)"). It only changes how memory is mapped,
never its contents; off Linux, or when the kernel refuses (THP disabled), nothing happens.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import sys
import time
from collections.abc import Iterable

import faiss

log = logging.getLogger(__name__)

PAGE = 2 << 20          # 2 MiB: x86-64 / arm64 transparent huge page
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25      # Linux >= 6.1; EINVAL before


def _madvise() -> ctypes._CFuncPtr | None:
    """libc's ``madvise`` (addr, length, advice) -> int, None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    fn = ctypes.CDLL(None, use_errno=True).madvise
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def _advise(madvise: ctypes._CFuncPtr, address: int, nbytes: int) -> int:
    """Huge-page advice for the whole 2 MiB pages inside [address, address + nbytes);
    returns the bytes advised (0 if none fit or the kernel refused)."""
    start = (address + PAGE - 1) & ~(PAGE - 1)
    end = (address + nbytes) & ~(PAGE - 1)
    if end <= start:
        return 0
    if madvise(start, end - start, MADV_HUGEPAGE) != 0:
        log.debug("madvise(MADV_HUGEPAGE) refused: %s", errno.errorcode.get(ctypes.get_errno(), "?"))
        return 0
    if madvise(start, end - start, MADV_COLLAPSE) != 0:  # khugepaged will still do it, later
        log.debug("madvise(MADV_COLLAPSE) refused: %s", errno.errorcode.get(ctypes.get_errno(), "?"))
    return end - start


def graph_buffers(graph: faiss.IndexHNSW) -> Iterable[tuple[int, int]]:
    """(address, bytes) of the memory a search reads at random: codes and level-0 links."""
    storage = faiss.downcast_index(graph.storage)
    neighbors = graph.hnsw.neighbors
    for vector, item_bytes in ((storage.codes, 1), (neighbors, 4)):  # links: storage_idx_t = int32
        if vector.size():  # an empty std::vector has no data pointer
            yield int(vector.data()), vector.size() * item_bytes


def advise_huge_pages(graph: faiss.IndexHNSW) -> int:
    """Ask for 2 MiB pages under ``graph``'s codes and links; returns the bytes advised
    (0 off Linux, for graphs under ~2 MiB, or when transparent huge pages are off)."""
    madvise = _madvise()
    if madvise is None:
        return 0
    t0 = time.perf_counter()
    advised = sum(_advise(madvise, address, nbytes) for address, nbytes in graph_buffers(graph))
    if advised:
        log.debug("huge pages for %.0f MB of HNSW graph in %.2f s", advised / 1e6, time.perf_counter() - t0)
    return advised
