"""Text search benchmark: class names against row text on images, modes on api-docs, latency.

Three parts, in one run, side by side:

1. **Images without CLIP.** 250 Noto Color Emoji drawings in six topics (animal, food, vehicle,
   person, plant, building; ``bench/text_search_sets.py``), saved as ``img_0001.png``… with no
   caption, ingested and embedded as a user would (``embed``: EfficientNet-Lite0 and its
   class-name embedding from one pass). Precision@10 per topic query for the ``class-names``
   method against ``row-text`` (each row's file name and metadata embedded with MiniLM), both in
   semantic mode. With ``--sweep``, the ConSE recipe too: T (classes mixed per image) and the
   class-name phrasing, measured on the same probabilities.
2. **api-docs demo.** Hits@10 of queries that share no word with their answer's name, in
   semantic, keyword and hybrid modes: pure paraphrases (no docstring word either, mostly),
   and queries that use words of the answer's docstring (the issue's example kind). "strict": the answer itself; "or twin": also a
   function of the same name in another module (``torch.cumsum`` for ``numpy.cumsum``).
3. **Warm latency at ``--rows`` rows** for each mode (encoder loaded, index and keyword index
   built; median of ``--queries`` queries), on a text dataset (MiniLM-like vectors, api-docs
   words) and on a mixed one (half images, half texts: the calibrated path).

    apt-get install fonts-noto-color-emoji   # once: the drawings
    /work/venv/bin/python bench/bench_text_search.py [--sweep] [--rows 100000]
    /work/venv/bin/python bench/bench_text_search.py --parts keywords   # the index build at scale
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from text_search_sets import (  # noqa: E402
    APIDOCS_DOC_WORD_QUERIES,
    APIDOCS_QUERIES,
    EMOJI_QUERIES,
    build_emoji_images,
    hit_at_k,
    precision_at_k,
)

from core.embeddings import compute_embeddings, write_embedding  # noqa: E402
from core.ingest import ingest_table  # noqa: E402
from core.search import (  # noqa: E402
    MODES,
    load_text_search,
    plan_for_dataset,
    run_text_search,
)
from core.workspace import open_workspace  # noqa: E402


def images_part(ws, root: Path, sweep: bool) -> None:
    truth = build_emoji_images(root / "emoji")
    ingest_table(ws, root / "emoji" / "rows.csv", "emoji", image_root=root / "emoji")
    ds = ws.dataset("emoji")
    started = time.perf_counter()
    compute_embeddings(ds, "image:efficientnet-lite0")
    print(f"\n## Images without CLIP: {len(truth)} drawings, "
          f"{', '.join(f'{t} {n}' for t, n in truth['topic'].value_counts().items())}; "
          f"embed (features + class names, one pass) {time.perf_counter() - started:.1f} s\n")
    topic_of = dict(zip(ds.rows()["image"], ds.rows()["id"].astype(str)))
    relevant = {t: {topic_of[i] for i in truth.loc[truth["topic"] == t, "image"]} for t in EMOJI_QUERIES}
    chance = {t: len(r) / len(truth) for t, r in relevant.items()}
    searches = {m: load_text_search(ds, plan_for_dataset(ds, "efficientnet-lite0", method=m))
                for m in ("class-names", "row-text")}
    rows = []
    for topic, query in EMOJI_QUERIES.items():
        p = {m: precision_at_k(run_text_search(s, query, mode="semantic", k=10).ids, relevant[topic])
             for m, s in searches.items()}
        rows.append((topic, query, p["class-names"], p["row-text"], chance[topic]))
    print("| topic | query | class-names P@10 | row-text P@10 | chance |")
    print("|---|---|---|---|---|")
    for topic, query, a, b, c in rows:
        print(f"| {topic} | {query} | {a:.2f} | {b:.2f} | {c:.2f} |")
    mean_a = statistics.mean(r[2] for r in rows)
    mean_b = statistics.mean(r[3] for r in rows)
    ratio = mean_a / mean_b if mean_b else float("inf")
    print(f"| **mean** | | **{mean_a:.2f}** | **{mean_b:.2f}** | {statistics.mean(chance.values()):.2f} |")
    print(f"\nclass-names / row-text: **{ratio:.1f}×** (target ≥ 3×)")
    if sweep:
        sweep_conse(ds, truth, relevant)


def sweep_conse(ds, truth, relevant) -> None:
    """P@10 of ConSE for T and phrasing, on one set of class probabilities."""
    from core.encoders import load_encoder
    from core.encoders.class_names import PHRASINGS, ClassNameSpace, class_phrases, conse_vectors
    from core.media import open_image

    image_encoder, text_encoder = load_encoder("image:efficientnet-lite0"), load_encoder("text:minilm")
    rows = ds.rows()
    images = [open_image(ds.resolve_media(p)) for p in rows["image"]]
    _, probs = image_encoder.encode_images_with_probs(images)
    ids = rows["id"].astype(str).to_numpy()
    queries = text_encoder.encode_texts(list(EMOJI_QUERIES.values()))
    print("\n### ConSE recipe sweep (mean P@10 over the six topics)\n")
    tops = (1, 3, 5, 10, 20)
    print("| phrasing | " + " | ".join(f"T={t}" for t in tops) + " |")
    print("|---|" + "---|" * len(tops))
    for phrasing in PHRASINGS:
        names = text_encoder.encode_texts(class_phrases(phrasing))
        cells = []
        for top in tops:
            vectors = conse_vectors(probs, ClassNameSpace(names, top, phrasing, "text:minilm"))
            scores = queries @ vectors.T
            ps = [precision_at_k(ids[np.argsort(-scores[q], kind="stable")[:10]], relevant[t])
                  for q, t in enumerate(EMOJI_QUERIES)]
            cells.append(f"{statistics.mean(ps):.2f}")
        print(f"| {phrasing} | " + " | ".join(cells) + " |")


def apidocs_part(ws) -> None:
    from core.demo import build_demo

    build_demo(ws, "api-docs")
    ds = ws.dataset("api-docs")
    search = load_text_search(ds, plan_for_dataset(ds))
    ids = set(ds.rows()["id"].astype(str))
    sets = {"paraphrases (no word of the answer's name or, mostly, of its docstring)": APIDOCS_QUERIES,
            "docstring words (no word of the answer's name; the issue's example kind)": APIDOCS_DOC_WORD_QUERIES}
    summary = []
    for title, queries in sets.items():
        queries = [(q, a) for q, a in queries if a in ids]
        print(f"\n## api-docs, {title}: {len(queries)} queries over {len(ids):,} rows\n")
        print("| query | answer | " + " | ".join(f"{m} rank" for m in MODES) + " |")
        print("|---|---|" + "---|" * len(MODES))
        strict = {m: 0 for m in MODES}
        twin = {m: 0 for m in MODES}
        rr = {m: [] for m in MODES}  # reciprocal rank of the answer in the top 100 (0 if absent)
        for query, answer in queries:
            cells = []
            for mode in MODES:
                hundred = run_text_search(search, query, mode=mode, k=100).ids
                rr[mode].append(1 / (hundred.index(answer) + 1) if answer in hundred else 0.0)
                top = hundred[:10]
                last = answer.rsplit(".", 1)[-1]
                strict[mode] += hit_at_k(top, answer)
                twin[mode] += any(t.rsplit(".", 1)[-1] == last for t in top)
                cells.append(str(top.index(answer) + 1) if answer in top else "–")
            print(f"| {query} | `{answer}` | " + " | ".join(cells) + " |")
        summary.append((title, len(queries), strict, twin, {m: statistics.mean(v) for m, v in rr.items()}))
    print("\n| query set | measure | " + " | ".join(MODES) + " |")
    print("|---|---|" + "---|" * len(MODES))
    for title, n, strict, twin, mrr in summary:
        name = title.split(" (")[0]
        print(f"| {name} | strict | " + " | ".join(f"{strict[m]}/{n}" for m in MODES) + " |")
        print(f"| {name} | or twin | " + " | ".join(f"{twin[m]}/{n}" for m in MODES) + " |")
        print(f"| {name} | MRR@100 | " + " | ".join(f"{mrr[m]:.3f}" for m in MODES) + " |")
    for title, _, strict, _, _ in summary:
        best = max(strict["semantic"], strict["keyword"])
        print(f"{title.split(' (')[0]}: hybrid {strict['hybrid']} against the best other mode {best} "
              f"(target: hybrid ≥ both)")


def _spectrum_vectors(n: int, rng) -> np.ndarray:
    path = Path(__file__).with_name("minilm_spectrum.json")
    import json

    spectrum = np.sqrt(np.asarray(json.loads(path.read_text())["eigenvalues"], np.float32)[:384])
    v = rng.standard_normal((n, len(spectrum)), dtype=np.float32) * spectrum
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def latency_part(ws, rows: int, n_queries: int) -> None:
    """Warm latency per mode at ``rows`` rows: text rows, then a mixed images + texts space."""
    from core.demo.apidocs import collect_api_docs

    rng = np.random.default_rng(0)
    docs = collect_api_docs()["text"].astype(str).tolist()
    words = np.array(" ".join(docs).split(), dtype=object)
    texts = [f"{docs[i % len(docs)]} {' '.join(rng.choice(words, 8))}" for i in range(rows)]
    print(f"\n## Warm query latency at {rows:,} rows ({n_queries} queries each, median and p95 ms)\n")
    print("| dataset | " + " | ".join(MODES) + " |")
    print("|---|" + "---|" * len(MODES))
    for kind in ("text", "mixed"):
        ids = [f"r{i}" for i in range(rows)]
        table = pd.DataFrame({"id": ids, "text": texts}, dtype=object)
        if kind == "mixed":  # half the rows images: one small file (vectors are given, not encoded)
            from PIL import Image

            Image.new("RGB", (8, 8), (120, 60, 30)).save(ws.home / "img.png")
            table["image"] = ["img.png" if i % 2 else None for i in range(rows)]
            table.loc[table["image"].notna(), "text"] = None
        path = ws.home / f"lat-{kind}.parquet"
        table.to_parquet(path, index=False)
        ingest_table(ws, path, f"lat-{kind}", image_root=ws.home, skip_invalid=True)
        ds = ws.dataset(f"lat-{kind}")
        spec = "text:minilm" if kind == "text" else "class-names:efficientnet-lite0"
        modalities = ["text"] if kind == "text" else ["image", "text"]
        row_ids = ds.rows()["id"].astype(str).tolist()
        write_embedding(ds, "vectors", row_ids, _spectrum_vectors(len(row_ids), rng),
                        {"encoder": spec, "source": "computed", "modalities": modalities})
        plan = plan_for_dataset(ds, "vectors")
        search = load_text_search(ds, plan)
        queries = [q for q, _ in APIDOCS_QUERIES][:n_queries]
        cells = []
        for mode in MODES:
            run_text_search(search, queries[0], mode=mode, k=50)  # warm
            times = []
            for q in queries:
                started = time.perf_counter()
                run_text_search(search, q, mode=mode, k=50)
                times.append((time.perf_counter() - started) * 1000)
            cells.append(f"{statistics.median(times):.1f} / {np.percentile(times, 95):.1f}")
        label = "texts" if kind == "text" else f"mixed ({plan.method}, calibrated)"
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\ntarget: ≤ 150 ms per query in each mode")


def keyword_scale_part(sizes: list[int]) -> None:
    """Build time, warm query time and peak memory of the keyword index at each size
    (Zipf-distributed words of a 30,000-word vocabulary, 20 words a row)."""
    import resource

    from core.search import KeywordIndex

    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(30_000)], dtype=object)
    print("\n## Keyword index build at scale\n")
    print("| rows | build s | query ms | peak RSS GB |")
    print("|---|---|---|---|")
    for n in sizes:
        texts = [" ".join(vocab[rng.zipf(1.3, 20) % 30_000]) for _ in range(n)]
        started = time.perf_counter()
        index = KeywordIndex.build([str(i) for i in range(n)], texts)
        build = time.perf_counter() - started
        index.search("w1 w17 w300", 50)
        started = time.perf_counter()
        index.search("w1 w17 w300", 50)
        query = (time.perf_counter() - started) * 1000
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"| {n:,} | {build:.1f} | {query:.1f} | {peak:.2f} |", flush=True)
        del index, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="store_true", help="also sweep the ConSE recipe (T, phrasing)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the latency part")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--parts", default="images,apidocs,latency",
                        help="any of images, apidocs, latency, keywords (the index build at --keyword-sizes)")
    parser.add_argument("--keyword-sizes", default="200000,1000000")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-text-") as tmp:
        root = Path(tmp)
        ws = open_workspace(root / "home")
        if "images" in parts:
            images_part(ws, root, args.sweep)
        if "apidocs" in parts:
            apidocs_part(ws)
        if "latency" in parts:
            latency_part(ws, args.rows, args.queries)
        if "keywords" in parts:
            keyword_scale_part([int(x) for x in args.keyword_sizes.split(",")])


if __name__ == "__main__":
    main()
