"""Commands that change labels: relabel, undo, history, review.

Label edits are recorded beside the rows (``rows.parquet`` is never touched) through
:mod:`core.labels`, the module the Cluster map and Label review pages call; ``review``
is :func:`core.labels.review_label_issue`, the Label review page's accept / correct.
:func:`register` adds the group's subcommands.
"""

from __future__ import annotations

import argparse

from core.cli.output import emit, open_ws
from core.labels import DEFAULT_MIN_SCORE
from core.store import LabelEdit


def _edit_json(edit: LabelEdit) -> dict:
    return {"edit": edit.edit_id, "id": edit.row_id, "old": edit.old_label, "new": edit.new_label,
            "time": edit.created, "source": edit.source, "reverted": edit.reverted}


def _label_of(ws, dataset: str, row_id: str) -> str | None:
    from core.labels import effective_rows

    rows = effective_rows(ws, dataset)
    label = rows.loc[rows["id"].astype(str) == row_id, "label"].iloc[0]
    return None if label is None or label != label else str(label)


def cmd_relabel(args: argparse.Namespace) -> int:
    from core.labels import relabel_rows

    ws = open_ws(args)
    ids = list(dict.fromkeys(args.id))
    edits = relabel_rows(ws, args.name, ids, args.label)
    label = args.label.strip()
    unchanged = len(ids) - len(edits)
    text = f"relabelled {len(edits)} row(s) as {label!r}"
    if edits:
        text += f"; edit id(s) {', '.join(map(str, edits))} (undo: catalog undo {args.name} --edit N)"
    if unchanged:
        text += f"; {unchanged} already labelled {label!r}"
    emit(args, {"label": label, "edits": edits, "unchanged": unchanged}, text)
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    from core.labels import undo_label_edit

    ws = open_ws(args)
    edit = undo_label_edit(ws, args.name, args.edit)
    label = _label_of(ws, args.name, edit.row_id)
    emit(args, {"undone": _edit_json(edit), "label": label},
         f"undid edit {edit.edit_id}: row {edit.row_id!r} {edit.old_label!r} → {edit.new_label!r}; "
         f"its label is now {label!r}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from core.labels import row_label_history

    ws = open_ws(args)
    history = row_label_history(ws, args.name, args.id)
    label = _label_of(ws, args.name, args.id)
    lines = [f"{e.edit_id:>6}  {e.created}  {e.old_label!r} → {e.new_label!r}  ({e.source})"
             + (f"  reverted {e.reverted}" if e.reverted else "") for e in history]
    emit(args, {"id": args.id, "label": label, "edits": [_edit_json(e) for e in history]},
         "\n".join(lines + [f"label now: {label!r}"]) if lines else
         f"no label edits of row {args.id!r}; label: {label!r}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from core.labels import review_label_issue

    ws = open_ws(args)
    decision = "accept" if args.accept else "dismiss"
    done = review_label_issue(ws, args.name, args.id, decision, embedding=args.embedding, k=args.k,
                              min_score=args.min_score, ranking=args.source, model=args.model)
    text = (f"accepted: row {done.row_id!r} is now labelled {done.label!r}" if decision == "accept"
            else f"dismissed: row {done.row_id!r} keeps {done.label!r} and leaves the review queue")
    emit(args, {"id": done.row_id, "decision": done.decision, "status": done.status,
                "label": done.label, "edits": list(done.edit_ids),
                "previous_status": done.previous_status}, text)
    return 0


def register(sub) -> None:
    """Add relabel, undo, history, review to the subparsers ``sub``."""
    p = sub.add_parser("relabel", help="set the label of rows (an undoable edit)")
    p.add_argument("name")
    p.add_argument("--id", required=True, action="extend", nargs="+", help="row id(s)")
    p.add_argument("--label", required=True, help="the new label")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_relabel)

    p = sub.add_parser("undo", help="revert a label edit (default: the latest not yet reverted)")
    p.add_argument("name")
    p.add_argument("--edit", type=int, help="the edit id (see catalog history)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_undo)

    p = sub.add_parser("history", help="the label edits of a row, oldest first")
    p.add_argument("name")
    p.add_argument("--id", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("review", help="accept or dismiss a label-issue suggestion")
    p.add_argument("name")
    p.add_argument("--id", required=True)
    decision = p.add_mutually_exclusive_group(required=True)
    decision.add_argument("--accept", action="store_true", help="relabel to the suggested label")
    decision.add_argument("--dismiss", action="store_true", help="the label is right: stop showing it")
    p.add_argument("--embedding", help="the ranking's embedding (default: the default one)")
    p.add_argument("--k", type=int, help="neighbours of the ranking (default 10, as the app)")
    p.add_argument("--source", help="the ranking that suggests the label: neighbours, model or combined "
                   "(default as catalog label-issues: combined when the dataset has predictions)")
    p.add_argument("--model", help="whose predictions (default: the most recently imported)")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                   help="--accept only a row scored at least this (default %(default)s, as the app)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_review)
