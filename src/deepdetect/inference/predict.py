"""Score media files end to end: one record per input file, written as it comes, with a run header beside it.

A file goes through `pipeline.FilePipeline` (decode -> faces -> score -> record -> known-content, one stage per
module of `inference/stages/`), run on this machine by `engine_local`. Face selection follows the model's contract:
faces smaller than the smallest face training saw (`face_crop.min_face`) or below its detection score
(`face_crop.min_score`) are never scored, and videos are sampled at the contract's `frames_per_video` unless the
caller says otherwise. Aggregation (documented for analysts): every remaining face is scored with the calibrated
P(fake); each frame scores the max over its faces; the file scores the `aggregate` (mean by default, or max, or the
mean of the top k) of its frame scores — an image has one frame, so it scores its highest face. `score_interval`
is [lowest, highest] frame score. A file with no usable face gets status `no_face` and score null, never a default
0.5. The label compares the score with the run's operating point (`settings.choose_operating_point`), which every
record names.

A run writes `<output>.run.json` beside the output (run id, times, tool version, settings, the model card, the
operating point); `resume` keeps an output's complete records and skips inputs already recorded with the same
absolute path (its exact bytes) and sha256; explanations of the top flagged files are made in a second pass at the end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from deepdetect.hashing.match import Matcher
from deepdetect.inference.engine_local import PREFETCH_FILES, run_local
from deepdetect.inference.engine_ray import PipelineRecipe, run_ray
from deepdetect.inference.explain import FaceEvidence, TopFlagged, explain_kept
from deepdetect.inference.pipeline import FilePipeline, FileTodo, PreparedFile
from deepdetect.inference.predictor import Predictor
from deepdetect.inference.runlog import (
    PredictSummary,
    finish_header,
    run_header_path,
    start_header,
    write_header,
)
from deepdetect.inference.settings import PredictSettings, SettingsError, model_trust_warning
from deepdetect.inference.stages.faces import (
    TRACK_MAX_GAP_S,
    detector_backend,
    detector_on_cpu,
    detector_uses_torch,
    predict_detector,
    tracking_interval,
)
from deepdetect.inference.stages.known import open_index
from deepdetect.inference.stages.record import READ_STATUSES, STATUSES, RunInfo, path_key, record_key, utc_now
from deepdetect.media import MediaError, is_media_name, iter_media_files
from deepdetect.utils.io import sha256_file
from deepdetect.utils.procs import interrupt_on_sigterm

__all__ = [  # predict's public names, wherever they are defined
    "PREFETCH_FILES",
    "READ_STATUSES",
    "STATUSES",
    "TRACK_MAX_GAP_S",
    "FilePipeline",
    "PredictFailed",
    "PredictInterrupted",
    "PredictSummary",
    "PreparedFile",
    "RunInfo",
    "detector_backend",
    "detector_on_cpu",
    "expand_inputs",
    "predict_detector",
    "predict_files",
    "record_key",
    "resume_argv",
    "run_header_path",
    "run_predict",
    "score_file",
    "tracking_interval",
    "utc_now",
]

log = logging.getLogger(__name__)


class PredictFailed(Exception):
    """Raised by `run_predict` when records could not be written (a full disk): the records before are kept, the
    run header says `failed` with the reason; `.summary` holds the counts, `str()` the one-line reason."""

    def __init__(self, summary: PredictSummary) -> None:
        super().__init__(summary.failed)
        self.summary = summary


class PredictInterrupted(Exception):
    """Raised by `run_predict` when SIGINT or SIGTERM stopped it: the records so far are written and the run
    header says `interrupted`; `.summary` holds the counts."""

    def __init__(self, summary: PredictSummary) -> None:
        super().__init__(f"interrupted by {summary.interrupted}")
        self.summary = summary


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


def _already_done(
    path: Path, done: Container[tuple[bytes | None, str | None]], done_paths: Container[bytes | None]
) -> tuple[bool, str | None]:
    """(whether this path with its current content is recorded already, its sha256 when it was computed)."""
    abs_path = path_key(path)
    if abs_path not in done_paths:
        return False, None
    try:
        digest = sha256_file(path) if os.path.isfile(path) else None
    except OSError:
        digest = None
    return (abs_path, digest) in done, digest


def score_file(
    path: Path,
    predictor: Predictor,
    detector: Any,
    settings: PredictSettings,
    run: RunInfo,
) -> tuple[dict[str, Any], FaceEvidence | None]:
    """One file's record, plus its best face when it is flagged (for an explanation); never raises for a bad file.

    The one-file path through the stages: prepare, one model call, finish. A video's faces get `time_s` = frame
    index / frame rate (null when the rate is unknown).
    """
    pipeline = FilePipeline(predictor, detector, settings, run)
    prep = pipeline.prepare(FileTodo(path))
    (probs,) = pipeline.score([prep])
    return pipeline.finish(prep, probs)


@dataclass(frozen=True)
class RunParts:
    """What a run adds around the stages: records already done (resume), the explanation keeper, the known-content
    matcher, and where Ray's shards go."""

    done: Sequence[tuple[bytes | None, str | None]] = ()
    keep: TopFlagged | None = None
    matcher: Matcher | None = None
    shard_dir: str | os.PathLike[str] | None = None


def predict_files(
    paths: Iterable[str | os.PathLike[str]],
    predictor: Predictor,
    detector: Any,
    settings: PredictSettings | None = None,
    run: RunInfo | None = None,
    parts: RunParts | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one record per input file, in input order (see the module docstring), skipping inputs whose
    (absolute path, sha256) is in `done`; the best face of each flagged file is offered to `keep` (explanations);
    with a known-content `matcher`, records also get `pdq` and `known_match`.

    `settings.workers` threads decode, detect and crop the next files while the model scores the current ones
    (at most `workers + PREFETCH_FILES` files in flight); crops of consecutive files share one model call of
    about `settings.batch_size` crops. Torch (where the detector or the model runs on it) runs with
    `settings.detect_threads` threads while this iterates.
    With `settings.engine == "ray"` the same stages run on Ray (`engine_ray`: `settings.workers` model actors,
    the cluster at `settings.ray_address`, JSONL shards in a fresh folder inside `shard_dir`).
    """
    settings = settings or PredictSettings()
    run = run or RunInfo.start(predictor, settings)
    parts = parts or RunParts()
    done, keep, matcher, shard_dir = parts.done, parts.keep, parts.matcher, parts.shard_dir
    predictor.batch_size = int(settings.batch_size)
    done_set = set(done)
    done_paths = {p for p, _ in done_set}
    inputs = expand_inputs(paths)
    bar = tqdm(total=len(inputs), desc="predict", unit="file", disable=not settings.progress, dynamic_ncols=True)

    def todo() -> Iterator[FileTodo]:
        for path, missing in inputs:
            seen, digest = _already_done(path, done_set, done_paths) if done_set else (False, None)
            if seen:
                bar.update(1)
                continue
            yield FileTodo(path, missing, digest)  # a changed file's new sha256 is not computed twice

    if settings.engine == "ray":
        model_path = getattr(predictor, "path", None)
        if model_path is None:
            raise SettingsError("--engine ray needs a model file that every Ray worker can open")
        recipe = PipelineRecipe(str(Path(model_path).absolute()), settings.with_paths_absolute(), run)
        workers = max(1, settings.workers)
        results = run_ray(recipe, todo(), predictor.contract, settings.ray_address, workers, shard_dir)
    else:
        pipeline = FilePipeline(predictor, detector, settings, run, matcher, file_progress=settings.workers == 0)
        torch_used = detector_uses_torch(detector) or predictor.kind == "torch"
        threads = settings.detect_threads if detector_on_cpu(detector) and torch_used else None
        results = run_local(pipeline, todo(), settings.workers, threads)
    with bar:
        for rec, evidence in results:
            if keep is not None and evidence is not None:
                keep.offer(rec["score"], (rec["abs_path"], str(rec["path"])), evidence)
            bar.update(1)
            yield rec


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
    The summary's `trust` says why the model's labels should not be taken at face value at that point (or None).
    """
    from deepdetect.inference.writers import RecordWriter
    from deepdetect.utils.jsonlines import OutputWriteError

    settings = settings or PredictSettings()
    predictor = (
        model
        if isinstance(model, Predictor)
        else Predictor.from_path(model, device=settings.device, batch_size=settings.batch_size)
    )
    # The run header records the face detector's backend the run used, not `auto`.
    settings = replace(settings, detector=detector_backend(settings.detector, predictor.kind, settings.device))
    run = RunInfo.start(predictor, settings)
    trust = model_trust_warning(predictor.contract, run.operating_point)
    summary = PredictSummary(run.run_id, run.operating_point, trust=trust)
    matcher = open_index(settings.index) if settings.index is not None else None
    existing = "resume" if settings.resume else "overwrite" if settings.overwrite else "refuse"
    keep = TopFlagged(settings.explain_top) if settings.explain_dir else None
    header_path = run_header_path(output)
    output_dir = Path(os.path.abspath(output)).parent  # --engine ray writes its shards in a fresh folder here
    header: dict[str, Any] | None = None
    try:  # Ctrl-C or SIGTERM from here on: the file in hand is dropped, the records stay, the header says so
        with interrupt_on_sigterm(), RecordWriter(output, existing=existing) as writer:
            summary.resumed, summary.dropped_bytes = len(writer.existing), writer.dropped_bytes
            if writer.dropped_bytes:
                log.warning("resume: dropped a half-written last record (%d bytes) of %s", writer.dropped_bytes, output)
            for rec in writer.existing:
                summary.count(rec)
            header = start_header(run, predictor, settings, output, argv, header_path if settings.resume else None)
            write_header(header_path, header)
            detector = predict_detector(
                predictor.contract,
                settings.device,
                frame_workers=max(1, settings.workers),
                min_face_fraction=settings.detect_min_face_fraction,
                backend=settings.detector,
            )
            done = [record_key(r) for r in writer.existing]
            parts = RunParts(done=done, keep=keep, matcher=matcher, shard_dir=output_dir)
            records = predict_files(paths, predictor, detector, settings, run, parts)
            for rec in records:
                writer.write(rec)
                summary.count(rec)
                summary.scored += 1
            if keep is not None and settings.explain_dir:
                explained = explain_kept(keep, predictor, Path(settings.explain_dir).absolute(), settings.progress)
                summary.explained = len(explained)
                if explained:
                    writer.set_field("explanation", {(run.run_id, k): v for k, v in explained.items()})
    except KeyboardInterrupt as exc:
        if header is None:
            raise  # stopped before the run began: nothing to record
        summary.interrupted = str(exc) or "SIGINT"
    except OutputWriteError as exc:  # a full disk: what was written stays, the header says why the run stopped
        if header is None:
            raise
        summary.failed = str(exc)
    assert header is not None
    finish_header(header, summary)
    try:
        write_header(header_path, header)
    except OSError as exc:
        if not summary.failed:
            raise
        log.warning("could not mark the run failed in %s: %s", header_path, exc)
    if summary.failed:
        raise PredictFailed(summary)
    if summary.interrupted:
        raise PredictInterrupted(summary)
    if settings.report:
        from deepdetect.triage.report import build_report

        summary.report = build_report(output, settings.report)
    return summary
