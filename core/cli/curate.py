"""Commands that choose rows and send them on: select, export.

Each command is a thin wrapper over one ``core`` function; :func:`register` adds
the group's subcommands to the parser.
"""

from __future__ import annotations

from pathlib import Path

from core.cli.output import emit, open_ws
from core.errors import InputError


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
    from core.labels import effective_rows
    from core.select import (
        select_by_cluster,
        select_diverse,
        select_ordered,
        select_random,
    )

    ws = open_ws(args)
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
    emit(args, {"ids": list(sel.ids), "recipe": recipe},
          "\n".join(sel.ids) + (f"\nsaved as slice {args.save_as!r}" if args.save_as else ""))
    return 0


def cmd_export(args) -> int:
    from core.export import export_rows
    from core.labels import effective_rows

    ws = open_ws(args)
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
        from core._shared import read_utf8_text

        try:
            text = read_utf8_text(path, "ids file")  # a BOM (Notepad) is dropped, not glued to the first id
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
    emit(args, {"path": str(report.path), "recipe_path": str(report.recipe_path), "rows": report.rows},
          f"wrote {report.rows} rows to {report.path} (recipe: {report.recipe_path})")
    return 0



def register(sub) -> None:
    """Add select, export to the subparsers ``sub``."""
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
