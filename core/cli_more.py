"""``catalog`` commands beyond ingest/embed/list/search, registered into the parser.

Kept apart from :mod:`core.cli` so that file stays small; each command is a thin
wrapper over one ``core`` function.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.cli import _EXTRA_COMMANDS, _emit, _progress_bar, _ws
from core.errors import InputError

APP_PATH = Path(__file__).resolve().parent.parent / "app.py"


def _scope_ids(ws, dataset: str, ids, slice_name: str | None, exclude_slices, exclude_tags):
    """Ids in scope (a slice, or all) minus rows in the excluded slices/tags."""
    from core.select import apply_scope

    within = ws.store.get_slice(dataset, slice_name).ids if slice_name else None
    excluded: set[str] = set()
    for name in exclude_slices or ():
        excluded.update(ws.store.get_slice(dataset, name).ids)
    for tag in exclude_tags or ():
        excluded.update(ws.store.rows_with_tag(dataset, tag))
    return apply_scope(ids, within=within, exclude=excluded)


def cmd_select(args) -> int:
    from core.embeddings import load_embedding
    from core.export import effective_rows
    from core.select import select_by_cluster, select_diverse, select_ordered, select_random

    ws = _ws(args)
    ds = ws.dataset(args.name)
    rows = effective_rows(ws, args.name)
    recipe_extra = {"dataset_rows": len(rows), "scope": args.slice or "all",
                    "excluded_slices": args.exclude_slice or [], "excluded_tags": args.exclude_tag or []}
    if args.method in ("cluster", "diverse"):
        emb = load_embedding(ds, args.embedding)
        scope = _scope_ids(ws, args.name, list(emb.ids), args.slice, args.exclude_slice, args.exclude_tag)
        vectors = emb.vectors[emb.positions(scope)]
        recipe_extra["embedding"] = emb.name
        recipe_extra["not_covered"] = len(rows) - len(emb.ids)
        if args.method == "cluster":
            sel = select_by_cluster(scope, vectors, args.n, k=args.k, per_cluster=args.per_cluster,
                                    pick=args.pick, seed=args.seed)
        else:
            sel = select_diverse(scope, vectors, args.n, seed=args.seed)
    else:
        scope = _scope_ids(ws, args.name, rows["id"].astype(str).tolist(), args.slice,
                           args.exclude_slice, args.exclude_tag)
        if args.method == "random":
            sel = select_random(scope, args.n, seed=args.seed)
        elif args.method == "ordered":
            if not args.by:
                raise InputError("--method ordered needs --by FIELD")
            table = rows.set_index("id").loc[scope].reset_index()
            sel = select_ordered(table, args.n, args.by, descending=args.desc)
        else:
            raise InputError(f"unknown method {args.method!r}; choose one of random, ordered, cluster, diverse")
    recipe = {**sel.recipe, **recipe_extra}
    if args.save_as:
        saved = ws.store.save_slice(args.name, args.save_as, list(sel.ids), recipe)
        recipe = saved.recipe
    _emit(args, {"ids": list(sel.ids), "recipe": recipe},
          "\n".join(sel.ids) + (f"\nsaved as slice {args.save_as!r}" if args.save_as else ""))
    return 0


def cmd_clusters(args) -> int:
    from core.clusters import cluster, project
    from core.embeddings import load_embedding
    from core.export import effective_rows

    ws = _ws(args)
    ds = ws.dataset(args.name)
    emb = load_embedding(ds, args.embedding)
    rows = effective_rows(ws, args.name).set_index("id").loc[list(emb.ids)]
    vectors = emb.vectors
    result = cluster(list(emb.ids), vectors, k=args.k, seed=args.seed,
                     labels=rows["label"].tolist(), texts=rows["text"].tolist())
    progress, close = _progress_bar("projecting")
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
    _emit(args, payload, "\n".join(lines))
    return 0


def cmd_label_issues(args) -> int:
    from core.embeddings import load_index
    from core.export import effective_rows
    from core.quality import find_label_issues

    ws = _ws(args)
    ds = ws.dataset(args.name)
    index = load_index(ds, args.embedding)
    rows = effective_rows(ws, args.name)
    labels = dict(zip(rows["id"].astype(str), rows["label"]))
    issues = find_label_issues(index, labels, k=args.k)
    payload = issues.to_json(limit=args.limit)
    payload["not_covered"] = len(rows) - len(index)
    text = "\n".join(f"{i['score']:.3f}  {i['id']}  {i['label']} → {i['suggested']}"
                     for i in payload["issues"])
    _emit(args, payload, text or "no labelled rows")
    return 0


def cmd_duplicates(args) -> int:
    from core.embeddings import load_index
    from core.export import effective_rows
    from core.quality import find_near_duplicates

    ws = _ws(args)
    ds = ws.dataset(args.name)
    index = load_index(ds, args.embedding)
    rows = effective_rows(ws, args.name)
    labels = dict(zip(rows["id"].astype(str), rows["label"]))
    dups = find_near_duplicates(index, threshold=args.threshold, labels=labels)
    text = "\n".join(f"{s:.4f}  {a}  {b}" for a, b, s in dups.pairs) or "no near-duplicates"
    _emit(args, dups.to_json(), text)
    return 0


def cmd_import_embeddings(args) -> int:
    from core.embeddings_io import import_embeddings

    ds = _ws(args).dataset(args.name)
    # a bar only on a terminal: a refused file then leaves one line on a captured stderr
    progress, close = _progress_bar("importing") if sys.stderr.isatty() else (None, lambda: None)
    try:
        report = import_embeddings(ds, args.file, args.embedding, format=args.format,
                                   ids_file=args.ids_file, id_col=args.id_col, replace=args.replace,
                                   skip_unknown=args.skip_unknown, index_kind=args.index,
                                   progress=progress)
    finally:
        close()
    _emit(args, {"embedding": report.info.to_json(), "skipped_unknown": report.skipped_unknown,
                 "uncovered": report.uncovered}, report.summary())
    return 0


def cmd_index(args) -> int:
    from core.embeddings import rebuild_index

    ds = _ws(args).dataset(args.name)
    params = {k: v for k, v in (("M", args.m), ("ef_construction", args.ef_construction),
                                ("ef_search", args.ef_search)) if v is not None}
    progress, close = _progress_bar("indexing")
    try:
        info = rebuild_index(ds, args.embedding, args.kind, progress=progress, **params)
    finally:
        close()
    _emit(args, {"embedding": info.to_json()},
          f"{info.name}: {info.index_kind} index over {info.rows:,} rows")
    return 0


def cmd_export_embeddings(args) -> int:
    from core.embeddings_io import export_embeddings

    ds = _ws(args).dataset(args.name)
    paths = export_embeddings(ds, args.embedding, args.out, format=args.format)
    _emit(args, {"files": [str(p) for p in paths]}, "\n".join(f"wrote {p}" for p in paths))
    return 0


def cmd_export(args) -> int:
    from core.export import effective_rows, export_rows

    ws = _ws(args)
    ds = ws.dataset(args.name)
    rows = effective_rows(ws, args.name)
    if args.slice:
        sl = ws.store.get_slice(args.name, args.slice)
        ids, recipe = list(sl.ids), {**sl.recipe, "slice": sl.name}
    elif args.tag:
        ids, recipe = ws.store.rows_with_tag(args.name, args.tag), {"method": "tag", "tag": args.tag}
    else:
        path = Path(args.ids_file)
        if not path.is_file():
            raise InputError(f"ids file {path} does not exist")
        from core.embeddings_io_readers import read_utf8_text

        try:
            text = read_utf8_text(path)  # a BOM (Notepad) is dropped, not glued to the first id
        except OSError as err:
            raise InputError(f"cannot read ids file {str(path)!r}: {err.strerror or err}") from err
        ids = [line.strip() for line in text.splitlines() if line.strip()]
        recipe = {"method": "ids-file", "file": str(path.resolve())}
    by_id = rows.set_index(rows["id"].astype(str), drop=False)
    missing = [i for i in ids if i not in by_id.index]
    if missing:
        from core.errors import NotFoundError, format_list

        raise NotFoundError(f"{len(missing)} id(s) not in dataset {args.name!r}: {format_list(missing)}")
    report = export_rows(by_id.loc[ids].reset_index(drop=True), args.out, args.format,
                         recipe=recipe, media_root=ds.media_root)
    _emit(args, {"path": str(report.path), "recipe_path": str(report.recipe_path), "rows": report.rows},
          f"wrote {report.rows} rows to {report.path} (recipe: {report.recipe_path})")
    return 0


def cmd_demo(args) -> int:
    from core.demo import DEMOS, build_demo

    ws = _ws(args)
    for name in args.names or DEMOS:
        progress, close = _progress_bar(f"demo {name}")
        try:
            report = build_demo(ws, name, replace=args.replace, progress=progress)
        finally:
            close()
        print(f"demo {report.name}: {report.rows} rows, embeddings {', '.join(report.embeddings)}",
              file=sys.stderr)
    return 0


def cmd_serve(args) -> int:
    env = dict(os.environ)
    if args.home:
        env["CATALOG_HOME"] = str(Path(args.home).resolve())
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_PATH), "--server.port", str(args.port)]
    return subprocess.call(cmd, env=env)


def _register(sub) -> None:
    p = sub.add_parser("select", help="smart select: random, ordered, cluster or diverse")
    p.add_argument("name")
    p.add_argument("--method", required=True, choices=["random", "ordered", "cluster", "diverse"])
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--by", help="column (ordered)")
    p.add_argument("--desc", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10, help="clusters (cluster)")
    p.add_argument("--per-cluster", default="proportional", choices=["proportional", "equal"])
    p.add_argument("--pick", default="central", choices=["central", "random"])
    p.add_argument("--slice", help="select inside this slice")
    p.add_argument("--exclude-slice", nargs="+", help="skip rows in these slices")
    p.add_argument("--exclude-tag", nargs="+", help="skip rows with these tags")
    p.add_argument("--embedding")
    p.add_argument("--save-as", help="save the selection as this slice")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_select)

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

    p = sub.add_parser("import-embeddings", help="import your own vectors")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--embedding", required=True)
    p.add_argument("--format", help="parquet, npy or csv (default: from the extension)")
    p.add_argument("--ids-file", help="ids for an .npy file (.npy, .txt or .csv)")
    p.add_argument("--id-col", default="id")
    p.add_argument("--replace", action="store_true")
    p.add_argument("--skip-unknown", action="store_true", help="drop ids not in the dataset")
    p.add_argument("--index", default="exact", help="index to build: exact (default: searchable "
                   "at once), hnsw (a graph: minutes at 1M rows) or auto (by row count)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import_embeddings)

    p = sub.add_parser("index", help="rebuild an embedding's index (exact or HNSW)")
    p.add_argument("name")
    p.add_argument("--embedding")
    p.add_argument("--kind", default="auto", help="auto (by row count), exact or hnsw")
    p.add_argument("--m", type=int, help="HNSW links per node")
    p.add_argument("--ef-construction", type=int, help="HNSW build beam width")
    p.add_argument("--ef-search", type=int, help="HNSW query beam width")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("export-embeddings", help="export vectors")
    p.add_argument("name")
    p.add_argument("--embedding")
    p.add_argument("--out", required=True)
    p.add_argument("--format", help="parquet, npy or csv (default: from the extension)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export_embeddings)

    p = sub.add_parser("export", help="export rows for labeling")
    p.add_argument("name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--slice")
    src.add_argument("--tag")
    src.add_argument("--ids-file")
    p.add_argument("--format", required=True, help="csv, jsonl or ndjson")
    p.add_argument("--out", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="build the built-in demo datasets (offline)")
    p.add_argument("names", nargs="*", help="digits, api-docs (default: both)")
    p.add_argument("--replace", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="open the Catalog app in the browser")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_serve)


if _register not in _EXTRA_COMMANDS:
    _EXTRA_COMMANDS.append(_register)
