"""Label-issue scores from neighbours, from a model, and both combined (issue 19), as arrays.

Pure numpy functions on class-probability matrices; no index, no ids beyond the final order.
``C`` is the number of classes, ``m`` the number of labelled rows scored (up to ~1M: keep
``(m, C)`` float32), ``given`` (m,) int64 the label each row carries, in [0, C).

Three sources, one pipeline::

    votes = neighbour_votes(scores, positions, codes, C)     # chunk by chunk, (m, C)
    nb    = issue_scores(calibrate(votes, given), given)      # neighbours
    md    = issue_scores(calibrate(model_probs, given), given)  # a model's out-of-sample probs
    both  = issue_scores(combine(votes, model_probs, given), given)
    order = rank(both.score, both.margin, ids)                # worst first

- :func:`neighbour_votes` takes one chunk of neighbour rows (as yielded by
  :func:`core.quality.knn.neighbour_chunks`) and never needs the whole set.
- :func:`calibrate` and :func:`combine` are global when calibration is on (``power`` > 0):
  they need every labelled row's probabilities for the per-class thresholds
  (:func:`class_thresholds`; pass ``thresholds=`` to calibrate chunk by chunk once computed).
  With the default power 0 they are row by row too.
- :func:`issue_scores` and :func:`rank` are per row again.

The per-class threshold is confident learning's ``t_j`` (Northcutt et al., JAIR 2021; see
:mod:`core.quality.confident`): the mean probability of class ``j`` over the rows labelled
``j``. Dividing by it (and renormalising) puts every class on the same footing, so a class
whose members are naturally spread out (low self-vote) is not flagged wholesale; off by
default (:data:`CALIBRATION_POWER`), as it did not help on uniformly flipped labels.

The constants (k, vote temperature, calibration power, combination weight and smoothing)
were chosen with ``bench/bench_quality.py --parts c --sweep`` on tuning seeds 100-104; the
figures it reports are on other seeds (0-4), so they are not tuned to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError, format_list
from core.quality.confident import _thresholds

__all__ = [
    "CALIBRATION_POWER",
    "COMBINE_SMOOTHING",
    "COMBINE_WEIGHT",
    "DEFAULT_NEIGHBOUR_K",
    "VOTE_TEMPERATURE",
    "IssueScores",
    "calibrate",
    "class_thresholds",
    "combine",
    "issue_scores",
    "neighbour_votes",
    "rank",
    "skill",
    "skill_weight",
]

# Chosen by ``bench/bench_quality.py --parts c --sweep`` (tuning seeds 100-104, 5% and 10% flips,
# digits + the overlap set; reported seeds 0-4 are separate). P@N (N = flipped rows) is flat for
# k = 20-40 (within 0.005) and peaks at 30; below 15 it drops (k=10: -0.06 on the overlap set).
# A neighbour pass narrower than this uses what it has (k=15: -0.018 on the tuning seeds).
DEFAULT_NEIGHBOUR_K = 30
# Neighbour weight exp((sim - best sim) / T). Measured: similarity weighting never beat the plain
# vote of the first k (T=inf) by more than the seed spread, and any fixed T depends on the encoder's
# similarity scale (digits peaked at T=0.02, the overlap set at inf), so the default is the plain vote.
VOTE_TEMPERATURE = float("inf")
# calibrate divides class j's column by t_j ** power (0 = off, 1 = confident learning's t_j).
# Measured: 0.5 and 1 lower the neighbours' P@N by 0.3-3 points (paired over seeds) and change the
# combined score by < 0.2 (noise), with uniformly random flips, so it is off by default; pass
# power= for noise that depends on the class.
CALIBRATION_POWER = 0.0
# combine: weighted geometric mean of the two distributions (a product of experts), each smoothed
# by COMBINE_SMOOTHING so one zero cannot veto a class. Geometric beat the arithmetic mix by ~0.015
# P@N; weight 0.6 (neighbours) / 0.4 (model) and smoothing 0.005 peaked (0.5-0.7, 0.005-0.02 within 0.005).
# The weight is then moved by each source's skill (:func:`skill_weight`): a source that agrees with
# the labels no better than always guessing the commonest class gets no say.
COMBINE_WEIGHT = 0.6
COMBINE_SMOOTHING = 0.005
# Floor under a class threshold, so a class whose rows never vote for it cannot blow up.
THRESHOLD_FLOOR = 1e-3
_SUM_TOLERANCE = 1e-3


# ---------------------------------------------------------------- validation


def _bad_rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    return f"{len(rows)} row(s): {format_list(rows.tolist())}"


def _check_probs(probs: object, name: str, *, allow_zero_rows: bool = True) -> np.ndarray:
    """(m, C) float32 probabilities: finite, in [0, 1], each row summing to 1 (or all zero)."""
    p = np.asarray(probs)
    if p.ndim != 2:
        raise InputError(f"{name} must be a 2-D (rows, classes) array; got shape {p.shape}")
    if p.dtype == bool or not (np.issubdtype(p.dtype, np.floating) or np.issubdtype(p.dtype, np.integer)):
        raise InputError(f"{name} must be numbers; got dtype {p.dtype}")
    p = p.astype(np.float32, copy=False)
    if not len(p):
        return p
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        raise InputError(f"{name} hold NaN or infinite values in {_bad_rows(bad)}")
    bad = ((p < 0.0) | (p > 1.0 + 1e-6)).any(axis=1)
    if bad.any():
        raise InputError(f"{name} must lie in [0, 1]; values outside in {_bad_rows(bad)}")
    sums = p.sum(axis=1, dtype=np.float64)
    bad = np.abs(sums - 1.0) > _SUM_TOLERANCE
    if allow_zero_rows:
        bad &= sums != 0.0
    if bad.any():
        zero = " (or be all zero: no evidence)" if allow_zero_rows else ""
        raise InputError(f"each row of {name} must sum to 1{zero}; it does not in {_bad_rows(bad)}")
    return p


def _check_given(given: object, m: int, n_classes: int) -> np.ndarray:
    """(m,) int64 labels in [0, n_classes)."""
    g = np.asarray(given)
    if g.ndim != 1 or g.shape[0] != m:
        raise InputError(f"given must be a 1-D array with one label per row ({m}); got shape {g.shape}")
    if g.dtype == bool or not np.issubdtype(g.dtype, np.integer):
        if not np.issubdtype(g.dtype, np.floating) or not (np.isfinite(g) & (g == np.round(g))).all():
            raise InputError(f"given must hold integer class indices; got dtype {g.dtype}")
    g = g.astype(np.int64)
    bad = (g < 0) | (g >= n_classes)
    if bad.any():
        raise InputError(f"given must be class indices in [0, {n_classes}); out of range in {_bad_rows(bad)}")
    return g


# ---------------------------------------------------------------- neighbour votes


def neighbour_votes(scores: np.ndarray, positions: np.ndarray, codes: np.ndarray, n_classes: int,
                    k: int = DEFAULT_NEIGHBOUR_K, *, temperature: float = VOTE_TEMPERATURE) -> np.ndarray:
    """(m, C) float32: the class votes of each row's first ``k`` labelled neighbours.

    ``scores`` (m, K) float32 cosine similarities, best first, ``-inf`` padding; ``positions``
    (m, K) int64 indexed positions, ``-1`` padding (one chunk of a kNN pass, self excluded);
    ``codes`` (n,) int64 class of each indexed position, ``-1`` = unlabelled (skipped, so
    ``K`` should exceed ``k`` when few rows are labelled). Neighbour ``i`` weighs
    ``exp((s_i - s_best) / temperature)`` with ``s_best`` the row's most similar labelled
    neighbour (default ``temperature`` :data:`VOTE_TEMPERATURE` = ``inf``: an unweighted vote,
    which measured best; ``k`` default :data:`DEFAULT_NEIGHBOUR_K`, so the pass needs that many
    labelled neighbours per row to use them all).
    Each row sums to 1, or is all zero when it has no labelled neighbour (padding only).

    Raises InputError for mismatched shapes, NaN scores, positions out of range, codes
    outside [-1, C), k < 1 or a temperature that is not > 0.
    """
    s, pos = np.asarray(scores), np.asarray(positions)
    codes = np.asarray(codes)
    if s.ndim != 2 or pos.shape != s.shape:
        raise InputError(f"scores and positions must be 2-D arrays of the same shape; got {s.shape} and {pos.shape}")
    if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
        raise InputError(f"codes must be a 1-D integer array; got shape {codes.shape}, dtype {codes.dtype}")
    if isinstance(n_classes, bool) or int(n_classes) < 1:
        raise InputError(f"n_classes must be >= 1, got {n_classes!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a whole number >= 1, got {k!r}")
    if not isinstance(temperature, (int, float, np.number)) or not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature!r}")
    n_classes = int(n_classes)
    if codes.size and (codes.min() < -1 or codes.max() >= n_classes):
        raise InputError(f"codes must be -1 (unlabelled) or class indices in [0, {n_classes})")
    if np.isnan(s).any():
        raise InputError(f"scores hold NaN in {_bad_rows(np.isnan(s).any(axis=1))}")
    if pos.size and pos.max() >= len(codes):
        raise InputError(f"positions point past the {len(codes)} indexed rows")
    m = s.shape[0]
    valid = (pos >= 0) & np.isfinite(s)
    ncode = np.where(valid, codes[np.clip(pos, 0, None)], -1)
    labelled = ncode >= 0
    labelled &= np.cumsum(labelled, axis=1) <= k
    s = s.astype(np.float32, copy=False)
    best = np.where(labelled, s, -np.inf).max(axis=1, initial=-np.inf)
    has = np.isfinite(best)
    if np.isinf(temperature):
        weights = labelled.astype(np.float32)
    else:
        shifted = np.where(labelled, s - np.where(has, best, 0.0)[:, None], -np.inf)
        weights = np.exp(shifted / np.float32(temperature)).astype(np.float32)
    flat = (np.arange(m)[:, None] * n_classes + ncode)[labelled]
    mass = np.bincount(flat, weights=weights[labelled], minlength=m * n_classes)
    mass = mass.reshape(m, n_classes)
    total = mass.sum(axis=1, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0).astype(np.float32)


# ---------------------------------------------------------------- calibration


def class_thresholds(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    """(C,) float64 confident learning's ``t_j`` (:mod:`core.quality.confident`): mean
    ``probs[:, j]`` over the rows labelled ``j`` that have evidence (a non-zero row); 1 for a
    class without such rows (left as is)."""
    p = _check_probs(probs, "probs")
    g = _check_given(given, len(p), p.shape[1])
    has = p.sum(axis=1) > 0
    t = _thresholds(g[has], p[has])
    return np.where(np.isfinite(t), t, 1.0)


def calibrate(probs: np.ndarray, given: np.ndarray, *, power: float = CALIBRATION_POWER,
              thresholds: np.ndarray | None = None) -> np.ndarray:
    """(m, C) float32: per-class calibrated probabilities, rows renormalised to 1.

    Column ``j`` is divided by ``max(t_j, 1e-3) ** power`` where ``t_j`` =
    :func:`class_thresholds` (the mean self-probability of class ``j``); default ``power``
    :data:`CALIBRATION_POWER`. All-zero rows (no evidence) stay zero. ``thresholds`` (C,)
    computed beforehand on every labelled row lets this run on one chunk at a time.

    Raises InputError for non-probabilities, NaN, or ``given`` not matching ``probs``.
    """
    p = _check_probs(probs, "probs")
    g = _check_given(given, len(p), p.shape[1])
    if thresholds is None and float(power) == 0.0:
        t = np.ones(p.shape[1])  # no calibration: skip the global pass
    else:
        t = class_thresholds(p, g) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if t.shape != (p.shape[1],) or not np.isfinite(t).all():
        raise InputError(f"thresholds must be {p.shape[1]} finite values; got shape {t.shape}")
    scale = (1.0 / np.maximum(t, THRESHOLD_FLOOR) ** float(power)).astype(np.float32)
    out = p * scale[None, :]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def skill(probs: np.ndarray, given: np.ndarray) -> float:
    """How much better than chance ``probs``' (m, C) most probable class matches ``given``,
    in [0, 1]: ``(accuracy - base) / (1 - base)``, clipped, where base is the share of the
    commonest label (what always guessing it scores). Rows of all zeros (no evidence) are
    left out; 0.0 when no row is left or every row has the same label."""
    p = np.asarray(probs)
    has = p.sum(axis=1) > 0
    if not has.any():
        return 0.0
    g = np.asarray(given)[has]
    base = np.bincount(g).max() / len(g)
    if base >= 1.0:
        return 0.0
    accuracy = float(np.mean(np.argmax(p[has], axis=1) == g))
    return float(np.clip((accuracy - base) / (1.0 - base), 0.0, 1.0))


def skill_weight(neighbour_probs: np.ndarray, model_probs: np.ndarray, given: np.ndarray,
                 weight: float = COMBINE_WEIGHT) -> float:
    """The neighbours' share of :func:`combine`, ``weight`` moved by each source's :func:`skill`:
    ``w s_n / (w s_n + (1 - w) s_m)``. Two sources as good as each other keep ``weight``; one that
    knows nothing of the labels (say, an embedding blind to them) gets none; ``weight`` if both know nothing."""
    s_n, s_m = skill(neighbour_probs, given), skill(model_probs, given)
    total = weight * s_n + (1.0 - weight) * s_m
    return float(weight) if total <= 0 else float(weight * s_n / total)


def combine(neighbour_probs: np.ndarray, model_probs: np.ndarray, given: np.ndarray, *,
            weight: float | None = None, power: float = CALIBRATION_POWER,
            smoothing: float = COMBINE_SMOOTHING) -> np.ndarray:
    """(m, C) float32: neighbour evidence and a model's probabilities as one distribution.

    Both inputs are calibrated (:func:`calibrate`, ``power``), smoothed (``+ smoothing``) and
    merged by a weighted geometric mean, ``nb ** weight * model ** (1 - weight)``, renormalised
    (``weight`` None, the default: :func:`skill_weight` of the two, starting from
    :data:`COMBINE_WEIGHT`; smoothing :data:`COMBINE_SMOOTHING`): a class both sources find
    unlikely stays unlikely, and each source can overrule a lukewarm other. A row without
    labelled neighbours (all zero) takes the model's alone. ``model_probs`` must be out-of-sample
    (cross-validated) with every row summing to 1. The result is ready for
    :func:`issue_scores` (do not calibrate it again). Global when ``power`` > 0 (thresholds).

    Raises InputError for mismatched shapes, NaN, weight outside [0, 1] or smoothing <= 0.
    """
    nb = _check_probs(neighbour_probs, "neighbour_probs")
    md = _check_probs(model_probs, "model_probs", allow_zero_rows=False)
    if nb.shape != md.shape:
        raise InputError(f"neighbour_probs and model_probs must have the same shape; got {nb.shape} and {md.shape}")
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise InputError(f"weight must lie in [0, 1], got {weight!r}")
    if not smoothing > 0:
        raise InputError(f"smoothing must be > 0, got {smoothing!r}")
    nb_cal, md_cal = calibrate(nb, given, power=power), calibrate(md, given, power=power)  # checks given
    if weight is None:
        weight = skill_weight(nb, md, np.asarray(given, dtype=np.int64))
    has = (nb.sum(axis=1) > 0)[:, None]
    w = np.where(has, np.float32(weight), np.float32(0.0))
    eps = np.float32(smoothing)
    out = np.exp(w * np.log(nb_cal + eps) + (1 - w) * np.log(md_cal + eps))
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- scores and order


@dataclass(frozen=True)
class IssueScores:
    """Per row of :func:`issue_scores` (m rows):

    - ``score`` (m,) float32 in [0, 1], ``1 - p[given]``: high = the label is likely wrong;
    - ``suggested`` (m,) int64: the most probable other class (ties: the more common label);
    - ``margin`` (m,) float32 in [-1, 1], ``p[suggested] - p[given]``: breaks ties of score;
    - ``has`` (m,) bool: the row had evidence (False: all-zero row; score 0, margin -1).
    """

    score: np.ndarray
    suggested: np.ndarray
    margin: np.ndarray
    has: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    def order(self, ids: np.ndarray) -> np.ndarray:
        """(m,) int64 row order, worst first: :func:`rank` of this score and margin."""
        return rank(self.score, self.margin, ids)


def issue_scores(probs: np.ndarray, given: np.ndarray) -> IssueScores:
    """:class:`IssueScores` of ``probs`` (m, C) (calibrated, rows summing to 1 or all zero)
    against ``given`` (m,). Raises InputError for mismatched shapes or NaN."""
    p = _check_probs(probs, "probs")
    m, c = p.shape
    g = _check_given(given, m, c)
    rows = np.arange(m)
    has = p.sum(axis=1) > 0
    p_given = p[rows, g]
    # columns by label count, most common first: argmax takes the first of tied maxima, so ties
    # (and rows without evidence) go to the more common label, then the lower class index
    by_count = np.argsort(-np.bincount(g, minlength=c), kind="stable")
    other = p[:, by_count]
    other[rows, np.argsort(by_count)[g]] = -1.0
    suggested = by_count[other.argmax(axis=1)].astype(np.int64) if c > 1 else np.zeros(m, np.int64)
    p_other = p[rows, suggested] if c > 1 else np.zeros(m, np.float32)
    score = np.where(has, np.clip(1.0 - p_given, 0.0, 1.0), 0.0).astype(np.float32)
    margin = np.where(has, np.clip(p_other - p_given, -1.0, 1.0), -1.0).astype(np.float32)
    return IssueScores(score=score, suggested=suggested, margin=margin, has=has)


def rank(score: np.ndarray, margin: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(m,) int64 order: ``score`` descending, then ``margin`` descending, then ``ids`` ascending."""
    score, margin, ids = np.asarray(score), np.asarray(margin), np.asarray(ids)
    if not (score.shape == margin.shape == ids.shape) or score.ndim != 1:
        raise InputError(f"score, margin and ids must be 1-D of one length; got {score.shape}, "
                         f"{margin.shape}, {ids.shape}")
    return np.lexsort((ids, -margin.astype(np.float64), -score.astype(np.float64))).astype(np.int64)
