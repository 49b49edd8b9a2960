"""Read reported URLs from a CSV file (a `url` column; optional `note` and `reported_at`): normalised, de-duplicated,
one clear message per row that cannot be watched (the other rows still go in)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from deepdetect.watch.store import NewUrl, parse_iso, utc_iso
from deepdetect.watch.urls import UrlError, normalise_url, registrable_domain, url_host

MAX_NOTE_CHARS = 2000


class IntakeError(ValueError):
    """The CSV file cannot be read at all (missing, not UTF-8, no `url` column)."""


@dataclass
class Intake:
    """The URLs to add and the rows refused, as `line N: reason`."""

    urls: list[NewUrl] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    duplicates: int = 0


def parse_reported_at(text: str) -> str:
    """An ISO 8601 date or time (naive: UTC) as store time text; ValueError otherwise."""
    return utc_iso(parse_iso(text.strip()))


def read_url_csv(path: str | os.PathLike[str]) -> Intake:
    """Rows of a reported-URL CSV as NewUrl items; bad rows are listed in `refused`."""
    out = Intake()
    seen: set[str] = set()
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
            if "url" not in fields:
                raise IntakeError(f"{path}: no `url` column (columns: {', '.join(fields) or 'none'})")
            reader.fieldnames = fields
            for row in reader:
                line = reader.line_num
                raw = (row.get("url") or "").strip()
                try:
                    url = normalise_url(raw)
                    reported = row.get("reported_at")
                    reported_at = parse_reported_at(reported) if reported and reported.strip() else None
                except (UrlError, ValueError) as exc:
                    out.refused.append(f"line {line}: {exc}")
                    continue
                if url in seen:
                    out.duplicates += 1
                    continue
                seen.add(url)
                note = (row.get("note") or "").strip()[:MAX_NOTE_CHARS] or None
                out.urls.append(NewUrl(url, raw, url_host(url), registrable_domain(url), note, reported_at))
    except UnicodeDecodeError as exc:
        raise IntakeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise IntakeError(f"{path}: not a readable CSV file: {exc}") from None
    return out
