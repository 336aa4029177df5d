from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import SchemaError
from core.filters import RowFilter, apply_filter, filter_mask, profile_columns


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "modality": ["text"] * 4,
        "text": ["red apple", "green pear", None, "Red wine"],
        "label": ["fruit", "fruit", None, "drink"],
        "source": ["web", "book", "web", None],
        "price": [1.0, 2.5, np.nan, 9.0],
    })


def test_conditions_combine_and_nulls_never_match(rows):
    flt = RowFilter(labels=("fruit",), ranges=(("price", 0.0, 2.0),))
    assert apply_filter(rows, flt)["id"].tolist() == ["a"]
    assert apply_filter(rows, RowFilter(text_contains="red"))["id"].tolist() == ["a", "d"]
    assert apply_filter(rows, RowFilter(categories=(("source", ("web",)),)))["id"].tolist() == ["a", "c"]
    assert filter_mask(rows, RowFilter(tags=("x",)), tags_by_row={"b": ["x", "y"]}).tolist() == [
        False, True, False, False]
    assert apply_filter(rows, RowFilter(slice_name="s"), slice_ids=["d", "c"])["id"].tolist() == ["c", "d"]


def test_unknown_column_names_the_columns(rows):
    with pytest.raises(SchemaError, match="'colour'.*price"):
        filter_mask(rows, RowFilter(ranges=(("colour", 0, 1),)))


def test_conditions_on_absent_columns_are_dropped_for_other_tables(rows):
    flt = RowFilter(labels=("fruit",), ranges=(("uniqueness", 0.5, 1.0),))
    narrowed = flt.applicable_to(rows.columns)
    assert narrowed.ranges == () and narrowed.labels == ("fruit",)
    assert apply_filter(rows, narrowed)["id"].tolist() == ["a", "b"]


def test_profile_offers_labels_categories_and_ranges(rows):
    profile = profile_columns(rows)
    assert profile.labels == ("drink", "fruit")
    assert profile.categorical["source"] == ("book", "web")
    assert profile.numeric["price"] == (1.0, 9.0)
