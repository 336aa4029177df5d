"""core.quality.confident: confident learning (Northcutt et al., JAIR 2021), by hand and against cleanlab."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from core.quality.confident import (
    METHODS,
    RANKINGS,
    ConfidentLearning,
    _round_rows,
    confident_learning,
    label_quality_scores,
)

PLANT_SEED = 20240619
N, K, FLIP_FRACTION, CONCENTRATION = 2000, 5, 0.10, 4.0

# --- 1. a small example computed by hand -----------------------------------------------
# 9 rows, 3 classes. Row 2 is a "1" labelled 0, row 6 and row 8 are "0"s labelled 1 and 2,
# row 5 is uncertain.
HAND_LABELS = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
HAND_PROBS = np.array([
    [0.8, 0.1, 0.1],    # 0  label 0
    [0.7, 0.2, 0.1],    # 1  label 0
    [0.1, 0.8, 0.1],    # 2  label 0, looks like 1
    [0.1, 0.8, 0.1],    # 3  label 1
    [0.2, 0.7, 0.1],    # 4  label 1
    [0.3, 0.3, 0.4],    # 5  label 1, uncertain
    [0.6, 0.35, 0.05],  # 6  label 1, looks like 0
    [0.1, 0.1, 0.8],    # 7  label 2
    [0.6, 0.1, 0.3],    # 8  label 2, looks like 0
])
# Thresholds, mean p_j over rows labelled j:
#   t0 = (.8 + .7 + .1) / 3 = .5333   t1 = (.8 + .7 + .3 + .35) / 4 = .5375   t2 = (.8 + .3) / 2 = .55
# Classes at/above threshold per row, and the most probable of them (the confident class):
#   0: {0} -> 0   1: {0} -> 0   2: {1} -> 1   3: {1} -> 1   4: {1} -> 1
#   5: none (.3 < t0, .3 < t1, .4 < t2) -> not counted   6: {0} (.6 >= t0; .35 < t1) -> 0
#   7: {2} -> 2   8: {0} (.6 >= t0; .3 < t2) -> 0
# Raw confident joint C[label][confident]:  [[2, 1, 0], [1, 2, 0], [1, 0, 1]]
# Calibrated: rows rescaled to the label counts (3, 4, 2):
#   row 0: [2, 1, 0] (sum 3 already)   row 2: [1, 0, 1] (sum 2 already)
#   row 1: [1, 2, 0] * 4/3 = [1.333, 2.667, 0] -> floors [1, 2, 0], 1 short, largest fraction
#          (.667, class 1) gets it -> [1, 3, 0]
HAND_THRESHOLDS = np.array([1.6 / 3, 2.15 / 4, 1.1 / 2])
HAND_JOINT = np.array([[2, 1, 0], [1, 3, 0], [1, 0, 1]])
# Suggested: the confident class, else argmax (row 5: argmax = 2).
HAND_SUGGESTED = np.array([0, 0, 1, 1, 1, 2, 0, 2, 0])
# Self-confidence p[label]:
HAND_SELF = np.array([0.8, 0.7, 0.1, 0.8, 0.7, 0.3, 0.35, 0.8, 0.3])
# Normalized margin ((p[label] - max other) + 1) / 2:
#   .7->.85  .5->.75  -.7->.15  .7->.85  .5->.75  -.1->.45  -.25->.375  .7->.85  -.3->.35
HAND_MARGIN = np.array([0.85, 0.75, 0.15, 0.85, 0.75, 0.45, 0.375, 0.85, 0.35])
# Flagged rows per method:
# - confident_joint: confident class != label -> rows 2 (1 vs 0), 6 (0 vs 1), 8 (0 vs 2).
# - prune_by_noise_rate: cell (0,1) = 1 row of class 0 with the largest p1 - p0: (-.7, -.5, .7)
#   -> row 2; cell (1,0) = 1 row of class 1 with the largest p0 - p1: (-.7, -.5, 0, .25) -> row 6;
#   cell (2,0) = 1 row of class 2 with the largest p0 - p2: (-.7, .3) -> row 8.
# - prune_by_class, self-confidence: class 0 off-diagonal 1 -> lowest p0 (.8, .7, .1) -> row 2;
#   class 1: 1 -> lowest p1 (.8, .7, .3, .35) -> row 5; class 2: 1 -> lowest p2 (.8, .3) -> row 8.
# - prune_by_class, normalized margin: class 1 lowest of (.85, .75, .45, .375) -> row 6.
# - both (self-confidence): {2, 5, 8} & {2, 6, 8} = {2, 8}.
HAND_FLAGGED = {
    ("confident_joint", "self_confidence"): [2, 6, 8],
    ("prune_by_noise_rate", "self_confidence"): [2, 6, 8],
    ("prune_by_noise_rate", "normalized_margin"): [2, 6, 8],  # the margin p_j - p_i, not the ranking
    ("prune_by_class", "self_confidence"): [2, 5, 8],
    ("prune_by_class", "normalized_margin"): [2, 6, 8],
    ("both", "self_confidence"): [2, 8],
    ("both", "normalized_margin"): [2, 6, 8],
}


def test_hand_example_thresholds_joint_and_scores():
    res = confident_learning(HAND_LABELS, HAND_PROBS)
    assert isinstance(res, ConfidentLearning) and res.ranking == "self_confidence"
    np.testing.assert_allclose(res.thresholds, HAND_THRESHOLDS, rtol=0, atol=1e-12)
    assert res.confident_joint.dtype == np.int64
    np.testing.assert_array_equal(res.confident_joint, HAND_JOINT)
    np.testing.assert_array_equal(res.confident_joint.sum(axis=1), np.bincount(HAND_LABELS))
    assert res.suggested.dtype == np.int64
    np.testing.assert_array_equal(res.suggested, HAND_SUGGESTED)
    assert res.scores.dtype == np.float32
    np.testing.assert_allclose(res.scores, HAND_SELF, atol=1e-7)
    margin = label_quality_scores(HAND_LABELS, HAND_PROBS, ranking="normalized_margin")
    assert margin.dtype == np.float32
    np.testing.assert_allclose(margin, HAND_MARGIN, atol=1e-7)
    # flagged rows, lowest score first: row 2 (.1) then row 8 (.3) then row 6 (.35)
    np.testing.assert_array_equal(res.ranked_issues(), [2, 8, 6])


@pytest.mark.parametrize(("method", "ranking"), sorted(HAND_FLAGGED))
def test_hand_example_flagged_rows(method, ranking):
    res = confident_learning(HAND_LABELS, HAND_PROBS, method=method, ranking=ranking)
    assert res.issues.dtype == bool and res.issues.shape == (9,)
    assert np.flatnonzero(res.issues).tolist() == HAND_FLAGGED[(method, ranking)]


def test_ties_go_to_the_lower_row():
    # Class 0: rows 0-2 sure of 0, row 3 sure of 1, rows 4-6 split evenly; class 1: rows 7-8.
    # t0 = (3 * .9 + .1 + 3 * .5) / 7 = .614, t1 = .9; rows 4-6 reach no threshold.
    # Raw C row 0 = [3, 1] -> * 7/4 = [5.25, 1.75] -> [5, 2]: two rows of class 0 are noise.
    # Noise rate, cell (0, 1): margins p1 - p0 = .8 (row 3), then 0, 0, 0 (rows 4-6) -> 3, 4.
    # By class: the 2 lowest p0: .1 (row 3), then .5 three times -> row 4.
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1]] * 3 + [[0.1, 0.9]] + [[0.5, 0.5]] * 3 + [[0.1, 0.9]] * 2)
    for method in ("prune_by_noise_rate", "prune_by_class", "both"):
        res = confident_learning(labels, probs, method=method)
        np.testing.assert_array_equal(res.confident_joint, [[5, 2], [0, 2]])
        assert np.flatnonzero(res.issues).tolist() == [3, 4], method
    # equal fractions when rounding the calibrated joint: the lower class gets the unit
    np.testing.assert_array_equal(_round_rows(np.array([[4.5, 1.5], [1.5, 4.5]]), np.array([6, 6])),
                                  [[5, 1], [2, 4]])


def test_identical_rows_reach_their_own_threshold():
    # t1 is the mean of three equal .7s, which floating point may put a hair above .7
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7], [0.3, 0.7]])
    res = confident_learning(labels, probs, method="confident_joint")
    np.testing.assert_array_equal(res.confident_joint, [[2, 0], [0, 3]])
    assert not res.issues.any()


def test_confidence_weighted_entropy_in_unit_interval():
    assert "confidence_weighted_entropy" in RANKINGS
    probs = np.array([[1.0, 0.0, 0.0], [0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.0, 0.5, 0.5]])
    s = label_quality_scores(np.array([0, 0, 0, 0]), probs, ranking="confidence_weighted_entropy")
    assert s[0] == 1.0 and 1.0 > s[1] > s[2] > s[3] >= 0.0  # certain and right = 1; confidently other ~ 0


def test_empty_input_gives_empty_result():
    res = confident_learning(np.zeros(0, np.int64), np.zeros((0, 3)))
    assert len(res) == 0 and res.issues.shape == (0,) and res.scores.shape == (0,)
    assert res.suggested.shape == (0,) and res.confident_joint.shape == (3, 3)
    assert res.thresholds.shape == (3,)
    assert label_quality_scores([], []).shape == (0,)


def test_class_without_rows_is_never_confident():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.7, 0.1, 0.2], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    res = confident_learning(labels, probs)
    assert np.isinf(res.thresholds[2])
    np.testing.assert_array_equal(res.confident_joint[2], [0, 0, 0])
    np.testing.assert_array_equal(res.confident_joint.sum(axis=1), [2, 2, 0])


# --- 3. validation ---------------------------------------------------------------------
GOOD_PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])


@pytest.mark.parametrize(("labels", "probs", "needle"), [
    ([0, 1], GOOD_PROBS, "disagree on the number of rows: 2 label(s), 3 row(s)"),
    ([0, 1, 0], GOOD_PROBS[0], "2-D (rows, classes)"),
    ([[0, 1, 0]], GOOD_PROBS, "1-D array"),
    ([0, 1, 0], np.array([[0.9, 0.1], [np.nan, 0.8], [0.5, 0.5]]), "NaN or infinite values in 1 row(s): 1"),
    ([0, 1, 0], np.array([[0.9, 0.1], [0.2, 0.8], [np.inf, 0.5]]), "NaN or infinite values in 1 row(s): 2"),
    ([0, 1, 0], np.array([[1.2, -0.2], [0.2, 0.8], [-0.5, 1.5]]), "outside in 2 row(s): 0, 2"),
    ([0, 1, 0], np.array([[0.9, 0.1], [0.2, 0.7], [0.5, 0.6]]), "sum to 1 (within 0.001); it does not in 2 row(s): 1, 2"),
    ([0, 2, -1], GOOD_PROBS, "in [0, 2); out of range in 2 row(s): 1, 2 (values -1, 2)"),
    ([0, 0.5, 1], GOOD_PROBS, "whole numbers; not so in 1 row(s): 1"),
    (["a", "b", "a"], GOOD_PROBS, "integer class indices"),
    ([0, 0, 0], np.ones((3, 1)), "at least 2 classes; probs has 1 column(s)"),
])
def test_validation_errors(labels, probs, needle):
    with pytest.raises(InputError) as err:
        confident_learning(np.asarray(labels), probs)
    assert needle in str(err.value)
    with pytest.raises(InputError):
        label_quality_scores(np.asarray(labels), probs)


def test_bad_rows_are_listed_first_few():
    probs = np.tile([0.5, 0.6], (12, 1))
    with pytest.raises(InputError) as err:
        confident_learning(np.zeros(12, np.int64), probs)
    assert "12 row(s): 0, 1, 2, 3, 4 (+7 more)" in str(err.value)


def test_rows_summing_to_one_within_tolerance_pass():
    probs = np.array([[0.9, 0.1005], [0.2, 0.7995]])
    assert confident_learning(np.array([0, 1]), probs).issues.tolist() == [False, False]


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"ranking": "margin"}, "unknown ranking 'margin'; choose one of self_confidence, normalized_margin"),
    ({"method": "prune"}, "unknown method 'prune'; choose one of prune_by_noise_rate, prune_by_class, both"),
])
def test_unknown_choices(kwargs, needle):
    with pytest.raises(InputError) as err:
        confident_learning(np.array([0, 1, 0]), GOOD_PROBS, **kwargs)
    assert needle in str(err.value)


# --- 2 and 4. planted noise, against cleanlab ------------------------------------------
def planted(seed: int = PLANT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, probs, flipped mask): Dirichlet probabilities around the true class, 10% of the
    labels moved to another class uniformly at random."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, K, N)
    alpha = np.ones((N, K))
    alpha[np.arange(N), true] += CONCENTRATION
    probs = np.stack([rng.dirichlet(a) for a in alpha])
    labels = true.copy()
    flip = rng.choice(N, round(FLIP_FRACTION * N), replace=False)
    labels[flip] = (true[flip] + rng.integers(1, K, len(flip))) % K
    flipped = np.zeros(N, dtype=bool)
    flipped[flip] = True
    return labels, probs, flipped


def test_planted_noise_agrees_with_cleanlab():
    cleanlab = pytest.importorskip("cleanlab")
    from cleanlab.count import compute_confident_joint
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels, probs, _ = planted()
    res = confident_learning(labels, probs)
    theirs = find_label_issues(labels, probs, filter_by="prune_by_noise_rate")
    agreement = float(np.mean(res.issues == theirs))
    assert agreement >= 0.99, f"agreement with cleanlab {cleanlab.__version__}: {agreement:.4f}"
    # the calibrated joint differs at most by tie-breaking in rounding (a unit moved within a row)
    cj = compute_confident_joint(labels, probs, calibrate=True)
    np.testing.assert_array_equal(res.confident_joint.sum(axis=1), cj.sum(axis=1))
    assert np.abs(res.confident_joint - cj).sum() <= 2 * K
    for ranking in RANKINGS:
        mine = label_quality_scores(labels, probs, ranking=ranking)
        ref = get_label_quality_scores(labels, probs, method=ranking)
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-6, err_msg=ranking)
    # the other methods match once cleanlab's extra step (un-flag rows whose argmax is the
    # given label; not in the paper) is applied to ours
    agrees = probs.argmax(axis=1) == labels
    for ours, filter_by in (("prune_by_class", "prune_by_class"), ("both", "both"),
                            ("confident_joint", "confident_learning")):
        mine = confident_learning(labels, probs, method=ours).issues
        ref = find_label_issues(labels, probs, filter_by=filter_by)
        assert np.mean((mine & ~agrees) == ref) >= 0.99, ours


def test_planted_flips_are_found():
    labels, probs, flipped = planted()
    res = confident_learning(labels, probs)
    worst = np.lexsort((np.arange(N), res.scores))[:200]
    assert flipped[worst].mean() >= 0.8
    assert flipped[res.issues].mean() >= 0.8  # precision of the flagged rows
    assert flipped[res.issues].sum() >= 0.8 * flipped.sum()  # recall
    np.testing.assert_array_equal(res.confident_joint.sum(axis=1), np.bincount(labels, minlength=K))
    # ranked_issues lists the flagged rows lowest score first
    ranked = res.ranked_issues()
    assert set(ranked.tolist()) == set(np.flatnonzero(res.issues).tolist())
    assert np.all(np.diff(res.scores[ranked]) >= 0)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_and_order_free(method):
    labels, probs, _ = planted()
    a = confident_learning(labels, probs, method=method)
    b = confident_learning(labels.copy(), probs.copy(), method=method)
    np.testing.assert_array_equal(a.issues, b.issues)
    perm = np.random.default_rng(0).permutation(N)
    c = confident_learning(labels[perm], probs[perm], method=method)
    np.testing.assert_array_equal(c.confident_joint, a.confident_joint)
    np.testing.assert_array_equal(c.issues, a.issues[perm])  # no ties in continuous probabilities
