"""Smart select: ``n`` rows of a scope at random, ordered by a column, spread over
clusters or for diversity, with a recipe that reproduces them.

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

__all__ = [
    "PER_CLUSTER_CHOICES", "PICK_CHOICES", "SELECT_METHODS", "Selection", "apply_scope",
    "scope_vectors", "select_by_cluster", "select_diverse", "select_ordered", "select_random",
]
