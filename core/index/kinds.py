"""Index kinds and their parameters: which kind ``auto`` picks for a row count, and the
HNSW and IVF parameters (defaults, checks) that :func:`core.index.build_index` and
:meth:`core.index.VectorIndex.load` accept."""

from __future__ import annotations

from typing import Any

from core._shared import check_positive_int
from core.errors import InputError, format_list

KINDS = ("auto", "exact", "hnsw", "ivf")
# Auto-choice threshold, from bench/bench_search.py (docs/benchmarks.md, "Search
# (VectorIndex)"; 2 cores, 384-d): one exact query scans every row and costs ~5 ms of
# CPU at 50k rows (~8 ms at 100k, ~0.1 ms per 1k rows), and bulk kNN (search_positions
# with q = n, used by quality/select) grows as n^2 (100k: 2.6x slower than HNSW incl.
# its build). Above this HNSW answers in ~0.5 ms CPU at recall@10 >= 0.99.
EXACT_MAX_ROWS = 50_000
# HNSW -> IVF crossover, from bench/bench_ivf.py (isotropic clusters x 384, 1,000 queries,
# both kinds in one run, 2 cores shared with other jobs; ivf nprobe 32, k_factor 10):
#   rows  build CPU s hnsw / ivf  index GiB    query ms (median)  recall@10      bulk ms/q
#   100k      51 / 21            0.22 / 0.02    0.48 / 0.39       1.000 / 1.000  0.53 / 0.37
#   300k     194 / 85            0.66 / 0.09    0.61 / 0.58       0.998 / 1.000  0.62 / 0.47
#   1M       982 / 175           2.16 / 0.44    1.26 / 1.18       0.962 / 0.996  1.04 / 0.86
# From 100k rows on IVF builds 2.4-5.6x faster in 1/5-1/10 of the memory, answers as fast
# at a recall as high or higher, and a filtered query is faster (1M, 1% of rows: 1.2 vs
# 7.8 ms), so auto goes from exact straight to ivf. HNSW stays for `--kind hnsw`: it needs
# no vectors.npy beside it and its latency does not grow with the lists (~sqrt(n)).
HNSW_MAX_ROWS = EXACT_MAX_ROWS
# HNSW over SQ8 codes, k_factor * k candidates re-ranked exactly, graph memory in huge
# pages (core.index.huge_pages). At 1M x 384 on hard isotropic clustered data (bench/
# bench_hnsw_sweep.py, docs/benchmarks.md): ef_search 160 -> recall@10 0.954 at 0.77 ms,
# 192 -> 0.972 at 0.88 ms per query; ef_construction 64 had left recall at 0.84.
HNSW_DEFAULTS: dict[str, int] = {"M": 32, "ef_construction": 200, "ef_search": 192, "k_factor": 2}
# IVF over 4-bit codes, k_factor * k candidates re-ranked exactly from the memory-mapped
# vectors (core.index.ivf has the codec sweep); nlist by row count unless given
# (core.index.ivf.list_count). bench_ivf --sweep at 1M x 384 isotropic (4000 lists),
# recall@10: nprobe 24: 0.965 (k_factor 5) / 0.972 (10); 32: 0.989 / 0.997; 48: 0.991 /
# 0.999, each ~1-1.5 ms; k_factor 2 caps recall at 0.887. At 100k, nprobe 16 already gives
# 0.997. 10 x k exact rows cost ~0.05 ms more than 5 x k (page cache warm).
IVF_DEFAULTS: dict[str, int] = {"nprobe": 32, "k_factor": 10, "bits": 4, "train_rows": 262_144}
IVF_PARAMS = ("nlist", *IVF_DEFAULTS)
IVF_BITS = (4, 6, 8)
PARAMS = {"exact": (), "hnsw": tuple(HNSW_DEFAULTS), "ivf": IVF_PARAMS}


def resolve_kind(kind: str, rows: int) -> str:
    """The index kind ``build_index`` makes for ``kind`` over ``rows`` rows ("exact" | "hnsw" | "ivf")."""
    if kind not in KINDS:
        raise InputError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "exact" if rows <= EXACT_MAX_ROWS else "hnsw" if rows <= HNSW_MAX_ROWS else "ivf"


def check_params(kind: str, params: dict[str, Any]) -> dict[str, int]:
    """``params`` merged over the defaults of ``kind`` ({} for exact, which takes any
    parameter of another kind and ignores it); InputError on bad ones. The ivf ``nlist``
    stays absent unless given (chosen by row count at build)."""
    known = sorted({name for names in PARAMS.values() for name in names})
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(f"unknown index parameter(s) {format_list(unknown)}; choose from {', '.join(known)}")
    checked = {name: check_positive_int(value, f"index parameter {name}") for name, value in params.items()}
    if kind == "exact":
        return {}
    foreign = sorted(set(checked) - set(PARAMS[kind]))
    if foreign:
        raise InputError(f"index parameter(s) {format_list(foreign)} do not apply to the {kind} kind; "
                         f"it takes {', '.join(PARAMS[kind])}")
    if kind == "ivf" and checked.get("bits", IVF_DEFAULTS["bits"]) not in IVF_BITS:
        raise InputError(f"index parameter bits must be one of {', '.join(map(str, IVF_BITS))}, "
                         f"got {checked['bits']!r}")
    return {**(HNSW_DEFAULTS if kind == "hnsw" else IVF_DEFAULTS), **checked}
