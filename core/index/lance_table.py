"""The LanceDB table under :class:`core.index.lance.LanceIndex`: kinds and parameters,
locations (a folder or URI), schema checks, writes and reads.

One table, ``vectors``, per index: ``slot`` int64 (unique, assigned by the index; what
every filter names), ``id`` string (the row's id), ``vector`` fixed_size_list<float32>[d]
(L2-normalised). Filters are built with :mod:`lancedb.expr` over integer slots
(``col("slot").isin([...])``): no user text ever enters a SQL string, and LanceDB quotes
any literal it renders. ``uri`` is a LanceDB database (a local folder or an object-store
URI such as ``s3://bucket/path``): credentials from the environment, other settings from
``$CATALOG_STORAGE_OPTIONS`` as LanceDB ``storage_options`` (:mod:`core.locations`).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# LanceDB's Rust logger prints WARN lines for routine work ("No existing dataset ... will be
# created") on stderr, where the CLI's one-line errors go; errors only, unless the user set it.
os.environ.setdefault("LANCEDB_LOG", "error")  # lancedb 0.40's env_logger variable

import lancedb  # reads LANCEDB_LOG when first imported
import numpy as np
import pyarrow as pa
from lancedb.expr import Expr, col
from lancedb.index import IvfHnswSq, IvfPq

from core import atomic
from core._shared import ProgressFn, check_positive_int
from core.errors import CatalogError, EmbeddingError, IndexStateError, InputError, format_list
from core.index.faiss_build import unit_chunks
from core.locations import lance_storage_options

TABLE = "vectors"
LANCE_KINDS = ("auto", "exact", "ivf_pq", "ivf_hnsw_sq")
ANN_KINDS = ("ivf_pq", "ivf_hnsw_sq")
# Below this many rows "auto" builds no vector index: LanceDB scans the rows itself.
# Measured (one query, median, 384-d clustered, 2 busy cores, lancedb 0.40): 5k rows flat
# 7.1 ms vs IVF_PQ (refine 10, nprobes 20) 7.4 ms; 20k rows flat 17.7 ms vs 6.1 ms.
INDEX_MIN_ROWS = 10_000
TRAIN_MIN_ROWS = 256  # PQ's 8-bit codebooks need this many rows; fewer: scanned until optimize()
MAX_PARTITIONS = 4096
# nprobes 10 of sqrt(n) partitions, 10 x k candidates re-ranked on the stored vectors.
# 20k x 32 clustered, 141 partitions, recall@10: PQ 4 dims per code 0.980 (8 dims: 0.867,
# refine 20: 0.955), ~2.5 ms a query; without refine (1) 0.47. 1M x 384 MiniLM-like, 1,000
# partitions (bench_backends.py, quiet): nprobes 10 / 20: 8.0 / 10.5 ms, recall 0.976 / 0.978
# (the PQ codes bound it; refine 20: 0.989 at 12.5 ms).
LANCE_DEFAULTS: dict[str, int] = {"nprobes": 10, "refine_factor": 10}
BUILD_PARAMS = {"ivf_pq": ("num_partitions", "num_sub_vectors"),
                "ivf_hnsw_sq": ("num_partitions", "m", "ef_construction", "ef")}
LANCE_PARAMS = ("nprobes", "refine_factor", "num_partitions", "num_sub_vectors", "m", "ef_construction", "ef")
HNSW_SQ_DEFAULTS = {"m": 20, "ef_construction": 300, "ef": 64}


def resolve_lance_kind(kind: str, rows: int) -> str:
    """The kind built for ``kind`` over ``rows`` rows; InputError on an unknown kind."""
    if kind not in LANCE_KINDS:
        raise InputError(f"unknown index kind {kind!r} for the lancedb backend; choose one of "
                         f"{', '.join(LANCE_KINDS)}")
    if kind != "auto":
        return kind
    return "exact" if rows < INDEX_MIN_ROWS else "ivf_pq"


def check_lance_params(kind: str, params: dict[str, Any]) -> dict[str, int]:
    """``params`` (whole numbers >= 1) over the defaults of ``kind``; InputError on unknown
    names or names that do not apply (exact takes only none)."""
    unknown = sorted(set(params) - set(LANCE_PARAMS))
    if unknown:
        raise InputError(f"unknown lancedb index parameter(s) {format_list(unknown)}; choose from "
                         f"{', '.join(LANCE_PARAMS)}")
    checked = {n: check_positive_int(v, f"index parameter {n}") for n, v in params.items()}
    allowed = ("nprobes", "refine_factor", *BUILD_PARAMS.get(kind, ()))
    foreign = sorted(set(checked) - set(allowed)) if kind != "exact" else []
    if foreign:
        raise InputError(f"index parameter(s) {format_list(foreign)} do not apply to the lancedb "
                         f"{kind} kind; it takes {', '.join(allowed)}")
    extra = HNSW_SQ_DEFAULTS if kind == "ivf_hnsw_sq" else {}
    return {**LANCE_DEFAULTS, **extra, **checked} if kind != "exact" else {**LANCE_DEFAULTS}


def sub_vectors(dims: int) -> int:
    """PQ sub-vectors for ``dims``: the most at 4 dims or more each that divide ``dims``
    (one byte each: 96 B a row at 384-d)."""
    return next((s for s in range(max(1, dims // 4), 0, -1) if dims % s == 0), 1)


def partitions(rows: int) -> int:
    """IVF partitions for ``rows`` rows: ~sqrt(rows), at least 256 training rows each
    (LanceDB's sample rate), within 1 .. MAX_PARTITIONS."""
    return max(1, min(MAX_PARTITIONS, round(math.sqrt(rows)), rows // TRAIN_MIN_ROWS))


def is_local(uri: str) -> bool:
    """Whether ``uri`` is a local folder (a path or ``file://``), not an object store."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def check_writable(uri: str) -> None:
    """InputError unless the local folder ``uri`` can be made and written (an object-store
    URI is checked by its first write). Creates the folder."""
    if not is_local(uri):
        return
    path = local_path(uri)
    blocker = atomic.non_folder_ancestor(path / "x")
    if blocker is not None or (path.exists() and not path.is_dir()):
        raise InputError(f"LanceDB URI {uri!r} is not writable: {blocker or path} is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise InputError(f"LanceDB URI {uri!r} is not writable: {err.strerror or err}") from err


def _first_line(err: BaseException, limit: int = 240) -> str:
    """The first line of ``err``, at most ``limit`` characters, led by the object store's error
    code when it names one (LanceDB's S3 errors carry a whole debug dump)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    code = re.search(r"<Code>(\w+)</Code>", str(err))
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{code[1]}: {text}" if code else text


def connect(uri: str) -> Any:
    """The LanceDB database at ``uri`` with :func:`~core.locations.lance_storage_options`
    (None for a local folder); InputError if those settings are malformed."""
    return lancedb.connect(uri, storage_options=lance_storage_options(uri))


def schema_of(dims: int) -> pa.Schema:
    return pa.schema([pa.field("slot", pa.int64(), nullable=False), pa.field("id", pa.string(), nullable=False),
                      pa.field("vector", pa.list_(pa.float32(), dims), nullable=False)])


def table_dims(table: Any) -> int | None:
    """The vector width of a Catalog vectors table; None if its schema is not one."""
    schema = table.schema
    names = set(schema.names)
    if not {"slot", "id", "vector"} <= names:
        return None
    vec = schema.field("vector").type
    if not pa.types.is_fixed_size_list(vec) or vec.value_type != pa.float32():
        return None
    return int(vec.list_size)


def batches(x: np.ndarray, norms: np.ndarray, ids: np.ndarray, first_slot: int,
            progress: ProgressFn | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the unit rows of ``x`` (``norms`` their norms) under ``ids`` as
    slots ``first_slot ..``, ``ADD_CHUNK`` rows each; ``progress(done, total)`` after each."""
    done, schema = 0, schema_of(x.shape[1])
    for block in unit_chunks(x, norms):
        m = len(block)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel(), pa.float32()), x.shape[1])
        yield pa.record_batch([pa.array(np.arange(first_slot + done, first_slot + done + m), pa.int64()),
                               pa.array(ids[done:done + m].tolist(), pa.string()), vectors], schema=schema)
        done += m
        if progress is not None:
            progress(done, len(x))


def create_table(uri: str, dims: int, data: Iterator[pa.RecordBatch]) -> Any:
    """A new ``vectors`` table at ``uri`` filled from ``data`` in one commit (an older one of
    the same width is replaced: LanceDB keeps its versions until cleanup). EmbeddingError if
    ``uri`` holds a table of another width (someone else's vectors), InputError if ``uri``
    cannot be written."""
    check_writable(uri)
    try:
        db = connect(uri)
        if TABLE in db.list_tables().tables:
            old = table_dims(db.open_table(TABLE))
            if old is not None and old != dims:
                raise EmbeddingError(f"the LanceDB table {TABLE!r} at {uri!r} holds {old}-d vectors; "
                                     f"these are {dims}-d (use another --uri)")
        reader = pa.RecordBatchReader.from_batches(schema_of(dims), data)
        return db.create_table(TABLE, reader, schema=schema_of(dims), mode="overwrite")
    except CatalogError:
        raise
    except (OSError, RuntimeError, ValueError) as err:  # ValueError: e.g. an object store's missing bucket
        raise InputError(f"LanceDB URI {uri!r} is not writable: {_first_line(err)}") from err


def open_table(uri: str, dims: int, where: Path) -> Any:
    """The ``vectors`` table at ``uri`` (recorded in ``where``/index.json); IndexStateError
    if it is missing, unreadable or not ``dims`` wide."""
    if is_local(uri) and not (local_path(uri) / f"{TABLE}.lance").is_dir():
        raise IndexStateError(f"index in {where} is missing its LanceDB table at {uri!r}")
    try:
        table = connect(uri).open_table(TABLE)
    except InputError:
        raise  # malformed $CATALOG_STORAGE_OPTIONS: the settings, not the table, are wrong
    except (OSError, RuntimeError, ValueError) as err:
        raise IndexStateError(f"LanceDB table at {uri!r} (index in {where}) is unreadable: "
                              f"{_first_line(err)}") from err
    found = table_dims(table)
    if found != dims:
        what = f"{found}-d vectors" if found is not None else "no Catalog vectors (slot, id, vector)"
        raise IndexStateError(f"LanceDB table at {uri!r} holds {what}; index.json in {where} says {dims}-d")
    return table


def read_slots(table: Any) -> tuple[np.ndarray, np.ndarray]:
    """(slots (n,) int64 ascending, ids (n,) object) of every row of ``table``."""
    if table.count_rows() == 0:
        return np.empty(0, np.int64), np.empty(0, dtype=object)
    got = table.search().select(["slot", "id"]).limit(None).to_arrow()
    slots = got["slot"].to_numpy()
    order = np.argsort(slots, kind="stable")
    ids = np.asarray(got["id"].to_numpy(zero_copy_only=False), dtype=object)
    return slots[order].astype(np.int64), ids[order]


def in_slots(slots: np.ndarray) -> Expr:
    """The filter ``slot IN (slots)`` (integers only, built as an expression, not SQL text)."""
    return col("slot").isin(np.asarray(slots, np.int64).tolist())


def vectors_of(result: pa.Table, dims: int) -> np.ndarray:
    """The ``vector`` column of a query result as (m, d) float32."""
    if result.num_rows == 0:
        return np.empty((0, dims), np.float32)
    flat = result["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, np.float32).reshape(-1, dims)


def create_vector_index(table: Any, kind: str, dims: int, rows: int, params: dict[str, int]) -> bool:
    """Build ``kind``'s vector index over ``table`` (dot product on unit rows = cosine);
    sets ``params`` num_partitions (and num_sub_vectors) when absent. False (nothing built)
    below ``TRAIN_MIN_ROWS`` rows: LanceDB then scans them."""
    if kind not in ANN_KINDS or rows < TRAIN_MIN_ROWS:
        return False
    params.setdefault("num_partitions", partitions(rows))
    if kind == "ivf_pq":
        params.setdefault("num_sub_vectors", sub_vectors(dims))
        config: Any = IvfPq(distance_type="dot", num_partitions=params["num_partitions"],
                            num_sub_vectors=params["num_sub_vectors"])
    else:
        config = IvfHnswSq(distance_type="dot", num_partitions=params["num_partitions"],
                           m=params["m"], ef_construction=params["ef_construction"])
    try:
        table.create_index("vector", config=config, replace=True)
    except (RuntimeError, ValueError) as err:
        raise InputError(f"LanceDB could not build a {kind} index over {rows} rows with "
                         f"{params}: {err}") from err
    return True


def has_vector_index(table: Any) -> bool:
    return any(list(ix.columns) == ["vector"] for ix in table.list_indices())
