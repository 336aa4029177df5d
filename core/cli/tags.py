"""Commands that name rows: tag, untag, tags, slices.

Tags and slices live in the workspace store (:class:`core.store.Store`), the same calls
the Catalog, Smart select and Slices pages make. The rows to tag come from an ids file,
a slice, or a ``--where`` filter applied by :func:`core.rows.matching_rows` (the
Catalog filter panel's path). :func:`register` adds the group's subcommands.
"""

from __future__ import annotations

import argparse

from core._shared import read_ids_file
from core.cli.output import emit, note, open_ws
from core.errors import InputError, NotFoundError, format_list
from core.filters import WHERE_HELP
from core.workspace import Workspace

SLICE_ACTIONS = ("list", "show", "rename", "delete", "restore")


def where_ids(ws: Workspace, dataset: str, where: str, embedding: str | None) -> list[str]:
    """Ids of the rows of ``dataset`` passing the ``--where`` expression, in row order;
    quality columns come from ``embedding`` (None: the default one). See
    :func:`core.rows.filter_ids` for the errors."""
    from core.rows import filter_ids

    ds = ws.dataset(dataset)
    emb = ds.require_embedding(embedding) if embedding else ds.default_embedding()
    return filter_ids(ws, dataset, where, emb)[0]


def _source_ids(ws: Workspace, args: argparse.Namespace) -> tuple[list[str], str]:
    """(row ids, a short description of where they came from) for tag/untag."""
    if args.slice:
        return list(ws.store.get_slice(args.name, args.slice).ids), f"slice {args.slice!r}"
    if args.where is not None:
        return where_ids(ws, args.name, args.where, args.embedding), f"--where {args.where!r}"
    ids = list(dict.fromkeys(read_ids_file(args.ids_file)))
    if not ids:
        raise InputError(f"ids file {args.ids_file!r} has no ids (one id a line)")
    known = set(ws.dataset(args.name).rows()["id"].astype(str))
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFoundError(f"{len(missing)} id(s) of {args.ids_file!r} not in dataset "
                            f"{args.name!r}: {format_list(missing)}")
    return ids, f"ids file {args.ids_file!r}"


def cmd_tag(args: argparse.Namespace) -> int:
    ws = open_ws(args)
    ws.dataset(args.name)
    if args.command == "untag":
        known = ws.store.tags(args.name)
        if args.tag not in known:
            raise NotFoundError(f"no rows tagged {args.tag!r} in {args.name!r}; tags: "
                                f"{format_list(sorted(known), 10) or 'none yet'}")
    ids, source = _source_ids(ws, args)
    if args.command == "tag":
        changed = ws.store.tag_rows(args.name, ids, args.tag)  # checks the name first
        verb = "tagged"
    else:
        changed = ws.store.untag_rows(args.name, ids, args.tag)
        verb = "untagged"
    if not ids:
        note(f"no rows match {source}; 0 rows {verb}")
    text = f"{verb} {changed} row(s) {args.tag!r} ({len(ids)} from {source}; " \
           f"{len(ids) - changed} {'already tagged' if verb == 'tagged' else 'did not carry it'})"
    emit(args, {"tag": args.tag, "matched": len(ids), verb: changed,
                "rows_with_tag": ws.store.tags(args.name).get(args.tag, 0)}, text)
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    ws = open_ws(args)
    ws.dataset(args.name)
    counts = ws.store.tags(args.name)
    emit(args, {"tags": counts},
         "\n".join(f"{n:>8}  {t}" for t, n in counts.items()) or f"no tags in {args.name!r}")
    return 0


def _slice_json(sl, *, ids: bool = False) -> dict:
    out = {"name": sl.name, "rows": len(sl.ids), "method": sl.method, "created": sl.created}
    if ids:
        out.update(ids=list(sl.ids), recipe=sl.recipe)
    return out


def cmd_slices(args: argparse.Namespace) -> int:
    ws = open_ws(args)
    ws.dataset(args.name)
    store, action, names = ws.store, args.action, [n for n in (args.slice, args.new) if n is not None]
    wanted = {"list": 0, "show": 1, "delete": 1, "restore": 1, "rename": 2}[action]
    if len(names) != wanted:
        usage = {"list": "slices NAME [list]", "rename": "slices NAME rename SLICE NEW"}.get(
            action, f"slices NAME {action} SLICE")
        raise InputError(f"'slices {action}' takes {wanted} slice name(s), got {len(names)}: "
                         f"catalog {usage}")
    if action == "list":
        slices = store.list_slices(args.name)
        emit(args, {"slices": [_slice_json(s) for s in slices]},
             "\n".join(f"{s.name}  {len(s.ids)} rows  {s.method}  {s.created}" for s in slices)
             or f"no slices in {args.name!r}")
    elif action == "show":
        sl = store.get_slice(args.name, args.slice)
        emit(args, _slice_json(sl, ids=True), "\n".join(sl.ids))
    elif action == "rename":
        sl = store.rename_slice(args.name, args.slice, args.new)
        emit(args, {**_slice_json(sl), "old_name": args.slice},
             f"renamed slice {args.slice!r} to {sl.name!r}")
    elif action == "delete":
        sl = store.get_slice(args.name, args.slice)
        store.delete_slice(args.name, args.slice)
        emit(args, {"deleted": _slice_json(sl)},
             f"deleted slice {sl.name!r} (undo: catalog slices {args.name} restore {sl.name})")
    else:
        sl = store.restore_slice(args.name, args.slice)
        emit(args, {"restored": _slice_json(sl)}, f"restored slice {sl.name!r} ({len(sl.ids)} rows)")
    return 0


def register(sub) -> None:
    """Add tag, untag, tags, slices to the subparsers ``sub``."""
    for command, help_ in (("tag", "tag rows (from an ids file, a slice or --where)"),
                           ("untag", "remove a tag from rows (ids file, slice or --where)")):
        p = sub.add_parser(command, help=help_, epilog="--where EXPR:\n" + WHERE_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("name")
        p.add_argument("tag")
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--ids-file", help="a text file of row ids, one a line")
        src.add_argument("--slice", help="the rows of this slice")
        src.add_argument("--where", metavar="EXPR", help="the rows passing this filter (below)")
        p.add_argument("--embedding", help="for quality columns in --where (default: the default one)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_tag)

    p = sub.add_parser("tags", help="tags and their row counts")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tags)

    p = sub.add_parser("slices", help="list, show, rename, delete or restore slices")
    p.add_argument("name")
    p.add_argument("action", nargs="?", default="list", choices=SLICE_ACTIONS)
    p.add_argument("slice", nargs="?", help="the slice (show, rename, delete, restore)")
    p.add_argument("new", nargs="?", help="the new name (rename)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_slices)
