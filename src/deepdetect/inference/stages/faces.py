"""The faces stage: find the faces of a file's frames (tracked between keyframes in a video), keep those the
model's contract allows and crop them; also the face detector that predict uses for a model (MTCNN on PyTorch, or
the same cascade on ONNX Runtime, which spares a run with an ONNX model from importing PyTorch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from deepdetect.contract import ModelCard
from deepdetect.faces.detections import MTCNN_FLOOR_PX, Detections, FrameDetector, pyramid_for_min_face
from deepdetect.faces.track import detect_tracked, select_faces
from deepdetect.inference.settings import DETECTORS

FILE_PROGRESS_DELAY_S = 2.0  # a file's own progress bar appears only once it has taken this long
# Faces are followed between keyframes only when the sampled frames are at most this far apart: over longer gaps
# people move too far (and scenes cut), so every sampled frame then gets the full detector.
TRACK_MAX_GAP_S = 0.5


@dataclass
class Faces:
    """A file's face crops and, for each, its face record (frame_index, time_s, box, det_score)."""

    crops: list[np.ndarray] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


def detector_backend(choice: str, model_kind: str, device: str = "cpu") -> str:
    """The MTCNN backend a run uses: `ort` or `torch` as asked; `auto` is `ort` for an ONNX model on the CPU (the
    run then needs no PyTorch) and `torch` otherwise (a checkpoint loads PyTorch anyway; CUDA runs MTCNN on it)."""
    if choice not in DETECTORS:
        raise ValueError(f"unknown detector {choice!r}; expected one of {DETECTORS}")
    if choice != "auto":
        return choice
    return "ort" if model_kind == "onnx" and device == "cpu" else "torch"


def predict_detector(
    contract: ModelCard,
    device: str = "cpu",
    frame_workers: int = 1,
    min_face_fraction: float = 0.5,
    backend: str = "torch",
) -> FrameDetector:
    """MTCNN for this model's contract: it looks for faces down to `min_face_fraction` x the contract's `min_face`
    (smaller ones are dropped anyway), on a copy scaled so that size maps to MTCNN's 20 px floor (never below the
    contract's own `detector_min_face_size`); a video's frames are detected on `frame_workers` threads. `backend`:
    `torch` (facenet-pytorch on `device`) or `ort` (the same cascade on ONNX Runtime, on the CPU)."""
    floor = max(MTCNN_FLOOR_PX, int(contract.face_crop.detector_min_face_size or MTCNN_FLOOR_PX))
    size, scale = pyramid_for_min_face(contract.min_face, min_face_fraction, floor=floor)
    if backend == "ort":
        from deepdetect.faces.mtcnn_ort import OrtFaceDetector

        return OrtFaceDetector(min_face_size=size, downscale=scale, frame_workers=frame_workers)
    if backend != "torch":
        raise ValueError(f"unknown detector backend {backend!r}; expected ort or torch")
    from deepdetect.faces.detect import FaceDetector

    return FaceDetector(device=device, min_face_size=size, downscale=scale, frame_workers=frame_workers)


def detector_on_cpu(detector: Any) -> bool:
    """Whether the face detector runs on the CPU (torch's thread count matters only there)."""
    return str(getattr(detector, "device", "cpu")).startswith("cpu")


def detector_uses_torch(detector: Any) -> bool:
    """Whether the face detector runs on PyTorch (an ONNX Runtime detector sets its own threads)."""
    return getattr(detector, "backend", "torch") == "torch"


def tracking_interval(decoded: Sequence[tuple[int, np.ndarray]], fps: float, every: int) -> int:
    """The keyframe interval for a video's sampled frames: `every`, or 1 (full detection on each frame) when the
    frame rate is unknown or the median gap between sampled frames exceeds `TRACK_MAX_GAP_S`."""
    if every <= 1 or fps <= 0 or len(decoded) < 3:
        return 1
    gap_s = float(np.median(np.diff([i for i, _ in decoded]))) / fps
    return every if gap_s <= TRACK_MAX_GAP_S else 1


def crop_faces(
    part: list[tuple[int, np.ndarray]],
    dets: Sequence[Detections],
    contract: ModelCard,
    min_face_score: float,
    kind: str,
    fps: float,
) -> Faces:
    """Keep the faces of `part`'s frames that the contract allows and crop them, each with its face record."""
    from deepdetect.faces.crop import crop_face

    found = Faces()
    for (index, frame), det in zip(part, dets, strict=True):
        keep = select_faces(det, "all", contract.min_face, min_face_score)
        for box, score, lm in zip(det.boxes[keep], det.scores[keep], det.landmarks[keep], strict=True):
            try:
                crop, _ = crop_face(frame, box, lm, contract.margin, contract.crop_size)
            except ValueError:  # degenerate box
                continue
            found.crops.append(crop)
            found.records.append(
                {
                    "frame_index": int(index),
                    "time_s": (round(index / fps, 3) if fps > 0 else None) if kind == "video" else 0.0,
                    "box": [round(float(v), 1) for v in box],
                    "det_score": round(float(score), 4),
                }
            )
    return found


def find_faces(
    frames: list[tuple[int, np.ndarray]],
    fps: float,
    kind: str,
    detector: Any,
    contract: ModelCard,
    min_face_score: float,
    detect_every: int,
    progress_label: str | None = None,
) -> Faces:
    """The contract's faces in a file's sampled frames, cropped; a video's faces are followed between keyframes
    every `detect_every` frames (see `tracking_interval`). `progress_label`: a bar over a long video's frames."""
    # Frames smaller than the smallest detectable face hold no face (and MTCNN fails on them).
    min_side = int(getattr(detector, "min_face_size", 20))
    frames = [(i, f) for i, f in frames if min(f.shape[:2]) >= min_side]
    chunk = max(1, int(getattr(detector, "batch_size", 8) or 8))
    with tqdm(
        total=len(frames),
        desc=f"  {(progress_label or '')[:40]}",
        unit="frame",
        leave=False,
        delay=FILE_PROGRESS_DELAY_S,
        disable=progress_label is None or kind != "video",
    ) as bar:
        every = tracking_interval(frames, fps, detect_every) if kind == "video" else 1
        dets = detect_tracked(detector, [f for _, f in frames], every, chunk, bar.update)
    return crop_faces(frames, dets, contract, min_face_score, kind, fps)
