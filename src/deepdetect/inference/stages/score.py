"""The score stage: calibrated P(fake) for face crops (one model call across files), then a file's score from
its faces: each frame scores its highest face, the file the `aggregate` of its frame scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepdetect.contract.aggregate import aggregate_scores
from deepdetect.inference.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CropScores:
    """One file's face crops scored: calibrated P(fake) (N,) and, for a fused model, each expert's contribution
    to the fused logit (N, E), else None."""

    probs: np.ndarray
    experts: np.ndarray | None = None


@dataclass(frozen=True)
class FileScore:
    """A file's score (the aggregate of its frame scores), its [lowest, highest] frame score and its label."""

    score: float
    interval: tuple[float, float]
    label: str


def _scored(predictor: Predictor, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    logits, experts = predictor.score_crops_with_experts(crops)
    return predictor.calibrate(logits), experts


def score_crops(
    predictor: Predictor, crops: Sequence[Sequence[np.ndarray]], names: Sequence[str]
) -> list[CropScores | None]:
    """Each file's scored crops (`names` name the files in warnings), from one model call over all of them; if that
    call fails, each file is scored alone, and a file whose own call fails gets None."""
    sizes = [len(c) for c in crops]
    flat = [c for file_crops in crops for c in file_crops]
    if not flat:
        return [CropScores(np.zeros(0)) for _ in crops]
    try:
        probs, experts = _scored(predictor, flat)
        cuts = np.cumsum(sizes)[:-1]
        parts = np.split(experts, cuts) if experts is not None else [None] * len(crops)
        return [CropScores(p, e) for p, e in zip(np.split(probs, cuts), parts, strict=True)]
    except Exception:
        log.warning("the model failed on a batch of %d files; scoring them one by one", len(crops), exc_info=True)
    out: list[CropScores | None] = []
    for file_crops, name in zip(crops, names, strict=True):
        try:
            out.append(CropScores(*_scored(predictor, list(file_crops))) if file_crops else CropScores(np.zeros(0)))
        except Exception:
            log.warning("the model failed on %s", name, exc_info=True)
            out.append(None)
    return out


def file_score(faces: Sequence[dict[str, Any]], aggregate: str, topk: int, threshold: float) -> FileScore:
    """The file's score from its scored faces (per-frame max, then `aggregate`), and its label at `threshold`."""
    per_frame: dict[int, float] = {}
    for face in faces:
        per_frame[face["frame_index"]] = max(per_frame.get(face["frame_index"], 0.0), face["score"])
    frame_scores = np.array([per_frame[i] for i in sorted(per_frame)])
    score = aggregate_scores(frame_scores, aggregate, topk)
    return FileScore(
        score=score,
        interval=(float(frame_scores.min()), float(frame_scores.max())),
        label="fake" if score >= threshold else "real",
    )
