"""``catalog search``: similarity from anchor ids, text queries, image queries.

Each command is a thin wrapper over one ``core`` function; :func:`register` adds
the group's subcommands to the parser.
"""

from __future__ import annotations

import sys

from core.cli.output import emit, note, open_ws, progress_bar
from core.errors import CatalogError


def _within(ws, dataset: str, flt, embedding: str, index) -> list[str] | None:
    """Ids of the rows passing ``flt`` that have a vector in ``index`` (None: no filter);
    quality columns of ``flt`` come from ``embedding``. Notes an empty match on stderr."""
    if flt is None:
        return None
    from core.rows import matching_rows

    ids = matching_rows(ws, dataset, flt, embedding=embedding)["id"].astype(str)
    within = ids[ids.isin(index.ids)].tolist()
    if not within:
        note(f"no row with a vector matches --where ({flt.describe()}); no results")
    return within


def cmd_search(args) -> int:
    from core.embeddings import load_embedding, load_index
    from core.encoders import load_encoder
    from core.search import find_similar, search_image

    ws = open_ws(args)
    ds = ws.dataset(args.name)
    emb_name = ds.require_embedding(args.embedding)
    index = load_index(ds, emb_name)
    flt = None
    if args.where is not None:  # checked before any work
        from core.filters import parse_where
        from core.rows import check_filter_names

        flt = parse_where(args.where)
        check_filter_names(ws, args.name, flt)
    k = args.k
    if args.id:
        result = find_similar(index, args.id, args.negative or (), method=args.method,
                              negative_weight=args.negative_weight, k=k, threshold=args.threshold,
                              embedding=emb_name, within=_within(ws, args.name, flt, emb_name, index))
    elif args.text is not None:
        from core.search import check_query, load_text_search, plan_for_dataset, run_text_search

        check_query(args.text)  # before any model loads
        plan = plan_for_dataset(ds, emb_name)
        if plan.note:
            print(f"catalog: {plan.note}", file=sys.stderr)
        progress, close = progress_bar("indexing row text") if plan.fallback else (None, lambda: None)
        try:
            search = load_text_search(ds, plan, progress=progress)
        finally:
            close()
        result = run_text_search(search, args.text, mode=args.mode, k=k, threshold=args.threshold,
                                 within=_within(ws, args.name, flt, plan.embedding, search.index))
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
                              threshold=args.threshold, embedding=emb_name,
                              within=_within(ws, args.name, flt, emb_name, index))
    text = "\n".join(f"{s:.4f}  {i}" for i, s in zip(result.ids, result.scores)) or "no results"
    if args.text is not None:
        text = f"method {result.recipe['method']}, mode {result.recipe['mode']}\n{text}"
    emit(args, result.to_json(), text)
    return 0



def register(sub) -> None:
    """Add search to the subparsers ``sub``."""
    p = sub.add_parser("search", help="similarity, text or image search")
    p.add_argument("name")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--id", nargs="+", help="anchor row id(s)")
    q.add_argument("--text", help="natural-language query")
    q.add_argument("--image", help="query image file")
    p.add_argument("--negative", nargs="+", help="negative anchor id(s) (with --id)")
    p.add_argument("--method", default="rocchio", help="rocchio, max, mean or min (with --id)")
    p.add_argument("--mode", choices=("semantic", "keyword", "hybrid"),
                   help="with --text: by meaning, by words (BM25) or both fused (default: hybrid "
                        "where rows have keyword text, else semantic)")
    p.add_argument("--negative-weight", type=float, default=0.5)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threshold", type=float)
    p.add_argument("--embedding")
    p.add_argument("--where", metavar="EXPR", help="search only among the rows passing this filter "
                   "(see catalog tag --help)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)
