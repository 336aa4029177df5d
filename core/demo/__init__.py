"""Built-in demo datasets, built offline: scikit-learn's digits (images) and api-docs
(docstrings of installed libraries, text).

- :mod:`core.demo.build`: :func:`build_demo`, :data:`DEMOS`, :func:`write_digits_folder`.
- :mod:`core.demo.apidocs`: collecting the api-docs table.
"""

from __future__ import annotations

from core.demo.build import (
    DEMOS,
    DemoReport,
    build_demo,
    ingest_demo,
    write_digits_folder,
)

__all__ = ["DEMOS", "DemoReport", "build_demo", "ingest_demo", "write_digits_folder"]
