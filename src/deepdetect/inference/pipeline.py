"""One file through predict, top to bottom: decode -> faces -> score -> record -> known-content.

`FilePipeline` wires the stages (`inference/stages/`) and is all an engine runs: `prepare` (decode and find faces:
per file, no model) can run on any worker, `score` (one model call over the crops of several prepared files)
where the model is, and `finish` (the record, then its known-content match) once a file's scores are back. An
engine (`engine_local`: threads on this machine) only decides where and when these run, never what they do, so
every engine gives the same records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.hashing.match import Matcher
from deepdetect.inference.explain import FaceEvidence
from deepdetect.inference.predictor import Predictor
from deepdetect.inference.settings import PredictSettings
from deepdetect.inference.stages.decode import decode, probe
from deepdetect.inference.stages.faces import find_faces
from deepdetect.inference.stages.known import match_known
from deepdetect.inference.stages.record import (
    RunInfo,
    flagged_evidence,
    new_record,
    record_experts,
    record_scored,
    score_faces,
)
from deepdetect.inference.stages.score import CropScores, file_score, score_crops
from deepdetect.media import MediaError
from deepdetect.utils.io import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileTodo:
    """An input to score: its path, the error that stopped its expansion (a missing file), its sha256 if known."""

    path: Path
    missing: MediaError | None = None
    sha256: str | None = None


@dataclass
class PreparedFile:
    """One file after decode, detection and cropping: its record so far, its face crops and their face records.

    `final` means the record is complete already (a bad file, or nothing left to score)."""

    rec: dict[str, Any]
    crops: list[np.ndarray] = field(default_factory=list)
    owners: list[dict[str, Any]] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)
    final: bool = False
    hashes: dict[str, Any] | None = None  # PDQ hash record from the decode stage (with --index)


@dataclass(frozen=True)
class FilePipeline:
    """The stages of one run, bound to its model, face detector, settings and (with `--index`) its matcher.

    `settings.frames` and `settings.min_face_score` default to the model contract's; faces under its `min_face`
    are dropped. `file_progress`: a progress bar over a long video's frames (off when files run in parallel).
    """

    predictor: Predictor
    detector: Any
    settings: PredictSettings
    run: RunInfo
    matcher: Matcher | None = None
    file_progress: bool = True

    def prepare(self, todo: FileTodo) -> PreparedFile:
        """Decode, hash, detect and crop one file (the model is not called); never raises for a bad file."""
        contract, settings = self.predictor.contract, self.settings
        prep = PreparedFile(new_record(todo.path, contract, self.run, settings))
        rec = prep.rec
        if todo.missing is not None:
            rec["status"], rec["error"] = todo.missing.status, str(todo.missing)
            prep.final = True
            return prep
        frames = contract.frames_per_video if settings.frames is None else int(settings.frames)
        min_face_score = contract.min_score if settings.min_face_score is None else float(settings.min_face_score)
        try:
            rec["kind"] = probe(todo.path)
            media = decode(todo.path, rec["kind"], frames, todo.sha256, with_hashes=settings.index is not None)
            rec["sha256"], rec["n_frames"] = media.sha256, len(media.frames)
            prep.hashes = media.hashes
            label = todo.path.name if settings.progress and self.file_progress else None
            faces = find_faces(
                media.frames,
                media.fps,
                rec["kind"],
                self.detector,
                contract,
                min_face_score,
                settings.detect_every,
                label,
            )
            prep.crops, prep.owners = faces.crops, faces.records
            if not prep.crops:
                rec["status"] = "no_face"
                rec["error"] = f"no face >= {contract.min_face:g} px with detection score >= {min_face_score:g}"
                prep.final = True
        except MediaError as exc:
            rec["status"], rec["error"] = exc.status, str(exc)
            if exc.status != "not_found":
                rec["sha256"] = sha256_file(todo.path)
            prep.final = True
        except Exception as exc:  # a bug or an exotic file must not stop the batch
            log.debug("error scoring %s", todo.path, exc_info=True)
            rec["status"], rec["error"] = "error", f"{type(exc).__name__}: {exc}"
            prep.final = True
        if prep.final:
            prep.crops, prep.owners = [], []
        return prep

    @property
    def batch_crops(self) -> int:
        """About how many face crops one model call takes."""
        return int(self.predictor.batch_size)

    def score(self, batch: Sequence[PreparedFile]) -> list[CropScores | None]:
        """Each prepared file's scored crops from one model call (None where the model failed)."""
        return score_crops(self.predictor, [p.crops for p in batch], [p.rec["path"] for p in batch])

    def finish(self, prep: PreparedFile, scores: CropScores | None) -> tuple[dict[str, Any], FaceEvidence | None]:
        """The file's final record from its crops' scores (`scores` None: the model failed on them, status error),
        with its known-content match when there is an index; plus its best face when it is flagged."""
        rec = prep.rec
        evidence: FaceEvidence | None = None
        if not prep.final and scores is None:
            rec["status"], rec["error"] = "error", "the model failed on this file's face crops"
        elif not prep.final and scores is not None:
            score_faces(prep.owners, scores.probs)
            settings = self.settings
            result = file_score(prep.owners, settings.aggregate, settings.topk, self.run.operating_point.threshold)
            record_scored(rec, prep.owners, result)
            if scores.experts is not None:
                record_experts(rec, prep.owners, scores.experts, self.predictor.experts)
            evidence = flagged_evidence(rec, prep.owners, prep.crops)
        rec["seconds"] = round(time.perf_counter() - prep.start, 4)
        if self.matcher is not None:
            match_known(rec, self.matcher, prep.hashes)
        return rec, evidence
