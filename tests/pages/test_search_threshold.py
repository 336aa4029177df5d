"""The default score threshold of the search pages keeps the k-th row: the k-th score is
rounded down to 3 decimals, never up (round(-0.7466, 3) = -0.747 hid it)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui.search_widgets import DEFAULT_K, floor_threshold


@pytest.mark.parametrize(("score", "expected"), [
    (-0.7466, -0.747), (0.12345, 0.123), (-0.7474, -0.748), (0.1236, 0.123), (0.5, 0.5), (-0.5, -0.5), (0.123, 0.123),
    (0.0, 0.0), (-0.0001, -0.001), (1.0, 1.0), (0.9999999, 0.999),
    (float(np.float32(0.123)), 0.123), (float(np.float32(-0.7466)), -0.747),
])
def test_floor_threshold_rounds_down_to_three_decimals(score, expected):
    assert floor_threshold(score) == expected
    assert floor_threshold(score) <= score


def test_floor_threshold_never_above_the_score():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(-1, 1, 20_000),
                             rng.uniform(-1, 1, 20_000).astype(np.float32).astype(np.float64),
                             np.round(rng.uniform(-1, 1, 20_000), 3)])
    floored = np.array([floor_threshold(s) for s in scores])
    assert (floored <= scores).all()
    assert (scores - floored < 0.001 + 1e-12).all()
    assert (floored.astype(np.float32) <= scores.astype(np.float32)).all()  # float32 pools


def _slider_app(kth: float, n: int) -> None:
    import numpy as np
    import streamlit as st

    from core.search import SearchResult
    from ui.search_widgets import DEFAULT_K, _threshold_slider

    scores = np.linspace(0.9, kth, DEFAULT_K, dtype=np.float32)
    scores = np.concatenate([scores, np.linspace(kth - 0.01, kth - 0.2, n - DEFAULT_K,
                                                 dtype=np.float32)])
    pool = SearchResult(tuple(f"r{i}" for i in range(n)), scores)
    t = _threshold_slider(pool, "thr")
    st.write(f"shown={len(pool.above(t))}")


@pytest.mark.parametrize("kth", [-0.7466, 0.12345, -0.7474, 0.1236])  # the last two rounded up
def test_default_threshold_keeps_the_kth_row(kth):
    at = AppTest.from_function(_slider_app, args=(kth, 80), default_timeout=30).run()
    assert not at.exception, at.exception
    value = at.slider(key="thr:threshold").value
    assert value == floor_threshold(kth) and value <= float(np.float32(kth))
    assert any(m.value == f"shown={DEFAULT_K}" for m in at.markdown)
