"""Evaluation sets for the text-search benchmark: labelled emoji drawings and API-docs queries.

1. :func:`build_emoji_images` renders a few hundred real drawings in six topics (animal,
   food, vehicle, person, plant, building) from the Noto Color Emoji font, saved under
   neutral names (``img_0001.png``...) in a seeded shuffled order. ``rows.csv`` (column
   ``image`` only) is what the benchmark ingests; ``truth.csv`` (image, topic) is the
   answer key. Nothing the app reads carries a caption, topic or emoji name, so a text
   query can only be answered from the pixels. :data:`EMOJI_QUERIES` holds one query per topic.
2. :data:`APIDOCS_QUERIES`: (query, answer qualname) pairs over the ``api-docs`` demo table
   (:func:`core.demo.apidocs.collect_api_docs`), phrased the way a user would ask, sharing no
   word with the answer's name; :func:`check_apidocs_queries` enforces that.
3. Metrics: :func:`precision_at_k`, :func:`hit_at_k`.

    from bench.text_search_sets import build_emoji_images
    truth = build_emoji_images(Path("/tmp/emoji"))   # DataFrame image, topic, emoji_name
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_FONT_PACKAGE = "fonts-noto-color-emoji"
FONT_PIXELS = 109            # the one bitmap strike of Noto Color Emoji (136 x 128 glyphs)
CANVAS = (136, 128)
CROP_MARGIN = 4              # white pixels kept around the drawn bounding box
WHITE_LEVEL = 250            # a pixel with every channel above this counts as background
SHUFFLE_SEED = 10

EMOJI_QUERIES: dict[str, str] = {
    "animal": "an animal",
    "food": "food",
    "vehicle": "a vehicle",
    "person": "a person",
    "plant": "a plant",
    "building": "a building",
}


def _span(first: int, last: int, *, minus: Iterable[str] = ()) -> tuple[str, ...]:
    """Unicode names of the code points first..last (inclusive), without those in ``minus``
    (each must be a name inside the span, so a typo cannot silently keep a code point)."""
    names = tuple(unicodedata.name(chr(cp)) for cp in range(first, last + 1))
    dropped = set(minus)
    unknown = dropped - set(names)
    if unknown:
        raise ValueError(f"not in U+{first:04X}..U+{last:04X}: {', '.join(sorted(unknown))}")
    return tuple(n for n in names if n not in dropped)


# topic -> Unicode character names (looked up with unicodedata, so each one is checked).
# Only names known to Python's Unicode database (14.0 here) can be listed.
EMOJI_TOPICS: dict[str, tuple[str, ...]] = {
    # U+1F400 RAT .. U+1F43C PANDA FACE: whole animals, then animal faces.
    # Out: SPIRAL SHELL (a shell), DRAGON and DRAGON FACE (mythical).
    "animal": _span(0x1F400, 0x1F43C, minus=("SPIRAL SHELL", "DRAGON", "DRAGON FACE")),
    # U+1F345 TOMATO .. U+1F373 COOKING (fried egg in a pan): fruit, dishes, sweets.
    "food": _span(0x1F345, 0x1F373),
    # U+1F680 ROCKET .. U+1F6A4 SPEEDBOAT: trains, buses, cars, lifts, ships.
    # Out: STATION and BUS STOP (places), ROWBOAT (drawn as a person rowing).
    "vehicle": _span(0x1F680, 0x1F6A4, minus=("STATION", "BUS STOP", "ROWBOAT")) + (
        "BICYCLE", "RACING MOTORCYCLE", "RACING CAR", "SMALL AIRPLANE", "AIRPLANE", "SAILBOAT",
        "CANOE", "MOTOR SCOOTER", "SCOOTER", "PICKUP TRUCK", "PASSENGER SHIP", "MOTOR BOAT",
        "FERRY", "AUTO RICKSHAW",
    ),
    # U+1F466 BOY .. U+1F478 PRINCESS: people, couples, jobs (out: FAMILY, drawn as a grey
    # signage pictogram rather than a drawing of people); plus person and
    # gesture emoji from U+1F481..U+1F483, U+1F645..U+1F64E, U+1F6B6, U+1F3C3, U+1F575,
    # U+1F926..U+1F937, U+1F977, U+1F9CD..U+1F9D5, U+1FAC5 (no Santa or angels: mythical).
    "person": _span(0x1F466, 0x1F478, minus=("FAMILY",)) + (
        "INFORMATION DESK PERSON", "GUARDSMAN", "DANCER", "FACE WITH NO GOOD GESTURE",
        "FACE WITH OK GESTURE", "PERSON BOWING DEEPLY", "HAPPY PERSON RAISING ONE HAND",
        "PERSON FROWNING", "PERSON WITH POUTING FACE", "PEDESTRIAN", "RUNNER", "SLEUTH OR SPY",
        "MAN DANCING", "FACE PALM", "PREGNANT WOMAN", "SHRUG", "NINJA", "STANDING PERSON",
        "KNEELING PERSON", "ADULT", "CHILD", "OLDER ADULT", "BEARDED PERSON",
        "PERSON WITH HEADSCARF", "PERSON WITH CROWN",
    ),
    # U+1F330 CHESTNUT .. U+1F344 MUSHROOM: seedling, trees, flowers, leaves.
    # Out, as food-like or not a plant: CHESTNUT, HOT PEPPER, EAR OF MAIZE, MUSHROOM (fungus).
    # Plus flowers U+1F490, U+1F4AE, U+1F3F5, U+1F940, U+1FAB7, U+1FAB4, U+2618 and the
    # tree/bamboo decorations U+1F384, U+1F38B, U+1F38D.
    "plant": _span(0x1F330, 0x1F344,
                   minus=("CHESTNUT", "HOT PEPPER", "EAR OF MAIZE", "MUSHROOM")) + (
        "BOUQUET", "WHITE FLOWER", "ROSETTE", "WILTED FLOWER", "LOTUS", "POTTED PLANT",
        "SHAMROCK", "CHRISTMAS TREE", "TANABATA TREE", "PINE DECORATION",
    ),
    # U+1F3E0 HOUSE BUILDING .. U+1F3F0 EUROPEAN CASTLE: houses, offices, shops, castles.
    # Out: AUTOMATED TELLER MACHINE, IZAKAYA LANTERN. Plus places of worship (U+26EA,
    # U+1F54B..U+1F54D, U+1F6D5, U+1F492), U+1F3D8..U+1F3DB, U+1F3DF, U+1F6D6.
    "building": _span(0x1F3E0, 0x1F3F0, minus=("AUTOMATED TELLER MACHINE", "IZAKAYA LANTERN")) + (
        "CHURCH", "MOSQUE", "SYNAGOGUE", "KAABA", "HINDU TEMPLE", "WEDDING", "HOUSE BUILDINGS",
        "CITYSCAPE", "DERELICT HOUSE BUILDING", "CLASSICAL BUILDING", "STADIUM", "HUT",
    ),
}


def _emoji_font():
    """The Noto Color Emoji font at :data:`EMOJI_FONT` (read at call time); RuntimeError if missing."""
    from PIL import ImageFont

    path = EMOJI_FONT
    if not path.is_file():
        raise RuntimeError(f"emoji font not found at {path}; install it with "
                           f"`apt-get install {EMOJI_FONT_PACKAGE}`")
    return ImageFont.truetype(str(path), FONT_PIXELS)


def render_emoji(char: str, font, *, size: int = 128):
    """``char`` drawn in colour on white, cropped to its drawing (+ margin), padded to a
    square and resized to ``size`` x ``size``: a PIL RGB image, or None when the font
    draws nothing for it (all white: no glyph)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", CANVAS, "white")
    ImageDraw.Draw(canvas).text((0, 0), char, font=font, embedded_color=True)
    ink = (np.asarray(canvas) <= WHITE_LEVEL).any(axis=2)
    if not ink.any():
        return None
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    box = (max(int(cols[0]) - CROP_MARGIN, 0), max(int(rows[0]) - CROP_MARGIN, 0),
           min(int(cols[-1]) + 1 + CROP_MARGIN, CANVAS[0]), min(int(rows[-1]) + 1 + CROP_MARGIN, CANVAS[1]))
    drawing = canvas.crop(box)
    side = max(drawing.size)
    square = Image.new("RGB", (side, side), "white")
    square.paste(drawing, ((side - drawing.width) // 2, (side - drawing.height) // 2))
    return square.resize((size, size), Image.Resampling.LANCZOS)


def build_emoji_images(folder: Path, *, size: int = 128) -> pd.DataFrame:
    """Render :data:`EMOJI_TOPICS` into ``folder`` as ``img_0001.png``... (seeded shuffle).

    Code points the font does not draw and exact duplicate drawings are skipped (logged).
    Writes ``folder/rows.csv`` (column ``image``) and ``folder/truth.csv`` (image, topic);
    stale ``img_NNNN.png`` files from an earlier, larger build are removed. Returns a
    DataFrame (image, topic, emoji_name), one row per image in file-name order; emoji_name
    is for reports only and is written nowhere. Raises RuntimeError when the font is missing.
    """
    font = _emoji_font()
    items = [(topic, name) for topic, names in EMOJI_TOPICS.items() for name in names]
    random.Random(SHUFFLE_SEED).shuffle(items)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for topic, name in items:
        image = render_emoji(unicodedata.lookup(name), font, size=size)
        if image is None:
            log.info("emoji: the font draws nothing for %s; skipped", name)
            continue
        digest = hashlib.sha256(image.tobytes()).hexdigest()
        if digest in seen:
            log.info("emoji: %s is drawn exactly like %s; skipped", name, seen[digest])
            continue
        seen[digest] = name
        file_name = f"img_{len(records) + 1:04d}.png"
        image.save(folder / file_name)
        records.append({"image": file_name, "topic": topic, "emoji_name": name})
    if len(records) > 9999:
        raise ValueError(f"{len(records)} images do not fit the 4-digit names")
    kept = {r["image"] for r in records}
    for stale in folder.glob("img_*.png"):
        if re.fullmatch(r"img_\d{4}\.png", stale.name) and stale.name not in kept:
            stale.unlink()
    table = pd.DataFrame.from_records(records, columns=["image", "topic", "emoji_name"])
    table[["image"]].to_csv(folder / "rows.csv", index=False)
    table[["image", "topic"]].to_csv(folder / "truth.csv", index=False)
    log.info("emoji: %d images in %s (%s)", len(table), folder,
             ", ".join(f"{t} {n}" for t, n in table["topic"].value_counts().sort_index().items()))
    return table


# (query, answer qualname): what a user would type, in other words than the answer's name
# and, mostly, than its docstring's first paragraph.
APIDOCS_QUERIES: list[tuple[str, str]] = [
    # numpy
    ("running total of a list of numbers", "numpy.cumsum"),
    ("positions that would put the values in ascending order", "numpy.argsort"),
    ("build x and y grids for evaluating a function over a plane", "numpy.meshgrid"),
    ("n equally distant values between a start and a stop", "numpy.linspace"),
    ("best straight line through a scatter of points", "numpy.polyfit"),
    # pandas
    ("turn each category label into its own 0/1 column", "pandas.get_dummies"),
    ("import tabular data from a delimited text file", "pandas.read_csv"),
    ("combine two tables by matching values in a shared key column", "pandas.merge"),
    ("put numbers into bins that hold the same count each", "pandas.qcut"),
    ("parse date strings into timestamps", "pandas.to_datetime"),
    # scikit-learn
    ("hold out a portion of the samples to evaluate the model later",
     "sklearn.model_selection.train_test_split"),
    ("group points around a chosen number of centroids", "sklearn.cluster.KMeans"),
    ("reduce dimensionality by projecting onto the directions of largest variance",
     "sklearn.decomposition.PCA"),
    ("replace blanks in a column with its mean", "sklearn.impute.SimpleImputer"),
    ("count how often each true class was predicted as each other class",
     "sklearn.metrics.confusion_matrix"),
    ("flag unusual samples as outliers by random partitioning", "sklearn.ensemble.IsolationForest"),
    ("try every hyperparameter combination with cross-validation",
     "sklearn.model_selection.GridSearchCV"),
    ("2-D picture of high-dimensional points that keeps neighbours together",
     "sklearn.manifold.TSNE"),
    # scipy
    ("tune the coefficients of my own formula so it matches noisy measurements",
     "scipy.optimize.curve_fit"),
    ("area under a function between two limits", "scipy.integrate.quad"),
    ("do two groups have significantly different averages", "scipy.stats.ttest_ind"),
    ("smooth a noisy signal by fitting local polynomials", "scipy.signal.savgol_filter"),
    ("locate local maxima in a 1-D series", "scipy.signal.find_peaks"),
    ("smallest polygon enclosing a set of points", "scipy.spatial.ConvexHull"),
    ("draw a tree diagram of how clusters merge", "scipy.cluster.hierarchy.dendrogram"),
    ("find connected blobs in a binary mask", "scipy.ndimage.label"),
    ("simulate a differential equation forward in time from a starting state",
     "scipy.integrate.solve_ivp"),
    ("blur an image smoothly", "scipy.ndimage.gaussian_filter"),
    # torch
    ("regularization that switches off neurons at random while learning", "torch.nn.Dropout"),
    ("map word indices to learned dense vectors", "torch.nn.Embedding"),
    ("make my experiments reproducible run to run", "torch.manual_seed"),
    ("stop autograd from recording operations during inference", "torch.no_grad"),
    ("feed samples to the training loop in shuffled mini-batches", "torch.utils.data.DataLoader"),
    ("optimizer with adaptive per-parameter step sizes from running averages of gradients",
     "torch.optim.Adam"),
    ("training objective for multi-class classifiers", "torch.nn.CrossEntropyLoss"),
]

# The issue's own kind of query: other words than the answer's *name*, but free to use words
# of its docstring, as a user who half remembers the documentation types
# ("running total of the elements" -> numpy.cumsum, "cumulative sum of the elements ...").
APIDOCS_DOC_WORD_QUERIES: list[tuple[str, str]] = [
    ("running total of the elements", "numpy.cumsum"),
    ("inverse of a matrix", "numpy.linalg.inv"),
    ("indices that would order an array", "numpy.argsort"),
    ("evenly spaced numbers in an interval", "numpy.linspace"),
    ("least squares polynomial", "numpy.polyfit"),
    ("indicator columns for a categorical variable", "pandas.get_dummies"),
    ("load a comma-separated values file", "pandas.read_csv"),
    ("database-style join of two DataFrames", "pandas.merge"),
    ("quantile-based discretization", "pandas.qcut"),
    ("random subsets of arrays for fitting and evaluation", "sklearn.model_selection.train_test_split"),
    ("evaluate the accuracy of a classification", "sklearn.metrics.confusion_matrix"),
    ("definite integral of a function", "scipy.integrate.quad"),
    ("local maxima inside a signal", "scipy.signal.find_peaks"),
    ("smallest enclosing polygon in N dimensions", "scipy.spatial.ConvexHull"),
    ("disable gradient calculation", "torch.no_grad"),
    ("fix the random number generator state on all devices", "torch.manual_seed"),
    ("remove the mean and scale to unit variance", "sklearn.preprocessing.StandardScaler"),
    ("spreadsheet-style summary as a DataFrame", "pandas.pivot_table"),
    ("area under the receiver operating characteristic curve", "sklearn.metrics.roc_auc_score"),
    ("discrete Fourier transform in one dimension", "scipy.fft.fft"),
    ("count values falling in bins of a dataset", "numpy.histogram"),
    ("glue tensors together along a dimension", "torch.cat"),
]


_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")


def name_words(qualname: str) -> set[str]:
    """Lower-case words of the last part of ``qualname``, split on non-letters and camelCase:
    ``sklearn.cluster.KMeans`` -> {k, means}; ``torch.nn.MSELoss`` -> {mse, loss};
    ``numpy.cumsum`` -> {cumsum}; ``torch.nn.BatchNorm2d`` -> {batch, norm, d}."""
    last = qualname.rsplit(".", 1)[-1]
    return {w.lower() for chunk in re.findall(r"[A-Za-z]+", last) for w in _CAMEL.findall(chunk)}


def query_words(query: str) -> set[str]:
    """Lower-case letter runs of ``query``."""
    return {w.lower() for w in re.findall(r"[A-Za-z]+", query)}


def check_apidocs_queries(table: pd.DataFrame,
                          queries: Sequence[tuple[str, str]] = APIDOCS_QUERIES) -> None:
    """Raise ValueError naming every answer missing from ``table['qualname']`` and every
    query that shares a word (:func:`query_words` vs :func:`name_words`) with its answer."""
    known = set(table["qualname"].astype(str))
    problems: list[str] = []
    for query, answer in queries:
        if answer not in known:
            problems.append(f"answer {answer!r} (query {query!r}) is not in the api-docs table")
        shared = query_words(query) & name_words(answer)
        if shared:
            problems.append(f"query {query!r} shares {', '.join(sorted(shared))} with its answer {answer!r}")
    if problems:
        raise ValueError("; ".join(problems))


def precision_at_k(ranked_ids: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Share of the first ``k`` ranked ids that are in ``relevant`` (a short list still
    divides by ``k``). Raises ValueError when k < 1."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return sum(1 for i in list(ranked_ids)[:k] if i in relevant) / k


def hit_at_k(ranked_ids: Sequence[str], answer: str, k: int = 10) -> bool:
    """True when ``answer`` is among the first ``k`` ranked ids. Raises ValueError when k < 1."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return answer in list(ranked_ids)[:k]
