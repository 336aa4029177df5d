"""The text-search benchmark's evaluation sets: API-docs queries, emoji images, metrics."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pytest
from PIL import Image

from bench import text_search_sets as sets
from core.demo.apidocs import collect_api_docs


@pytest.fixture(scope="module")
def api_docs() -> pd.DataFrame:
    """The api-docs demo table, collected once for this module (a few seconds)."""
    return collect_api_docs()


def test_apidocs_queries_pass_their_own_check(api_docs):
    sets.check_apidocs_queries(api_docs)
    assert len(sets.APIDOCS_QUERIES) >= 16
    assert len({q for q, _ in sets.APIDOCS_QUERIES}) == len(sets.APIDOCS_QUERIES)
    libraries = api_docs.set_index("qualname")["library"]
    used = {libraries[a] for _, a in sets.APIDOCS_QUERIES}
    assert used == {"numpy", "pandas", "scikit-learn", "scipy", "torch"}


def test_name_words_split_on_non_letters_and_camel_case():
    assert sets.name_words("sklearn.cluster.KMeans") == {"k", "means"}
    assert sets.name_words("numpy.cumsum") == {"cumsum"}
    assert sets.name_words("torch.nn.MSELoss") == {"mse", "loss"}
    assert sets.name_words("sklearn.model_selection.train_test_split") == {"train", "test", "split"}
    assert sets.name_words("scipy.interpolate.interp1d") == {"interp", "d"}


def test_check_catches_a_planted_shared_word_and_a_missing_answer():
    table = pd.DataFrame({"qualname": ["sklearn.cluster.KMeans", "numpy.cumsum"]})
    sets.check_apidocs_queries(table, [("group points around centroids", "sklearn.cluster.KMeans")])
    with pytest.raises(ValueError, match=r"'clustering with MEANS' shares means"):
        sets.check_apidocs_queries(table, [("clustering with MEANS", "sklearn.cluster.KMeans")])
    with pytest.raises(ValueError, match=r"shares cumsum"):
        sets.check_apidocs_queries(table, [("a cumsum-like total", "numpy.cumsum")])
    with pytest.raises(ValueError, match=r"'numpy\.nope' .* not in the api-docs table"):
        sets.check_apidocs_queries(table, [("running total", "numpy.nope")])


def test_metrics():
    ranked = ["a", "b", "c", "d"]
    assert sets.precision_at_k(ranked, {"a", "c", "z"}, k=2) == 0.5
    assert sets.precision_at_k(ranked, {"a", "c"}, k=10) == 0.2  # a short list still divides by k
    assert sets.hit_at_k(ranked, "c", k=3) and not sets.hit_at_k(ranked, "d", k=3)
    with pytest.raises(ValueError, match="k must be at least 1"):
        sets.hit_at_k(ranked, "a", k=0)


def test_missing_font_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sets, "EMOJI_FONT", tmp_path / "absent.ttf")
    with pytest.raises(RuntimeError, match="apt-get install fonts-noto-color-emoji"):
        sets.build_emoji_images(tmp_path / "out")


@pytest.mark.skipif(not sets.EMOJI_FONT.is_file(), reason="fonts-noto-color-emoji not installed")
def test_emoji_images_are_neutral_distinct_and_labelled(tmp_path):
    truth = sets.build_emoji_images(tmp_path, size=96)
    assert list(truth.columns) == ["image", "topic", "emoji_name"]
    counts = truth["topic"].value_counts()
    assert set(counts.index) == set(sets.EMOJI_QUERIES)
    assert counts.min() >= 25, counts.to_dict()
    assert truth["image"].tolist() == [f"img_{i:04d}.png" for i in range(1, len(truth) + 1)]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == truth["image"].tolist()
    # shuffled: the topics are not laid out in runs
    assert (truth["topic"] != truth["topic"].shift()).sum() > len(truth) / 2

    digests = set()
    for name in truth["image"]:
        with Image.open(tmp_path / name) as im:
            assert im.mode == "RGB" and im.size == (96, 96)
            digests.add(hashlib.sha256(im.tobytes()).hexdigest())
    assert len(digests) == len(truth)

    rows = pd.read_csv(tmp_path / "rows.csv")
    assert list(rows.columns) == ["image"]
    assert rows["image"].tolist() == truth["image"].tolist()
    assert pd.read_csv(tmp_path / "truth.csv").equals(truth[["image", "topic"]])
    written = (tmp_path / "rows.csv").read_text()
    assert not re.search(r"animal|food|vehicle|person|plant|building", written, re.IGNORECASE)
