"""Read prediction records (JSON lines or CSV from `deepdetect-predict`) and the optional run header beside them.

Every value is untrusted: known fields are coerced to their types (a wrong type becomes null and is counted), a
line that is not a JSON object (or a CSV row of the wrong width) is skipped with a counted warning, and a last
line still lacking its newline (a run killed mid-write) is reported as truncated, never fatal.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepdetect.utils.io import open_regular, read_text_bounded

MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_WARNED_LINES = 5  # line numbers quoted per kind of problem; the rest are counted

_FLOATS = ("score", "threshold", "seconds")
_INTS = ("n_frames", "n_faces", "size_bytes")
_JSON_CELLS = ("faces", "score_interval", "operating_point", "known_match", "provenance", "aggregate")


@dataclass
class RecordSet:
    """What a records file held: the records in file order, the run header (or None) and what was wrong."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] | None = None
    bad_lines: list[int] = field(default_factory=list)
    truncated_last_line: bool = False
    coerced_fields: int = 0
    header_error: str | None = None

    @property
    def warnings(self) -> list[str]:
        """Plain sentences about what could not be read, for the page and the command line."""
        out = []
        if self.truncated_last_line:
            out.append(
                "the last line of the records file is incomplete (the run was stopped mid-write); it was left out"
            )
        if self.bad_lines:
            shown = ", ".join(str(n) for n in self.bad_lines[:MAX_WARNED_LINES])
            more = (
                f" and {len(self.bad_lines) - MAX_WARNED_LINES} more" if len(self.bad_lines) > MAX_WARNED_LINES else ""
            )
            out.append(f"{len(self.bad_lines)} line(s) of the records file could not be read (line {shown}{more})")
        if self.coerced_fields:
            out.append(f"{self.coerced_fields} field value(s) had the wrong type and are shown as empty")
        if self.header_error:
            out.append(f"the run header could not be read: {self.header_error}")
        return out


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(value) from None
    if not math.isfinite(out):
        raise ValueError(value)
    return out


def _int(value: Any) -> int | None:
    f = _float(value)
    return None if f is None else int(f)


def _face(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    face = dict(raw)
    for key in ("score", "det_score", "time_s"):
        face[key] = _float(face.get(key))
    face["frame_index"] = _int(face.get("frame_index"))
    box = face.get("box")
    if box is not None:
        if not isinstance(box, list | tuple) or len(box) != 4:
            raise ValueError(box)
        face["box"] = [float(v) for v in box]
    return face


def coerce_record(raw: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy of `raw` with the known fields of the right type; returns it and how many values were nulled."""
    rec = dict(raw)
    bad = 0

    def fix(key: str, convert: Any) -> None:
        nonlocal bad
        if key not in rec:
            return
        try:
            rec[key] = convert(rec[key])
        except (TypeError, ValueError, OverflowError):
            rec[key] = None
            bad += 1

    for key in _FLOATS:
        fix(key, _float)
    for key in _INTS:
        fix(key, _int)
    for key in ("path", "status", "label", "kind", "sha256", "name", "abs_path", "error", "explanation"):
        fix(key, lambda v: None if v is None else str(v) if isinstance(v, str | int | float) else _raise(v))
    if rec.get("score") is not None and not 0.0 <= rec["score"] <= 1.0:
        rec["score"], bad = None, bad + 1
    faces = rec.get("faces")
    if faces is not None:
        if not isinstance(faces, list):
            rec["faces"], bad = [], bad + 1
        else:
            kept = []
            for f in faces:
                try:
                    face = _face(f)
                except (TypeError, ValueError, OverflowError):
                    face = None
                if face is None:
                    bad += 1
                else:
                    kept.append(face)
            rec["faces"] = kept
    fix("score_interval", _interval)
    for key in ("operating_point", "known_match", "provenance"):
        if key in rec and rec[key] is not None and not isinstance(rec[key], dict):
            rec[key], bad = None, bad + 1
    rec["status"] = rec.get("status") or "unknown"
    return rec, bad


def _raise(value: Any) -> Any:
    raise ValueError(value)


def _interval(value: Any) -> list[float] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(value)
    lo, hi = _float(value[0]), _float(value[1])
    if lo is None or hi is None:
        raise ValueError(value)
    return [lo, hi]


def _read_jsonl(path: Path, out: RecordSet) -> None:
    with open_regular(path) as fh:
        data = fh.read()
    lines = data.split(b"\n")
    last_complete = data.endswith(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        is_last = number == len(lines)
        try:
            obj = json.loads(line.decode("utf-8", "surrogateescape"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            obj = None
        if not isinstance(obj, dict):
            if is_last and not last_complete:
                out.truncated_last_line = True
            else:
                out.bad_lines.append(number)
            continue
        _add(out, obj)


def _read_csv(path: Path, out: RecordSet) -> None:
    from deepdetect.utils.csvcells import restore_cell

    with open_regular(path) as fh:
        data = fh.read()
    text = data.decode("utf-8", "replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return
    header = rows[0]
    last_complete = data.endswith(b"\n")
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            if number == len(rows) and not last_complete:
                out.truncated_last_line = True
            else:
                out.bad_lines.append(number)
            continue
        rec: dict[str, Any] = {}
        for key, cell in zip(header, row, strict=True):
            value: Any = restore_cell(cell)
            if value == "":
                value = None
            elif key in _JSON_CELLS:
                with contextlib.suppress(json.JSONDecodeError):  # else text; coerce_record nulls it
                    value = json.loads(value)
            rec[key] = value
        _add(out, rec)


def _add(out: RecordSet, raw: dict[str, Any]) -> None:
    rec, bad = coerce_record(raw)
    out.coerced_fields += bad
    out.records.append(rec)


def header_path(records_path: str | os.PathLike[str]) -> Path | None:
    """The run header beside a records file: `<output>.run.json` (or `<stem>.run.json`), when one exists."""
    p = Path(records_path)
    for candidate in (p.with_name(p.name + ".run.json"), p.with_suffix(".run.json")):
        if candidate.is_file():
            return candidate
    return None


def read_run_header(records_path: str | os.PathLike[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The run header as a dict (None when absent), and an error message when it exists but cannot be read."""
    path = header_path(records_path)
    if path is None:
        return None, None
    try:
        obj = json.loads(read_text_bounded(path, MAX_HEADER_BYTES))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"{path.name}: {exc}"
    if not isinstance(obj, dict):
        return None, f"{path.name}: not a JSON object"
    return obj, None


def read_records(path: str | os.PathLike[str]) -> RecordSet:
    """Records of a `.jsonl` or `.csv` file written by predict, plus its run header; raises OSError if unreadable."""
    p = Path(path)
    out = RecordSet(path=p)
    if p.suffix.lower() == ".csv":
        _read_csv(p, out)
    else:
        _read_jsonl(p, out)
    out.run, out.header_error = read_run_header(p)
    return out
