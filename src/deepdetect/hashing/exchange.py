"""Hash lists in ThreatExchange's text formats, so they can be shared with platforms and hash-sharing programmes.

- PDQ (images): one hash per line, `<64 hex>,<quality>[,<ref>[,<label>]]`. Readers of plain PDQ lists take the
  first field; lines `pdq <hex>` (python-threatexchange's CLI) and a bare `<hex>` are read too.
- vPDQ (videos): one file per video, one line per frame `<frame_number>,<quality>,<64 hex>,<timestamp s.3f>`,
  exactly what ThreatExchange's vpdq writes and reads.

`export_bundle` writes a folder: `pdq.txt` (images), `vpdq/<n>.txt` (videos), `faces.txt` (face-crop hashes,
`<hex>,<quality>,<ref>,<frame_number>`) and `items.csv` (ref, kind, label, sha256, duration_s, source, file,
metadata) that ties them together. `read_hash_list` reads such a folder or a single PDQ/vPDQ text file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from deepdetect.hashing.index import MAX_FRAME_INDEX, HashIndex, HashRow, Item
from deepdetect.hashing.pdq import from_hex
from deepdetect.utils.csvcells import frame_csv, read_frame_csv
from deepdetect.utils.io import read_text_bounded

_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
ITEMS_COLUMNS = ("ref", "kind", "label", "sha256", "duration_s", "source", "file", "metadata")
TEXT_COLUMNS = ("ref", "label", "sha256", "source", "metadata")  # neutralised for spreadsheets in items.csv
MAX_LIST_BYTES = 1 << 30  # one hash list or bundle file read whole: 1 GiB (about 12M PDQ lines)
MAX_CELL = 1 << 20  # one items.csv cell (metadata JSON)


class HashListError(ValueError):
    """A hash list that cannot be read; the message names the file and line."""


def _read_list(path: Path) -> str:
    """A hash list's text: a regular file only (never a FIFO or device), at most MAX_LIST_BYTES, UTF-8."""
    try:
        data = read_text_bounded(path, MAX_LIST_BYTES)
        return data.encode("utf-8", "surrogateescape").decode("utf-8")
    except (OSError, UnicodeError) as exc:
        raise HashListError(f"cannot read hash list {path}: {exc}") from None


def _number(text: str, kind: type[int] | type[float], lo: float, hi: float, what: str, where: str) -> Any:
    """`text` as an int/float within [lo, hi], else HashListError naming the place."""
    try:
        value = kind(text)
    except ValueError:
        raise HashListError(f"{where}: {what} is not a number: {text[:40]!r}") from None
    if not lo <= value <= hi:  # NaN fails too
        raise HashListError(f"{where}: {what} {text[:40]!r} is out of range ({lo}..{hi})")
    return value


def _frame(text: str, where: str) -> int:
    return int(_number(text, int, 0, MAX_FRAME_INDEX, "frame number", where))


def _quality(text: str, where: str) -> int:
    return int(_number(text, int, 0, 100, "quality", where))


def _seconds(text: str, where: str) -> float:
    return float(_number(text, float, 0.0, 1e9, "time", where))


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered lines split on newlines only (a U+2028 or form feed inside a field stays in it)."""
    for n, line in enumerate(text.split("\n"), 1):
        yield n, line.removesuffix("\r")


@contextmanager
def _reading(where: object) -> Iterator[None]:
    """Errors a hostile items.csv raises (over-long cells, missing columns, nested JSON) as HashListError."""
    try:
        yield
    except HashListError:
        raise
    except csv.Error as exc:
        raise HashListError(f"{where}: not a readable CSV ({exc})") from None
    except KeyError as exc:
        raise HashListError(f"{where}: missing column {exc}") from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise HashListError(f"{where}: unreadable value ({type(exc).__name__}: {str(exc)[:200]})") from None


def format_vpdq(rows: list[HashRow]) -> str:
    """ThreatExchange vPDQ text for one video's frame hashes."""
    return "".join(f"{r.frame_index},{r.quality},{r.bits.hex()},{r.timestamp:.3f}\n" for r in rows)


def parse_vpdq(text: str, name: str = "<vpdq>") -> list[HashRow]:
    """Frame hashes from ThreatExchange vPDQ text; raises HashListError on a malformed line."""
    rows = []
    for n, line in _lines(text):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        where = f"{name}:{n}"
        if len(parts) < 4 or not _HEX.match(parts[2]):
            raise HashListError(
                f"{where}: not a vPDQ line (expected frame_number,quality,hash,timestamp): {line[:100]!r}"
            )
        rows.append(
            HashRow(_frame(parts[0], where), _seconds(parts[3], where), _quality(parts[1], where), from_hex(parts[2]))
        )
    if not rows:
        raise HashListError(f"{name}: no vPDQ frame hashes")
    return rows


def _is_vpdq(line: str) -> bool:
    parts = [p.strip() for p in line.split(",")]
    return len(parts) >= 4 and bool(_HEX.match(parts[2])) and not _HEX.match(parts[0])


def parse_pdq(text: str, label: str | None, name: str = "<pdq>") -> list[Item]:
    """Image items from a PDQ list; the label comes from the 4th field, else `label`."""
    items = []
    for n, line in _lines(text):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("pdq "):
            line = line[4:].strip().split()[0]
        parts = [p.strip() for p in line.split(",")]
        if not _HEX.match(parts[0]):
            raise HashListError(f"{name}:{n}: not a PDQ hash (64 hex characters first): {line[:100]!r}")
        quality = _quality(parts[1], f"{name}:{n}") if len(parts) > 1 and parts[1] else 100
        ref = parts[2] if len(parts) > 2 and parts[2] else parts[0].lower()
        item_label = parts[3] if len(parts) > 3 and parts[3] else label
        if not item_label:
            raise HashListError(f"{name}:{n}: no label in the line; pass one (--label)")
        items.append(Item(ref, "image", item_label, [HashRow(0, 0.0, quality, from_hex(parts[0]))]))
    return items


def read_hash_list(path: str | os.PathLike[str], label: str | None = None) -> list[Item]:
    """Items from an exported folder, a vPDQ file (one video, ref = file stem) or a PDQ list."""
    p = Path(path)
    if p.is_dir():
        return _read_bundle(p)
    text = _read_list(p)
    first = next((ln for _, ln in _lines(text) if ln.strip() and not ln.lstrip().startswith("#")), "")
    if _is_vpdq(first):
        if not label:
            raise HashListError(f"{p}: a vPDQ file carries no label; pass one (--label)")
        rows = parse_vpdq(text, str(p))
        duration = max(r.timestamp for r in rows) + 1.0
        return [Item(p.stem, "video", label, rows, duration_s=duration)]
    return parse_pdq(text, label, str(p))


def _read_bundle(folder: Path) -> list[Item]:
    items_csv = folder / "items.csv"
    if not items_csv.is_file():
        raise HashListError(f"{folder} has no items.csv: not an exported hash bundle")
    faces: dict[str, list[HashRow]] = {}
    if (folder / "faces.txt").exists():
        for n, line in _lines(_read_list(folder / "faces.txt")):
            if not line.strip():
                continue
            parts = line.strip().split(",")
            where = f"{folder / 'faces.txt'}:{n}"
            if len(parts) < 4 or not _HEX.match(parts[0]):
                raise HashListError(f"{where}: expected hash,quality,ref,frame_number")
            faces.setdefault(parts[2], []).append(
                HashRow(_frame(parts[3], where), 0.0, _quality(parts[1], where), from_hex(parts[0]), "face")
            )
    pdq_rows: dict[str, HashRow] = {}
    if (folder / "pdq.txt").exists():
        for it in parse_pdq(_read_list(folder / "pdq.txt"), "-", str(folder / "pdq.txt")):
            pdq_rows[it.ref] = it.hashes[0]
    out = []
    with _reading(items_csv):
        for n, row in enumerate(_csv_rows(items_csv), 2):
            ref, kind = row["ref"], row["kind"]
            if kind == "image":
                if ref not in pdq_rows:
                    raise HashListError(f"{items_csv}:{n}: image {ref!r} has no line in pdq.txt")
                hashes = [pdq_rows[ref]]
            elif kind == "video":
                vfile = folder / row["file"]
                if not vfile.resolve().is_relative_to(folder.resolve()):
                    raise HashListError(f"{items_csv}:{n}: {row['file']!r} points outside the bundle")
                hashes = parse_vpdq(_read_list(vfile), str(vfile))
            else:
                raise HashListError(f"{items_csv}:{n}: kind must be image or video, got {kind!r}")
            metadata = json.loads(row["metadata"] or "{}")
            if not isinstance(metadata, dict):
                raise HashListError(f"{items_csv}:{n}: metadata must be a JSON object")
            duration = _seconds(row["duration_s"], f"{items_csv}:{n}") if row["duration_s"] else None
            item = Item(
                ref,
                kind,
                row["label"],
                hashes + faces.get(ref, []),
                row["sha256"] or None,
                duration,
                row["source"] or None,
                metadata,
            )
            out.append(item)
    return out


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    """items.csv rows, text cells restored (a regular file under the size cap, cells of at most MAX_CELL
    characters)."""
    try:
        frame = read_frame_csv(io.StringIO(_read_list(path)), TEXT_COLUMNS)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:  # EmptyDataError is a ValueError
        raise HashListError(f"{path}: not a readable CSV ({str(exc)[:200]})") from None
    missing = [c for c in ITEMS_COLUMNS if c not in frame.columns]
    if missing:
        raise HashListError(f"{path}: missing column(s) {', '.join(missing)}")
    if any(len(cell) > MAX_CELL for col in ITEMS_COLUMNS for cell in frame[col]):
        raise HashListError(f"{path}: not a readable CSV (a cell is longer than {MAX_CELL} characters)")
    yield from frame.to_dict("records")


def export_bundle(index: HashIndex, folder: str | os.PathLike[str], label: str | None = None) -> int:
    """Write the index (or only items with `label`) as a shareable folder; returns the number of items."""
    out = Path(folder)
    (out / "vpdq").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    pdq_lines, face_lines = [], []
    for n, it in enumerate(index.items()):
        if label is not None and it.label != label:
            continue
        frames = [h for h in it.hashes if h.role == "frame"]
        face_lines += [f"{h.bits.hex()},{h.quality},{it.ref},{h.frame_index}\n" for h in it.hashes if h.role == "face"]
        file = ""
        if it.kind == "image":
            pdq_lines.append(f"{frames[0].bits.hex()},{frames[0].quality},{it.ref},{it.label}\n")
        else:
            file = f"vpdq/{n:06d}.txt"
            (out / file).write_text(format_vpdq(frames), encoding="utf-8")
        rows.append(
            {
                "ref": it.ref,
                "kind": it.kind,
                "label": it.label,
                "sha256": it.sha256 or "",
                "duration_s": it.duration_s,
                "source": it.source or "",
                "file": file,
                "metadata": json.dumps(it.metadata, sort_keys=True),
            }
        )
    (out / "pdq.txt").write_text("".join(pdq_lines), encoding="utf-8")
    (out / "faces.txt").write_text("".join(face_lines), encoding="utf-8")
    items = pd.DataFrame(rows, columns=list(ITEMS_COLUMNS))
    (out / "items.csv").write_text(frame_csv(items, TEXT_COLUMNS), encoding="utf-8")
    return len(rows)
