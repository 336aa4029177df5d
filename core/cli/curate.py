"""Commands that choose rows and send them on: select, export.

Each command is a thin wrapper over one ``core`` function, the one the app calls too:
``select`` over :func:`core.select.resolve_scope` + :func:`core.select.select_rows` (as the
Smart select page), ``export`` over :func:`core.export.rows_for_export` (as the Slices
page download) + :func:`core.export.export_rows`. :func:`register` adds the group's
subcommands to the parser.
"""

from __future__ import annotations

import argparse

from core.cli.output import emit, open_ws
from core.errors import InputError
from core.filters import WHERE_HELP

# = core.export.EXPORT_FORMATS, spelled out so building the parser imports no exporter.
EXPORT_FORMATS = ("csv", "jsonl", "ndjson", "label-studio")
IMAGE_URL_PREFIX_HELP = (
    "label-studio only: image URLs are this prefix + the image path relative to the media "
    "root, e.g. http://localhost:8081/ (python -m http.server 8081 in the media root) or "
    "s3://bucket/photos/; must end with / or =; file:// is refused (browsers do not load it "
    "in Label Studio). Default: Label Studio local files, "
    "/data/local-files/?d=<media root folder name>/<path>: start Label Studio with "
    "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
    "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<parent of the media root>, and add a local "
    "files storage whose path is the media root")
WHERE_BRIEF = ("rows passing a filter: conditions joined by 'and', e.g. "
               "\"label in (3, 5) and text ~ cat and price >= 2\" (label, text ~, tag, slice, "
               "modality, flagged, COLUMN = | in | >= | <= | between; grammar below)")


def _active_embedding(ds, name: str | None) -> str | None:
    """``name`` checked (NotFoundError naming it and the choices), else the dataset's
    default embedding, else None (the dataset has none)."""
    return ds.require_embedding(name) if name else ds.default_embedding()


def cmd_select(args) -> int:
    from core.labels import effective_rows
    from core.quality import QUALITY_COLUMNS
    from core.rows import catalog_table, check_filter_names, needs_quality
    from core.select import SelectRequest, resolve_scope, select_rows

    ws = open_ws(args)
    ds = ws.dataset(args.name)
    embedding = _active_embedding(ds, args.embedding)
    request = SelectRequest(method=args.method, n=args.n, seed=args.seed, by=args.by,
                            descending=args.desc, k=args.k, per_cluster=args.per_cluster,
                            pick=args.pick)
    flt = None
    if args.where is not None:
        from core.filters import parse_where

        flt = parse_where(args.where)
        check_filter_names(ws, args.name, flt)
    table = effective_rows(ws, args.name)  # what the page shows: + quality columns if used
    quality = ((flt is not None and needs_quality(flt, table.columns))
               or (args.method == "ordered" and args.by in QUALITY_COLUMNS
                   and args.by not in table.columns))
    if quality:
        if embedding is None:
            raise InputError(f"quality columns ({', '.join(QUALITY_COLUMNS)}) need an embedding; "
                             f"dataset {args.name!r} has none (run `catalog embed {args.name}`)")
        table = catalog_table(ws, args.name, embedding)
    kind = "filter" if flt is not None else "slice" if args.slice else "all"
    scope = resolve_scope(ws, args.name, table, kind, row_filter=flt, slice_name=args.slice,
                          exclude_slices=args.exclude_slice or (),
                          exclude_tags=args.exclude_tag or ())
    sel = select_rows(ws, args.name, request, scope, table=table, embedding=embedding)
    recipe = sel.recipe
    if args.save_as:
        saved = ws.store.save_slice(args.name, args.save_as, list(sel.ids), recipe)
        recipe = saved.recipe
    emit(args, {"ids": list(sel.ids), "recipe": recipe},
         "\n".join(sel.ids) + (f"\nsaved as slice {args.save_as!r}" if args.save_as else ""))
    return 0


def cmd_export(args) -> int:
    from core.export import export_rows, rows_for_export

    ws = open_ws(args)
    ds = ws.dataset(args.name)
    embedding = _active_embedding(ds, args.embedding) if args.where is not None else None
    chosen = rows_for_export(ws, args.name, slice_name=args.slice, tag=args.tag,
                             ids_file=args.ids_file, where=args.where, embedding=embedding)
    report = export_rows(chosen.rows, args.out, args.format, recipe=chosen.recipe,
                         media_root=ds.media_root, image_url_prefix=args.image_url_prefix)
    emit(args, {"path": str(report.path), "recipe_path": str(report.recipe_path), "rows": report.rows},
         f"wrote {report.rows} rows to {report.path} (recipe: {report.recipe_path})")
    return 0


def register(sub) -> None:
    """Add select, export to the subparsers ``sub``."""
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("select", help="smart select: random, ordered, cluster or diverse",
                       epilog="--where EXPR:\n" + WHERE_HELP, formatter_class=raw)
    p.add_argument("name")
    p.add_argument("--method", required=True, choices=["random", "ordered", "cluster", "diverse"])
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--by", help="column (ordered)")
    p.add_argument("--desc", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10, help="clusters (cluster)")
    p.add_argument("--per-cluster", default="proportional", choices=["proportional", "equal"])
    p.add_argument("--pick", default="central", choices=["central", "random"])
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--slice", help="select inside this slice")
    scope.add_argument("--where", metavar="EXPR", help="select inside the " + WHERE_BRIEF)
    p.add_argument("--exclude-slice", nargs="+", help="skip rows in these slices")
    p.add_argument("--exclude-tag", nargs="+", help="skip rows with these tags")
    p.add_argument("--embedding", help="embedding for cluster/diverse and quality columns "
                                       "(default: the dataset's default embedding)")
    p.add_argument("--save-as", help="save the selection as this slice")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("export", help="export rows for labeling",
                       epilog="--where EXPR:\n" + WHERE_HELP, formatter_class=raw)
    p.add_argument("name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--slice")
    src.add_argument("--tag")
    src.add_argument("--ids-file")
    src.add_argument("--where", metavar="EXPR", help="export the " + WHERE_BRIEF)
    p.add_argument("--embedding", help="embedding whose quality columns --where may use "
                                       "(default: the dataset's default embedding)")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                   help="csv / jsonl (re-ingestable), ndjson (one data row a line) or "
                        "label-studio (a JSON array of Label Studio tasks, a .json file; the "
                        "label is a 'choices' prediction for a Choices control named 'label')")
    p.add_argument("--out", required=True)
    p.add_argument("--image-url-prefix", metavar="URL", help=IMAGE_URL_PREFIX_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)
