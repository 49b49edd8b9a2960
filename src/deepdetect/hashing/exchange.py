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
import json
import os
import re
from pathlib import Path
from typing import Any

from deepdetect.hashing.index import HashIndex, HashRow, Item
from deepdetect.hashing.pdq import from_hex

_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
ITEMS_COLUMNS = ("ref", "kind", "label", "sha256", "duration_s", "source", "file", "metadata")


class HashListError(ValueError):
    """A hash list that cannot be read; the message names the file and line."""


def format_vpdq(rows: list[HashRow]) -> str:
    """ThreatExchange vPDQ text for one video's frame hashes."""
    return "".join(f"{r.frame_index},{r.quality},{r.bits.hex()},{r.timestamp:.3f}\n" for r in rows)


def parse_vpdq(text: str, name: str = "<vpdq>") -> list[HashRow]:
    """Frame hashes from ThreatExchange vPDQ text; raises HashListError on a malformed line."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            if len(parts) < 4 or not _HEX.match(parts[2]):
                raise ValueError("expected frame_number,quality,hash,timestamp")
            rows.append(HashRow(int(parts[0]), float(parts[3]), int(parts[1]), from_hex(parts[2])))
        except ValueError as exc:
            raise HashListError(f"{name}:{n}: not a vPDQ line ({exc}): {line[:100]!r}") from None
    if not rows:
        raise HashListError(f"{name}: no vPDQ frame hashes")
    return rows


def _is_vpdq(line: str) -> bool:
    parts = [p.strip() for p in line.split(",")]
    return len(parts) >= 4 and bool(_HEX.match(parts[2])) and not _HEX.match(parts[0])


def parse_pdq(text: str, label: str | None, name: str = "<pdq>") -> list[Item]:
    """Image items from a PDQ list; the label comes from the 4th field, else `label`."""
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("pdq "):
            line = line[4:].strip().split()[0]
        parts = [p.strip() for p in line.split(",")]
        if not _HEX.match(parts[0]):
            raise HashListError(f"{name}:{n}: not a PDQ hash (64 hex characters first): {line[:100]!r}")
        try:
            quality = int(parts[1]) if len(parts) > 1 and parts[1] else 100
        except ValueError:
            raise HashListError(f"{name}:{n}: quality is not an integer: {parts[1]!r}") from None
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
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HashListError(f"cannot read hash list {p}: {exc}") from None
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
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
    if (folder / "faces.txt").is_file():
        for n, line in enumerate((folder / "faces.txt").read_text(encoding="utf-8").splitlines(), 1):
            parts = line.strip().split(",")
            if len(parts) < 4 or not _HEX.match(parts[0]):
                raise HashListError(f"{folder / 'faces.txt'}:{n}: expected hash,quality,ref,frame_number")
            faces.setdefault(parts[2], []).append(
                HashRow(int(parts[3]), 0.0, int(parts[1]), from_hex(parts[0]), "face")
            )
    pdq_rows: dict[str, HashRow] = {}
    if (folder / "pdq.txt").is_file():
        for it in parse_pdq((folder / "pdq.txt").read_text(encoding="utf-8"), "-", str(folder / "pdq.txt")):
            pdq_rows[it.ref] = it.hashes[0]
    out = []
    with items_csv.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            ref, kind = row["ref"], row["kind"]
            if kind == "image":
                if ref not in pdq_rows:
                    raise HashListError(f"{items_csv}: image {ref!r} has no line in pdq.txt")
                hashes = [pdq_rows[ref]]
            else:
                vfile = folder / row["file"]
                if not vfile.resolve().is_relative_to(folder.resolve()):
                    raise HashListError(f"{items_csv}: {row['file']!r} points outside the bundle")
                hashes = parse_vpdq(vfile.read_text(encoding="utf-8"), str(vfile))
            out.append(
                Item(
                    ref,
                    kind,
                    row["label"],
                    hashes + faces.get(ref, []),
                    row["sha256"] or None,
                    float(row["duration_s"]) if row["duration_s"] else None,
                    row["source"] or None,
                    json.loads(row["metadata"] or "{}"),
                )
            )
    return out


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
                "duration_s": "" if it.duration_s is None else it.duration_s,
                "source": it.source or "",
                "file": file,
                "metadata": json.dumps(it.metadata, sort_keys=True),
            }
        )
    (out / "pdq.txt").write_text("".join(pdq_lines), encoding="utf-8")
    (out / "faces.txt").write_text("".join(face_lines), encoding="utf-8")
    with (out / "items.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ITEMS_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
