"""What an ingest wrote (:class:`IngestReport`) and the counts behind it, gathered batch by
batch as the rows are written (:class:`Tally`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from core.errors import format_list

MAX_FLAGGED_IDS = 20  # flagged ids a report names


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
        return "\n".join(lines)

    def to_json(self) -> dict:
        """Plain JSON-serialisable dict of every field (``flagged_ids`` as a list)."""
        return {"dataset": self.dataset, "rows": self.rows, "modalities": dict(self.modalities),
                "labels": dict(self.labels), "flagged": dict(self.flagged),
                "flagged_ids": list(self.flagged_ids), "skipped": dict(self.skipped)}


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


__all__ = ["MAX_FLAGGED_IDS", "IngestReport", "Tally", "counts_text"]
