"""Score media files end to end: decode, detect faces, crop, classify, aggregate; one record per input file.

Face selection follows the model's contract: faces smaller than the smallest face training saw
(`face_crop.min_face`) or below its detection score (`face_crop.min_score`) are never scored, and videos are sampled
at the contract's `frames_per_video` unless the caller says otherwise. Aggregation (documented for analysts): every
remaining face is scored with the calibrated P(fake). An image scores the max over its faces; a video scores the
mean, over the sampled frames that hold a face, of each frame's max face score. A file with no usable face gets
status `no_face` and score null, never a default 0.5.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from deepdetect.faces.media import (
    MediaError,
    iter_media_files,
    load_image,
    media_kind,
    read_video_frames,
    reject_special_file,
)
from deepdetect.inference.predictor import Predictor
from deepdetect.utils.io import open_regular
from deepdetect.utils.paths import bounded_name, path_bytes_b64

log = logging.getLogger(__name__)

STATUSES = (
    "ok",
    "no_face",
    "unreadable",
    "unsupported",
    "no_video_stream",
    "no_frames",
    "too_large",
    "not_found",
    "error",
)
READ_STATUSES = ("ok", "no_face")  # the file was decoded


def sha256_of(path: Path) -> str | None:
    """Hex sha256 of a regular file's bytes, or None when it cannot be read (FIFOs and devices are never read)."""
    digest = hashlib.sha256()
    try:
        with open_regular(path) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, MediaError | None]]:
    """Files, folders (recursive) and `.txt` path lists -> [(file, None)], with [(path, error)] for inputs that
    cannot be expanded (missing, or an unreadable path list)."""
    out: list[tuple[Path, MediaError | None]] = []
    for item in paths:
        try:
            out.extend((p, None) for p in iter_media_files([item]))
        except MediaError as exc:
            out.append((Path(item), exc))
    return out


def _base_record(path: Path, predictor: Predictor, threshold: float) -> dict[str, Any]:
    return {
        "path": str(path),  # exact: a name that is not UTF-8 keeps its bytes as surrogate escapes
        "path_bytes_b64": path_bytes_b64(path),  # the exact bytes of such a name (null for UTF-8 names)
        "sha256": None,
        "kind": None,
        "status": "error",
        "score": None,
        "label": None,
        "threshold": threshold,
        "n_frames": 0,
        "n_faces": 0,
        "faces": [],
        "model_name": predictor.contract.name,
        "model_version": predictor.contract.version,
        "seconds": 0.0,
        "error": None,
    }


def score_file(
    path: Path,
    predictor: Predictor,
    detector: Any,
    frames: int | None = None,
    threshold: float | None = None,
    min_face_score: float | None = None,
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """One file's record, plus the crops of its faces (for explanations); never raises for a bad file.

    `frames` and `min_face_score` default to the model contract's; faces under its `min_face` are never scored.
    """
    from deepdetect.faces.crop import crop_face
    from deepdetect.faces.track import select_faces

    contract = predictor.contract
    frames = contract.frames_per_video if frames is None else int(frames)
    min_face_score = contract.min_score if min_face_score is None else float(min_face_score)
    start = time.perf_counter()
    thr = predictor.contract.threshold if threshold is None else float(threshold)
    rec = _base_record(path, predictor, thr)
    crops: list[np.ndarray] = []
    try:
        reject_special_file(path)  # before any open: a FIFO or device would block or never end
        kind = media_kind(path)
        rec["kind"] = kind
        decoded = [(0, load_image(path))] if kind == "image" else read_video_frames(path, frames_per_video=frames)
        rec["sha256"] = sha256_of(path)
        rec["n_frames"] = len(decoded)
        # Frames smaller than the smallest detectable face hold no face (and MTCNN fails on them).
        min_side = int(getattr(detector, "min_face_size", 20))
        decoded = [(i, f) for i, f in decoded if min(f.shape[:2]) >= min_side]
        detections = detector.detect([f for _, f in decoded]) if decoded else []
        owners: list[tuple[int, list[float], float]] = []
        size, margin = predictor.contract.crop_size, predictor.contract.margin
        for (index, frame), det in zip(decoded, detections, strict=True):
            keep = select_faces(det, "all", contract.min_face, min_face_score)
            for box, score, lm in zip(det.boxes[keep], det.scores[keep], det.landmarks[keep], strict=True):
                try:
                    crop, _ = crop_face(frame, box, lm, margin, size)
                except ValueError:  # degenerate box
                    continue
                crops.append(crop)
                owners.append((int(index), [round(float(v), 1) for v in box], round(float(score), 4)))
        probs = predictor.calibrate(predictor.score_crops(crops)) if crops else np.zeros(0)
        rec["n_faces"] = len(crops)
        rec["faces"] = [
            {"frame_index": i, "box": b, "det_score": s, "score": round(float(p), 6)}
            for (i, b, s), p in zip(owners, probs, strict=True)
        ]
        if not crops:
            rec["status"] = "no_face"
            rec["error"] = f"no face >= {contract.min_face:g} px with detection score >= {min_face_score:g}"
        else:
            per_frame: dict[int, float] = {}
            for (i, _, _), p in zip(owners, probs, strict=True):
                per_frame[i] = max(per_frame.get(i, 0.0), float(p))
            score = float(np.mean(list(per_frame.values())))
            rec.update(status="ok", score=round(score, 6), label="fake" if score >= thr else "real")
    except MediaError as exc:
        rec["status"], rec["error"] = exc.status, str(exc)
        if exc.status != "not_found":
            rec["sha256"] = sha256_of(path)
    except Exception as exc:  # a bug or an exotic file must not stop the batch
        log.debug("error scoring %s", path, exc_info=True)
        rec["status"], rec["error"] = "error", f"{type(exc).__name__}: {exc}"
    rec["seconds"] = round(time.perf_counter() - start, 4)
    return rec, crops


def predict_files(
    paths: Iterable[str | os.PathLike[str]],
    predictor: Predictor,
    detector: Any,
    frames: int | None = None,
    batch_size: int | None = None,
    threshold: float | None = None,
    min_face_score: float | None = None,
    explain_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield one record per input file (see the module docstring for the aggregation and statuses)."""
    if batch_size:
        predictor.batch_size = int(batch_size)
    inputs = expand_inputs(paths)
    for path, missing in tqdm(inputs, desc="predict", unit="file", disable=not progress):
        if missing is not None:
            rec = _base_record(path, predictor, predictor.contract.threshold if threshold is None else threshold)
            rec["status"], rec["error"] = missing.status, str(missing)
            yield rec
            continue
        rec, crops = score_file(path, predictor, detector, frames, threshold, min_face_score)
        if explain_dir is not None and rec["label"] == "fake":
            rec["explanation"] = write_explanation(path, rec, crops, predictor, Path(explain_dir))
        yield rec


def write_explanation(
    path: Path, rec: dict[str, Any], crops: list[np.ndarray], predictor: Predictor, out_dir: Path
) -> str | None:
    """Grad-CAM overlay PNG of the highest-scoring face of a flagged file; returns its path (None if impossible)."""
    from PIL import Image

    from deepdetect.evaluation.gradcam import overlay
    from deepdetect.inference.predictor import TorchBackend

    if not isinstance(predictor, TorchBackend) or not crops:
        return None
    best = int(np.argmax([f["score"] for f in rec["faces"]]))
    heat = predictor.heatmaps([crops[best]])[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    # bounded whatever the source name's length; the hash of the full path keeps sources apart
    target = out_dir / bounded_name(path.stem, os.fsencode(path), ".gradcam.png")
    Image.fromarray(overlay(crops[best], heat)).save(target)
    return str(target)


def run_predict(
    paths: Iterable[str | os.PathLike[str]],
    model: str | os.PathLike[str] | Predictor,
    output: str | os.PathLike[str],
    device: str = "cpu",
    frames: int | None = None,
    batch_size: int = 32,
    threshold: float | None = None,
    min_face_score: float | None = None,
    explain_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    index: str | os.PathLike[str] | None = None,
) -> tuple[Counter[str], Counter[str]]:
    """Score `paths`, writing one record per file to `output` (.jsonl/.csv) as it comes; returns the counts.

    With a known-content `index` (deepdetect-index), records also get `pdq` and `known_match`.
    """
    from deepdetect.faces.detect import FaceDetector
    from deepdetect.inference.writers import RecordWriter

    predictor = (
        model if isinstance(model, Predictor) else Predictor.from_path(model, device=device, batch_size=batch_size)
    )
    detector = FaceDetector(device=device)
    matcher = None
    if index is not None:
        from deepdetect.hashing.api import annotate_prediction
        from deepdetect.hashing.index import HashIndex
        from deepdetect.hashing.match import Matcher

        matcher = Matcher(HashIndex(index))
    statuses: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    with RecordWriter(output) as writer:
        for rec in predict_files(
            paths,
            predictor,
            detector,
            frames=frames,
            batch_size=batch_size,
            threshold=threshold,
            min_face_score=min_face_score,
            explain_dir=explain_dir,
            progress=progress,
        ):
            if matcher is not None:
                annotate_prediction(rec, matcher)
            writer.write(rec)
            statuses[rec["status"]] += 1
            if rec["label"]:
                labels[rec["label"]] += 1
    return statuses, labels
