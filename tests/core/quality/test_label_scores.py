"""core.quality.label_scores: neighbour votes, calibration, combination, issue scores and order."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from core.quality.label_scores import (
    CALIBRATION_POWER,
    COMBINE_SMOOTHING,
    COMBINE_WEIGHT,
    DEFAULT_NEIGHBOUR_K,
    VOTE_TEMPERATURE,
    IssueScores,
    calibrate,
    class_thresholds,
    combine,
    issue_scores,
    neighbour_votes,
    rank,
    skill,
    skill_weight,
)

NEG = -np.inf

# --- neighbour votes ----------------------------------------------------------------------
# 6 indexed rows; codes: row 0 -> class 0, 1 -> 1, 2 unlabelled, 3 -> 1, 4 -> 0, 5 -> 2.
CODES = np.array([0, 1, -1, 1, 0, 2], dtype=np.int64)
# 3 query rows, 4 neighbours each, best first, padded with -1 / -inf.
SCORES = np.array([
    [0.9, 0.8, 0.7, 0.6],      # neighbours 1, 2 (unlabelled), 3, 4
    [0.5, NEG, NEG, NEG],      # neighbour 2 only (unlabelled): no evidence
    [0.9, 0.7, NEG, NEG],      # neighbours 0, 5
], dtype=np.float32)
POSITIONS = np.array([
    [1, 2, 3, 4],
    [2, -1, -1, -1],
    [0, 5, -1, -1],
], dtype=np.int64)


def test_plain_votes_by_hand_skip_unlabelled_and_padding():
    votes = neighbour_votes(SCORES, POSITIONS, CODES, 3, k=10, temperature=np.inf)
    assert votes.dtype == np.float32 and votes.shape == (3, 3)
    # row 0: labelled neighbours 1 (class 1), 3 (class 1), 4 (class 0): 1/3, 2/3, 0
    # row 1: only an unlabelled neighbour and padding: all zero
    # row 2: 0 (class 0), 5 (class 2): 1/2, 0, 1/2
    np.testing.assert_allclose(votes, [[1 / 3, 2 / 3, 0], [0, 0, 0], [0.5, 0, 0.5]], atol=1e-6)


def test_votes_use_the_first_k_labelled_neighbours():
    # k=2: row 0 keeps neighbours 1 and 3 (the unlabelled 2 does not use a place): all class 1
    votes = neighbour_votes(SCORES, POSITIONS, CODES, 3, k=2, temperature=np.inf)
    np.testing.assert_allclose(votes[0], [0, 1, 0], atol=1e-6)
    votes = neighbour_votes(SCORES, POSITIONS, CODES, 3, k=1, temperature=np.inf)
    np.testing.assert_allclose(votes, [[0, 1, 0], [0, 0, 0], [1, 0, 0]], atol=1e-6)


def test_similarity_weighted_votes_by_hand():
    # T = 0.1: weights exp((s - s_best) / 0.1) over labelled neighbours
    votes = neighbour_votes(SCORES, POSITIONS, CODES, 3, k=10, temperature=0.1)
    w = np.exp(np.array([0.0, -0.2, -0.3]) / 0.1)  # row 0: neighbours 1, 3 (class 1), 4 (class 0)
    np.testing.assert_allclose(votes[0], [w[2] / w.sum(), (w[0] + w[1]) / w.sum(), 0], rtol=1e-5)
    w2 = np.exp(np.array([0.0, -0.2]) / 0.1)  # row 2: neighbours 0 (class 0), 5 (class 2)
    np.testing.assert_allclose(votes[2], [w2[0] / w2.sum(), 0, w2[1] / w2.sum()], rtol=1e-5)
    assert not votes[1].any()


def test_votes_are_chunk_local():
    rng = np.random.default_rng(0)
    n, width = 50, 8
    codes = rng.integers(-1, 4, n)
    pos = np.stack([rng.choice(n, width, replace=False) for _ in range(n)])
    scores = -np.sort(-rng.uniform(0, 1, (n, width)), axis=1).astype(np.float32)
    pos[::7, 5:], scores[::7, 5:] = -1, -np.inf
    whole = neighbour_votes(scores, pos, codes, 4, k=5)
    parts = np.concatenate([neighbour_votes(scores[a:a + 13], pos[a:a + 13], codes, 4, k=5)
                            for a in range(0, n, 13)])
    np.testing.assert_array_equal(whole, parts)
    sums = whole.sum(axis=1)
    assert np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))


# --- calibration --------------------------------------------------------------------------
CAL_PROBS = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9], [0.0, 0.0]], dtype=np.float32)
CAL_GIVEN = np.array([0, 0, 1, 1, 0])
# t0 = mean p0 over rows labelled 0 with evidence = (.8 + .6) / 2 = .7 (the all-zero row 4 is
# not counted); t1 = (.7 + .9) / 2 = .8. Power 1: row 0 -> (.8/.7, .2/.8) = (1.142857, .25),
# renormalised (.820513, .179487); row 2 -> (.3/.7, .7/.8) = (.428571, .875) -> (.328767, .671233).


def test_class_thresholds_by_hand():
    np.testing.assert_allclose(class_thresholds(CAL_PROBS, CAL_GIVEN), [0.7, 0.8], rtol=1e-6)
    # a class no row carries is left as is (threshold 1)
    np.testing.assert_allclose(class_thresholds(np.array([[0.9, 0.1, 0.0]]), np.array([0])), [0.9, 1, 1])


def test_calibrate_by_hand():
    cal = calibrate(CAL_PROBS, CAL_GIVEN, power=1.0)
    assert cal.dtype == np.float32
    np.testing.assert_allclose(cal[0], [0.820513, 0.179487], rtol=1e-5)
    np.testing.assert_allclose(cal[2], [0.328767, 0.671233], rtol=1e-5)
    assert not cal[4].any()  # no evidence stays no evidence
    half = calibrate(CAL_PROBS, CAL_GIVEN, power=0.5)
    row0 = np.array([0.8 / 0.7 ** 0.5, 0.2 / 0.8 ** 0.5])
    np.testing.assert_allclose(half[0], row0 / row0.sum(), rtol=1e-5)


def test_calibrate_default_and_chunks():
    # the default power (0: measured not to help on uniform flips) only renormalises
    assert CALIBRATION_POWER == 0.0
    np.testing.assert_allclose(calibrate(CAL_PROBS, CAL_GIVEN), CAL_PROBS, atol=1e-7)
    t = class_thresholds(CAL_PROBS, CAL_GIVEN)
    whole = calibrate(CAL_PROBS, CAL_GIVEN, power=1.0)
    part = calibrate(CAL_PROBS[2:4], CAL_GIVEN[2:4], power=1.0, thresholds=t)
    np.testing.assert_allclose(part, whole[2:4], rtol=1e-6)


# --- issue scores and order ---------------------------------------------------------------


def test_issue_scores_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.0, 0.0, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    given = np.array([0, 2, 1, 0])
    res = issue_scores(probs, given)
    assert isinstance(res, IssueScores) and len(res) == 4
    np.testing.assert_allclose(res.score, [0.3, 0.7, 0.0, 0.5], atol=1e-6)
    # most likely other class; row 3's tie (p1 = p0 is the given) -> class 1
    np.testing.assert_array_equal(res.suggested, [1, 1, 0, 1])
    np.testing.assert_allclose(res.margin, [0.2 - 0.7, 0.6 - 0.3, -1.0, 0.0], atol=1e-6)
    np.testing.assert_array_equal(res.has, [True, True, False, True])
    assert res.score.dtype == np.float32 and res.suggested.dtype == np.int64


def test_suggestion_ties_go_to_the_more_common_label():
    probs = np.array([[0.2, 0.4, 0.4], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    given = np.array([0, 2, 2, 0])  # class 2 is carried by 2 rows, class 1 by none
    assert issue_scores(probs, given).suggested[0] == 2


def test_rank_score_then_margin_then_id():
    score = np.array([1.0, 1.0, 0.5, 1.0, 0.9], dtype=np.float32)
    margin = np.array([0.6, 1.0, 0.9, 0.6, -0.2], dtype=np.float32)
    ids = np.array(["d", "e", "a", "b", "c"])
    # score 1: margin 1 (e) first, then margin .6 tied: b before d; then .9 (c), then .5 (a)
    assert ids[rank(score, margin, ids)].tolist() == ["e", "b", "d", "c", "a"]
    res = IssueScores(score=score, suggested=np.zeros(5, np.int64), margin=margin, has=np.ones(5, bool))
    np.testing.assert_array_equal(res.order(ids), rank(score, margin, ids))


def test_margin_breaks_ties_of_plain_votes():
    # two rows whose 3 neighbours all disagree (score 1): one with all 3 for one other class
    # (margin 1) ranks above one split between two other classes (margin 2/3)
    scores = np.full((2, 3), 0.9, np.float32)
    codes = np.array([0, 0, 1, 1, 1, 2, 2], dtype=np.int64)
    pos = np.array([[2, 3, 4], [3, 5, 6]])
    votes = neighbour_votes(scores, pos, codes, 3, k=3, temperature=np.inf)
    res = issue_scores(votes, np.array([0, 0]))
    np.testing.assert_allclose(res.score, [1, 1])
    np.testing.assert_allclose(res.margin, [1, 2 / 3], rtol=1e-6)
    assert res.order(np.array(["z", "a"])).tolist() == [0, 1]


# --- combine ------------------------------------------------------------------------------


def test_combine_by_hand():
    nb = np.array([[0.0, 1.0], [0.0, 0.0]], dtype=np.float32)  # row 1: no labelled neighbour
    md = np.array([[0.8, 0.2], [0.3, 0.7]], dtype=np.float32)
    given = np.array([0, 1])
    out = combine(nb, md, given, weight=0.5, smoothing=0.01)
    a = np.sqrt(np.array([0.01 * 0.81, 1.01 * 0.21]))  # geometric mean of the smoothed rows
    np.testing.assert_allclose(out[0], a / a.sum(), rtol=1e-5)
    np.testing.assert_allclose(out[1], (md[1] + 0.01) / 1.02, rtol=1e-5)  # the model's alone
    assert out.dtype == np.float32
    # weight 1 keeps the neighbours' order, 0 the model's
    assert combine(nb, md, given, weight=1.0)[0].argmax() == 1
    assert combine(nb, md, given, weight=0.0)[0].argmax() == 0
    assert 0 < COMBINE_WEIGHT < 1 and COMBINE_SMOOTHING > 0


def _planted(seed: int = 3, n: int = 1200, classes: int = 6, fraction: float = 0.1):
    """Two views of the same rows: in view A (the neighbours') classes 0, 1, 2 sit on top of
    each other, in view B (the model's) classes 3, 4, 5 do. So neighbours and model make
    different mistakes. Returns views, true labels, noisy labels and the flipped positions."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    centres_a = rng.standard_normal((classes, 8)) * 3
    centres_a[1], centres_a[2] = centres_a[0] + 0.3, centres_a[0] - 0.3
    centres_b = rng.standard_normal((classes, 8)) * 3
    centres_b[4], centres_b[5] = centres_b[3] + 0.3, centres_b[3] - 0.3
    view_a = centres_a[truth] + rng.standard_normal((n, 8))
    view_b = centres_b[truth] + rng.standard_normal((n, 8))
    flipped = rng.choice(n, round(fraction * n), replace=False)
    noisy = truth.copy()
    noisy[flipped] = (truth[flipped] + rng.integers(1, classes, len(flipped))) % classes
    return view_a, view_b, noisy, np.sort(flipped)


def _knn(view: np.ndarray, k: int):
    """Exact cosine kNN of every row, self excluded: (scores, positions)."""
    unit = view / np.linalg.norm(view, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    pos = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, pos, axis=1).astype(np.float32), pos.astype(np.int64)


def _model(view: np.ndarray, noisy: np.ndarray, classes: int, folds: int = 5) -> np.ndarray:
    """Out-of-fold nearest-centroid probabilities (softmax of -squared distance / 2)."""
    probs = np.zeros((len(view), classes))
    fold = np.arange(len(view)) % folds
    for f in range(folds):
        train, test = fold != f, fold == f
        centroids = np.stack([view[train & (noisy == c)].mean(axis=0) for c in range(classes)])
        logits = -((view[test, None, :] - centroids[None]) ** 2).sum(axis=2) / 2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        probs[test] = p / p.sum(axis=1, keepdims=True)
    return probs.astype(np.float32)


def test_combined_finds_more_flips_than_either_source():
    view_a, view_b, noisy, flipped = _planted()
    classes = int(noisy.max()) + 1
    scores, pos = _knn(view_a, DEFAULT_NEIGHBOUR_K + 5)
    votes = neighbour_votes(scores, pos, noisy, classes)
    model = _model(view_b, noisy, classes)
    ids = np.arange(len(noisy))

    def hits(probs) -> int:
        return int(np.isin(issue_scores(probs, noisy).order(ids)[:len(flipped)], flipped).sum())

    nb_hits = hits(calibrate(votes, noisy))
    md_hits = hits(calibrate(model, noisy))
    both_hits = hits(combine(votes, model, noisy))
    # each source alone misses the flips between the classes its view cannot tell apart
    assert both_hits >= max(nb_hits, md_hits) + 0.05 * len(flipped), (nb_hits, md_hits, both_hits)


def test_skill_by_hand():
    given = np.array([0, 0, 0, 1, 1])  # base rate 3/5: always guessing class 0
    right = np.eye(2, dtype=np.float32)[given]
    assert skill(right, given) == 1.0
    always_zero = np.tile(np.float32([1.0, 0.0]), (5, 1))
    assert skill(always_zero, given) == 0.0  # no better than the commonest label
    four = right.copy()
    four[4] = [1.0, 0.0]  # 4 of 5 right: (0.8 - 0.6) / 0.4
    assert skill(four, given) == pytest.approx(0.5)
    four[0] = 0.0  # a row without evidence is left out: 3 of 4 right, base 2/4
    assert skill(four, given) == pytest.approx(0.5)
    assert skill(np.zeros((3, 2), np.float32), np.array([0, 1, 1])) == 0.0
    assert skill(right[:3], given[:3]) == 0.0  # one label only: nothing to measure


def test_skill_weight_keeps_the_weight_for_equals_and_drops_a_blind_source():
    given = np.array([0, 0, 1, 1])
    right, wrong = np.eye(2, dtype=np.float32)[given], np.eye(2, dtype=np.float32)[1 - given]
    assert skill_weight(right, right, given) == pytest.approx(COMBINE_WEIGHT)
    assert skill_weight(wrong, right, given) == 0.0
    assert skill_weight(right, wrong, given) == 1.0
    assert skill_weight(wrong, wrong, given, weight=0.3) == 0.3


def test_combined_with_blind_neighbours_does_as_well_as_the_model():
    """An embedding that knows nothing of the labels (random vectors) must not drag the
    model down: with the fixed weight it does, with the skill weight it does not."""
    _, view_b, noisy, flipped = _planted()
    classes = int(noisy.max()) + 1
    blind = np.random.default_rng(9).standard_normal(view_b.shape)
    scores, pos = _knn(blind, DEFAULT_NEIGHBOUR_K)
    votes = neighbour_votes(scores, pos, noisy, classes)
    sharp = np.log(np.maximum(_model(view_b, noisy, classes), 1e-30)) / 32  # as accurate, less sure
    model = np.exp(sharp - sharp.max(axis=1, keepdims=True))
    model = (model / model.sum(axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(len(noisy))

    def hits(probs) -> int:
        return int(np.isin(issue_scores(probs, noisy).order(ids)[:len(flipped)], flipped).sum())

    md_hits = hits(calibrate(model, noisy))
    assert md_hits >= 0.8 * len(flipped)
    assert skill_weight(votes, model, noisy) < 0.05
    assert hits(combine(votes, model, noisy)) >= md_hits - 2
    assert hits(combine(votes, model, noisy, weight=COMBINE_WEIGHT)) < md_hits - 0.1 * len(flipped)


# --- input validation ---------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda: neighbour_votes(SCORES, POSITIONS[:, :3], CODES, 3), "same shape"),
    (lambda: neighbour_votes(np.where(SCORES == 0.9, np.nan, SCORES), POSITIONS, CODES, 3), "NaN"),
    (lambda: neighbour_votes(SCORES, POSITIONS + 10, CODES, 3), "past the 6 indexed rows"),
    (lambda: neighbour_votes(SCORES, POSITIONS, CODES, 2), r"codes must be -1"),
    (lambda: neighbour_votes(SCORES, POSITIONS, CODES.astype(float), 3), "integer"),
    (lambda: neighbour_votes(SCORES, POSITIONS, CODES, 3, k=0), "k must be"),
    (lambda: neighbour_votes(SCORES, POSITIONS, CODES, 3, temperature=0.0), "temperature"),
    (lambda: calibrate(CAL_PROBS, CAL_GIVEN[:3]), "one label per row"),
    (lambda: calibrate(CAL_PROBS, np.array([0, 0, 1, 2, 0])), r"in \[0, 2\)"),
    (lambda: calibrate(np.array([[np.nan, 1.0]]), np.array([0])), "NaN"),
    (lambda: calibrate(np.array([[0.5, 0.2]]), np.array([0])), "sum to 1"),
    (lambda: calibrate(CAL_PROBS, CAL_GIVEN, power=1.0, thresholds=np.ones(3)), "thresholds"),
    (lambda: calibrate(np.ones(3), np.array([0, 0, 0])), "2-D"),
    (lambda: issue_scores(CAL_PROBS[:4], CAL_GIVEN), "one label per row"),
    (lambda: combine(CAL_PROBS, CAL_PROBS[:, :1], CAL_GIVEN), "model_probs"),
    (lambda: combine(CAL_PROBS[:4], CAL_PROBS[1:], CAL_GIVEN[:4]), "must sum to 1"),
    (lambda: combine(CAL_PROBS[:3], CAL_PROBS[:4], CAL_GIVEN[:3]), "same shape"),
    (lambda: combine(CAL_PROBS[:4], CAL_PROBS[:4], CAL_GIVEN[:4], weight=1.5), "weight"),
    (lambda: rank(np.zeros(3), np.zeros(2), np.arange(3)), "one length"),
])
def test_bad_input_raises_input_error(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_constants_are_the_measured_defaults():
    assert DEFAULT_NEIGHBOUR_K >= 1 and VOTE_TEMPERATURE > 0
    empty = issue_scores(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    assert len(empty) == 0 and rank(empty.score, empty.margin, np.zeros(0)).shape == (0,)


def test_suggestion_ties_break_by_count_then_class_index():
    # class counts: 0 -> 1 row, 1 -> 2 rows, 2 -> 2 rows, 3 -> 1 row
    given = np.array([0, 1, 1, 2, 2, 3])
    probs = np.array([
        [0.0, 0.5, 0.5, 0.0],   # tie 1 vs 2 (same count) -> the lower index, 1
        [0.4, 0.2, 0.0, 0.4],   # tie 0 vs 3 (same count) -> 0
        [0.0, 1.0, 0.0, 0.0],   # nothing else -> the most common other label, 2
        [0.0, 0.0, 0.0, 0.0],   # no evidence -> the most common other label, 1
        [0.3, 0.0, 0.4, 0.3],   # tie 0 vs 3 -> 0
        [0.0, 0.0, 0.0, 1.0],   # nothing else -> 1
    ], dtype=np.float32)
    np.testing.assert_array_equal(issue_scores(probs, given).suggested, [1, 0, 2, 1, 0, 1])
