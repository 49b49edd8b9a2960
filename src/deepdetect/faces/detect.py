"""Face detection with facenet-pytorch MTCNN: boxes, scores and 5 landmarks in full-resolution pixels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from deepdetect.faces.detections import (
    CONFIRMED_SCORE,
    DETECT_MAX_SIDE,
    JITTER_SCALES,
    JITTER_SHIFTS,
    MTCNN_FLOOR_PX,
    Detections,
    downscale_factor,
    jitter_boxes,
    prepare_frame,
    pyramid_for_min_face,
    refine_candidates,
)
from deepdetect.utils.threads import torch_threads

__all__ = [  # the shared names stay importable from here
    "CONFIRMED_SCORE",
    "DETECT_MAX_SIDE",
    "JITTER_SCALES",
    "JITTER_SHIFTS",
    "MTCNN_FLOOR_PX",
    "Detections",
    "FaceDetector",
    "detector_from_config",
    "downscale_factor",
    "jitter_boxes",
    "pyramid_for_min_face",
    "resolve_batch",
    "torch_threads",
]

log = logging.getLogger(__name__)

BatchMode = bool | Literal["auto"]
T = TypeVar("T")

# Measured in bench/bench_mtcnn.py: on CPU per-frame detection is as fast or faster than batched
# (batching pads nothing but pushes a huge P-Net pyramid tensor through at once), on CUDA batching wins.
CPU_BATCH_DEFAULT = False


def resolve_batch(batch: BatchMode, device: str | torch.device) -> bool:
    """Whether to batch frames through MTCNN: explicit bool, or by device for "auto"."""
    if isinstance(batch, bool):
        return batch
    if batch != "auto":
        raise ValueError(f"batch must be true, false or 'auto', got {batch!r}")
    return torch.device(device).type == "cuda" or CPU_BATCH_DEFAULT


class FaceDetector:
    """MTCNN wrapper: `detect(frames)` gives one `Detections` per RGB uint8 frame."""

    backend = "torch"

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
        return prepare_frame(frame, self.downscale, DETECT_MAX_SIDE)

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

    def map_frames(self, fn: Callable[[int], T], todo: Sequence[int]) -> Iterator[T]:
        """`fn` over `todo` in order, on the detector's `frame_workers` threads (each in inference mode)."""
        if self.frame_workers == 1 or len(todo) < 2:
            return map(fn, todo)
        if self._frame_pool is None:
            self._frame_pool = ThreadPoolExecutor(self.frame_workers, thread_name_prefix="detect")

        def run(i: int) -> T:
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
            found = self.map_frames(lambda i: self._run(prepared[i][0][None], prepared[i][1])[0], todo)
            for i, det in zip(todo, found, strict=True):
                results[i] = det
        final: list[Detections] = []
        for maybe, (_, scale) in zip(results, prepared, strict=True):
            det = maybe if maybe is not None else Detections()
            if scale != 1.0 and len(det):
                det = Detections(det.boxes / scale, det.scores, det.landmarks / scale)
            final.append(det)
        return final

    @torch.inference_mode()
    def refine(self, frame: np.ndarray, candidates: np.ndarray) -> Detections:
        """MTCNN's second and third stages (R-Net, O-Net) on candidate boxes instead of P-Net's pyramid proposals.

        For tracking: the boxes of the same faces in a nearby frame (full-res x1y1x2y2) are checked and regressed onto
        this frame. A candidate that is no longer a face fails R-Net's or O-Net's threshold, as a pyramid proposal
        would. Much cheaper than `detect`: no image pyramid and no P-Net pass over the frame.
        """
        cand = np.asarray(candidates, dtype=np.float32).reshape(-1, 4)
        img, scale = self._prepare(frame)
        if len(cand) == 0 or min(img.shape[:2]) < 12:
            return Detections()
        boxes, points = refine_candidates(lambda c: _refine_stages(self.mtcnn, img, c, self.device), cand * scale)
        if len(boxes) == 0:
            return Detections()
        return Detections(boxes[:, :4] / scale, boxes[:, 4].copy(), points / scale)

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Alias of `detect`."""
        return self.detect(frames)


def _crops(image: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The square boxes of a 1x3xHxW image (clipped to it) resampled to size x size and MTCNN-normalised,
    with the boxes that had pixels in the image (the others are dropped, as MTCNN drops them)."""
    from facenet_pytorch.models.utils.detect_face import imresample, pad

    h, w = image.shape[2:4]
    y, ey, x, ex = pad(boxes, w, h)
    ok = [k for k in range(len(y)) if ey[k] > y[k] - 1 and ex[k] > x[k] - 1]
    if not ok:
        return torch.zeros(0, 3, size, size, device=image.device), boxes[:0]
    parts = [imresample(image[:, :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]].float(), (size, size)) for k in ok]
    return (torch.cat(parts) - 127.5) * 0.0078125, boxes[ok]


def _refine_stages(
    mtcnn: Any, img: np.ndarray, cand: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """R-Net then O-Net on candidate boxes of one HxWx3 uint8 frame, as in facenet-pytorch's `detect_face`:
    (K,5) boxes with scores and (K,5,2) landmarks, after MTCNN's thresholds, box regression and NMS."""
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, rerec
    from torchvision.ops import nms

    empty = (np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))
    image = torch.as_tensor(img, device=device).permute(2, 0, 1)[None]  # uint8; only the crops become float
    boxes = torch.cat([torch.as_tensor(cand, device=device), torch.zeros(len(cand), 1, device=device)], dim=1)
    thresholds = mtcnn.thresholds
    data, boxes = _crops(image, rerec(boxes), 24)
    if len(boxes) == 0:
        return empty
    reg, prob = mtcnn.rnet(data)
    keep = prob[:, 1] > thresholds[1]
    boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], dim=1)
    reg = reg[keep]
    pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
    data, boxes = _crops(image, rerec(bbreg(boxes[pick], reg[pick])), 48)
    if len(boxes) == 0:
        return empty
    reg, marks, prob = mtcnn.onet(data)
    keep = prob[:, 1] > thresholds[2]
    boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], dim=1)
    reg, marks = reg[keep], marks[keep]
    if len(boxes) == 0:
        return empty
    w_i = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h_i = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    points = torch.stack([w_i * marks[:, :5] + boxes[:, 0:1] - 1, h_i * marks[:, 5:] + boxes[:, 1:2] - 1], dim=2)
    boxes = bbreg(boxes, reg)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes), dtype=torch.int64), 0.7, "Min")
    return boxes[pick].cpu().numpy().astype(np.float32), points[pick].cpu().numpy().astype(np.float32)


def detector_from_config(cfg: Any) -> FaceDetector:
    """Build a `FaceDetector` from an extract config node (device, min_face_size, downscale, batch)."""
    return FaceDetector(
        device=str(cfg.get("device", "cpu")),
        min_face_size=int(cfg.get("detector_min_face_size", 20)),
        downscale=cfg.get("downscale"),
        batch=cfg.get("batch", "auto"),
    )
