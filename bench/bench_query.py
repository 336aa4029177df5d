"""Query end to end at 100k rows: what one search costs the Similarity / Text search pages.

One query = encode (text query only) + search + the render data the page builds:
the best N = 2,000 candidates (``find_similar`` / ``search_text``), the histogram figure of
their scores with the threshold line (``score_histogram``), the shown rows joined with
their table rows and score map for the grid (``ranked_rows``), and in threshold mode the
exact "rows ≥ t" search. Warm: index, rows, encoder loaded and one query run first;
Streamlit's result cache is *not* used (every timed query is a miss).

The dataset is synthetic: 100k text rows (random words, 20 labels, two metadata columns)
and clustered random unit vectors of 384 dims recorded as a ``text:minilm`` embedding
(the vectors' content does not change the cost; the query is really encoded by MiniLM).

    /work/venv/bin/python bench/bench_query.py [--rows 100000] [--queries 30] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
logging.getLogger("streamlit").setLevel(logging.ERROR)

from core.embeddings import load_index, write_embedding
from core.encoders import load_encoder
from core.ingest import ingest_table
from core.rows import RowsView
from core.search import SearchResult, find_similar, search_text
from core.workspace import open_workspace  # noqa: E402
from ui.search_widgets import DEFAULT_K, DEFAULT_POOL, ranked_rows, score_histogram  # noqa: E402

DIMS = 384
WORDS = ("matrix vector image photo cat dog tree river city night red blue green fast slow "
         "file table column value model train test data read write open close sort merge").split()
QUERIES = ("read a csv file", "inverse of a matrix", "a photo of a cat at night", "sort a table by column",
           "green tree next to a river", "train a model on the data")


def build(home: Path, n: int, seed: int = 0) -> None:
    """Ingest ``n`` synthetic text rows as dataset ``bench`` and write a 384-d embedding."""
    ws = open_workspace(home)
    if ws.has_dataset("bench") and ws.dataset("bench").embedding_names():
        return
    rng = np.random.default_rng(seed)
    words = np.asarray(WORDS)[rng.integers(0, len(WORDS), (n, 8))]
    table = pd.DataFrame({
        "id": [f"row-{i:07d}" for i in range(n)],
        "text": [" ".join(w) for w in words],
        "label": [f"class-{c}" for c in rng.integers(0, 20, n)],
        "source": rng.choice(["web", "scan", "phone"], n),
        "score_meta": rng.random(n).round(3),
    })
    src = home / "bench.parquet"
    table.to_parquet(src, index=False)
    ingest_table(ws, src, "bench", format="parquet", id_col="id", text_col="text", label_col="label")
    centers = rng.standard_normal((100, DIMS), dtype=np.float32)
    x = centers[rng.integers(0, 100, n)] + rng.standard_normal((n, DIMS), dtype=np.float32)
    write_embedding(ws.dataset("bench"), "minilm", table["id"].tolist(), x,
                    {"encoder": "text:minilm", "source": "computed", "modalities": ["text"]})


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000


def render_data(rows: RowsView, pool: SearchResult, shown_ids: Sequence[str],
                shown_scores: np.ndarray, threshold: float | None) -> None:
    """The data the page draws: histogram figure, grid rows joined with scores."""
    score_histogram(pool.scores, threshold)
    view = ranked_rows(rows, shown_ids, shown_scores)
    dict(zip(view["id"].astype(str), view["score"].astype(float)))


def summary(name: str, samples: list[tuple[float, float]]) -> str:
    walls = sorted(s[0] for s in samples)
    cpus = [s[1] for s in samples]
    p90 = walls[min(len(walls) - 1, int(0.9 * len(walls)))]
    return (f"| {name} | {statistics.median(walls):.1f} | {p90:.1f} | {min(walls):.1f} | "
            f"{statistics.median(cpus):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--workdir", help="keep the synthetic workspace here (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-query-"))
    t0 = time.perf_counter()
    build(work, args.rows)
    ws = open_workspace(work)
    ds = ws.dataset("bench")
    rows, index, encoder = RowsView(ws, "bench"), load_index(ds, "minilm"), load_encoder("text:minilm")
    print(f"{rows.count():,} rows, index {index.kind}; setup {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rng = np.random.default_rng(1)
    ids = np.asarray(index.ids)
    table = ds.rows()
    within = table.loc[table["source"] == "web", "id"].tolist()  # a ~1/3 metadata filter

    def similar_topk(anchor: str, filt: list[str] | None = None) -> None:
        pool = find_similar(index, [anchor], k=DEFAULT_POOL, within=filt, embedding="minilm")
        render_data(rows, pool, pool.ids[:DEFAULT_K], pool.scores[:DEFAULT_K], None)

    def similar_threshold(anchor: str) -> None:
        pool = find_similar(index, [anchor], k=DEFAULT_POOL, embedding="minilm")
        t = float(pool.scores[min(500, len(pool) - 1)])
        above = find_similar(index, [anchor], k=None, threshold=t, embedding="minilm")
        render_data(rows, pool, above.ids, above.scores, t)

    def three_anchors(anchors: list[str]) -> None:
        pool = find_similar(index, anchors, k=DEFAULT_POOL, embedding="minilm")
        render_data(rows, pool, pool.ids[:DEFAULT_K], pool.scores[:DEFAULT_K], None)

    def text_topk(query: str) -> None:
        pool = search_text(index, encoder, query, k=DEFAULT_POOL, embedding="minilm")
        render_data(rows, pool, pool.ids[:DEFAULT_K], pool.scores[:DEFAULT_K], None)

    def encode_only(query: str) -> None:
        encoder.encode_texts([query])

    cases = {
        "similarity from a row, top-k view": lambda i: similar_topk(str(ids[i])),
        "similarity from a row, inside a filter (1/3 of rows)": lambda i: similar_topk(str(ids[i]), within),
        "similarity from a row, threshold view (~500 rows ≥ t)": lambda i: similar_threshold(str(ids[i])),
        "similarity from 3 anchor rows, top-k view":
            lambda i: three_anchors([str(ids[(i + j * 7919) % len(ids)]) for j in range(3)]),
        "text query: encode + search + render data": lambda i: text_topk(f"{QUERIES[i % len(QUERIES)]} {i}"),
        "  of which: encode the query (MiniLM)": lambda i: encode_only(f"{QUERIES[i % len(QUERIES)]} {i}"),
    }
    print(f"\nQuery end to end, {len(table):,} rows × {DIMS} dims, N = {DEFAULT_POOL:,} candidates, "
          f"{args.queries} queries each (warm)\n")
    print("| case | median ms | p90 ms | best ms | median CPU ms |")
    print("|---|---|---|---|---|")
    for name, case in cases.items():
        case(0)  # warm-up
        picks = rng.integers(0, len(ids), args.queries)
        print(summary(name, [timed(lambda p=int(p), c=case: c(p)) for p in picks]), flush=True)


if __name__ == "__main__":
    main()
