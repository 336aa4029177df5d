"""The --where grammar: each form gives the RowFilter the filter panel would build, and a
malformed expression is a WhereError naming the spot (never evaluated as code)."""

from __future__ import annotations

import math

import pytest

from core.errors import InputError
from core.filters import RowFilter, WhereError, parse_where, row_filter_from_json


@pytest.mark.parametrize("text, expected", [
    ("label = cat", RowFilter(labels=("cat",))),
    ("label in (cat, 'big dog')", RowFilter(labels=("cat", "big dog"))),
    ('text ~ "arrived broken"', RowFilter(text_contains="arrived broken")),
    ("tag = sent AND tag in (a, b)", RowFilter(tags=("sent", "a", "b"))),
    ("slice = batch-1", RowFilter(slice_name="batch-1")),
    ("modality = image", RowFilter(modality="image")),
    ("flagged", RowFilter(flagged_only=True)),
    ("source = web", RowFilter(categories=(("source", ("web",)),))),
    ("source in (web, book) and source = web", RowFilter(categories=(("source", ("web",)),))),
    ("price >= 2", RowFilter(ranges=(("price", 2.0, math.inf),))),
    ("price <= 2.5", RowFilter(ranges=(("price", -math.inf, 2.5),))),
    ("price between 1 and 3 and price >= 2", RowFilter(ranges=(("price", 2.0, 3.0),))),
    ("label_issue_score >= 0.5", RowFilter(ranges=(("label_issue_score", 0.5, math.inf),))),
    ("'my col' = 'x=y'", RowFilter(categories=(("my col", ("x=y",)),))),
])
def test_each_form_builds_the_panels_filter(text, expected):
    assert parse_where(text) == expected


@pytest.mark.parametrize("text, mentions", [
    ("", "empty"),
    ("label", "expected =, ~, >=, <=, in or between after 'label'"),
    ("label =", "a value after label ="),
    ("price >= cheap", "'cheap' is not a number"),
    ("price > 3", "position 7"),
    ("label = cat or label = dog", "'or' (position 13): expected 'and'"),
    ('text ~ "unclosed', "unclosed quote"),
    ("text = cat", "text ~ WORDS"),
    ("label ~ cat", "works on text only"),
    ("modality = video", "unknown modality 'video'"),
    ("price between 3 and 1", "empty (3 > 1)"),
    ("label in (cat", "')' to close the list"),
    ("__import__('os').system('true')", "position"),
    ('{"lables": ["cat"]}', "unknown RowFilter field(s) 'lables'"),
    ('{"labels": "cat"}', "'labels' must be a list of strings"),
    ("{not json", "malformed RowFilter JSON"),
])
def test_malformed_expressions_name_the_problem(text, mentions):
    with pytest.raises(WhereError) as info:
        parse_where(text)
    assert mentions in str(info.value)
    assert isinstance(info.value, InputError)  # the CLI exits 2 on it


def test_the_json_form_round_trips_the_panels_filter():
    flt = RowFilter(labels=("3",), categories=(("source", ("web",)),), ranges=(("score", 0.0, 0.5),),
                    text_contains="x", tags=("t",), slice_name="s", modality="image", flagged_only=True)
    import json

    assert parse_where(json.dumps(flt.to_json())) == flt
    assert row_filter_from_json(flt.to_json()) == flt
