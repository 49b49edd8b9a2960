"""The takedown report: one row per URL (CSV for spreadsheets, or a self-contained HTML page).

Each row: case, URL, registrable domain, current status and since when, reported/added/first seen/last seen live
/removed times, hours from report to removal, and for the media last seen on the page (the latest check that
served media, else the first) their SHA-256, PDQ, model score and label, known-content match, and where the
evidence records are (WARC file, offset, record id). CSV text cells are neutralised against formula injection.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from deepdetect.utils.csvcells import frame_csv
from deepdetect.utils.io import atomic_write_text
from deepdetect.utils.paths import printable_text
from deepdetect.watch.store import Store, parse_iso

COLUMNS = (
    "case", "url", "domain", "status", "status_since", "reason", "reported_at", "added_at", "first_seen",
    "last_seen_live", "last_checked", "removed_at", "hours_report_to_removal", "n_media", "media_urls",
    "media_sha256", "media_pdq", "max_score", "labels", "known_match", "evidence", "media_evidence", "note",
)  # fmt: skip
NUMBER_COLUMNS = ("hours_report_to_removal", "n_media", "max_score")
TEXT_COLUMNS = tuple(c for c in COLUMNS if c not in NUMBER_COLUMNS)
FORMATS = ("csv", "html")


def hours_between(start: str | None, end: str | None) -> float | None:
    """Hours from one store time to another, None when either is missing."""
    if not start or not end:
        return None
    return round((parse_iso(end) - parse_iso(start)).total_seconds() / 3600.0, 2)


def _evidence(row: dict[str, Any]) -> str:
    if not row.get("warc_file"):
        return ""
    return f"{row['warc_file']}@{row.get('warc_offset')} {row.get('warc_record_id')}"


def report_rows(store: Store, case: str | None = None) -> list[dict[str, Any]]:
    """One row per URL of the store (or one case), in the order added."""
    urls = store.urls(case)
    wanted = {u["id"] for u in urls}
    last_check: dict[int, dict[str, Any]] = {}
    media_check: dict[int, dict[str, Any]] = {}
    for c in store.checks():
        if c["url_id"] not in wanted:
            continue
        last_check[c["url_id"]] = c
        if c["n_media"] and c["status"] in ("live", "changed"):
            media_check[c["url_id"]] = c
    media_by_check: dict[int, list[dict[str, Any]]] = {}
    for m in store.media([c["id"] for c in media_check.values()]):
        media_by_check.setdefault(m["check_id"], []).append(m)
    rows = []
    for u in urls:
        check = last_check.get(u["id"], {})
        mcheck = media_check.get(u["id"])
        media = [m for m in media_by_check.get(mcheck["id"], []) if m["status"] == "ok"] if mcheck else []
        scores = [m["score"] for m in media if m.get("score") is not None]
        known = sorted(
            {f"{m['known_ref']} ({m['known_label']}, d={m['known_distance']})" for m in media if m.get("known_ref")}
        )
        rows.append(
            {
                "case": u["case_name"],
                "url": u["url"],
                "domain": u["domain"],
                "status": u["status"],
                "status_since": u["status_since"],
                "reason": check.get("reason"),
                "reported_at": u["reported_at"],
                "added_at": u["added_at"],
                "first_seen": u["first_seen"],
                "last_seen_live": u["last_seen_live"],
                "last_checked": u["last_checked"],
                "removed_at": u["removed_at"],
                "hours_report_to_removal": hours_between(u["reported_at"] or u["added_at"], u["removed_at"]),
                "n_media": len(media),
                "media_urls": " ".join(m["media_url"] for m in media),
                "media_sha256": " ".join(m["sha256"] or "" for m in media),
                "media_pdq": " ".join((m["pdq"] or "-").split(" ")[0] for m in media),
                "max_score": round(max(scores), 6) if scores else None,
                "labels": " ".join(str(m["label"]) for m in media if m.get("label")),
                "known_match": "; ".join(known),
                "evidence": _evidence(check),
                "media_evidence": " ".join(_evidence(m) for m in media if m.get("warc_file")),
                "note": u["note"],
            }
        )
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """The rows as CSV (UTF-8, header row) by the shared table writer: text cells quoted and neutralised, read back
    exactly by `utils.csvcells.read_frame_csv(path, TEXT_COLUMNS)`; written atomically."""
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    atomic_write_text(path, frame_csv(frame, TEXT_COLUMNS))


CSS = (
    "body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#1d1d1f}"
    "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}"
    "th{background:#f3f3f3;position:sticky;top:0}td{max-width:28em;overflow-wrap:anywhere}"
    ".live{background:#ffecec}.removed{background:#eaffea}.changed{background:#fff7e0}"
    ".unreachable,.blocked{background:#f0f0f0}"
)
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'"


def _esc(value: object) -> str:
    return html.escape(printable_text("" if value is None else str(value)))


def render_html(rows: Sequence[dict[str, Any]], title: str = "deepdetect-watch report") -> str:
    """A self-contained page (no script, nothing fetched) with a status count and the table."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    summary = ", ".join(f"{_esc(k)}: {v}" for k, v in sorted(counts.items())) or "no URLs"
    head = "".join(f"<th>{_esc(c)}</th>" for c in COLUMNS)
    body = []
    for r in rows:
        cells = "".join(f"<td>{_esc(r.get(c))}</td>" for c in COLUMNS)
        body.append(f'<tr class="{_esc(r["status"])}">{cells}</tr>')
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{CSP}"><title>{_esc(title)}</title><style>{CSS}</style></head><body>'
        f"<h1>{_esc(title)}</h1><p>{len(rows)} URLs — {summary}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>\n"
    )


def write_report(store: Store, fmt: str, output: str | os.PathLike[str], case: str | None = None) -> int:
    """Write the report in `fmt` (csv or html); returns the number of rows."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {FORMATS}")
    rows = report_rows(store, case)
    if fmt == "csv":
        write_csv(rows, output)
    else:
        atomic_write_text(output, render_html(rows, f"deepdetect-watch report{f' — case {case}' if case else ''}"))
    return len(rows)
