"""Index kinds and their parameters: which kind ``auto`` picks for a row count, and the
HNSW parameters (defaults, checks) that :func:`core.index.build_index` and
:meth:`core.index.VectorIndex.load` accept."""

from __future__ import annotations

from typing import Any

from core._shared import check_positive_int
from core.errors import InputError, format_list

KINDS = ("auto", "exact", "hnsw")
# Auto-choice threshold, from bench/bench_search.py (docs/benchmarks.md, "Search
# (VectorIndex)"; 2 cores, 384-d): one exact query scans every row and costs ~5 ms of
# CPU at 50k rows (~8 ms at 100k, ~0.1 ms per 1k rows), and bulk kNN (search_positions
# with q = n, used by quality/select) grows as n^2 (100k: 2.6x slower than HNSW incl.
# its build). Above this HNSW answers in ~0.5 ms CPU at recall@10 >= 0.99.
EXACT_MAX_ROWS = 50_000
# HNSW over SQ8 codes, k_factor * k candidates re-ranked exactly, graph memory in huge
# pages (core.index.huge_pages). At 1M x 384 on hard isotropic clustered data (bench/
# bench_hnsw_sweep.py, docs/benchmarks.md): ef_search 160 -> recall@10 0.954 at 0.77 ms,
# 192 -> 0.972 at 0.88 ms per query; ef_construction 64 had left recall at 0.84.
HNSW_DEFAULTS: dict[str, int] = {"M": 32, "ef_construction": 200, "ef_search": 192, "k_factor": 2}


def resolve_kind(kind: str, rows: int) -> str:
    """The index kind ``build_index`` makes for ``kind`` over ``rows`` rows ("exact" | "hnsw")."""
    if kind not in KINDS:
        raise InputError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind if kind != "auto" else ("exact" if rows <= EXACT_MAX_ROWS else "hnsw")


def check_params(kind: str, params: dict[str, Any]) -> dict[str, int]:
    """HNSW params merged over :data:`HNSW_DEFAULTS` ({} for exact); InputError on bad ones."""
    unknown = sorted(set(params) - set(HNSW_DEFAULTS))
    if unknown:
        raise InputError(f"unknown index parameter(s) {format_list(unknown)}; "
                         f"choose from {', '.join(HNSW_DEFAULTS)}")
    checked = {name: check_positive_int(value, f"index parameter {name}") for name, value in params.items()}
    return {} if kind == "exact" else {**HNSW_DEFAULTS, **checked}
