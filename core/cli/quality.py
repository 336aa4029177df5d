"""Commands that look at the data's shape and quality: clusters, quality (the stored
neighbours pass), label-issues, duplicates (``--engine local|ray [--address A]``: where
the stored pass runs).

Each command is a thin wrapper over one ``core`` function; :func:`register` adds
the group's subcommands to the parser.
"""

from __future__ import annotations

from core.cli.output import emit, open_ws, progress_bar
from core.errors import CatalogError
from core.quality import DEFAULT_K, DEFAULT_MIN_CONFIDENCE


def cmd_clusters(args) -> int:
    from core.clusters import cluster, project
    from core.embeddings import load_embedding
    from core.labels import effective_rows

    ws = open_ws(args)
    ds = ws.dataset(args.name)
    emb = load_embedding(ds, args.embedding)
    rows = effective_rows(ws, args.name).set_index("id").loc[list(emb.ids)]
    vectors = emb.vectors
    result = cluster(list(emb.ids), vectors, k=args.k, seed=args.seed,
                     labels=rows["label"].tolist(), texts=rows["text"].tolist())
    progress, close = progress_bar("projecting")
    try:
        proj = project(list(emb.ids), vectors, method=args.projection, seed=args.seed,
                       cache_dir=ds.projections_dir, progress=progress)
    finally:
        close()
    payload = result.to_json()
    payload["points"] = [{"id": i, "x": float(x), "y": float(y), "cluster": int(c)}
                         for i, (x, y), c in zip(proj.ids, proj.coords, result.assignments)]
    payload["not_covered"] = ds.row_count() - len(emb.ids)
    lines = [f"cluster {s.cluster}: {s.size} rows, top labels "
             + ", ".join(f"{lab} ({n})" for lab, n in s.label_counts[:3]) for s in result.summaries]
    emit(args, payload, "\n".join(lines))
    return 0


def _engine(args) -> tuple[str, str | None]:
    """(engine, address) of ``--engine`` / ``--address``, checked before anything is read or
    written: EngineError (exit 2) for an unknown engine, Ray missing, an unreachable address."""
    from core.engines import check_address, check_engine, import_ray

    engine = check_engine(args.engine)
    if engine != "ray":
        return engine, None
    import_ray()
    return engine, check_address(args.address)


def _index_and_pass(args, ds, k: int | None, engine: str = "local", address: str | None = None):
    """The embedding's index and the neighbours pass (``pass_width(k)`` wide) to score from: the stored one when
    current; computed and stored (progress bar, resumable) above the in-memory row limit
    or on ``--engine ray`` (whatever the size); else None (the scoring runs its own pass
    in memory, as before)."""
    from core.embeddings import load_index
    from core.quality import IN_MEMORY_MAX_ROWS, load_neighbours, pass_width

    width = pass_width(k)
    shared = load_neighbours(ds, args.embedding, width)
    index = load_index(ds, args.embedding)
    if shared is None and (engine == "ray" or len(index) > IN_MEMORY_MAX_ROWS):
        shared = _run_pass(ds, args.embedding, width, index, engine, address)
    return index, shared


def _run_pass(ds, embedding, k: int, index=None, engine: str = "local", address: str | None = None):
    from core.quality import compute_neighbours

    progress, close = progress_bar("nearest neighbours")
    try:
        return compute_neighbours(ds, embedding, k=k, progress=progress, index=index, engine=engine,
                                  address=address)
    finally:
        close()


def cmd_quality(args) -> int:
    import time

    from core.embeddings import load_index
    from core.predictions import load_predictions
    from core.rows import labels_by_id
    from core.quality import (
        DEFAULT_DUPLICATE_THRESHOLD,
        TARGET_RECALL,
        choose_source,
        find_near_duplicates,
        load_neighbours,
        pass_width,
        rank_label_issues,
    )

    engine, address = _engine(args)
    ws = open_ws(args)
    ds = ws.dataset(args.name)
    name = ds.require_embedding(args.embedding)
    k = pass_width(args.k)
    started = time.perf_counter()
    stored = load_neighbours(ds, name, k) is not None
    index = load_index(ds, name)
    shared = _run_pass(ds, name, k, index, engine, address)
    seconds = time.perf_counter() - started
    labels = labels_by_id(ws, args.name)
    source, model = choose_source(ds)
    try:
        issues = rank_label_issues(index, labels, source=source, neighbours=shared,
                                   predictions=load_predictions(ds, model) if model else None)
        flagged = int((issues.scores >= 0.5).sum())
    except CatalogError as err:
        flagged, note = None, str(err)
    dups = find_near_duplicates(index, DEFAULT_DUPLICATE_THRESHOLD, neighbours=shared)
    payload = {"dataset": args.name, "embedding": name, "rows": len(shared.ids), "k": shared.k,
               "recall_estimate": shared.recall,
               "reused": stored, "engine": engine, "seconds": round(seconds, 3), "label_issues": flagged,
               "label_issue_source": source, "model": model,
               "duplicate_pairs": len(dups.pairs), "duplicate_threshold": DEFAULT_DUPLICATE_THRESHOLD}
    lines = [f"neighbours of {len(shared.ids):,} rows of {name} (k={shared.k}) "
             + ("already stored" if stored else f"computed and stored in {seconds:.1f} s on {engine}"),
             (f"label issues (score >= 0.5): {flagged:,}, flagged by {source}" + (f" (model {model})" if model else ""))
             if flagged is not None else f"label issues: {note}",
             f"near-duplicate pairs (cosine >= {DEFAULT_DUPLICATE_THRESHOLD}): {len(dups.pairs):,}"]
    if shared.recall is not None and shared.recall < TARGET_RECALL:
        lines.insert(1, f"note: the pass holds {shared.recall:.0%} of the exact 10 nearest of sampled rows "
                        "(neighbours spread over many lists); its scores are exact, its neighbours approximate")
    emit(args, payload, "\n".join(lines))
    return 0


def cmd_label_issues(args) -> int:
    from core.predictions import load_predictions
    from core.quality import choose_source, rank_label_issues
    from core.rows import labels_by_id

    engine, address = _engine(args)
    ws = open_ws(args)
    ds = ws.dataset(args.name)
    source, model = choose_source(ds, args.source, args.model)
    index = shared = None
    if source != "model":
        index, shared = _index_and_pass(args, ds, args.k, engine, address)
    labels = labels_by_id(ws, args.name)
    preds = load_predictions(ds, model) if model else None
    issues = rank_label_issues(index, labels, source=source, predictions=preds, k=args.k, neighbours=shared)
    payload = issues.to_json(limit=args.limit)
    payload["not_covered"] = len(labels) - len(issues.ids) if source == "model" else len(labels) - len(index)
    text = "\n".join(f"{i['score']:.3f}  {i['id']}  {i['label']} → {i['suggested']}"
                     f"  [{', '.join(i['flagged_by']) or '-'}]" for i in payload["issues"])
    head = f"source {source}" + (f", model {model}" if model else "")
    emit(args, payload, f"{head}\n{text}" if text else f"{head}: no labelled rows")
    return 0


def cmd_model_mistakes(args) -> int:
    from core.predictions import load_predictions
    from core.quality import choose_source, confusion_matrix, model_mistakes
    from core.rows import labels_by_id

    ws = open_ws(args)
    ds = ws.dataset(args.name)
    _, model = choose_source(ds, "model", args.model)
    preds = load_predictions(ds, model)
    labels = labels_by_id(ws, args.name)
    found = model_mistakes(labels, preds, min_confidence=args.min_confidence)
    payload = found.to_json(limit=args.limit)
    payload["confusion"] = confusion_matrix(labels, preds).to_json()
    lines = [f"model {model}: {len(found):,} of {found.compared:,} labelled rows predicted as another "
             f"class with confidence >= {args.min_confidence:g}"]
    lines += [f"{r['confidence']:.3f}  {r['id']}  label {r['label']} · predicted {r['predicted']}"
              for r in payload["rows"]]
    emit(args, payload, "\n".join(lines))
    return 0


def cmd_duplicates(args) -> int:
    from core.rows import labels_by_id
    from core.quality import find_near_duplicates

    engine, address = _engine(args)
    ws = open_ws(args)
    ds = ws.dataset(args.name)
    index, shared = _index_and_pass(args, ds, 1, engine, address)
    dups = find_near_duplicates(index, threshold=args.threshold, labels=labels_by_id(ws, args.name),
                                neighbours=shared)
    text = "\n".join(f"{s:.4f}  {a}  {b}" for a, b, s in dups.pairs) or "no near-duplicates"
    emit(args, dups.to_json(), text)
    return 0


def register(sub) -> None:
    """Add clusters, quality, label-issues, duplicates to the subparsers ``sub``."""
    p = sub.add_parser("clusters", help="KMeans clusters and a 2-D map")
    p.add_argument("name")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--projection", default="umap", choices=["umap", "pca"])
    p.add_argument("--embedding")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_clusters)

    p = sub.add_parser("quality", help="compute (or resume) the stored neighbours pass the quality "
                       "checks score from; prints a summary")
    p.add_argument("name")
    p.add_argument("--k", type=int, default=DEFAULT_K, help="neighbours per row (default %(default)s, "
                   "as label-issues and the app; stored: at least 16)")
    p.add_argument("--embedding")
    _engine_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_quality)

    p = sub.add_parser("label-issues", help="rows whose label is probably wrong, by their neighbours, "
                       "a model's predictions, or both")
    p.add_argument("name")
    p.add_argument("--source", help="neighbours, model or combined (default: combined when the dataset "
                   "has predictions, else neighbours)")
    p.add_argument("--model", help="whose predictions (default: the most recently imported)")
    p.add_argument("--k", type=int, help=f"neighbours whose labels vote (default: {DEFAULT_K}, or half the "
                   "mean class size on a small dataset)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--embedding")
    _engine_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label_issues)

    p = sub.add_parser("model-mistakes", help="rows a model confidently predicts as another class than "
                       "their label, and its confusion matrix")
    p.add_argument("name")
    p.add_argument("--model", help="whose predictions (default: the most recently imported)")
    p.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_model_mistakes)

    p = sub.add_parser("duplicates", help="near-duplicate pairs")
    p.add_argument("name")
    p.add_argument("--threshold", type=float, default=0.95)
    p.add_argument("--embedding")
    _engine_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_duplicates)


def _engine_flags(p) -> None:
    p.add_argument("--engine", default="local", help="where the stored neighbours pass runs when it is not "
                   "stored yet: local (default: this process) or ray (an actor pool, whatever the row "
                   "count; Ray's workers must see the workspace at the same path; needs "
                   "requirements-scale.txt)")
    p.add_argument("--address", help="ray: auto, ray://HOST:PORT or HOST:PORT (default: start Ray here)")
