"""Commands that bring data in and out: ingest, embed, list, import-embeddings, index,
export-embeddings, demo, serve.

Each command is a thin wrapper over one ``core`` function; :func:`register` adds
the group's subcommands to the parser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.cli.output import emit, open_ws, progress_bar
from core.encoders import DEFAULT_BATCH_SIZES, DEVICES
from core.errors import InputError, NotFoundError

# app.py of a checkout: the Streamlit app (app.py, pages/, ui/) is not part of the wheel
APP_PATH = Path(__file__).resolve().parent.parent.parent / "app.py"
APP_PARTS = ("pages", "ui")


def cmd_ingest(args) -> int:
    from core.ingest import ingest
    from core.predictions import PredictionColumns, model_names

    columns = PredictionColumns(args.pred_col, args.pred_score_col, args.probs_col)
    progress, close = progress_bar("ingesting")
    try:
        ws = open_ws(args)
        report = ingest(
            ws, args.source, args.name, format=args.format, id_col=args.id_col,
            text_col=args.text_col, image_col=args.image_col, label_col=args.label_col,
            image_root=args.image_root, replace=args.replace, skip_invalid=args.skip_invalid,
            update=args.update, keep_missing=args.keep_missing, progress=progress,
            predictions=columns if columns.given else None, model=args.pred_model,
        )
    finally:
        close()
    payload, text = report.to_json(), report.summary()
    if columns.given:
        payload["predictions"] = {"model": args.pred_model}
        text += f"\npredictions stored as model {args.pred_model!r} (models: {', '.join(model_names(ws.dataset(args.name)))})"
    emit(args, payload, text)
    return 0


def cmd_import_predictions(args) -> int:
    from core.predictions import PredictionColumns, import_predictions

    report = import_predictions(
        open_ws(args), args.name, args.file, args.model, id_col=args.id_col, replace=args.replace,
        columns=PredictionColumns(args.pred_col, args.score_col, args.probs_col))
    emit(args, report.to_json(), report.summary())
    return 0


def cmd_embed(args) -> int:
    from core.embeddings import compute_embeddings
    from core.encoders import choose_device
    from core.engines import check_engine

    engine = check_engine(args.engine)  # an unknown engine: exit 2
    # the local engine resolves the device here (an unavailable one: exit 2); Ray's actors on their nodes
    choice = choose_device(args.device, batch_size=args.batch_size) if engine == "local" else None
    ds = open_ws(args).dataset(args.name)
    progress, close = progress_bar("embedding")
    try:
        report = compute_embeddings(
            ds, args.encoder, args.embedding, batch_size=choice.batch_size if choice else args.batch_size,
            device=choice.device if choice else args.device, chunk_rows=args.chunk_rows,
            replace=args.replace, progress=progress, engine=engine, address=args.address,
            backend=args.backend, uri=args.uri, class_names=not args.no_class_names,
        )
    finally:
        close()
    lines = [f"{e.name}: {e.rows} rows × {e.dims} dims ({e.encoder}, index {e.index_kind})"
             for e in report.embeddings]
    where = (f"on {choice.device} ({choice.dtype}, batches of {choice.batch_size})" if choice else
             "on ray" + (" ({actors} actors on {device}, {num_gpus} GPU each, batches of {batch_size})"
                         .format(**report.workers) if report.workers else ""))
    lines.append(f"encoded {report.encoded_rows} rows, resumed {report.resumed_rows} from an earlier run, {where}")
    for reason, count in report.skipped.items():
        lines.append(f"skipped {count} rows: {reason}")
    payload = {"embeddings": [e.to_json() for e in report.embeddings],
               "encoded_rows": report.encoded_rows, "resumed_rows": report.resumed_rows,
               "skipped": report.skipped, "engine": engine,
               "device": choice.to_json() if choice else None, "workers": report.workers}
    emit(args, payload, "\n".join(lines))
    return 0


def cmd_list(args) -> int:
    from core.embeddings import list_embeddings

    ws = open_ws(args)
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
    emit(args, {"datasets": out}, "\n".join(lines))
    return 0


def cmd_import_embeddings(args) -> int:
    from core.embeddings import import_embeddings

    ds = open_ws(args).dataset(args.name)
    # a bar only on a terminal: a refused file then leaves one line on a captured stderr
    progress, close = progress_bar("importing") if sys.stderr.isatty() else (None, lambda: None)
    try:
        report = import_embeddings(ds, args.file, args.embedding, format=args.format,
                                   ids_file=args.ids_file, id_col=args.id_col, replace=args.replace,
                                   skip_unknown=args.skip_unknown, index_kind=args.index,
                                   backend=args.backend, uri=args.uri, progress=progress)
    finally:
        close()
    emit(args, {"embedding": report.info.to_json(), "skipped_unknown": report.skipped_unknown,
                 "uncovered": report.uncovered}, report.summary())
    return 0


def cmd_index(args) -> int:
    from core.embeddings import rebuild_index

    ds = open_ws(args).dataset(args.name)
    params = {k: v for k, v in (("M", args.m), ("ef_construction", args.ef_construction),
                                ("ef_search", args.ef_search)) if v is not None}
    progress, close = progress_bar("indexing")
    try:
        info = rebuild_index(ds, args.embedding, args.kind, progress=progress, backend=args.backend,
                             uri=args.uri, **params)
    finally:
        close()
    emit(args, {"embedding": info.to_json()},
          f"{info.name}: {info.index_kind} index over {info.rows:,} rows")
    return 0


def _index_target_args(p, default: str | None = "faiss") -> None:
    """``--backend`` / ``--uri``: where an embedding's index lives (``index``, ``embed``,
    ``import-embeddings``)."""
    keep = "; default: the embedding's own, else faiss" if default is None else " (default)"
    p.add_argument("--backend", default=default, help=f"faiss{keep} or lancedb (kinds auto, exact, "
                   "ivf_pq, ivf_hnsw_sq; needs requirements-scale.txt)")
    p.add_argument("--uri", help="lancedb: the database folder or URI, e.g. s3://bucket/path "
                   "(default <embedding>/lance; see docs/object-storage.md)")


def cmd_export_embeddings(args) -> int:
    from core.embeddings import export_embeddings

    ds = open_ws(args).dataset(args.name)
    paths = export_embeddings(ds, args.embedding, args.out, format=args.format)
    emit(args, {"files": [str(p) for p in paths]}, "\n".join(f"wrote {p}" for p in paths))
    return 0


def cmd_demo(args) -> int:
    from core.demo import DEMOS, build_demo

    ws = open_ws(args)
    for name in args.names or DEMOS:
        progress, close = progress_bar(f"demo {name}")
        try:
            report = build_demo(ws, name, replace=args.replace, progress=progress)
        finally:
            close()
        print(f"demo {report.name}: {report.rows} rows, embeddings {', '.join(report.embeddings)}",
              file=sys.stderr)
    return 0


def app_path(given: str | None) -> Path:
    """The app's ``app.py``: ``given`` (``--app``), else the checkout's next to the package.

    Raises InputError if ``given`` is not an ``app.py`` with ``pages/`` and ``ui/`` beside
    it; NotFoundError (one line saying how to run the app) if ``given`` is None and the
    package was installed without the app (from a wheel).
    """
    path = Path(given).expanduser().resolve() if given else APP_PATH
    missing = [part for part in APP_PARTS if not (path.parent / part).is_dir()]
    if path.is_file() and not missing:
        return path
    if given:
        what = "does not exist" if not path.is_file() else f"has no {' or '.join(f'{m}/' for m in missing)} beside it"
        raise InputError(f"--app {given!r} {what}; give the app.py of a Catalog checkout")
    raise NotFoundError("the Catalog app (app.py, pages/, ui/) is not installed with this package; "
                        "from a checkout run `streamlit run app.py` or `catalog serve --app PATH/app.py`")


def cmd_serve(args) -> int:
    app = app_path(args.app)
    env = dict(os.environ)
    if args.home:
        env["CATALOG_HOME"] = str(Path(args.home).resolve())
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port)]
    return subprocess.call(cmd, env=env)


_PROBS_HELP = ("per-class probabilities: a list column (values in the order of the sorted labels), "
               "or PREFIX* for one column per class named PREFIX<class> ('p_*'; '*' alone: columns "
               "named by a label)")


def register(sub) -> None:
    """Add ingest, embed, list, import-embeddings, index, export-embeddings, demo, serve to the subparsers ``sub``."""
    p = sub.add_parser("ingest", help="read a folder or table into a dataset")
    p.add_argument("source", help="a local folder, or a table (csv, parquet, jsonl) at a path or URI "
                   "(file://, s3://, gs://, az://; settings: docs/object-storage.md)")
    p.add_argument("--name", required=True)
    p.add_argument("--format", choices=None, help="folder, csv, parquet or jsonl (default: detect)")
    p.add_argument("--id-col")
    p.add_argument("--text-col")
    p.add_argument("--image-col")
    p.add_argument("--label-col")
    p.add_argument("--image-root")
    p.add_argument("--replace", action="store_true", help="overwrite an existing dataset")
    p.add_argument("--update", action="store_true",
                   help="update an existing dataset by id: add new rows, update changed ones, remove "
                        "missing ones; vectors of rows whose text or image is unchanged are kept")
    p.add_argument("--keep-missing", action="store_true",
                   help="with --update: keep rows whose id is no longer in the source")
    p.add_argument("--skip-invalid", action="store_true", help="skip rows with empty text")
    p.add_argument("--pred-col", help="a model's predicted label per row (stored as predictions, "
                   "not metadata)")
    p.add_argument("--pred-score-col", help="the confidence (0-1) of --pred-col's label")
    p.add_argument("--probs-col", help=_PROBS_HELP)
    p.add_argument("--pred-model", default="model", help="the model name the prediction columns are "
                   "stored under (default: model)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("import-predictions", help="a model's predictions for rows of a dataset, by id "
                       "(kept beside the dataset; several models per dataset)")
    p.add_argument("name")
    p.add_argument("file", help="a table (csv, tsv, parquet, jsonl) with an id column and predictions")
    p.add_argument("--model", required=True, help="the model's name (several per dataset)")
    p.add_argument("--id-col", help="the id column (default: id)")
    p.add_argument("--pred-col", help="the predicted label (default: prediction, predicted or pred)")
    p.add_argument("--score-col", help="the predicted label's confidence 0-1 (default: score or confidence)")
    p.add_argument("--probs-col", help=_PROBS_HELP + " (default: probs)")
    p.add_argument("--replace", action="store_true", help="overwrite this model's predictions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import_predictions)

    p = sub.add_parser("embed", help="compute embeddings")
    p.add_argument("name")
    p.add_argument("--encoder", help="text:minilm, image:efficientnet-lite0, clip:NAME, st:NAME")
    p.add_argument("--embedding", help="embedding name (default: the encoder's name)")
    p.add_argument("--device", type=str.lower, choices=DEVICES, default="auto",
                   help="where the encoder runs: auto (CUDA if torch sees a GPU, else MPS, else CPU), "
                        "cpu, cuda (float16), mps")
    p.add_argument("--batch-size", type=int, help="rows per encoder batch (default per device: "
                   + ", ".join(f"{n} on {d}" for d, n in DEFAULT_BATCH_SIZES.items()) + ")")
    p.add_argument("--chunk-rows", type=int, default=256, help="rows saved per resumable chunk (shard)")
    p.add_argument("--no-class-names", action="store_true",
                   help="with EfficientNet-Lite0: do not also write <embedding>-text, the images' "
                        "ImageNet class names in MiniLM's space (what answers text queries on images "
                        "without CLIP)")
    p.add_argument("--engine", default="local", help="local (default: this process) or ray (a Ray Data "
                   "job: actor pool, GPUs when the cluster has them; needs requirements-scale.txt)")
    p.add_argument("--address", help="ray: auto, ray://HOST:PORT or HOST:PORT (default: start Ray here)")
    p.add_argument("--replace", action="store_true",
                   help="recompute every row (default for an existing embedding: encode only the "
                        "rows without a vector, e.g. new or changed by ingest --update)")
    _index_target_args(p, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("list", help="datasets and their embeddings")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("import-embeddings", help="import your own vectors")
    p.add_argument("name")
    p.add_argument("file", help="vectors (parquet, npy, csv) at a path or URI (file://, s3://, gs://, az://)")
    p.add_argument("--embedding", required=True)
    p.add_argument("--format", help="parquet, npy or csv (default: from the extension)")
    p.add_argument("--ids-file", help="ids for an .npy file (.npy, .txt or .csv; a path or URI)")
    p.add_argument("--id-col", default="id")
    p.add_argument("--replace", action="store_true")
    p.add_argument("--skip-unknown", action="store_true", help="drop ids not in the dataset")
    p.add_argument("--index", default="exact", help="index to build: exact (default: searchable "
                   "at once), hnsw (a graph: minutes at 1M rows) or auto (by row count)")
    _index_target_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import_embeddings)

    p = sub.add_parser("index", help="rebuild an embedding's index (exact, HNSW or IVF)")
    p.add_argument("name")
    p.add_argument("--embedding")
    p.add_argument("--kind", default="auto", help="auto (by row count), exact, hnsw or ivf "
                   "(compressed codes re-ranked from the memory-mapped vectors: large sets)")
    p.add_argument("--m", type=int, help="HNSW links per node")
    p.add_argument("--ef-construction", type=int, help="HNSW build beam width")
    p.add_argument("--ef-search", type=int, help="HNSW query beam width")
    _index_target_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("export-embeddings", help="export vectors")
    p.add_argument("name")
    p.add_argument("--embedding")
    p.add_argument("--out", required=True)
    p.add_argument("--format", help="parquet, npy or csv (default: from the extension)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export_embeddings)

    p = sub.add_parser("demo", help="build the built-in demo datasets (offline)")
    p.add_argument("names", nargs="*", help="digits, api-docs (default: both)")
    p.add_argument("--replace", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="open the Catalog app in the browser")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--app", help="the app.py of a Catalog checkout (default: the one next to "
                   "this package, absent when installed from a wheel)")
    p.set_defaults(func=cmd_serve)
