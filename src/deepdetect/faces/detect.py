"""Face detection with facenet-pytorch MTCNN: boxes, scores and 5 landmarks in full-resolution pixels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
import torch

log = logging.getLogger(__name__)

BatchMode = bool | Literal["auto"]

# Measured in bench/bench_mtcnn.py: on CPU per-frame detection is as fast or faster than batched
# (batching pads nothing but pushes a huge P-Net pyramid tensor through at once), on CUDA batching wins.
CPU_BATCH_DEFAULT = False
# Frames with a longer side are detected on a copy downscaled to this side (boxes mapped back to full resolution):
# MTCNN's image pyramid on a 64-megapixel photo needs gigabytes; at this size it finds the same faces. Measured with
# bench/bench_memory.py (7999x7999 JPEG, 2 busy cores): peak RSS 1.65 GB and 11.6 s, vs 3.74 GB and 50.9 s at full size.
DETECT_MAX_SIDE = 2048
# MTCNN's P-Net window is 12 px and finds faces from about 20 px on its input: the floor of its pyramid that we use.
MTCNN_FLOOR_PX = 20


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


def resolve_batch(batch: BatchMode, device: str | torch.device) -> bool:
    """Whether to batch frames through MTCNN: explicit bool, or by device for "auto"."""
    if isinstance(batch, bool):
        return batch
    if batch != "auto":
        raise ValueError(f"batch must be true, false or 'auto', got {batch!r}")
    return torch.device(device).type == "cuda" or CPU_BATCH_DEFAULT


def downscale_factor(height: int, width: int, downscale: float | None) -> float:
    """Scale applied before detection: `downscale` > 1 is a max side in pixels, in (0, 1] a factor."""
    if downscale is None:
        return 1.0
    if downscale <= 0:
        raise ValueError(f"downscale must be positive, got {downscale}")
    if downscale <= 1:
        return float(downscale)
    return min(1.0, float(downscale) / max(height, width))


class FaceDetector:
    """MTCNN wrapper: `detect(frames)` gives one `Detections` per RGB uint8 frame."""

    def __init__(
        self,
        device: str | torch.device = "cpu",
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        downscale: float | None = None,
        batch: BatchMode = "auto",
        batch_size: int = 16,
        frame_workers: int = 1,
    ) -> None:
        from facenet_pytorch import MTCNN

        self.device = torch.device(device)
        self.min_face_size = int(min_face_size)
        self.downscale = downscale
        self.batch = resolve_batch(batch, self.device)
        self.batch_size = max(1, int(batch_size))
        # Frames of one call detected concurrently (per-frame mode): torch releases the GIL inside MTCNN, so with one
        # torch thread each, a video's frames use several cores. The threads are shared by every caller.
        self.frame_workers = max(1, int(frame_workers))
        self._frame_pool: ThreadPoolExecutor | None = None
        self.mtcnn = MTCNN(
            keep_all=True,
            post_process=False,
            select_largest=False,
            min_face_size=self.min_face_size,
            thresholds=list(thresholds),
            device=self.device,
        )
        self.mtcnn.eval()

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got shape {frame.shape} dtype {frame.dtype}")
        h, w = frame.shape[:2]
        scale = min(downscale_factor(h, w, self.downscale), DETECT_MAX_SIDE / max(h, w, 1))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            scale_x, scale_y = size[0] / w, size[1] / h
            scale = (scale_x + scale_y) / 2
        return np.ascontiguousarray(frame), scale

    def _run(self, stack: np.ndarray, scale: float) -> list[Detections]:
        from facenet_pytorch.models.utils.detect_face import detect_face

        # MTCNN's minimum face size is in detector pixels; keep it in full-res pixels when downscaled. It is passed
        # per call (MTCNN.detect would read it from the shared module), so threads may share one detector.
        m = self.mtcnn
        minsize = max(12, round(self.min_face_size * scale))
        boxes, points = detect_face(stack, minsize, m.pnet, m.rnet, m.onet, m.thresholds, m.factor, self.device)
        out: list[Detections] = []
        for b, lm in zip(boxes, points, strict=True):
            b = np.asarray(b, dtype=np.float32).reshape(-1, 5)
            out.append(Detections(b[:, :4].copy(), b[:, 4].copy(), np.asarray(lm, dtype=np.float32).reshape(-1, 5, 2)))
        return out

    def _map(self, fn: Callable[[int], Detections], todo: list[int]) -> Iterator[Detections]:
        if self.frame_workers == 1 or len(todo) < 2:
            return map(fn, todo)
        if self._frame_pool is None:
            self._frame_pool = ThreadPoolExecutor(self.frame_workers, thread_name_prefix="detect")

        def run(i: int) -> Detections:
            with torch.inference_mode():  # inference mode is per thread
                return fn(i)

        return self._frame_pool.map(run, todo)

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect faces in each frame; boxes and landmarks are mapped back to the frame's full resolution."""
        if len(frames) == 0:
            return []
        prepared = [self._prepare(f) for f in frames]
        results: list[Detections | None] = [None] * len(frames)
        # A frame smaller than the smallest detectable face holds none (and MTCNN fails on it): it stays empty.
        tiny = {
            i for i, (img, sc) in enumerate(prepared) if min(img.shape[:2]) < max(12, round(self.min_face_size * sc))
        }
        if self.batch:
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, (img, _) in enumerate(prepared):
                if i not in tiny:
                    groups.setdefault(img.shape, []).append(i)
            for idx in groups.values():
                for start in range(0, len(idx), self.batch_size):
                    chunk = idx[start : start + self.batch_size]
                    stack = np.stack([prepared[i][0] for i in chunk])
                    for i, det in zip(chunk, self._run(stack, prepared[chunk[0]][1]), strict=True):
                        results[i] = det
        else:
            todo = [i for i in range(len(prepared)) if i not in tiny]
            found = self._map(lambda i: self._run(prepared[i][0][None], prepared[i][1])[0], todo)
            for i, det in zip(todo, found, strict=True):
                results[i] = det
        final: list[Detections] = []
        for maybe, (_, scale) in zip(results, prepared, strict=True):
            det = maybe if maybe is not None else Detections()
            if scale != 1.0 and len(det):
                det = Detections(det.boxes / scale, det.scores, det.landmarks / scale)
            final.append(det)
        return final

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Alias of `detect`."""
        return self.detect(frames)


def pyramid_for_min_face(min_face: float, slack: float, floor: int = MTCNN_FLOOR_PX) -> tuple[int, float | None]:
    """(MTCNN minimum face size, downscale factor) that look for faces down to `slack` x `min_face` full-res px:
    the frame is detected on a copy scaled so that size maps to MTCNN's `floor` (boxes mapped back); no
    downscale when that size is at or under the floor."""
    if min_face < 0 or not 0 < slack <= 1:
        raise ValueError(f"need min_face >= 0 and slack in (0, 1], got {min_face}, {slack}")
    size = max(floor, int(min_face * slack))
    return size, (floor / size if size > floor else None)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads (process-wide), restoring the previous count after."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def detector_from_config(cfg: Any) -> FaceDetector:
    """Build a `FaceDetector` from an extract config node (device, min_face_size, downscale, batch)."""
    return FaceDetector(
        device=str(cfg.get("device", "cpu")),
        min_face_size=int(cfg.get("detector_min_face_size", 20)),
        downscale=cfg.get("downscale"),
        batch=cfg.get("batch", "auto"),
    )
