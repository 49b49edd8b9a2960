"""Link per-frame detections into face tracks by IoU, and select which faces to keep."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepdetect.faces.detect import Detections

KEEP_MODES = ("largest", "all")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU between boxes a (N,4) and b (M,4) in x1y1x2y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    last_seen: int


def link_tracks(frames: Sequence[Detections], iou_threshold: float = 0.3, max_gap: int = 2) -> list[np.ndarray]:
    """Greedy IoU linking over consecutive sampled frames; returns track ids (K,) per frame, starting at 0.

    A track survives up to `max_gap` frames without a match before a new face starts a new track.
    """
    tracks: list[_Track] = []
    next_id = 0
    out: list[np.ndarray] = []
    for t, det in enumerate(frames):
        ids = np.full(len(det), -1, dtype=np.int64)
        alive = [tr for tr in tracks if t - tr.last_seen <= max_gap + 1]
        if len(det) and alive:
            iou = box_iou(det.boxes, np.stack([tr.box for tr in alive]))
            # Greedy: best pairs first.
            order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
            used_det: set[int] = set()
            used_tr: set[int] = set()
            for di, ti in order:
                if iou[di, ti] < iou_threshold:
                    break
                if di in used_det or ti in used_tr:
                    continue
                used_det.add(int(di))
                used_tr.add(int(ti))
                ids[di] = alive[ti].track_id
                alive[ti].box = det.boxes[di].copy()
                alive[ti].last_seen = t
        for di in np.flatnonzero(ids < 0):
            ids[di] = next_id
            tracks.append(_Track(next_id, det.boxes[di].copy(), t))
            next_id += 1
        out.append(ids)
    return out


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """Shorter side of each box (K,)."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    return np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def select_faces(det: Detections, keep: str = "largest", min_size: float = 0.0, min_score: float = 0.0) -> np.ndarray:
    """Indices of faces to keep: those with size >= min_size and score >= min_score; the largest one if `largest`."""
    if keep not in KEEP_MODES:
        raise ValueError(f"keep must be one of {KEEP_MODES}, got {keep!r}")
    if len(det) == 0:
        return np.zeros(0, dtype=np.int64)
    ok = np.flatnonzero((box_sizes(det.boxes) >= min_size) & (det.scores >= min_score))
    if keep == "largest" and len(ok):
        areas = (det.boxes[ok, 2] - det.boxes[ok, 0]) * (det.boxes[ok, 3] - det.boxes[ok, 1])
        ok = ok[[int(np.argmax(areas))]]
    return ok.astype(np.int64)
