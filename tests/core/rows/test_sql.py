"""core.rows.sql: a RowFilter compiled to SQL (DuckDB) selects exactly the rows the pandas
reference (core.filters.filter_mask) selects, over random tables and random filters with
NULLs, NaN, unicode, quotes and percent signs; and no user text is ever read as SQL."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import SchemaError
from core.filters import RowFilter, filter_mask
from core.rows import compile_filter, open_frame

# Every character but "İ" (and "Σ", lower-cased by context in Python): the two whose
# lower-case differs between Python and DuckDB (see core.rows.sql).
ALPHABET = st.characters(codec="utf-8", exclude_characters="İΣ\x00",
                         exclude_categories=("Cs",))
WORDS = ["cat", "Dog", "50%", "a_b", "it's", 'say "hi"', "ünï", "日本", "🙂", "x' OR '1'='1",
         "%", "_", "\\", ""]
value = st.one_of(st.sampled_from(WORDS), st.text(ALPHABET, max_size=6))
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=32),
                    st.integers(-5, 5).map(float))


@st.composite
def tables(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 25))
    ids = draw(st.lists(st.text(ALPHABET, min_size=1, max_size=5), min_size=n, max_size=n,
                        unique=True))
    maybe = lambda s: st.one_of(st.none(), s)
    frame = pd.DataFrame({
        "id": ids,
        "modality": draw(st.lists(st.sampled_from(["image", "text"]), min_size=n, max_size=n)),
        "text": draw(st.lists(maybe(value), min_size=n, max_size=n)),
        "label": draw(st.lists(maybe(st.sampled_from(WORDS[:8])), min_size=n, max_size=n)),
        "source": draw(st.lists(maybe(value), min_size=n, max_size=n)),
        "score": draw(st.lists(numbers, min_size=n, max_size=n)),
        "count": draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)),
        "ok": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "ingest_issue": draw(st.lists(maybe(st.just("unreadable image")), min_size=n, max_size=n)),
    })
    return frame.astype({"text": object, "label": object, "source": object})


@st.composite
def filters(draw, frame: pd.DataFrame) -> RowFilter:
    pool = list(frame["label"].dropna()) + list(frame["source"].dropna()) + WORDS
    pick = lambda: st.lists(st.sampled_from(pool), max_size=3).map(tuple)
    categories = []
    for col in draw(st.lists(st.sampled_from(["source", "score", "count", "ok"]), max_size=2, unique=True)):
        extra = {"score": ["1", "1.0", "-2", "nan", "x"], "count": ["0", "2", "2.0", "a"],
                 "ok": ["True", "False", "true"]}.get(col, [])
        values = draw(st.lists(st.sampled_from(pool + extra), min_size=1, max_size=3))
        categories.append((col, tuple(values)))
    ranges = []
    for col in draw(st.lists(st.sampled_from(["score", "count", "ok"]), max_size=2, unique=True)):
        lo = draw(st.one_of(st.just(-math.inf), st.floats(-6, 6)))
        hi = draw(st.one_of(st.just(math.inf), st.floats(-6, 6)))
        ranges.append((col, min(lo, hi), max(lo, hi)))
    texts = [t for t in frame["text"].dropna() if t] + list(frame["id"])
    needle = draw(st.one_of(st.just(""), st.sampled_from(WORDS[:-1]),
                            st.sampled_from(texts or ["x"]).map(lambda t: t[: max(1, len(t) // 2)].upper())))
    return RowFilter(
        labels=draw(pick()), categories=tuple(categories), ranges=tuple(ranges),
        text_contains=needle, tags=draw(st.lists(st.sampled_from(["red", "blue", "none"]), max_size=2).map(tuple)),
        slice_name=draw(st.one_of(st.none(), st.just("s1"))),
        modality=draw(st.one_of(st.none(), st.sampled_from(["image", "text"]))),
        flagged_only=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_sql_selects_exactly_the_rows_pandas_selects(data):
    frame = data.draw(tables())
    flt = data.draw(filters(frame))
    ids = list(frame["id"])
    tags = {rid: tag for rid, tag in zip(ids, data.draw(st.lists(
        st.sampled_from([[], ["red"], ["blue"], ["red", "blue"]]), min_size=len(ids), max_size=len(ids))))}
    slice_ids = data.draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []
    expected = np.flatnonzero(filter_mask(frame, flt, tags_by_row=tags, slice_ids=slice_ids))
    with open_frame(frame, tags_by_row=tags, slice_ids=slice_ids) as query:
        got = query.positions(flt)
        assert got.tolist() == expected.tolist(), flt
        assert query.count(flt) == len(expected)
        assert query.ids(flt) == [ids[i] for i in expected]


def test_values_are_parameters_never_sql():
    flt = RowFilter(labels=("x' OR '1'='1",), text_contains="'; DROP TABLE t; --",
                    categories=(("source", ("a\") OR (\"1\"=\"1",)),))
    clause = compile_filter(flt, {"id": "VARCHAR", "label": "VARCHAR", "text": "VARCHAR",
                                  "source": "VARCHAR"})
    for typed in ("x' OR '1'='1", "DROP TABLE", '"1"="1'):
        assert typed not in clause.sql
    assert "x' OR '1'='1" in clause.params
    frame = pd.DataFrame({"id": ["a", "b"], "label": ["x", "y"], "text": ["t", "u"], "source": ["a", "b"]})
    with open_frame(frame) as query:
        assert query.count(flt) == 0


def test_a_column_name_is_an_identifier_and_unknown_ones_are_named():
    frame = pd.DataFrame({"id": ["a", "b"], 'we"ird col': ["p", "q"]})
    with open_frame(frame) as query:
        assert query.ids(RowFilter(categories=(('we"ird col', ("q",)),))) == ["b"]
        with pytest.raises(SchemaError, match="unknown column 'nope'.*we\"ird col"):
            query.count(RowFilter(ranges=(("nope", 0.0, 1.0),)))


def test_numbers_compare_as_numbers_and_booleans_as_true_false():
    frame = pd.DataFrame({"id": ["a", "b", "c"], "n": [3.0, 2.5, None], "k": [3, 2, 1],
                          "flag": [True, False, True]})
    with open_frame(frame) as query:
        assert query.ids(RowFilter(categories=(("n", ("3",)),))) == ["a"]
        assert query.ids(RowFilter(categories=(("k", ("3.0", "1")),))) == ["a", "c"]
        assert query.ids(RowFilter(categories=(("flag", ("False",)),))) == ["b"]
        assert query.ids(RowFilter(categories=(("n", ("not a number",)),))) == []
