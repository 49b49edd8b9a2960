"""`build_report`: prediction records -> the triage HTML page (read, sort, look at the top files, render, write)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepdetect.triage.provenance import probe_provenance
from deepdetect.triage.records import RecordSet, read_records
from deepdetect.triage.render import RowExtras, render_page
from deepdetect.triage.summary import Summary, sort_key, summarise
from deepdetect.triage.thumbs import MAX_SIDE, embed_image, locate, record_path, thumbnail
from deepdetect.utils.io import atomic_path

log = logging.getLogger(__name__)

DEFAULT_TOP_N = 500


@dataclass(frozen=True)
class ReportResult:
    """Where the page went and what it holds."""

    path: Path
    n_records: int
    n_embedded: int
    bytes: int
    summary: Summary
    read_warnings: list[str]


def row_extras(
    rec: dict[str, Any], thumbnails: bool, provenance: bool, base: Path | None = None, max_side: int = MAX_SIDE
) -> RowExtras:
    """Thumbnail, provenance and explanation of one record's file (each a placeholder or {} when unavailable).

    Relative paths in the record that do not resolve from the current folder are looked for under `base`.
    """
    prov: dict[str, Any] = {}
    if isinstance(rec.get("provenance"), dict):
        prov = dict(rec["provenance"])  # predict may have probed the file already
    elif provenance:
        path = record_path(rec, base)
        prov = probe_provenance(path) if path is not None else {}
    thumb = thumbnail(rec, max_side, base) if thumbnails else None
    expl = embed_image(locate(Path(rec["explanation"]), base)) if rec.get("explanation") else None
    return RowExtras(thumb=thumb, provenance=prov, explanation=expl)


def build_report_from(
    recordset: RecordSet,
    out_html: str | os.PathLike[str],
    *,
    thumbnails: bool = True,
    provenance: bool = True,
    top_n: int = DEFAULT_TOP_N,
    title: str | None = None,
) -> ReportResult:
    """Render already-read records (see `build_report`)."""
    if top_n < 0:
        raise ValueError(f"top_n must be >= 0, got {top_n}")
    records = sorted(recordset.records, key=sort_key)  # stable: file order within ties
    base = recordset.path.resolve().parent
    warnings = recordset.warnings
    summary = summarise(records, recordset.run, warnings)
    extras: list[RowExtras | None] = [
        row_extras(rec, thumbnails, provenance, base) if i < top_n else None for i, rec in enumerate(records)
    ]
    page = render_page(records, summary, extras, title or f"Triage: {recordset.path.name}")
    data = page.encode("utf-8")
    out = Path(out_html)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    log.info("wrote %s (%d records, %d bytes)", out, len(records), len(data))
    return ReportResult(out, len(records), sum(e is not None for e in extras), len(data), summary, warnings)


def build_report(
    records_path: str | os.PathLike[str],
    out_html: str | os.PathLike[str],
    *,
    thumbnails: bool = True,
    provenance: bool = True,
    top_n: int = DEFAULT_TOP_N,
    title: str | None = None,
) -> Path:
    """Write the triage page for a predict records file (`.jsonl`/`.csv`, run header beside it) to `out_html`.

    The first `top_n` rows (by score) get a thumbnail with face boxes, provenance and their explanation image;
    the rest are compact rows. The page is written atomically. Raises OSError if the records cannot be read.
    """
    return build_report_from(
        read_records(records_path), out_html, thumbnails=thumbnails, provenance=provenance, top_n=top_n, title=title
    ).path
