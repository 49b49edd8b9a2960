"""Match hash records (from `records.hash_file`) against a known-content index.

For each indexed item with at least one hash within `max_distance` of a query hash (any rotation/flip of the query
when the record has them, and face crops when both sides have them), a `KnownMatch` reports the best distance, the
share of the query's frames matched and of the item's frames matched (vPDQ's two percentages), and the matched
time ranges on both sides. Frames below `min_quality` take no part, as in vPDQ. The match decision follows
vPDQ's defaults: a video query matches a video item when at least 80% of its frames match and at least 0% of the
item's do; anything involving an image matches on any frame within the distance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from deepdetect.hashing.index import HashIndex, Item
from deepdetect.hashing.pdq import DIHEDRAL, MATCH_DISTANCE, MIN_QUALITY, from_hex
from deepdetect.hashing.search import Searcher, make_searcher

MIN_QUERY_SHARE = 0.8  # vPDQ: share of the query's frames that must match
MIN_INDEXED_SHARE = 0.0  # vPDQ: share of the indexed video's frames that must match


@dataclass
class KnownMatch:
    """One indexed item that a query matched, with where and how well."""

    ref: str
    label: str
    kind: str
    distance: int
    via: str  # what matched at the best distance: original, rot90, ..., face, sha256
    query_share: float
    indexed_share: float
    query_ranges: list[list[float]] = field(default_factory=list)
    indexed_ranges: list[list[float]] = field(default_factory=list)
    is_match: bool = False
    source: str | None = None  # the indexed item's source (e.g. the case it was reported in)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _QueryFrame:
    timestamp: float
    hashes: list[tuple[bytes, str]]  # (hash, variant name or 'face')


def query_frames(rec: dict[str, Any], min_quality: int = MIN_QUALITY) -> tuple[list[_QueryFrame], float | None]:
    """The query's frames (one for an image) with their hashes and variants, and its duration (videos)."""
    faces: dict[int, list[bytes]] = {}
    for f in rec.get("faces") or []:
        if int(f["quality"]) >= min_quality:
            faces.setdefault(int(f["frame_index"]), []).append(from_hex(f["pdq"]))
    if rec.get("kind") == "image":
        frames = [{"frame_index": 0, "timestamp": 0.0, "pdq": rec["pdq"], "quality": rec["quality"]}]
        frames[0]["dihedral"] = rec.get("dihedral") or []
    else:
        frames = rec.get("frames") or []
    out = []
    for fr in frames:
        hashes = [(from_hex(fr["pdq"]), DIHEDRAL[0])] if int(fr["quality"]) >= min_quality else []
        if hashes:
            hashes += [(from_hex(h), name) for h, name in zip(fr.get("dihedral") or [], DIHEDRAL[1:], strict=False)]
        hashes += [(b, "face") for b in faces.get(int(fr["frame_index"]), [])]
        if hashes:
            out.append(_QueryFrame(float(fr["timestamp"]), hashes))
    return out, rec.get("duration_s")


def _ranges(times: list[float], matched: set[int], end: float | None) -> list[list[float]]:
    """Merge the spans [t_i, t_{i+1}) of the matched positions into [start, end] ranges (seconds)."""
    spans: list[list[float]] = []
    for i in sorted(matched):
        start = times[i]
        stop = times[i + 1] if i + 1 < len(times) else (end if end is not None and end > start else start)
        if spans and abs(spans[-1][1] - start) < 1e-6:
            spans[-1][1] = stop
        else:
            spans.append([start, stop])
    return [[round(a, 3), round(b, 3)] for a, b in spans]


class Matcher:
    """Everything in an index loaded into a searcher once; `match(record)` for each query."""

    def __init__(
        self,
        index: HashIndex,
        engine: str = "auto",
        max_distance: int = MATCH_DISTANCE,
        min_quality: int = MIN_QUALITY,
        min_query_share: float = MIN_QUERY_SHARE,
        min_indexed_share: float = MIN_INDEXED_SHARE,
    ) -> None:
        self.index = index
        self.max_distance = max_distance
        self.min_quality = min_quality
        self.min_query_share, self.min_indexed_share = min_query_share, min_indexed_share
        table = index.table()
        keep = table.quality >= min_quality
        self.codes = table.codes[keep]
        self.item_ids = table.item_ids[keep]
        self.frame_index = table.frame_index[keep]
        self.is_face = table.is_face[keep]
        self.searcher: Searcher = make_searcher(engine, self.codes)
        self.items: dict[int, Item] = {it.id: it for it in index.items(with_hashes=False) if it.id is not None}
        # each item's frames (timestamps in order) for the indexed share and ranges
        self.item_frames: dict[int, tuple[list[int], list[float]]] = {}
        order = np.lexsort((table.timestamp, table.item_ids))
        for r in order:
            if table.is_face[r] or table.quality[r] < min_quality:
                continue
            fi, ts = self.item_frames.setdefault(int(table.item_ids[r]), ([], []))
            if not fi or fi[-1] != int(table.frame_index[r]):
                fi.append(int(table.frame_index[r]))
                ts.append(float(table.timestamp[r]))

    def match(self, rec: dict[str, Any]) -> list[KnownMatch]:
        """Indexed items matched by one ok hash record, matches first, then by distance."""
        frames, duration = query_frames(rec, self.min_quality)
        found: dict[int, KnownMatch] = {}
        if rec.get("sha256"):
            for it in self.index.by_sha256(rec["sha256"]):
                assert it.id is not None
                found[it.id] = KnownMatch(
                    it.ref, it.label, it.kind, 0, "sha256", 1.0, 1.0, is_match=True, source=it.source
                )
        if not frames:
            return list(found.values())
        flat = [(q, b, variant) for q, fr in enumerate(frames) for b, variant in fr.hashes]
        codes = np.frombuffer(b"".join(b for _, b, _ in flat), dtype=np.uint8).reshape(len(flat), -1)
        hits = self.searcher.search(codes, self.max_distance)
        per_item: dict[int, dict[str, Any]] = {}
        for (q, _, variant), (rows, dists) in zip(flat, hits, strict=True):
            for row, d in zip(rows.tolist(), dists.tolist(), strict=True):
                item = int(self.item_ids[row])
                acc = per_item.setdefault(item, {"q": set(), "i": set(), "best": (10**9, "")})
                acc["q"].add(q)
                acc["i"].add(int(self.frame_index[row]))
                acc["best"] = min(acc["best"], (int(d), variant))
        q_times = [fr.timestamp for fr in frames]
        for item_id, acc in per_item.items():
            it = self.items[item_id]
            fi, ts = self.item_frames.get(item_id, ([], []))
            i_pos = {p for p, f in enumerate(fi) if f in acc["i"]}
            q_share = len(acc["q"]) / len(frames)
            i_share = len(i_pos) / len(fi) if fi else (1.0 if acc["i"] else 0.0)
            both_video = rec.get("kind") == "video" and it.kind == "video"
            is_match = (q_share >= self.min_query_share and i_share >= self.min_indexed_share) if both_video else True
            m = KnownMatch(
                it.ref,
                it.label,
                it.kind,
                acc["best"][0],
                acc["best"][1],
                round(q_share, 4),
                round(i_share, 4),
                _ranges(q_times, acc["q"], duration) if rec.get("kind") == "video" else [],
                _ranges(ts, i_pos, it.duration_s) if it.kind == "video" else [],
                is_match,
                it.source,
            )
            if item_id in found:  # also byte-identical
                m.via, m.distance, m.is_match = "sha256", 0, True
            found[item_id] = m
        return sorted(found.values(), key=lambda m: (not m.is_match, m.distance, -m.query_share, m.ref))
