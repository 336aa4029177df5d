"""Smart select: ``n`` rows of a scope at random, ordered by a column, spread over
clusters or for diversity, with a recipe that reproduces them.

- :mod:`core.select.scope`: :class:`Scope` and :func:`resolve_scope` (all | filter |
  slice, minus excluded slices and tags).
- :mod:`core.select.request`: :class:`SelectRequest` and :func:`select_rows`, the one
  code path of the Smart select page and ``catalog select`` (method dispatch, rows
  without a vector, the full recipe).
- :mod:`core.select.methods`: the four methods (:func:`select_random`,
  :func:`select_ordered`, :func:`select_by_cluster`, :func:`select_diverse`) and
  :class:`Selection`.
"""

from __future__ import annotations

from core.select.methods import (
    PER_CLUSTER_CHOICES,
    PICK_CHOICES,
    SELECT_METHODS,
    Selection,
    apply_scope,
    scope_vectors,
    select_by_cluster,
    select_diverse,
    select_ordered,
    select_random,
)
from core.select.request import (
    VECTOR_METHODS,
    SelectRequest,
    select_ordered_in_view,
    select_rows,
    selection_embedding,
    source_columns,
)
from core.select.scope import SCOPE_KINDS, Scope, resolve_scope

__all__ = [
    "PER_CLUSTER_CHOICES", "PICK_CHOICES", "SCOPE_KINDS", "SELECT_METHODS", "VECTOR_METHODS",
    "Scope", "SelectRequest", "Selection", "apply_scope", "resolve_scope", "scope_vectors",
    "select_by_cluster", "select_diverse", "select_ordered", "select_ordered_in_view",
    "select_random", "select_rows", "selection_embedding", "source_columns",
]
