"""The ``api-docs`` demo table: first docstring paragraph of public API objects.

Rows come from the installed numpy, pandas, scikit-learn, scipy and torch, so the
demo is built offline. Columns: ``qualname`` (id), ``text`` (first paragraph),
``library`` (label), ``kind`` (function | class), ``doc_length`` (characters of the
full docstring), ``qualified_name``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import warnings
from pathlib import Path

import pandas as pd

from core import atomic

log = logging.getLogger(__name__)

# library label -> modules whose public names are documented
API_MODULES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "numpy.polynomial"),
    "pandas": ("pandas", "pandas.api.types", "pandas.plotting"),
    "scikit-learn": (
        "sklearn.cluster", "sklearn.covariance", "sklearn.cross_decomposition", "sklearn.decomposition",
        "sklearn.ensemble", "sklearn.feature_extraction.text", "sklearn.feature_selection",
        "sklearn.impute", "sklearn.linear_model", "sklearn.manifold", "sklearn.metrics",
        "sklearn.mixture", "sklearn.model_selection", "sklearn.naive_bayes", "sklearn.neighbors",
        "sklearn.neural_network", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.svm",
        "sklearn.tree", "sklearn.utils", "sklearn.datasets",
    ),
    "scipy": (
        "scipy.linalg", "scipy.stats", "scipy.optimize", "scipy.sparse", "scipy.sparse.linalg",
        "scipy.signal", "scipy.spatial", "scipy.interpolate", "scipy.integrate", "scipy.ndimage",
        "scipy.cluster.hierarchy", "scipy.fft", "scipy.io",
    ),
    "torch": ("torch", "torch.linalg", "torch.nn", "torch.nn.functional", "torch.fft", "torch.optim",
              "torch.utils.data", "torch.distributions"),
}
MAX_PARAGRAPH_CHARS = 600


_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(\s*->\s*[\w\[\], .]+)?$")


def first_paragraph(doc: str) -> str:
    """The first non-empty paragraph of a docstring that is not a bare call signature,
    whitespace-folded, ≤ 600 chars."""
    for block in doc.strip().split("\n\n"):
        text = " ".join(block.split())
        if text and not _SIGNATURE.match(text):
            return text[:MAX_PARAGRAPH_CHARS]
    return ""


def collect_api_docs() -> pd.DataFrame:
    """One row per public function/class with a docstring in :data:`API_MODULES`."""
    records: dict[str, dict] = {}
    for library, modules in API_MODULES.items():
        for module_name in modules:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    module = importlib.import_module(module_name)
            except ImportError as err:
                log.warning("api-docs: skipping %s (%s)", module_name, err)
                continue
            names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
            for name in names:
                if name.startswith("_"):
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        obj = getattr(module, name, None)
                except (ImportError, AttributeError) as err:  # lazy/experimental names
                    log.debug("api-docs: skipping %s.%s (%s)", module_name, name, err)
                    continue
                if inspect.isclass(obj):
                    kind = "class"
                elif callable(obj) and not inspect.ismodule(obj):
                    kind = "function"
                else:
                    continue
                doc = inspect.getdoc(obj) or ""
                text = first_paragraph(doc)
                if len(text) < 12:
                    continue
                qualname = f"{module_name}.{name}"
                records.setdefault(qualname, {
                    "qualname": qualname, "text": text, "library": library, "kind": kind,
                    "doc_length": len(doc), "qualified_name": qualname,
                })
    table = pd.DataFrame.from_records(list(records.values()))
    return table.sort_values("qualname", kind="stable").reset_index(drop=True)


def write_api_docs_table(path: Path) -> int:
    """Write :func:`collect_api_docs` as Parquet at ``path`` (atomically); returns rows."""
    table = collect_api_docs()
    atomic.write_with(path, lambda tmp: table.to_parquet(tmp, index=False))
    return len(table)
