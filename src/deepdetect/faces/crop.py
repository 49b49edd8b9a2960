"""Square face crops with a relative margin: the one cropping function every stage uses."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def square_box(box: Sequence[float], margin: float, frame_w: int, frame_h: int) -> tuple[int, int, int, int]:
    """Square integer box around `box` (x1,y1,x2,y2), side grown by `margin` × the box's longer side, clipped."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"degenerate box {box}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1.0 + margin)
    side = min(side, float(frame_w), float(frame_h))
    half = side / 2
    # Shift the square inside the frame before clipping so it stays square where the frame allows.
    left = min(max(cx - half, 0.0), frame_w - side)
    top = min(max(cy - half, 0.0), frame_h - side)
    ix1, iy1 = round(left), round(top)
    iside = max(1, round(side))
    ix2, iy2 = min(frame_w, ix1 + iside), min(frame_h, iy1 + iside)
    return ix1, iy1, ix2, iy2


def crop_face(
    frame: np.ndarray,
    box: Sequence[float],
    landmarks: np.ndarray | Sequence[Sequence[float]] | None,
    margin: float,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a `size`×`size` RGB uint8 face; returns (crop, landmarks (5,2) in crop pixels)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 frame, got shape {frame.shape}")
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = square_box(box, margin, w, h)
    patch = frame[y1:y2, x1:x2]
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_CUBIC
    crop = cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=interp)
    pts = np.zeros((5, 2), dtype=np.float32) if landmarks is None else np.asarray(landmarks, dtype=np.float32)
    pts = pts.reshape(-1, 2)
    sx, sy = size / max(1, x2 - x1), size / max(1, y2 - y1)
    crop_pts = np.stack([(pts[:, 0] - x1) * sx, (pts[:, 1] - y1) * sy], axis=1).astype(np.float32)
    return crop.astype(np.uint8, copy=False), crop_pts
