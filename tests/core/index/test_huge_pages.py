"""Tests for core.index.huge_pages: the huge-page advice never changes results and never fails a build."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import core.index.huge_pages as huge_pages
import core.index.vector_index as index_mod
from core.index import VectorIndex, build_index
from core.index.faiss_build import graph_of

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, list[str], np.ndarray]:
    """12k x 384 rows: 4.6 MB of 8-bit codes, so at least one whole 2 MiB page."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12_000, 384), dtype=np.float32)
    return x, [f"r{i}" for i in range(len(x))], rng.standard_normal((20, 384), dtype=np.float32)


@pytest.fixture(scope="module")
def graph_index(vectors) -> VectorIndex:
    x, ids, _ = vectors
    return build_index(x, ids, kind="hnsw", M=8, ef_construction=40)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not THP.exists()
                    or "[never]" in THP.read_text(), reason="needs Linux transparent huge pages")
def test_advice_covers_whole_pages_of_the_codes_and_links(graph_index) -> None:
    graph = graph_of(graph_index._index)  # noqa: SLF001
    advised = huge_pages.advise_huge_pages(graph)
    total = sum(nbytes for _, nbytes in huge_pages.graph_buffers(graph))
    assert advised > 0 and advised % huge_pages.PAGE == 0 and advised <= total


def test_results_are_the_same_with_and_without_advice(vectors, graph_index, monkeypatch) -> None:
    x, ids, q = vectors
    advised = graph_index.search(q, 10)
    monkeypatch.setattr(index_mod, "advise_huge_pages", lambda graph: 0)
    plain = build_index(x, ids, kind="hnsw", M=8, ef_construction=40).search(q, 10)
    np.testing.assert_array_equal(advised.ids, plain.ids)
    np.testing.assert_array_equal(advised.scores, plain.scores)


def test_off_linux_nothing_is_advised_and_search_works(vectors, graph_index, monkeypatch) -> None:
    monkeypatch.setattr(huge_pages.sys, "platform", "darwin")
    assert huge_pages.advise_huge_pages(graph_of(graph_index._index)) == 0  # noqa: SLF001
    x, ids, q = vectors
    small = build_index(x[:3000], ids[:3000], kind="hnsw", M=8, ef_construction=40)
    assert small.search(q[0], 5).row(0)[0][0] in ids


def test_a_kernel_that_refuses_leaves_the_index_usable(vectors, graph_index, tmp_path, monkeypatch) -> None:
    calls: list[int] = []

    def refuse(address: int, length: int, advice: int) -> int:
        calls.append(advice)
        return -1

    monkeypatch.setattr(huge_pages, "_madvise", lambda: refuse)
    assert huge_pages.advise_huge_pages(graph_of(graph_index._index)) == 0  # noqa: SLF001
    assert calls and set(calls) == {huge_pages.MADV_HUGEPAGE}  # no collapse after a refusal
    graph_index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)  # load advises too: refused, still loads
    _, q = vectors[0], vectors[2]
    np.testing.assert_array_equal(loaded.search(q, 10).ids, graph_index.search(q, 10).ids)
