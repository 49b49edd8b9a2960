"""What every face detector backend shares, without PyTorch: the `Detections` type, the frame preparation, the
search size rules and the retry step of tracking's `refine`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import cv2
import numpy as np

from deepdetect.faces.boxes import box_iou, nms

T = TypeVar("T")

# Frames with a longer side are detected on a copy downscaled to this side (boxes mapped back to full resolution):
# MTCNN's image pyramid on a 64-megapixel photo needs gigabytes; at this size it finds the same faces. Measured with
# bench/bench_memory.py (7999x7999 JPEG, 2 busy cores): peak RSS 1.65 GB and 11.6 s, vs 3.74 GB and 50.9 s at full size.
DETECT_MAX_SIDE = 2048
# MTCNN's P-Net window is 12 px and finds faces from about 20 px on its input: the floor of its pyramid that we use.
MTCNN_FLOOR_PX = 20
# A candidate counts as confirmed when a face with at least this O-Net score overlaps it.
CONFIRMED_SCORE = 0.95
# A candidate box that `refine` confirms no face on is tried again at these scales and shifts (fractions of its side).
JITTER_SCALES = (0.85, 1.0, 1.2)
JITTER_SHIFTS = ((0.0, 0.0), (-0.1, 0.0), (0.1, 0.0), (0.0, -0.1), (0.0, 0.1))


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _empty_scores() -> np.ndarray:
    return np.zeros((0,), dtype=np.float32)


def _empty_landmarks() -> np.ndarray:
    return np.zeros((0, 5, 2), dtype=np.float32)


@dataclass
class Detections:
    """Faces found in one frame: boxes (K,4) x1y1x2y2, scores (K,), landmarks (K,5,2), full-res pixels."""

    boxes: np.ndarray = field(default_factory=_empty_boxes)
    scores: np.ndarray = field(default_factory=_empty_scores)
    landmarks: np.ndarray = field(default_factory=_empty_landmarks)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def subset(self, index: Sequence[int] | np.ndarray) -> Detections:
        """The detections at the given indices."""
        idx = np.asarray(index, dtype=np.int64)
        return Detections(self.boxes[idx], self.scores[idx], self.landmarks[idx])


class FrameDetector(Protocol):
    """The interface predict and tracking use, offered by the PyTorch MTCNN and the ONNX Runtime one alike."""

    min_face_size: int
    batch_size: int

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """One `Detections` per RGB uint8 frame, in full-resolution pixels."""
        ...

    def refine(self, frame: np.ndarray, candidates: np.ndarray) -> Detections:
        """MTCNN's last two stages on candidate boxes (full-res x1y1x2y2) of one frame."""
        ...

    def map_frames(self, fn: Callable[[int], T], todo: Sequence[int]) -> Iterator[T]:
        """`fn` over `todo` in order, on the detector's frame threads."""
        ...


def downscale_factor(height: int, width: int, downscale: float | None) -> float:
    """Scale applied before detection: `downscale` > 1 is a max side in pixels, in (0, 1] a factor."""
    if downscale is None:
        return 1.0
    if downscale <= 0:
        raise ValueError(f"downscale must be positive, got {downscale}")
    if downscale <= 1:
        return float(downscale)
    return min(1.0, float(downscale) / max(height, width))


def prepare_frame(
    frame: np.ndarray, downscale: float | None, max_side: int = DETECT_MAX_SIDE
) -> tuple[np.ndarray, float]:
    """(the frame to detect on, its scale to full resolution): downscaled by `downscale` and to `max_side`."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB frame, got shape {frame.shape} dtype {frame.dtype}")
    h, w = frame.shape[:2]
    scale = min(downscale_factor(h, w, downscale), max_side / max(h, w, 1))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        scale_x, scale_y = size[0] / w, size[1] / h
        scale = (scale_x + scale_y) / 2
    return np.ascontiguousarray(frame), scale


def pyramid_for_min_face(min_face: float, slack: float, floor: int = MTCNN_FLOOR_PX) -> tuple[int, float | None]:
    """(MTCNN minimum face size, downscale factor) that look for faces down to `slack` x `min_face` full-res px:
    the frame is detected on a copy scaled so that size maps to MTCNN's `floor` (boxes mapped back); no
    downscale when that size is at or under the floor."""
    if min_face < 0 or not 0 < slack <= 1:
        raise ValueError(f"need min_face >= 0 and slack in (0, 1], got {min_face}, {slack}")
    size = max(floor, int(min_face * slack))
    return size, (floor / size if size > floor else None)


def jitter_boxes(boxes: np.ndarray) -> np.ndarray:
    """Every box (N,4) at each of `JITTER_SCALES` x `JITTER_SHIFTS` around its centre: (N*15, 4)."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    out = []
    for s in JITTER_SCALES:
        for dx, dy in JITTER_SHIFTS:
            x, y = cx + dx * w, cy + dy * h
            out.append(np.stack([x - s * w / 2, y - s * h / 2, x + s * w / 2, y + s * h / 2], axis=1))
    return np.concatenate(out).astype(np.float32)


def uncovered(cand: np.ndarray, boxes: np.ndarray, iou_threshold: float = 0.3) -> np.ndarray:
    """Mask of the candidate boxes that no found box overlaps by at least `iou_threshold` IoU."""
    if len(boxes) == 0:
        return np.ones(len(cand), dtype=bool)
    return np.asarray(box_iou(cand, boxes).max(axis=1) < iou_threshold)


Stages = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def refine_candidates(stages: Stages, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`stages` (R-Net then O-Net: candidate boxes (N,4) -> boxes with scores (K,5), landmarks (K,5,2)) on `cand`,
    with the candidates no face was confirmed on tried again at a few scales and shifts: P-Net proposes many windows
    around a face and the stages keep the best; one window per face loses faces the full detector finds."""
    boxes, points = stages(cand)
    missed = cand[uncovered(cand, boxes[boxes[:, 4] >= CONFIRMED_SCORE, :4])]
    if len(missed):
        more, more_points = stages(jitter_boxes(missed))
        boxes, points = np.concatenate([boxes, more]), np.concatenate([points, more_points])
        if len(boxes) > 1:  # MTCNN's last NMS ("min", 0.7) over the boxes of both passes
            keep = nms(boxes[:, :4], boxes[:, 4], 0.7, "min")
            boxes, points = boxes[keep], points[keep]
    return boxes, points
