"""Commands that look at the data's shape and quality: clusters, label-issues, duplicates.

Each command is a thin wrapper over one ``core`` function; :func:`register` adds
the group's subcommands to the parser.
"""

from __future__ import annotations

from core.cli.output import emit, open_ws, progress_bar


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


def cmd_label_issues(args) -> int:
    from core.embeddings import load_index
    from core.labels import effective_labels
    from core.quality import find_label_issues

    ws = open_ws(args)
    ds = ws.dataset(args.name)
    index = load_index(ds, args.embedding)
    labels = effective_labels(ws, args.name)
    issues = find_label_issues(index, labels, k=args.k)
    payload = issues.to_json(limit=args.limit)
    payload["not_covered"] = len(labels) - len(index)
    text = "\n".join(f"{i['score']:.3f}  {i['id']}  {i['label']} → {i['suggested']}"
                     for i in payload["issues"])
    emit(args, payload, text or "no labelled rows")
    return 0


def cmd_duplicates(args) -> int:
    from core.embeddings import load_index
    from core.labels import effective_labels
    from core.quality import find_near_duplicates

    ws = open_ws(args)
    ds = ws.dataset(args.name)
    index = load_index(ds, args.embedding)
    dups = find_near_duplicates(index, threshold=args.threshold, labels=effective_labels(ws, args.name))
    text = "\n".join(f"{s:.4f}  {a}  {b}" for a, b, s in dups.pairs) or "no near-duplicates"
    emit(args, dups.to_json(), text)
    return 0



def register(sub) -> None:
    """Add clusters, label-issues, duplicates to the subparsers ``sub``."""
    p = sub.add_parser("clusters", help="KMeans clusters and a 2-D map")
    p.add_argument("name")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--projection", default="umap", choices=["umap", "pca"])
    p.add_argument("--embedding")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_clusters)

    p = sub.add_parser("label-issues", help="rows whose label disagrees with their neighbours")
    p.add_argument("name")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--embedding")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label_issues)

    p = sub.add_parser("duplicates", help="near-duplicate pairs")
    p.add_argument("name")
    p.add_argument("--threshold", type=float, default=0.95)
    p.add_argument("--embedding")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_duplicates)
