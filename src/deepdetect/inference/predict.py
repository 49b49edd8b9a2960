"""Score media files end to end: decode, detect faces, crop, classify, aggregate; one record per input file.

Face selection follows the model's contract: faces smaller than the smallest face training saw
(`face_crop.min_face`) or below its detection score (`face_crop.min_score`) are never scored, and videos are sampled
at the contract's `frames_per_video` unless the caller says otherwise. Aggregation (documented for analysts): every
remaining face is scored with the calibrated P(fake); each frame scores the max over its faces; the file scores the
`aggregate` (mean by default, or max, or the mean of the top k) of its frame scores — an image has one frame, so it
scores its highest face. `score_interval` is [lowest, highest] frame score. A file with no usable face gets status
`no_face` and score null, never a default 0.5. The label compares the score with the run's operating point
(`settings.choose_operating_point`), which every record names.

A run writes `<output>.run.json` beside the output (run id, times, tool version, settings, the model card, the
operating point); `resume` keeps an output's complete records and skips inputs already recorded with the same
absolute path and sha256; explanations of the top flagged files are made in a second pass at the end.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from deepdetect import __version__
from deepdetect.contract import ModelCard
from deepdetect.contract.aggregate import aggregate_scores
from deepdetect.faces.detect import MTCNN_FLOOR_PX, Detections, FaceDetector, pyramid_for_min_face, torch_threads
from deepdetect.faces.track import detect_tracked, select_faces
from deepdetect.inference.explain import FaceEvidence, TopFlagged, write_explanation
from deepdetect.inference.predictor import Predictor
from deepdetect.inference.settings import OperatingPointChoice, PredictSettings, choose_operating_point
from deepdetect.media import (
    MediaError,
    is_media_name,
    iter_media_files,
    load_image,
    media_kind,
    read_video,
    reject_special_file,
)
from deepdetect.utils.io import atomic_write_text, sha256_file
from deepdetect.utils.paths import path_bytes_b64, printable_text
from deepdetect.utils.pool import ordered_prefetch

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
    "skipped",
    "error",
)
READ_STATUSES = ("ok", "no_face")  # the file was decoded
FILE_PROGRESS_DELAY_S = 2.0  # a file's own progress bar appears only once it has taken this long
# Files prepared ahead of the model beyond one per worker. A prepared file holds only its crops (frames are freed once
# cropped) and only workers hold frames, so this bounds memory; 8 vs 2 measured +5% images/s.
PREFETCH_FILES = 8


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


@dataclass
class PredictSummary:
    """What a run did: status and label counts over every record in the output (kept ones included)."""

    run_id: str
    operating_point: OperatingPointChoice
    statuses: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    scored: int = 0
    resumed: int = 0
    dropped_bytes: int = 0
    explained: int = 0
    known: int = 0  # records that matched the known-content index
    report: Path | None = None
    interrupted: str | None = None  # the signal that stopped the run early (SIGINT, SIGTERM), else None

    def count(self, rec: dict[str, Any]) -> None:
        """Add one record to the counts."""
        self.statuses[str(rec.get("status"))] += 1
        if rec.get("label"):
            self.labels[str(rec["label"])] += 1
        if isinstance(rec.get("known_match"), dict):
            self.known += 1


class PredictInterrupted(Exception):
    """Raised by `run_predict` when SIGINT or SIGTERM stopped it: the records so far are written and the run
    header says `interrupted`; `.summary` holds the counts."""

    def __init__(self, summary: PredictSummary) -> None:
        super().__init__(f"interrupted by {summary.interrupted}")
        self.summary = summary


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Inside, SIGTERM stops the run the way Ctrl-C does (KeyboardInterrupt); outside, its handler is restored.
    Only the main thread can set handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume_argv(argv: Sequence[str]) -> list[str]:
    """The command line that goes on with an interrupted run: the same one with `--resume` (not `--overwrite`)."""
    args = [a for a in argv[1:] if a != "--overwrite"]
    return ["deepdetect-predict", *args, *([] if "--resume" in args else ["--resume"])]


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, MediaError | None]]:
    """Files, folders (recursive) and `.txt` path lists -> [(file, None)], with [(path, error)] for inputs that
    cannot be expanded (missing, or an unreadable path list) and for files a folder holds that are not images or
    videos (`skipped`: every file is accounted for)."""
    out: list[tuple[Path, MediaError | None]] = []
    for item in paths:
        folder = Path(item).is_dir()
        try:
            for p in iter_media_files([item], others=folder):
                skip = folder and not is_media_name(p)
                out.append((p, MediaError("skipped", "not an image or video") if skip else None))
        except MediaError as exc:
            out.append((Path(item), exc))
    return out


def _base_record(path: Path, predictor: Predictor, run: RunInfo, settings: PredictSettings) -> dict[str, Any]:
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
        "model_name": predictor.contract.name,
        "model_version": predictor.contract.version,
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


def _decode(path: Path, kind: str, frames: int) -> tuple[list[tuple[int, np.ndarray]], float]:
    """Sampled frames as (index, RGB) and the video's frame rate (0 for images or when unknown)."""
    if kind == "image":
        return [(0, load_image(path))], 0.0
    decoded, info = read_video(path, frames_per_video=frames)  # one open: frames and the rate for timestamps
    return decoded, info.fps


# Faces are followed between keyframes only when the sampled frames are at most this far apart: over longer gaps
# people move too far (and scenes cut), so every sampled frame then gets the full detector.
TRACK_MAX_GAP_S = 0.5


def tracking_interval(decoded: Sequence[tuple[int, np.ndarray]], fps: float, every: int) -> int:
    """The keyframe interval for a video's sampled frames: `every`, or 1 (full detection on each frame) when the
    frame rate is unknown or the median gap between sampled frames exceeds `TRACK_MAX_GAP_S`."""
    if every <= 1 or fps <= 0 or len(decoded) < 3:
        return 1
    gap_s = float(np.median(np.diff([i for i, _ in decoded]))) / fps
    return every if gap_s <= TRACK_MAX_GAP_S else 1


def _crop_faces(
    part: list[tuple[int, np.ndarray]],
    dets: Sequence[Detections],
    contract: ModelCard,
    min_face_score: float,
    kind: str,
    fps: float,
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Keep the faces of `part`'s frames that the contract allows and crop them; each crop's face record."""
    from deepdetect.faces.crop import crop_face

    crops: list[np.ndarray] = []
    owners: list[dict[str, Any]] = []
    for (index, frame), det in zip(part, dets, strict=True):
        keep = select_faces(det, "all", contract.min_face, min_face_score)
        for box, score, lm in zip(det.boxes[keep], det.scores[keep], det.landmarks[keep], strict=True):
            try:
                crop, _ = crop_face(frame, box, lm, contract.margin, contract.crop_size)
            except ValueError:  # degenerate box
                continue
            crops.append(crop)
            owners.append(
                {
                    "frame_index": int(index),
                    "time_s": (round(index / fps, 3) if fps > 0 else None) if kind == "video" else 0.0,
                    "box": [round(float(v), 1) for v in box],
                    "det_score": round(float(score), 4),
                }
            )
    return crops, owners


def _summarise(
    rec: dict[str, Any],
    faces: list[dict[str, Any]],
    best: tuple[float, np.ndarray, dict[str, Any]] | None,
    settings: PredictSettings,
    threshold: float,
) -> FaceEvidence | None:
    """Fill the record's score (per-frame max, then the aggregate), interval and label; the evidence if flagged."""
    per_frame: dict[int, float] = {}
    for face in faces:
        per_frame[face["frame_index"]] = max(per_frame.get(face["frame_index"], 0.0), face["score"])
    frame_scores = np.array([per_frame[i] for i in sorted(per_frame)])
    score = aggregate_scores(frame_scores, settings.aggregate, settings.topk)
    rec.update(
        status="ok",
        score=round(score, 6),
        score_interval=[round(float(frame_scores.min()), 6), round(float(frame_scores.max()), 6)],
        label="fake" if score >= threshold else "real",
    )
    if rec["label"] != "fake" or best is None:
        return None
    face = best[2]
    return FaceEvidence(
        crop=best[1],
        face_score=best[0],
        file_score=round(score, 6),
        box=face["box"],
        frame_index=face["frame_index"],
        time_s=face["time_s"] or 0.0,
        kind=str(rec["kind"]),
    )


@dataclass
class PreparedFile:
    """One file after decode, detection and cropping: its record so far, its face crops and their face records.

    `final` means the record is complete already (a bad file, or nothing left to score)."""

    rec: dict[str, Any]
    crops: list[np.ndarray] = field(default_factory=list)
    owners: list[dict[str, Any]] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)
    final: bool = False


def prepare_file(
    path: Path,
    predictor: Predictor,
    detector: Any,
    settings: PredictSettings,
    run: RunInfo,
    file_progress: bool = True,
    sha256: str | None = None,
) -> PreparedFile:
    """Decode, hash, detect and crop one file (the model is not called); never raises for a bad file.

    `settings.frames` and `settings.min_face_score` default to the model contract's; faces under its `min_face`
    are dropped. `file_progress`: a progress bar over a long video's frames (off when files run in parallel).
    `sha256`: the file's digest when the caller has just computed it (`--resume` checks).
    """
    contract = predictor.contract
    frames = contract.frames_per_video if settings.frames is None else int(settings.frames)
    min_face_score = contract.min_score if settings.min_face_score is None else float(settings.min_face_score)
    prep = PreparedFile(_base_record(path, predictor, run, settings))
    rec = prep.rec
    try:
        reject_special_file(path)  # before any open: a FIFO or device would block or never end
        kind = media_kind(path)
        rec["kind"] = kind
        decoded, fps = _decode(path, kind, frames)
        rec["sha256"] = sha256 or sha256_file(path)
        rec["n_frames"] = len(decoded)
        # Frames smaller than the smallest detectable face hold no face (and MTCNN fails on them).
        min_side = int(getattr(detector, "min_face_size", 20))
        decoded = [(i, f) for i, f in decoded if min(f.shape[:2]) >= min_side]
        chunk = max(1, int(getattr(detector, "batch_size", 8) or 8))
        with tqdm(
            total=len(decoded),
            desc=f"  {path.name[:40]}",
            unit="frame",
            leave=False,
            delay=FILE_PROGRESS_DELAY_S,
            disable=not (settings.progress and file_progress) or kind != "video",
        ) as bar:
            every = tracking_interval(decoded, fps, settings.detect_every) if kind == "video" else 1
            dets = detect_tracked(detector, [f for _, f in decoded], every, chunk, bar.update)
        prep.crops, prep.owners = _crop_faces(decoded, dets, contract, min_face_score, kind, fps)
        if not prep.crops:
            rec["status"] = "no_face"
            rec["error"] = f"no face >= {contract.min_face:g} px with detection score >= {min_face_score:g}"
            prep.final = True
    except MediaError as exc:
        rec["status"], rec["error"] = exc.status, str(exc)
        if exc.status != "not_found":
            rec["sha256"] = sha256_file(path)
        prep.final = True
    except Exception as exc:  # a bug or an exotic file must not stop the batch
        log.debug("error scoring %s", path, exc_info=True)
        rec["status"], rec["error"] = "error", f"{type(exc).__name__}: {exc}"
        prep.final = True
    if prep.final:
        prep.crops, prep.owners = [], []
    return prep


def finish_file(
    prep: PreparedFile, probs: np.ndarray | None, settings: PredictSettings, run: RunInfo
) -> tuple[dict[str, Any], FaceEvidence | None]:
    """The file's final record from its crops' calibrated P(fake) (`probs`, None when the model call failed: status
    error), plus its best face when it is flagged."""
    rec = prep.rec
    evidence: FaceEvidence | None = None
    if not prep.final and probs is None:
        rec["status"], rec["error"] = "error", "the model failed on this file's face crops"
    elif not prep.final and probs is not None:
        best: tuple[float, np.ndarray, dict[str, Any]] | None = None
        for face, crop, p in zip(prep.owners, prep.crops, probs, strict=True):
            face["score"] = round(float(p), 6)
            if best is None or face["score"] > best[0]:
                best = (face["score"], crop, face)
        rec["n_faces"] = len(prep.owners)
        rec["faces"] = prep.owners
        evidence = _summarise(rec, prep.owners, best, settings, run.operating_point.threshold)
    rec["seconds"] = round(time.perf_counter() - prep.start, 4)
    return rec, evidence


def score_prepared(predictor: Predictor, batch: Sequence[PreparedFile]) -> list[np.ndarray | None]:
    """Calibrated P(fake) for each prepared file's crops, from one model call over all of them (batched across
    files); if that call fails, each file is scored alone, and a file whose own call fails gets None."""
    sizes = [len(p.crops) for p in batch]
    crops = [c for p in batch for c in p.crops]
    if not crops:
        return [np.zeros(0) for _ in batch]
    try:
        probs = predictor.calibrate(predictor.score_crops(crops))
        return list(np.split(probs, np.cumsum(sizes)[:-1]))
    except Exception:
        log.warning("the model failed on a batch of %d files; scoring them one by one", len(batch), exc_info=True)
    out: list[np.ndarray | None] = []
    for p in batch:
        try:
            out.append(predictor.calibrate(predictor.score_crops(p.crops)) if p.crops else np.zeros(0))
        except Exception:
            log.warning("the model failed on %s", p.rec["path"], exc_info=True)
            out.append(None)
    return out


def score_file(
    path: Path,
    predictor: Predictor,
    detector: Any,
    settings: PredictSettings,
    run: RunInfo,
) -> tuple[dict[str, Any], FaceEvidence | None]:
    """One file's record, plus its best face when it is flagged (for an explanation); never raises for a bad file.

    The one-file path: `prepare_file`, one model call, `finish_file`. A video's faces get `time_s` = frame index /
    frame rate (null when the rate is unknown).
    """
    prep = prepare_file(path, predictor, detector, settings, run)
    (probs,) = score_prepared(predictor, [prep])
    return finish_file(prep, probs, settings, run)


def record_key(rec: dict[str, Any]) -> tuple[str, str | None]:
    """(absolute path as printable text, sha256) of a record: what `resume` matches inputs on (CSV keeps names
    that are not UTF-8 only as `\\xNN` text, so both sides are compared in that form)."""
    abs_path = rec.get("abs_path") or os.path.abspath(str(rec.get("path")))
    return printable_text(str(abs_path)), rec.get("sha256")


def _already_done(
    path: Path, done: Container[tuple[str, str | None]], done_paths: Container[str]
) -> tuple[bool, str | None]:
    """(whether this path with its current content is recorded already, its sha256 when it was computed)."""
    abs_path = printable_text(os.path.abspath(path))
    if abs_path not in done_paths:
        return False, None
    try:
        digest = sha256_file(path) if os.path.isfile(path) else None
    except OSError:
        digest = None
    return (abs_path, digest) in done, digest


def predict_files(
    paths: Iterable[str | os.PathLike[str]],
    predictor: Predictor,
    detector: Any,
    settings: PredictSettings | None = None,
    run: RunInfo | None = None,
    done: Sequence[tuple[str, str | None]] = (),
    keep: TopFlagged | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one record per input file, in input order (see the module docstring), skipping inputs whose
    (absolute path, sha256) is in `done`; the best face of each flagged file is offered to `keep` (explanations).

    `settings.workers` threads decode, detect and crop the next files while the model scores the current ones
    (at most `workers + PREFETCH_FILES` files in flight); crops of consecutive files share one model call of
    about `settings.batch_size` crops. Torch runs with `settings.detect_threads` threads while this iterates.
    """
    settings = settings or PredictSettings()
    run = run or RunInfo.start(predictor, settings)
    predictor.batch_size = int(settings.batch_size)
    done_set = set(done)
    done_paths = {p for p, _ in done_set}
    inputs = expand_inputs(paths)
    bar = tqdm(total=len(inputs), desc="predict", unit="file", disable=not settings.progress, dynamic_ncols=True)

    def todo() -> Iterator[tuple[Path, MediaError | None, str | None]]:
        for path, missing in inputs:
            seen, digest = _already_done(path, done_set, done_paths) if done_set else (False, None)
            if seen:
                bar.update(1)
                continue
            yield path, missing, digest  # a changed file's new sha256 is not computed twice

    def prepare(item: tuple[Path, MediaError | None, str | None]) -> PreparedFile:
        path, missing, digest = item
        if missing is None:
            return prepare_file(
                path, predictor, detector, settings, run, file_progress=settings.workers == 0, sha256=digest
            )
        rec = _base_record(path, predictor, run, settings)
        rec["status"], rec["error"] = missing.status, str(missing)
        return PreparedFile(rec, final=True)

    def flush(batch: list[PreparedFile]) -> Iterator[dict[str, Any]]:
        for prep, probs in zip(batch, score_prepared(predictor, batch), strict=True):
            rec, evidence = finish_file(prep, probs, settings, run)
            if keep is not None and evidence is not None:
                keep.offer(rec["score"], (rec["abs_path"], str(rec["path"])), evidence)
            bar.update(1)
            yield rec

    batch: list[PreparedFile] = []
    pending_crops = 0
    ahead = settings.workers + PREFETCH_FILES
    with bar, torch_threads(settings.detect_threads if detector_on_cpu(detector) else None):
        for prep in ordered_prefetch(prepare, todo(), settings.workers, ahead):
            batch.append(prep)
            pending_crops += len(prep.crops)
            if pending_crops >= predictor.batch_size:
                yield from flush(batch)
                batch, pending_crops = [], 0
        yield from flush(batch)


def detector_on_cpu(detector: Any) -> bool:
    """Whether the face detector runs on the CPU (torch's thread count matters only there)."""
    return str(getattr(detector, "device", "cpu")).startswith("cpu")


def predict_detector(
    contract: ModelCard, device: str = "cpu", frame_workers: int = 1, min_face_fraction: float = 0.5
) -> FaceDetector:
    """MTCNN for this model's contract: it looks for faces down to `min_face_fraction` x the contract's `min_face`
    (smaller ones are dropped anyway), on a copy scaled so that size maps to MTCNN's 20 px floor (never below the
    contract's own `detector_min_face_size`); a video's frames are detected on `frame_workers` threads."""
    floor = max(MTCNN_FLOOR_PX, int(contract.face_crop.detector_min_face_size or MTCNN_FLOOR_PX))
    size, scale = pyramid_for_min_face(contract.min_face, min_face_fraction, floor=floor)
    return FaceDetector(device=device, min_face_size=size, downscale=scale, frame_workers=frame_workers)


def run_header_path(output: str | os.PathLike[str]) -> Path:
    """`<output>.run.json`: the run header written beside an output."""
    return Path(os.fspath(output) + ".run.json")


def _write_header(target: Path, header: dict[str, Any]) -> None:
    atomic_write_text(target, json.dumps(header, indent=2, default=str, ensure_ascii=False) + "\n")


def run_predict(
    paths: Iterable[str | os.PathLike[str]],
    model: str | os.PathLike[str] | Predictor,
    output: str | os.PathLike[str],
    settings: PredictSettings | None = None,
    argv: Sequence[str] | None = None,
) -> PredictSummary:
    """Score `paths`, writing one record per file to `output` (.jsonl/.csv) as it comes and a run header beside it.

    An output that already holds records is refused (`OutputExistsError`) unless `settings.overwrite` or
    `settings.resume`. With a known-content `settings.index` (deepdetect-index), records also get `pdq` and
    `known_match`. Raises SettingsError for an operating point the model cannot give (e.g. --fpr without a curve).
    """
    from deepdetect.inference.writers import RecordWriter

    settings = settings or PredictSettings()
    predictor = (
        model
        if isinstance(model, Predictor)
        else Predictor.from_path(model, device=settings.device, batch_size=settings.batch_size)
    )
    run = RunInfo.start(predictor, settings)
    summary = PredictSummary(run.run_id, run.operating_point)
    matcher = None
    if settings.index is not None:
        from deepdetect.hashing.index import HashIndex
        from deepdetect.hashing.match import Matcher

        matcher = Matcher(HashIndex(settings.index))
    existing = "resume" if settings.resume else "overwrite" if settings.overwrite else "refuse"
    keep = TopFlagged(settings.explain_top) if settings.explain_dir else None
    header_path = run_header_path(output)
    header: dict[str, Any] | None = None
    try:  # Ctrl-C or SIGTERM from here on: the file in hand is dropped, the records stay, the header says so
        with interrupt_on_sigterm(), RecordWriter(output, existing=existing) as writer:
            summary.resumed, summary.dropped_bytes = len(writer.existing), writer.dropped_bytes
            if writer.dropped_bytes:
                log.warning("resume: dropped a half-written last record (%d bytes) of %s", writer.dropped_bytes, output)
            for rec in writer.existing:
                summary.count(rec)
            header = _run_header(run, predictor, settings, output, argv, header_path if settings.resume else None)
            _write_header(header_path, header)
            detector = predict_detector(
                predictor.contract,
                settings.device,
                frame_workers=max(1, settings.workers),
                min_face_fraction=settings.detect_min_face_fraction,
            )
            done = [record_key(r) for r in writer.existing]
            for rec in predict_files(paths, predictor, detector, settings, run, done=done, keep=keep):
                if matcher is not None:
                    from deepdetect.hashing.api import annotate_prediction

                    annotate_prediction(rec, matcher)
                writer.write(rec)
                summary.count(rec)
                summary.scored += 1
            if keep is not None and settings.explain_dir:
                explained = _explain(keep, predictor, Path(settings.explain_dir).absolute(), settings.progress)
                summary.explained = len(explained)
                if explained:
                    writer.set_field("explanation", {(run.run_id, k): v for k, v in explained.items()})
    except KeyboardInterrupt as exc:
        if header is None:
            raise  # stopped before the run began: nothing to record
        summary.interrupted = str(exc) or "SIGINT"
    assert header is not None
    header.update(
        finished_at=utc_now(),
        status="interrupted" if summary.interrupted else "finished",
        counts={
            "scored": summary.scored,
            "resumed": summary.resumed,
            "explained": summary.explained,
            "status": dict(summary.statuses),
            "label": dict(summary.labels),
            "known_content": summary.known,
        },
    )
    _write_header(header_path, header)
    if summary.interrupted:
        raise PredictInterrupted(summary)
    if settings.report:
        from deepdetect.triage.report import build_report

        summary.report = build_report(output, settings.report)
    return summary


def _explain(keep: TopFlagged, predictor: Predictor, out_dir: Path, progress: bool) -> dict[str, str]:
    """Second pass: an occlusion map per kept flagged file -> {abs_path: png path}; a failure skips one file."""
    written: dict[str, str] = {}
    for (abs_path, given), evidence in tqdm(keep.items(), desc="explain", unit="file", disable=not progress):
        try:
            written[abs_path] = str(write_explanation(Path(given), evidence, predictor, out_dir))
        except Exception:  # an explanation must never cost the batch its records
            log.warning("could not explain %s", given, exc_info=True)
    return written


def _run_header(
    run: RunInfo,
    predictor: Predictor,
    settings: PredictSettings,
    output: str | os.PathLike[str],
    argv: Sequence[str] | None,
    previous: Path | None,
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "format": "deepdetect-predict-run/1",
        "run_id": run.run_id,
        "status": "running",
        "started_at": utc_now(),
        "finished_at": None,
        "tool_version": run.tool_version,
        "argv": list(argv) if argv is not None else list(sys.argv),
        "cwd": os.getcwd(),
        "output": os.path.abspath(output),
        "settings": settings.with_paths_absolute().to_dict(),
        "model_path": str(Path(predictor.path).absolute()) if hasattr(predictor, "path") else None,
        "model_backend": predictor.kind,
        "model": predictor.contract.to_dict(),
        "operating_point": run.operating_point.to_dict(),
        "previous_runs": [],
    }
    if previous is not None and previous.is_file():  # resume: keep what the earlier runs' headers said
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
            earlier = old.pop("previous_runs", [])
            header["previous_runs"] = [*earlier, old]
        except (OSError, ValueError, AttributeError):
            log.warning("resume: could not read the earlier run header %s", previous)
    return header
