"""The ``--where`` expression (and RowFilter JSON) read into a :class:`RowFilter`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import fields

from core.errors import InputError, format_list
from core.filters.rowfilter import RowFilter

WHERE_HELP = """\
Conditions joined by 'and' (all must hold), the Catalog filter panel's semantics:
  label = cat | label in (cat, dog)      label (edited labels count)
  text ~ "arrived broken"                text or id contains, case-insensitive
  tag = sent | tag in (a, b)             rows with any of these tags
  slice = batch-1                        rows of a slice
  modality = image                       image or text rows
  flagged                                rows flagged at ingest
  COLUMN = value | COLUMN in (a, b)      metadata equals one of the values
  COLUMN >= 0.5 | COLUMN <= 2 | COLUMN between 0.2 and 0.8   numeric range, inclusive
Quote values with spaces or symbols ('a b', "x=y"). A RowFilter JSON object is accepted too.
User text is only ever compared as data, never run as code or SQL."""

_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>>=|<=|=|~|\(|\)|,)|(?P<word>[^\s"'=~<>(),]+))""")
_KEYWORDS = {"and", "in", "between"}
_FIELDS_IN = {"label": "labels", "tag": "tags"}
_ROWFILTER_FIELDS = {f.name for f in fields(RowFilter)}


class WhereError(InputError):
    """A ``--where`` expression that cannot be read; the message names the spot."""


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, position) tokens; kind is ``str`` (quoted), ``op`` or ``word``."""
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise WhereError(f"malformed --where at position {start + 1}: cannot read "
                             f"{text[start:start + 20]!r} (an unclosed quote, or < > without =?)")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value, m.start(kind)))
        pos = m.end()
    return out


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.items, self.i = text, _tokens(text), 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def fail(self, expected: str) -> WhereError:
        tok = self.peek()
        where = f"at {tok[1]!r} (position {tok[2] + 1})" if tok else "at the end"
        return WhereError(f"malformed --where {where}: expected {expected}")

    def take(self, expected: str, *, op: str | None = None, keyword: str | None = None) -> str:
        tok = self.peek()
        if tok is None:
            raise self.fail(expected)
        kind, value, _ = tok
        if op is not None and not (kind == "op" and value == op):
            raise self.fail(expected)
        if keyword is not None and not (kind == "word" and value.lower() == keyword):
            raise self.fail(expected)
        if op is None and keyword is None and (kind == "op" or (kind == "word" and value.lower() in _KEYWORDS)):
            raise self.fail(expected)
        self.i += 1
        return value

    def at(self, *, op: str | None = None, keyword: str | None = None) -> bool:
        tok = self.peek()
        if tok is None:
            return False
        if op is not None:
            return tok[0] == "op" and tok[1] == op
        return tok[0] == "word" and tok[1].lower() == keyword

    def values(self) -> tuple[str, ...]:
        self.take("'(' after 'in'", op="(")
        out = [self.take("a value")]
        while self.at(op=","):
            self.i += 1
            out.append(self.take("a value after ','"))
        self.take("')' to close the list", op=")")
        return tuple(out)

    def number(self, what: str) -> float:
        raw = self.take(what)
        try:
            value = float(raw)
        except ValueError:
            raise WhereError(f"malformed --where: {raw!r} is not a number ({what})") from None
        if math.isnan(value):
            raise WhereError(f"malformed --where: {what} is NaN")
        return value


def parse_where(text: str) -> RowFilter:
    """The :class:`RowFilter` of a ``--where`` expression (grammar in :data:`WHERE_HELP`) or
    of a RowFilter JSON object (``{"labels": ["cat"], ...}``, the shape of
    :meth:`RowFilter.to_json`). Raises :class:`WhereError` naming the spot that cannot be
    read; column names are checked later, against the table the filter is applied to."""
    if not isinstance(text, str) or not text.strip():
        raise WhereError("the --where expression is empty")
    if text.lstrip().startswith("{"):
        return row_filter_from_json(text)
    r = _Reader(text)
    labels: list[str] = []
    tags: list[str] = []
    cats: dict[str, tuple[str, ...]] = {}
    ranges: dict[str, tuple[float, float]] = {}
    parts: dict[str, object] = {}
    while True:
        field_ = r.take("a condition such as label = cat, text ~ word, price >= 3 or flagged")
        key = field_.lower()
        if key == "flagged":
            parts["flagged_only"] = True
        elif r.at(keyword="in"):
            r.i += 1
            values = r.values()
            if key in _FIELDS_IN:
                (labels if key == "label" else tags).extend(values)
            elif key in ("text", "slice", "modality"):
                raise WhereError(f"malformed --where: '{field_} in (...)' is not supported; use "
                                 f"{'text ~ WORDS' if key == 'text' else key + ' = VALUE'}")
            else:
                cats[field_] = _intersect(cats.get(field_), values)
        elif r.at(keyword="between"):
            r.i += 1
            lo = r.number(f"the low end of {field_} between")
            r.take("'and' between the two ends of the range", keyword="and")
            hi = r.number(f"the high end of {field_} between")
            ranges[field_] = _narrow(ranges.get(field_), lo, hi, field_)
        elif r.at(op="~"):
            r.i += 1
            if key != "text":
                raise WhereError(f"malformed --where: '~' (contains) works on text only, not {field_!r}")
            parts["text_contains"] = r.take("the words to look for after '~'")
        elif r.at(op=">=") or r.at(op="<="):
            op = r.take(">= or <=", op=r.peek()[1])
            bound = r.number(f"a number after {field_} {op}")
            lo, hi = (bound, math.inf) if op == ">=" else (-math.inf, bound)
            ranges[field_] = _narrow(ranges.get(field_), lo, hi, field_)
        elif r.at(op="="):
            r.i += 1
            value = r.take(f"a value after {field_} =")
            if key in _FIELDS_IN:
                (labels if key == "label" else tags).append(value)
            elif key in ("text", "slice", "modality"):
                if key == "text":
                    raise WhereError("malformed --where: use text ~ WORDS (contains), not text =")
                if key == "modality" and value not in ("image", "text"):
                    raise WhereError(f"unknown modality {value!r} in --where; choose image or text")
                target = "slice_name" if key == "slice" else key
                if parts.get(target, value) != value:
                    raise WhereError(f"--where names two different values for {key}")
                parts[target] = value
            else:
                cats[field_] = _intersect(cats.get(field_), (value,))
        else:
            raise r.fail(f"=, ~, >=, <=, in or between after {field_!r}")
        if r.peek() is None:
            break
        r.take("'and' between conditions", keyword="and")
    return RowFilter(
        labels=tuple(dict.fromkeys(labels)), tags=tuple(dict.fromkeys(tags)),
        categories=tuple(cats.items()), ranges=tuple((c, lo, hi) for c, (lo, hi) in ranges.items()),
        **parts,
    )


def _intersect(current: tuple[str, ...] | None, values: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(values))
    return values if current is None else tuple(v for v in current if v in values)


def _narrow(current: tuple[float, float] | None, lo: float, hi: float, column: str) -> tuple[float, float]:
    if current is not None:
        lo, hi = max(lo, current[0]), min(hi, current[1])
    if lo > hi:
        raise WhereError(f"the range on {column!r} in --where is empty ({lo:g} > {hi:g})")
    return lo, hi


def row_filter_from_json(data: str | Mapping) -> RowFilter:
    """A :class:`RowFilter` from its JSON (a string or the dict of :meth:`RowFilter.to_json`).
    Raises WhereError for invalid JSON, unknown keys or values of the wrong type."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as err:
            raise WhereError(f"malformed RowFilter JSON: {err.msg} at position {err.pos + 1}") from None
    if not isinstance(data, Mapping):
        raise WhereError("a RowFilter JSON must be an object such as {\"labels\": [\"cat\"]}")
    unknown = sorted(set(data) - _ROWFILTER_FIELDS)
    if unknown:
        raise WhereError(f"unknown RowFilter field(s) {format_list(unknown)}; choose from "
                         f"{', '.join(sorted(_ROWFILTER_FIELDS))}")

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key, ())
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise WhereError(f"RowFilter {key!r} must be a list of strings")
        return tuple(value)

    try:
        categories = tuple((str(c), tuple(str(v) for v in vs)) for c, vs in data.get("categories", ()))
        ranges = tuple((str(c), float(lo), float(hi)) for c, lo, hi in data.get("ranges", ()))
    except (TypeError, ValueError):
        raise WhereError("RowFilter 'categories' must be [[column, [values...]], ...] and "
                         "'ranges' [[column, low, high], ...]") from None
    if any(math.isnan(lo) or math.isnan(hi) for _, lo, hi in ranges):
        raise WhereError("RowFilter 'ranges' must not contain NaN")
    text, slice_name, modality = data.get("text_contains", ""), data.get("slice_name"), data.get("modality")
    if not isinstance(text, str) or not isinstance(slice_name, (str, type(None))) \
            or modality not in (None, "image", "text") or not isinstance(data.get("flagged_only", False), bool):
        raise WhereError("RowFilter 'text_contains' must be a string, 'slice_name' a string or null, "
                         "'modality' image, text or null, 'flagged_only' true or false")
    return RowFilter(labels=strings("labels"), categories=categories, ranges=ranges,
                     text_contains=text, tags=strings("tags"), slice_name=slice_name,
                     modality=modality, flagged_only=bool(data.get("flagged_only", False)))
