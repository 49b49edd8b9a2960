"""One JSON-ready record per media file: PDQ (images) or vPDQ-style frame hashes (videos), optional face crops.

Bad files get the statuses of `deepdetect-predict` (`unreadable`, `unsupported`, `no_video_stream`, `no_frames`,
`too_large`, `not_found`, `error`) and never stop a batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.hashing.pdq import hash_rgb, hash_rgb_dihedral
from deepdetect.hashing.video import DEFAULT_DEDUP_DISTANCE, DEFAULT_FPS, FrameHash, VideoHash, hash_video
from deepdetect.media import (
    MediaError,
    iter_media_files,
    load_image,
    media_kind,
    read_video,
    sample_frame_indices,
    video_info,
)
from deepdetect.utils.io import sha256_file
from deepdetect.utils.paths import path_bytes_b64

log = logging.getLogger(__name__)

STATUSES = ("ok", "unreadable", "unsupported", "no_video_stream", "no_frames", "too_large", "not_found", "error")
FACE_MARGIN = 0.3  # context around the detector box, as a fraction of its side
FACE_MIN_SCORE = 0.9
FACE_MIN_SIDE = 32  # smaller face crops give featureless hashes


def face_crops(frame: np.ndarray, detector: Any, margin: float = FACE_MARGIN) -> list[tuple[list[float], np.ndarray]]:
    """Square crops (with margin) of the faces MTCNN finds in one RGB frame, as (box, crop) pairs."""
    from deepdetect.faces.crop import square_box

    if min(frame.shape[:2]) < int(getattr(detector, "min_face_size", 20)):
        return []
    det = detector.detect([frame])[0]
    h, w = frame.shape[:2]
    out: list[tuple[list[float], np.ndarray]] = []
    for box, score in zip(det.boxes, det.scores, strict=True):
        if float(score) < FACE_MIN_SCORE:
            continue
        x1, y1, x2, y2 = square_box(box, margin, w, h)
        if min(x2 - x1, y2 - y1) < FACE_MIN_SIDE:
            continue
        out.append(([round(float(v), 1) for v in box], frame[y1:y2, x1:x2]))
    return out


def _face_hashes(frame_index: int, frame: np.ndarray, detector: Any) -> list[dict[str, Any]]:
    faces = []
    for box, crop in face_crops(frame, detector):
        h = hash_rgb(crop)
        faces.append({"frame_index": frame_index, "box": box, "pdq": h.hex, "quality": h.quality})
    return faces


def _frame_record(f: FrameHash, dihedral: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "frame_index": f.frame_index,
        "timestamp": f.timestamp,
        "pdq": f.bits.hex(),
        "quality": f.quality,
    }
    if dihedral:
        out["dihedral"] = [b.hex() for b in f.variants]
    return out


def _image_fields(rgb: np.ndarray, dihedral: bool) -> dict[str, Any]:
    if not dihedral:
        h = hash_rgb(rgb)
        return {"pdq": h.hex, "quality": h.quality}
    hashes, quality = hash_rgb_dihedral(rgb)
    return {"pdq": hashes[0].hex(), "quality": quality, "dihedral": [b.hex() for b in hashes[1:]]}


def _video_fields(vh: VideoHash, fps: float, dihedral: bool) -> dict[str, Any]:
    return {
        "fps": round(vh.fps, 3),
        "duration_s": round(vh.duration_s, 3),
        "sample_fps": fps,
        "n_sampled": vh.n_sampled,
        "frames": [_frame_record(f, dihedral) for f in vh.frames],
    }


def hash_and_sample(
    path: Path, kind: str, frames_per_video: int, fps: float = DEFAULT_FPS
) -> tuple[dict[str, Any], list[tuple[int, np.ndarray]], float]:
    """Decode a file once for predict and the index: its hash record (what `hash_file(path, dihedral=True)` gives,
    sha256 left None), the frames `media.read_video(path, frames_per_video)` samples (an image: frame 0) and
    the video's frame rate (0 for images). Raises MediaError.

    A video is decoded in one pass from start to end: the 1-per-`fps`-seconds frames are hashed and the sampled
    frame indices are kept. If that pass cannot give every sampled frame (the container does not count its
    frames, or counts more than it holds), the frames are read again by `media.read_video`.
    """
    rec = base_record(path)
    rec["kind"] = kind
    if kind == "image":
        rgb = load_image(path)
        rec.update(_image_fields(rgb, dihedral=True), status="ok")
        return rec, [(0, rgb)], 0.0
    info = video_info(path)
    targets = sample_frame_indices(info.frame_count, frames_per_video) if info.frame_count > 0 else []
    kept: dict[int, np.ndarray] = {}
    vh = hash_video(path, fps, keep=set(targets), on_kept=kept.__setitem__, dihedral=True)
    rec.update(_video_fields(vh, fps, dihedral=True), status="ok")
    frames = [(i, kept[i]) for i in targets if i in kept]
    if not targets or len(frames) < len(targets):
        frames, info = read_video(path, frames_per_video=frames_per_video)
    return rec, frames, info.fps


def base_record(path: Path) -> dict[str, Any]:
    """The fields every hash record has, before hashing (`path_bytes_b64`: a non-UTF-8 name's exact bytes)."""
    return {
        "path": str(path),
        "path_bytes_b64": path_bytes_b64(path),
        "sha256": None,
        "kind": None,
        "status": "error",
        "error": None,
        "seconds": 0.0,
    }


def hash_file(
    path: Path,
    fps: float = DEFAULT_FPS,
    dedup_distance: int = DEFAULT_DEDUP_DISTANCE,
    detector: Any = None,
    dihedral: bool = False,
) -> dict[str, Any]:
    """Hash one file; images get `pdq` + `quality`, videos `frames` [{frame_index, timestamp, pdq, quality}].

    With a face `detector`, `faces` lists [{frame_index, box, pdq, quality}] of the face crops as well. With
    `dihedral`, images and video frames get a `dihedral` list of 7 hex hashes in `pdq.DIHEDRAL[1:]` order: the
    hashes of the rotated and mirrored picture, for matching mirrored re-uploads.
    """
    start = time.perf_counter()
    rec = base_record(path)
    try:
        kind = media_kind(path)
        rec["kind"] = kind
        faces: list[dict[str, Any]] = []
        if kind == "image":
            rgb = load_image(path)
            rec.update(_image_fields(rgb, dihedral))
            if detector is not None:
                faces = _face_hashes(0, rgb, detector)
        else:

            def on_frame(index: int, _t: float, rgb: np.ndarray) -> None:
                faces.extend(_face_hashes(index, rgb, detector))

            vh = hash_video(
                path, fps, dedup_distance, on_frame=on_frame if detector is not None else None, dihedral=dihedral
            )
            rec.update(_video_fields(vh, fps, dihedral))
        if detector is not None:
            rec["faces"] = faces
        rec["sha256"] = sha256_file(path)
        rec["status"] = "ok"
    except MediaError as exc:
        rec["status"], rec["error"] = exc.status, str(exc)
        if exc.status != "not_found":
            rec["sha256"] = sha256_file(path)
    except Exception as exc:  # a bug or an exotic file must not stop the batch
        log.debug("error hashing %s", path, exc_info=True)
        rec["status"], rec["error"] = "error", f"{type(exc).__name__}: {exc}"
    rec["seconds"] = round(time.perf_counter() - start, 4)
    return rec


def hash_paths(
    paths: Iterable[str | os.PathLike[str]],
    fps: float = DEFAULT_FPS,
    dedup_distance: int = DEFAULT_DEDUP_DISTANCE,
    detector: Any = None,
    dihedral: bool = False,
) -> Iterator[dict[str, Any]]:
    """One record per file under `paths` (files, folders, .txt lists); a missing path gets `not_found`."""
    for item in paths:
        try:
            files = iter_media_files([item])
        except MediaError as exc:
            rec = base_record(Path(item))
            rec["status"], rec["error"] = exc.status, str(exc)
            yield rec
            continue
        for p in files:
            yield hash_file(p, fps, dedup_distance, detector, dihedral)
