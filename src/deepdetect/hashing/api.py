"""Hash files into the index and match files against it: the library behind `deepdetect-index add|match`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from deepdetect.hashing.index import HashIndex, Item
from deepdetect.hashing.match import Matcher
from deepdetect.hashing.records import hash_paths
from deepdetect.hashing.video import DEFAULT_DEDUP_DISTANCE, DEFAULT_FPS
from deepdetect.utils.io import open_regular

MAX_RECORD_BYTES = 64 << 20  # one JSON line of a records file


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Hash records from a `deepdetect-hash` JSONL file (a regular file; lines of at most MAX_RECORD_BYTES, each a
    JSON object); ValueError names the line that is not one."""
    with open_regular(path) as fh:
        for n, raw in enumerate(iter(lambda: fh.readline(MAX_RECORD_BYTES + 1), b""), 1):
            if len(raw) > MAX_RECORD_BYTES:
                raise ValueError(f"{os.fsdecode(path)}:{n}: a line longer than {MAX_RECORD_BYTES} bytes")
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                raise ValueError(f"{os.fsdecode(path)}:{n}: not a JSON record: {str(exc)[:200]}") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{os.fsdecode(path)}:{n}: not a JSON object")
            yield rec


def records_for(
    paths: Iterable[str | os.PathLike[str]],
    fps: float = DEFAULT_FPS,
    dedup_distance: int = DEFAULT_DEDUP_DISTANCE,
    detector: Any = None,
    dihedral: bool = False,
) -> Iterator[dict[str, Any]]:
    """Records of media paths, hashing them; `.jsonl` paths are read as records already made by `deepdetect-hash`."""
    for p in paths:
        if str(p).lower().endswith(".jsonl") and Path(p).is_file():
            yield from read_records(p)
        else:
            yield from hash_paths([p], fps, dedup_distance, detector, dihedral)


def add_records(
    index: HashIndex,
    records: Iterable[dict[str, Any]],
    label: str,
    ref: str | None = None,
    source: str | None = None,
    replace: bool = False,
) -> tuple[int, int, list[dict[str, Any]]]:
    """Add every ok record as an item; returns (added, already present, records that could not be hashed)."""
    items, failed = [], []
    for rec in records:
        if rec.get("status") != "ok":
            failed.append(rec)
            continue
        try:
            items.append(Item.from_record(rec, label, ref, source))
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise ValueError(f"malformed hash record {str(rec.get('path'))[:200]!r}: {str(exc)[:200]}") from None
    if ref is not None and len(items) > 1:
        raise ValueError("--ref names one item; it cannot be given with several files")
    added, skipped = index.add(items, replace=replace) if items else (0, 0)
    return added, skipped, failed


def match_records(
    matcher: Matcher, records: Iterable[dict[str, Any]], keep_all: bool = False
) -> Iterator[dict[str, Any]]:
    """One result per record: path, sha256, kind, status, error, `known_match` (best match or null), `matches`.

    A record that cannot be matched (a malformed hash, a missing field) gets status `error` and its reason; the
    others go on."""
    for rec in records:
        out = {k: rec.get(k) for k in ("path", "path_bytes_b64", "sha256", "kind", "status", "error")}
        try:
            matches = matcher.match(rec) if rec.get("status") == "ok" else []
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            out["status"], out["error"], matches = "error", f"bad hash record: {type(exc).__name__}: {exc}", []
        if not keep_all:
            matches = [m for m in matches if m.is_match]
        best = next((m for m in matches if m.is_match), None)
        out["known_match"] = best.to_dict() if best else None
        out["matches"] = [m.to_dict() for m in matches]
        yield out


def annotate_prediction(
    rec: dict[str, Any], matcher: Matcher, frames_fps: float = DEFAULT_FPS, hashed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Add `pdq` (image: hex; video: [{frame_index, timestamp, pdq, quality}]) and `known_match` to a predict record.

    `known_match` is the best matching indexed item ({ref, label, distance, via, query_share, ...}) or null.
    `hashed`: the file's hash record with dihedral hashes (`records.hash_and_sample`), when the caller made it while
    decoding; otherwise the file is hashed here.
    """
    rec.setdefault("pdq", None)
    rec.setdefault("known_match", None)
    if rec.get("status") not in ("ok", "no_face"):
        return rec
    hrec = hashed if hashed is not None else next(iter(hash_paths([rec["path"]], frames_fps, dihedral=True)), None)
    if hrec is None or hrec["status"] != "ok":
        return rec
    if hrec["kind"] == "image":
        rec["pdq"] = hrec["pdq"]
    else:
        rec["pdq"] = [{k: f[k] for k in ("frame_index", "timestamp", "pdq", "quality")} for f in hrec["frames"]]
    best = next((m for m in matcher.match(hrec) if m.is_match), None)
    rec["known_match"] = best.to_dict() if best else None
    return rec
