"""Confident learning: which labels are wrong, from out-of-sample predicted probabilities.

An implementation of Northcutt, Jiang & Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels" (JAIR 2021), written from the paper:

1. **Thresholds**: ``t_j`` = mean of ``p_j(x)`` over the rows labelled ``j``, the
   model's average self-confidence in class ``j``.
2. **Confident joint**: row ``x`` labelled ``i`` counts in ``C[i][j]`` when ``j`` is
   the most probable of the classes whose probability reaches their threshold; rows
   reaching no threshold are not counted.
3. **Calibration**: each row of ``C`` is rescaled to the number of rows with that
   label, then rounded to integers keeping the row totals, so ``C[i][j]`` estimates
   ``n * Q[i][j]``, the number of rows labelled ``i`` whose true class is ``j``.
4. **Rank and prune**: *prune by class* flags, in each class ``i``, the
   ``sum_{j != i} C[i][j]`` rows with the lowest label quality score; *prune by noise rate*
   flags, for each off-diagonal cell ``(i, j)``, the ``C[i][j]`` rows labelled ``i`` with the
   largest margin ``p_j - p_i``; *both* is their intersection; *confident_joint* flags the
   rows counted off the diagonal of the (uncalibrated) confident joint.

Probabilities must be out-of-sample (cross-validated) for the estimate to hold. Ties are
broken by row index (lower first), so results are deterministic. No dependency beyond numpy.

Where cleanlab (2.x; compared in the tests, never imported here) differs, this follows the
paper: cleanlab also un-flags every row whose most probable class is its given label (this
changes *prune_by_class* and *confident_joint*; *prune_by_noise_rate* only when a noise cell
outnumbers the rows leaning towards it). cleanlab rounds tied fractions of the calibrated
joint towards the higher class index, this towards the lower. Its confidence-weighted
entropy scores a one-hot correct row 0, here 1 (the limit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from core.errors import InputError, format_list

__all__ = [
    "METHODS",
    "RANKINGS",
    "ConfidentLearning",
    "confident_learning",
    "label_quality_scores",
]

log = logging.getLogger(__name__)

RANKINGS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_joint")
# A probability counts as reaching its class threshold at ``p >= t - THRESHOLD_TOLERANCE``:
# the mean of identical values can exceed each of them by a rounding error.
THRESHOLD_TOLERANCE = 1e-6
SUM_TOLERANCE = 1e-3  # each row of ``probs`` must sum to 1 within this
_TINY = 1e-12  # floor under self-confidence in confidence_weighted_entropy


@dataclass(frozen=True)
class ConfidentLearning:
    """The result of :func:`confident_learning` for ``n`` rows and ``K`` classes.

    - ``thresholds`` (K,) float64: ``t_j`` = mean ``p_j`` over rows labelled ``j``
      (``inf`` for a class no row carries: nothing can be confidently in it).
    - ``confident_joint`` (K, K) int64: calibrated ``C[i][j]``, the estimated number of rows
      labelled ``i`` whose true class is ``j``; row ``i`` sums to the count of label ``i``.
    - ``issues`` (n,) bool: rows flagged as label issues by the chosen method.
    - ``scores`` (n,) float32 in [0, 1]: label quality under ``ranking``; low = likely wrong.
    - ``suggested`` (n,) int64: the most probable class among those whose probability
      reaches their threshold, else the most probable class.
    - ``ranking``: the name of the score in ``scores``.
    """

    thresholds: np.ndarray
    confident_joint: np.ndarray
    issues: np.ndarray
    scores: np.ndarray
    suggested: np.ndarray
    ranking: str

    def __len__(self) -> int:
        return len(self.issues)

    def ranked_issues(self) -> np.ndarray:
        """(m,) int64 positions of the flagged rows, lowest score first (ties by position)."""
        rows = np.flatnonzero(self.issues)
        return rows[np.lexsort((rows, self.scores[rows]))].astype(np.int64)


def _bad_rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    return f"{len(rows)} row(s): {format_list(rows.tolist())}"


def _check_choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def _check_labels(labels: object, n: int) -> np.ndarray:
    """(n,) int64 from integer labels (or floats holding whole numbers)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InputError(f"labels must be a 1-D array of class indices; got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InputError(f"labels and probs disagree on the number of rows: "
                         f"{arr.shape[0]} label(s), {n} row(s) of probabilities")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"labels must be integer class indices; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise InputError(f"labels must be whole numbers; not so in {_bad_rows(bad)}")
    return arr.astype(np.int64)


def _validate(labels: object, probs: object) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int64 labels and (n, K) float64 probabilities, checked.

    Raises InputError naming the problem and the first bad rows.
    """
    p = np.asarray(probs)
    if p.ndim == 1 and p.size == 0:
        p = p.reshape(0, 0)
    if p.ndim != 2:
        raise InputError(f"probs must be a 2-D (rows, classes) array; got shape {p.shape}")
    if not (np.issubdtype(p.dtype, np.floating) or np.issubdtype(p.dtype, np.integer)) or p.dtype == bool:
        raise InputError(f"probs must be numbers; got dtype {p.dtype}")
    n, k = p.shape
    y = _check_labels(labels, n)
    if n == 0:
        return y, p.astype(np.float64)
    if k < 2:
        raise InputError(f"confident learning needs at least 2 classes; probs has {k} column(s)")
    p = p.astype(np.float64)
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        raise InputError(f"probs hold NaN or infinite values in {_bad_rows(bad)}")
    bad = ((p < 0.0) | (p > 1.0)).any(axis=1)
    if bad.any():
        raise InputError(f"probs must lie in [0, 1]; values outside in {_bad_rows(bad)}")
    bad = np.abs(p.sum(axis=1) - 1.0) > SUM_TOLERANCE
    if bad.any():
        raise InputError(f"each row of probs must sum to 1 (within {SUM_TOLERANCE:g}); "
                         f"it does not in {_bad_rows(bad)}")
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise InputError(f"labels must be class indices in [0, {k}); out of range in {_bad_rows(bad)} "
                         f"(values {format_list(np.unique(y[bad]).tolist())})")
    return y, p


def _scores(labels: np.ndarray, probs: np.ndarray, ranking: str) -> np.ndarray:
    """(n,) float64 label quality in [0, 1] (inputs already checked)."""
    rows = np.arange(len(labels))
    self_conf = probs[rows, labels]
    if ranking == "self_confidence":
        return self_conf
    if ranking == "normalized_margin":
        others = probs.copy()
        others[rows, labels] = -np.inf
        return (self_conf - others.max(axis=1) + 1.0) / 2.0
    # confidence_weighted_entropy: r = normalised entropy / self-confidence; score log(1 + r) / r,
    # which falls from 1 (r -> 0: certain and right) towards 0 (uncertain or confidently other).
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(probs), 0.0)
    entropy = -plogp.sum(axis=1) / np.log(probs.shape[1])
    ratio = entropy / np.maximum(self_conf, _TINY)
    safe = np.where(ratio > 0, ratio, 1.0)
    return np.clip(np.where(ratio > 0, np.log1p(safe) / safe, 1.0), 0.0, 1.0)


def label_quality_scores(labels: np.ndarray, probs: np.ndarray, *,
                         ranking: str = "self_confidence") -> np.ndarray:
    """(n,) float32 label quality in [0, 1] per row; low = the label is more likely wrong.

    ``labels`` (n,) int in [0, K); ``probs`` (n, K) predicted probabilities. ``ranking``:

    - ``self_confidence`` (default): ``p[label]``;
    - ``normalized_margin``: ``(p[label] - max_{j != label} p[j] + 1) / 2``;
    - ``confidence_weighted_entropy``: with ``r = H(p) / log(K) / p[label]``,
      ``log(1 + r) / r`` (1 when ``r`` = 0).

    Raises InputError for an unknown ranking or bad inputs (see :func:`confident_learning`).
    """
    _check_choice(ranking, "ranking", RANKINGS)
    y, p = _validate(labels, probs)
    if len(y) == 0:
        return np.zeros(0, dtype=np.float32)
    return _scores(y, p, ranking).astype(np.float32)


def _thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(K,) mean ``p_j`` over rows labelled ``j``; ``inf`` for classes nobody carries."""
    k = probs.shape[1]
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=probs[np.arange(len(labels)), labels], minlength=k)
    return np.divide(sums, counts, out=np.full(k, np.inf), where=counts > 0)


def _confident_class(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(n,) int64 the most probable class among those at or above their threshold; -1 if none.

    Ties go to the lower class index (``argmax``)."""
    above = probs >= thresholds - THRESHOLD_TOLERANCE
    masked = np.where(above, probs, -1.0)
    best = masked.argmax(axis=1)
    return np.where(above.any(axis=1), best, -1).astype(np.int64)


def _raw_joint(labels: np.ndarray, confident: np.ndarray, k: int) -> np.ndarray:
    """(K, K) int64 counts of (given label, confident class) over rows with a confident class."""
    counted = confident >= 0
    flat = labels[counted] * k + confident[counted]
    return np.bincount(flat, minlength=k * k).reshape(k, k).astype(np.int64)


def _round_rows(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round each row of non-negative ``values`` to integers summing to ``totals`` (largest
    remainder: the row's floors, plus one for the largest fractions; ties to lower columns)."""
    floors = np.floor(values)
    out = floors.astype(np.int64)
    fractions = values - floors
    short = totals - out.sum(axis=1)
    for i in np.flatnonzero(short > 0):
        cols = np.arange(values.shape[1])
        order = np.lexsort((cols, -fractions[i]))
        out[i, order[: short[i]]] += 1
    return out


def _calibrate(raw: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(K, K) int64: each row of ``raw`` rescaled to sum to ``counts``, rounded.

    Every class with rows has a confident row (the one with the highest ``p_i`` reaches the
    mean ``t_i``); should rounding ever leave a row of ``raw`` empty, its count goes on the
    diagonal rather than vanish."""
    rows = raw.sum(axis=1)
    scaled = np.divide(raw * counts[:, None].astype(np.float64), rows[:, None],
                       out=np.zeros(raw.shape), where=rows[:, None] > 0)
    empty = np.flatnonzero((rows == 0) & (counts > 0))
    scaled[empty, empty] = counts[empty]
    return _round_rows(scaled, counts)


def _lowest(rows: np.ndarray, key: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` entries of ``rows`` with the lowest ``key`` (ties: lower row first)."""
    if count <= 0:
        return rows[:0]
    if count < len(rows):  # a partial sort: the count-th lowest value, then ties by row
        kth = np.partition(key, count - 1)[count - 1]
        keep = np.flatnonzero(key < kth)
        tied = np.flatnonzero(key == kth)
        keep = np.concatenate([keep, tied[np.argsort(rows[tied], kind="stable")][:count - len(keep)]])
        rows, key = rows[keep], key[keep]
    return rows[np.lexsort((rows, key))[:count]]


def _prune_by_class(labels: np.ndarray, scores: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """(n,) bool: in each class ``i``, the ``sum_{j != i} C[i][j]`` rows with the lowest score."""
    flagged = np.zeros(len(labels), dtype=bool)
    for i in range(joint.shape[0]):
        rows = np.flatnonzero(labels == i)
        flagged[_lowest(rows, scores[rows], int(joint[i].sum() - joint[i, i]))] = True
    return flagged


def _prune_by_noise_rate(labels: np.ndarray, probs: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """(n,) bool: for each cell ``(i, j)``, ``i != j``, the ``C[i][j]`` rows labelled ``i`` with
    the largest margin ``p_j - p_i``."""
    flagged = np.zeros(len(labels), dtype=bool)
    k = joint.shape[0]
    for i in range(k):
        rows = np.flatnonzero(labels == i)
        for j in range(k):
            if j != i and joint[i, j] > 0:
                margin = probs[rows, j] - probs[rows, i]
                flagged[_lowest(rows, -margin, int(joint[i, j]))] = True
    return flagged


def _empty(k: int, ranking: str) -> ConfidentLearning:
    return ConfidentLearning(thresholds=np.full(k, np.inf), confident_joint=np.zeros((k, k), np.int64),
                             issues=np.zeros(0, bool), scores=np.zeros(0, np.float32),
                             suggested=np.zeros(0, np.int64), ranking=ranking)


def confident_learning(labels: np.ndarray, probs: np.ndarray, *, ranking: str = "self_confidence",
                       method: str = "prune_by_noise_rate") -> ConfidentLearning:
    """Find label issues by confident learning (Northcutt et al., JAIR 2021).

    ``labels`` (n,) int class indices in [0, K); ``probs`` (n, K) out-of-sample predicted
    probabilities, each row summing to 1 (within 1e-3). ``ranking`` (default
    ``self_confidence``; one of :data:`RANKINGS`) scores each row (see
    :func:`label_quality_scores`) and orders the rows *prune_by_class* picks. ``method``:

    - ``prune_by_noise_rate`` (default, the paper's best): per off-diagonal cell ``(i, j)`` of
      the calibrated confident joint, its count of rows labelled ``i`` with the largest
      ``p_j - p_i``;
    - ``prune_by_class``: per class ``i``, its off-diagonal count of rows labelled ``i`` with the
      lowest score;
    - ``both``: rows flagged by both of the above;
    - ``confident_joint``: rows whose confident class differs from their label.

    Zero rows give an empty result. Deterministic: ties go to the lower row index.
    Raises InputError for an unknown ranking or method, mismatched shapes, NaN/inf, values
    outside [0, 1], rows not summing to 1, labels outside [0, K), or K < 2.
    """
    _check_choice(ranking, "ranking", RANKINGS)
    _check_choice(method, "method", METHODS)
    y, p = _validate(labels, probs)
    n, k = p.shape
    if n == 0:
        return _empty(k, ranking)
    scores = _scores(y, p, ranking)
    thresholds = _thresholds(y, p)
    confident = _confident_class(p, thresholds)
    suggested = np.where(confident >= 0, confident, p.argmax(axis=1)).astype(np.int64)
    counts = np.bincount(y, minlength=k).astype(np.int64)
    raw = _raw_joint(y, confident, k)
    joint = _calibrate(raw, counts)
    if method == "confident_joint":
        issues = (confident >= 0) & (confident != y)
    elif method == "prune_by_class":
        issues = _prune_by_class(y, scores, joint)
    elif method == "prune_by_noise_rate":
        issues = _prune_by_noise_rate(y, p, joint)
    else:
        issues = _prune_by_class(y, scores, joint) & _prune_by_noise_rate(y, p, joint)
    log.debug("confident learning (%s): %d of %d rows flagged", method, int(issues.sum()), n)
    return ConfidentLearning(thresholds=thresholds, confident_joint=joint, issues=issues,
                             scores=scores.astype(np.float32), suggested=suggested, ranking=ranking)
