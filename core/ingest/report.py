"""What an ingest wrote (:class:`IngestReport`) and the counts behind it, gathered batch by
batch as the rows are written (:class:`Tally`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from core.errors import format_list

MAX_FLAGGED_IDS = 20  # flagged ids a report names


@dataclass(frozen=True)
class UpdateCounts:
    """What an update did, by id: rows added, changed (any column or the content), of them
    ``content_changed`` (text or image bytes: their vectors dropped), removed, kept as they
    were, and ``kept_missing`` (missing from the source, kept by ``keep_missing``); vectors
    dropped per embedding; notes (assumptions made)."""

    added: int
    changed: int
    content_changed: int
    removed: int
    kept: int
    kept_missing: int = 0
    vectors_dropped: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        """``'added 3, changed 2 (content 1), removed 1, kept 40'``."""
        out = (f"added {self.added}, changed {self.changed} (content {self.content_changed}), "
               f"removed {self.removed}, kept {self.kept}")
        return out + (f", kept {self.kept_missing} missing from the source" if self.kept_missing else "")

    def to_json(self) -> dict:
        return {"added": self.added, "changed": self.changed, "content_changed": self.content_changed,
                "removed": self.removed, "kept": self.kept, "kept_missing": self.kept_missing,
                "vectors_dropped": dict(self.vectors_dropped), "notes": list(self.notes)}


@dataclass(frozen=True)
class IngestReport:
    """What an ingest wrote: row counts by modality/label, flagged and skipped rows by reason."""

    dataset: str
    rows: int
    modalities: dict[str, int]
    labels: dict[str, int]
    flagged: dict[str, int]
    flagged_ids: tuple[str, ...]
    skipped: dict[str, int]
    update: UpdateCounts | None = None  # set by an update (ingest(..., update=True))

    def summary(self) -> str:
        """Multi-line human summary (labels: top 10 by count, then 'N more')."""
        lines = [f"dataset {self.dataset!r}: {self.rows} rows",
                 "modalities: " + (counts_text(self.modalities) or "none")]
        if self.labels:
            top = sorted(self.labels.items(), key=lambda kv: (-kv[1], kv[0]))
            text = ", ".join(f"{k} {v}" for k, v in top[:10])
            more = len(top) - 10
            lines.append(f"labels ({len(top)}): {text}" + (f", {more} more" if more > 0 else ""))
        else:
            lines.append("labels: none")
        if self.flagged:
            lines.append(f"flagged {sum(self.flagged.values())} rows (kept, not embedded): "
                         f"{counts_text(self.flagged)}; e.g. {format_list(self.flagged_ids, 5)}")
        if self.skipped:
            lines.append(f"skipped {sum(self.skipped.values())}: {counts_text(self.skipped)}")
        if self.update is not None:
            lines.append("update: " + self.update.text())
            dropped = {k: v for k, v in self.update.vectors_dropped.items() if v}
            if dropped:
                lines.append("vectors dropped (encoded again by the next embed): " + counts_text(dropped))
            lines += [f"note: {n}" for n in self.update.notes]
        return "\n".join(lines)

    def to_json(self) -> dict:
        """Plain JSON-serialisable dict of every field (``flagged_ids`` as a list)."""
        return {"dataset": self.dataset, "rows": self.rows, "modalities": dict(self.modalities),
                "labels": dict(self.labels), "flagged": dict(self.flagged),
                "flagged_ids": list(self.flagged_ids), "skipped": dict(self.skipped),
                **({"update": self.update.to_json()} if self.update is not None else {})}


def counts_text(counts: dict[str, int]) -> str:
    """``'a 3, b 1'``: each key and its count, in the dict's order."""
    return ", ".join(f"{k} {v}" for k, v in counts.items())


class Tally:
    """Counts for the :class:`IngestReport`, batch by batch."""

    def __init__(self) -> None:
        self.rows, self.image_rows, self.broken = 0, 0, 0
        self.first_broken: tuple[str, str] | None = None
        self.modalities: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()
        self.flagged_ids: list[str] = []

    def add(self, rows: pa.Table) -> None:
        self.rows += rows.num_rows
        for counter, col in ((self.modalities, "modality"), (self.labels, "label")):
            for item in pc.value_counts(rows.column(col).drop_null()).to_pylist():
                counter[item["values"]] += item["counts"]
        issues = rows.column("ingest_issue")
        if issues.null_count < rows.num_rows:
            flagged = pc.indices_nonzero(issues.is_valid())
            kinds = issues.take(flagged).to_pylist()
            self.flagged.update(str(k).split(":", 1)[0].strip() for k in kinds)
            room = MAX_FLAGGED_IDS - len(self.flagged_ids)
            self.flagged_ids += rows.column("id").take(flagged[:room]).to_pylist() if room > 0 else []

    def report(self, name: str, skipped: dict[str, int]) -> IngestReport:
        return IngestReport(
            dataset=name, rows=self.rows, modalities=dict(self.modalities.most_common()),
            labels=dict(self.labels.most_common()), flagged=dict(self.flagged.most_common()),
            flagged_ids=tuple(self.flagged_ids), skipped=dict(skipped))


__all__ = ["MAX_FLAGGED_IDS", "IngestReport", "Tally", "UpdateCounts", "counts_text"]
