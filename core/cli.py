"""The ``catalog`` command (also ``python -m core``).

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem).
``--json`` prints one JSON document on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from core.errors import CatalogError

log = logging.getLogger("catalog")


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"catalog: error: {message}\n")


def _progress_bar(desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr as a ``progress(done, total)`` callback, and its closer."""
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, unit="row", disable=None)
        bar.total = total
        bar.n = done
        bar.refresh()

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return update, close


def _emit(args, payload: dict, text: str) -> None:
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, default=str)
        sys.stdout.write("\n")
    else:
        print(text)


def _ws(args):
    from core.workspace import open_workspace

    return open_workspace(args.home)


# ---- commands ---------------------------------------------------------------
def cmd_ingest(args) -> int:
    from core.ingest import ingest

    progress, close = _progress_bar("checking images")
    try:
        report = ingest(
            _ws(args), args.source, args.name, format=args.format, id_col=args.id_col,
            text_col=args.text_col, image_col=args.image_col, label_col=args.label_col,
            image_root=args.image_root, replace=args.replace, skip_invalid=args.skip_invalid,
            progress=progress,
        )
    finally:
        close()
    _emit(args, report.to_json(), report.summary())
    return 0


def cmd_embed(args) -> int:
    from core.embeddings_compute import compute_embeddings

    ds = _ws(args).dataset(args.name)
    progress, close = _progress_bar("embedding")
    try:
        report = compute_embeddings(
            ds, args.encoder, args.embedding, batch_size=args.batch_size,
            chunk_rows=args.chunk_rows, replace=args.replace, progress=progress,
        )
    finally:
        close()
    lines = [f"{e.name}: {e.rows} rows × {e.dims} dims ({e.encoder}, index {e.index_kind})"
             for e in report.embeddings]
    lines.append(f"encoded {report.encoded_rows} rows, resumed {report.resumed_rows} from an earlier run")
    for reason, count in report.skipped.items():
        lines.append(f"skipped {count} rows: {reason}")
    payload = {"embeddings": [e.to_json() for e in report.embeddings],
               "encoded_rows": report.encoded_rows, "resumed_rows": report.resumed_rows,
               "skipped": report.skipped}
    _emit(args, payload, "\n".join(lines))
    return 0


def cmd_list(args) -> int:
    from core.embeddings import list_embeddings

    ws = _ws(args)
    names = [args.name] if args.name else ws.dataset_names()
    out = []
    for name in names:
        ds = ws.dataset(name)
        out.append({"name": name, "rows": ds.row_count(),
                    "embeddings": [e.to_json() for e in list_embeddings(ds)]})
    lines = [f"{ws.home}"] if not out else []
    for d in out:
        lines.append(f"{d['name']}: {d['rows']} rows")
        for e in d["embeddings"]:
            lines.append(f"  {e['name']}: {e['dims']} dims, {e['encoder']} ({e['source']}), "
                         f"{e['rows']} rows, index {e['index_kind']}")
    if not out:
        lines.append("no datasets yet: run `catalog demo digits` or `catalog ingest SOURCE --name NAME`")
    _emit(args, {"datasets": out}, "\n".join(lines))
    return 0


def cmd_search(args) -> int:
    from core.embeddings import load_embedding, load_index
    from core.encoders import load_encoder
    from core.search import find_similar, search_image, search_text

    ds = _ws(args).dataset(args.name)
    emb_name = ds.require_embedding(args.embedding)
    index = load_index(ds, emb_name)
    k = args.k
    if args.id:
        result = find_similar(index, args.id, args.negative or (), method=args.method,
                              negative_weight=args.negative_weight, k=k,
                              threshold=args.threshold, embedding=emb_name)
    elif args.text is not None:
        from core.text_fallback import ensure_row_text_embedding, plan_text_search

        plan = plan_text_search(ds.name, emb_name, load_embedding(ds, emb_name).encoder,
                                ds.rows()["modality"].unique())
        if plan.fallback:  # the embedding cannot read text: search each row's descriptive text
            print(f"catalog: {plan.note}", file=sys.stderr)
            progress, close = _progress_bar("indexing row text")
            try:
                ensure_row_text_embedding(ds, progress=progress)
            finally:
                close()
            index = load_index(ds, plan.embedding)
        result = search_text(index, load_encoder(plan.encoder), args.text, k=k,
                             threshold=args.threshold, embedding=plan.embedding)
        if result.recipe.get("truncated"):
            print("catalog: note: the query is longer than the encoder's token limit; only its "
                  "beginning was used", file=sys.stderr)
    else:
        spec = load_embedding(ds, emb_name).encoder
        if spec is None:
            raise CatalogError(f"embedding {emb_name!r} was imported: it has no encoder to encode "
                               "a query image; search it with --id")
        from core.media import open_image

        result = search_image(index, load_encoder(spec), open_image(args.image), k=k,
                              threshold=args.threshold, embedding=emb_name)
    text = "\n".join(f"{s:.4f}  {i}" for i, s in zip(result.ids, result.scores)) or "no results"
    _emit(args, result.to_json(), text)
    return 0


# ---- parser -------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="catalog", description="Curate datasets with embeddings.")
    parser.add_argument("--home", help="workspace directory (default $CATALOG_HOME or ./catalog-data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("ingest", help="read a folder or table into a dataset")
    p.add_argument("source")
    p.add_argument("--name", required=True)
    p.add_argument("--format", choices=None, help="folder, csv, parquet or jsonl (default: detect)")
    p.add_argument("--id-col")
    p.add_argument("--text-col")
    p.add_argument("--image-col")
    p.add_argument("--label-col")
    p.add_argument("--image-root")
    p.add_argument("--replace", action="store_true", help="overwrite an existing dataset")
    p.add_argument("--skip-invalid", action="store_true", help="skip rows with empty text")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("embed", help="compute embeddings")
    p.add_argument("name")
    p.add_argument("--encoder", help="text:minilm, image:efficientnet-lite0, clip:NAME, st:NAME")
    p.add_argument("--embedding", help="embedding name (default: the encoder's name)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunk-rows", type=int, default=256, help="rows saved per resumable chunk")
    p.add_argument("--replace", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("list", help="datasets and their embeddings")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("search", help="similarity, text or image search")
    p.add_argument("name")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--id", nargs="+", help="anchor row id(s)")
    q.add_argument("--text", help="natural-language query")
    q.add_argument("--image", help="query image file")
    p.add_argument("--negative", nargs="+", help="negative anchor id(s) (with --id)")
    p.add_argument("--method", default="rocchio", help="rocchio, max, mean or min (with --id)")
    p.add_argument("--negative-weight", type=float, default=0.5)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threshold", type=float)
    p.add_argument("--embedding")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Commands registered by other modules of core (kept in their own files).
_EXTRA_COMMANDS: list[Callable] = []


def main(argv: Sequence[str] | None = None) -> int:
    from core import cli_more  # noqa: F401  registers the remaining commands

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CatalogError as err:
        print(f"catalog: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("catalog: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
