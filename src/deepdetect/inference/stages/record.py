"""The record stage: one record per input file, begun before any work on it and finished from its scored faces;
what every record of a run shares (`RunInfo`)."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect import __version__
from deepdetect.contract import ModelCard
from deepdetect.inference.explain import FaceEvidence
from deepdetect.inference.predictor import Predictor
from deepdetect.inference.settings import OperatingPointChoice, PredictSettings, choose_operating_point
from deepdetect.inference.stages.score import FileScore
from deepdetect.utils.paths import is_utf8_name, path_bytes_b64, printable_path

STATUSES = (
    "ok",
    "no_face",
    "unreadable",
    "unsupported",
    "no_video_stream",
    "no_frames",
    "too_large",
    "not_found",
    "skipped",
    "error",
)
READ_STATUSES = ("ok", "no_face")  # the file was decoded


def utc_now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunInfo:
    """What every record of one run shares: its id, the tool version and the operating point."""

    run_id: str
    operating_point: OperatingPointChoice
    tool_version: str = __version__

    @classmethod
    def start(cls, predictor: Predictor, settings: PredictSettings) -> RunInfo:
        """A new run id and the operating point `settings` resolve to for this model (raises SettingsError)."""
        return cls(uuid.uuid4().hex, choose_operating_point(predictor.contract, settings))


def new_record(path: Path, contract: ModelCard, run: RunInfo, settings: PredictSettings) -> dict[str, Any]:
    """A file's record before any work on it: status `error` until a stage says otherwise."""
    try:
        size: int | None = os.stat(path).st_size
    except OSError:
        size = None
    rec: dict[str, Any] = {
        "path": str(path),  # as given; a name that is not UTF-8 keeps its bytes as surrogate escapes
        "abs_path": os.path.abspath(path),
        "name": path.name,
        "path_bytes_b64": path_bytes_b64(path),  # the exact bytes of such a name (null for UTF-8 names)
        "size_bytes": size,
        "sha256": None,
        "kind": None,
        "status": "error",
        "score": None,
        "score_interval": None,
        "label": None,
        "threshold": run.operating_point.threshold,
        "operating_point": run.operating_point.to_dict(),
        "aggregate": settings.aggregate,
        "n_frames": 0,
        "n_faces": 0,
        "faces": [],
        "model_name": contract.name,
        "model_version": contract.version,
        "run_id": run.run_id,
        "tool_version": run.tool_version,
        "scanned_at": utc_now(),
        "seconds": 0.0,
        "error": None,
        "explanation": None,
    }
    if settings.aggregate == "topk":
        rec["aggregate_k"] = settings.topk
    return rec


def score_faces(faces: list[dict[str, Any]], probs: np.ndarray) -> None:
    """Give each face record its calibrated P(fake), rounded as records carry it."""
    for face, p in zip(faces, probs, strict=True):
        face["score"] = round(float(p), 6)


def record_scored(rec: dict[str, Any], faces: list[dict[str, Any]], result: FileScore) -> None:
    """Finish a record whose faces were scored: its faces, score, interval and label (status `ok`)."""
    rec["n_faces"] = len(faces)
    rec["faces"] = faces
    rec.update(
        status="ok",
        score=round(result.score, 6),
        score_interval=[round(result.interval[0], 6), round(result.interval[1], 6)],
        label=result.label,
    )


def record_experts(
    rec: dict[str, Any], faces: list[dict[str, Any]], contributions: np.ndarray, names: Sequence[str]
) -> None:
    """A fused model's reasons: each face's per-expert contribution to its fused logit (weight x calibrated expert
    logit), the file's mean contribution per expert (`experts`), and `driven_by`: the expert that argued most for
    "fake" (largest mean contribution), or None when no expert argued for fake (the stacker's bias made the score)."""
    for face, row in zip(faces, contributions, strict=True):
        face["experts"] = {n: round(float(v), 4) for n, v in zip(names, row, strict=True)}
    mean = contributions.mean(axis=0) if len(contributions) else np.zeros(len(names))
    shares = [round(float(v), 4) for v in mean]  # what the record shows: driven_by must agree with it
    rec["experts"] = dict(zip(names, shares, strict=True))
    top = int(np.argmax(shares)) if len(names) else -1
    rec["driven_by"] = str(names[top]) if top >= 0 and shares[top] > 0 else None


def flagged_evidence(rec: dict[str, Any], faces: list[dict[str, Any]], crops: list[np.ndarray]) -> FaceEvidence | None:
    """The best face of a file labelled fake (the first of its highest-scoring faces), kept for an explanation."""
    if rec["label"] != "fake" or not faces:
        return None
    best = 0
    for i, face in enumerate(faces):
        if face["score"] > faces[best]["score"]:
            best = i
    face = faces[best]
    return FaceEvidence(
        crop=crops[best],
        face_score=face["score"],
        file_score=rec["score"],
        box=face["box"],
        frame_index=face["frame_index"],
        time_s=face["time_s"] or 0.0,
        kind=str(rec["kind"]),
    )


def path_key(path: str | os.PathLike[str]) -> bytes:
    """The exact bytes of a path made absolute: what `resume` matches inputs on."""
    return os.fsencode(os.path.abspath(path))


def record_key(rec: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """(exact bytes of the record's absolute path, sha256): what `resume` matches inputs on (`path_key`).

    JSON lines keep a name that is not UTF-8 as surrogate escapes, so its bytes come back as they were. A CSV cell
    shows such a name as `\\xNN` text, which a name spelling a literal backslash could equal, so the bytes come
    from `path_bytes_b64` instead (the path as given, made absolute here); when that no longer matches the
    recorded `abs_path` (a relative path resumed from another folder), the key is None and the file is scored
    again rather than skipped as someone else's record.
    """
    abs_path = str(rec.get("abs_path") or os.path.abspath(str(rec.get("path"))))
    digest = rec.get("sha256")
    b64 = rec.get("path_bytes_b64")
    try:
        if not b64 or not is_utf8_name(abs_path):
            return os.fsencode(abs_path), digest
        exact = os.path.abspath(base64.b64decode(str(b64), validate=True))
    except (UnicodeEncodeError, ValueError):  # a lone surrogate no name holds, or a cell that is not base64
        return None, digest
    return (exact if printable_path(exact) == abs_path else None), digest
