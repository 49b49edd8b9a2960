"""Link per-frame detections into face tracks by IoU, and select which faces to keep."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from deepdetect.faces.boxes import box_iou, box_sizes
from deepdetect.faces.detections import Detections, FrameDetector

__all__ = ["box_iou", "box_sizes", "detect_tracked", "keyframes", "link_tracks", "select_faces"]

KEEP_MODES = ("largest", "all")


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


def interpolate_boxes(a: np.ndarray, b: np.ndarray, frac: float, max_ratio: float = 1.5) -> np.ndarray:
    """Boxes a fraction `frac` of the way from each box of `b` to its partner in `a` (linear motion).

    Partners are paired greedily by centre distance (in units of box size), one to one, among boxes whose sizes differ
    by at most `max_ratio`: a face that moved further than its own width between two keyframes is still followed.
    """
    a, b = np.asarray(a, np.float32).reshape(-1, 4), np.asarray(b, np.float32).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((0, 4), np.float32)
    size_a, size_b = np.maximum(box_sizes(a), 1e-3), np.maximum(box_sizes(b), 1e-3)
    centre_a = (a[:, :2] + a[:, 2:]) / 2
    centre_b = (b[:, :2] + b[:, 2:]) / 2
    dist = np.linalg.norm(centre_a[:, None] - centre_b[None], axis=2) / np.sqrt(size_a[:, None] * size_b[None])
    ratio = np.maximum(size_a[:, None] / size_b[None], size_b[None] / size_a[:, None])
    dist[ratio > max_ratio] = np.inf
    out, used_a, used_b = [], set(), set()
    for i, j in zip(*np.unravel_index(np.argsort(dist, axis=None), dist.shape), strict=True):
        if not np.isfinite(dist[i, j]) or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append(a[i] + (b[j] - a[i]) * float(frac))
    return np.stack(out).astype(np.float32) if out else np.zeros((0, 4), np.float32)


def distinct_boxes(boxes: np.ndarray, iou_threshold: float = 0.6) -> np.ndarray:
    """The boxes in order, without those overlapping an earlier kept one by more than `iou_threshold` IoU."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    kept: list[int] = []
    for i in range(len(boxes)):
        if not kept or box_iou(boxes[i : i + 1], boxes[kept]).max() <= iou_threshold:
            kept.append(i)
    return boxes[kept]


def keyframes(n: int, every: int) -> list[int]:
    """Indices of the frames a tracked detection runs the full detector on: every `every`-th, and the last."""
    if n <= 0:
        return []
    every = max(1, int(every))
    return sorted(set(range(0, n, every)) | {n - 1})


def detect_tracked(
    detector: FrameDetector,
    frames: Sequence[np.ndarray],
    every: int = 1,
    chunk: int = 16,
    progress: Callable[[int], object] | None = None,
) -> list[Detections]:
    """Faces of every frame of one video, with the full detector on keyframes only (see `keyframes`).

    A frame between two keyframes is `detector.refine`d from the faces of the frame before it and of the next
    keyframe: MTCNN's R-Net and O-Net confirm and regress them, without the P-Net pyramid that is most of the cost.
    A face that shows between two keyframes only (seen in neither) is missed, so `every` trades speed against short
    appearances; `every=1` is the full detector on every frame. Segments between keyframes run on the detector's
    frame threads. `progress(k)` is called as k more frames are done.
    """
    n = len(frames)
    keys, chunk = keyframes(n, every), max(1, chunk)  # every <= 1: each frame is a keyframe
    out: list[Detections] = [Detections()] * n
    for lo in range(0, len(keys), chunk):
        part = keys[lo : lo + chunk]
        for i, det in zip(part, detector.detect([frames[i] for i in part]), strict=True):
            out[i] = det
        if progress is not None:
            progress(len(part))
    spans = [(a, b) for a, b in itertools.pairwise(keys) if b - a > 1]

    def segment(j: int) -> list[Detections]:
        a, b = spans[j]
        prev, found = out[a], []
        for t in range(a + 1, b):
            between = interpolate_boxes(out[a].boxes, out[b].boxes, (t - a) / (b - a))
            prev = detector.refine(frames[t], distinct_boxes(np.concatenate([prev.boxes, between, out[b].boxes])))
            found.append(prev)
        return found

    if not spans:
        return out
    for (a, b), found in zip(spans, detector.map_frames(segment, range(len(spans))), strict=True):
        out[a + 1 : b] = found
        if progress is not None:
            progress(b - a - 1)
    return out
