"""`deepdetect-predict`: score image and video files with an exported ONNX model or a checkpoint."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("deepdetect.predict")

EPILOG = """\
inputs:
  image files (jpg png bmp webp gif tif), video files (mp4 avi mov mkv webm), folders (searched
  recursively) and .txt files listing one path per line (# comments allowed).

output (one record per input file, written and flushed as soon as it is computed):
  path (as given), abs_path, name, path_bytes_b64 (base64 of a non-UTF-8 name's bytes, else null), size_bytes,
  sha256, kind (image|video), status, score (calibrated P(fake) or null), score_interval ([lowest, highest]
  frame score), label (fake|real at the threshold, null when not ok), threshold, operating_point {threshold,
  source (model|fpr|threshold), target_fpr, val_fpr, val_tpr}, aggregate (mean|max|topk; aggregate_k for topk),
  n_frames, n_faces, faces [{frame_index, time_s, box, det_score, score}], model_name, model_version, run_id,
  tool_version, scanned_at (UTC), seconds, error, explanation (PNG path or null).
  score: each frame scores its highest face; the file scores the --aggregate of its frame scores (an image
  has one frame). A file with no face is never given a score.
  <output>.run.json beside it: run id, start/finish (UTC), tool version, argv, settings, the model card and
  the operating point. See docs/predict.md ("What the score means").

statuses:
  ok               scored
  no_face          decoded, but no face found: score null
  unreadable       empty, corrupt, truncated, permission denied, symlink loop, or not a
                   regular file (FIFO, device, socket: never opened)
  unsupported      not an image or video extension (named on the command line or in a .txt list)
  skipped          found in a folder, not an image or video (listed so every file is accounted for)
  no_video_stream  a media container without video (e.g. audio only)
  no_frames        a video with no decodable frame
  too_large        over the pixel limit (decompression bombs, any oversized video frame)
  not_found        missing file or dangling symlink
  error            unexpected failure while scoring (message in `error`)

exit status:
  0  inputs were processed (per-file failures are in the records)
  1  nothing could be read at all (every file failed to decode), or records could not be written (disk full:
     the records so far are kept, the run header says "failed" with the reason)
  130  interrupted (Ctrl-C, SIGTERM): records so far kept, run header "interrupted", the --resume command printed
  2  usage error: no inputs, bad model path, ONNX file without the deepdetect contract,
     a contract value of the wrong type or range, an output locked by another predict, an output that
     already holds results (without --overwrite or --resume), --fpr with a model that stores no validation
     curve or whose validation cannot support that FPR (the message says which it can), --threshold with
     --fpr, --explain-top without --explain, --device cuda without CUDA, a number out of its range
     (--frames 1..10000), --report the same file as --output, an output that is one of the inputs or a symlink

warning (one line at the end, and a banner on the --report page) when the model's own validation says its
labels should not be taken at face value: validation FPR > 0.10 at the threshold used, too few validation
reals for the target FPR, or a failed calibration. See docs/numbers.md.

CSV output: text cells starting with = + - @ ' (or tab/CR) get a leading ' (spreadsheet-safe);
JSON lines keep exact paths.

examples:
  deepdetect-predict suspect/ clip.mp4 --model EX/model.onnx --output results.jsonl
  deepdetect-predict queue.txt --model EX/model.onnx --output q.jsonl --fpr 0.01 --explain q_explain/
  deepdetect-predict queue.txt --model EX/model.onnx --output q.jsonl --fpr 0.01 --resume   # after a kill
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (every number checked by `utils/cliargs.py` types: one line, exit 2)."""
    from deepdetect.media import MAX_FRAMES_PER_VIDEO
    from deepdetect.utils.cliargs import count, fraction

    parser = argparse.ArgumentParser(
        prog="deepdetect-predict",
        description="Score images and videos for face deepfakes: detect faces (MTCNN), crop them as in "
        "training, classify, and write one record per file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or .txt path lists")
    parser.add_argument("--model", required=True, help="EX/model.onnx (export) or a training run folder / .safetensors")
    parser.add_argument(
        "--output", default="predictions.jsonl", help="results file, .jsonl or .csv (default: %(default)s)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="for detection and the model")
    parser.add_argument(
        "--frames",
        type=count(1, MAX_FRAMES_PER_VIDEO),
        default=None,
        help=f"frames sampled per video, 1..{MAX_FRAMES_PER_VIDEO} (default: the model's, as in training)",
    )
    parser.add_argument(
        "--batch-size", type=count(1, 4096), default=32, help="face crops per model batch (default: %(default)s)"
    )
    point = parser.add_mutually_exclusive_group()
    point.add_argument(
        "--threshold", type=fraction(), default=None, help="call a file fake at score >= this (overrides the model's)"
    )
    point.add_argument(
        "--fpr",
        type=fraction(),
        default=None,
        help="operating point from the model's validation ROC: the threshold with the highest val TPR whose val "
        "FPR <= this (e.g. 0.01)",
    )
    parser.add_argument(
        "--aggregate",
        default="mean",
        choices=["mean", "max", "topk"],
        help="video score from its frame scores (default: %(default)s; max or topk catch a short swapped segment)",
    )
    parser.add_argument(
        "--topk", type=count(1, MAX_FRAMES_PER_VIDEO), default=3, help="frames averaged by --aggregate topk (default 3)"
    )
    parser.add_argument(
        "--min-face-score",
        type=fraction(),
        default=None,
        help="minimum face detection score (default: the model's, as in training; faces smaller than training's "
        "smallest are never scored)",
    )
    parser.add_argument(
        "--explain",
        metavar="DIR",
        default=None,
        help="occlusion map PNGs (ONNX and checkpoints) for the --explain-top highest-scoring flagged files",
    )
    parser.add_argument(
        "--explain-top",
        type=count(0, 10_000),
        default=None,
        metavar="N",
        help="files explained with --explain (default: 20); refused without --explain",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace an --output that already holds results")
    existing.add_argument(
        "--resume",
        action="store_true",
        help="keep --output's records and score only inputs not yet in it (same absolute path and sha256)",
    )
    parser.add_argument(
        "--report",
        default=None,
        metavar="HTML",
        help="also write the triage page (one self-contained HTML file; `deepdetect-report` rebuilds it from --output)",
    )
    _add_speed_args(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug messages, and onnxruntime's own warnings (off otherwise)"
    )
    parser.add_argument(
        "--index", default=None, help="known-content index (deepdetect-index): add `pdq` and `known_match` per file"
    )
    return parser


def _add_speed_args(parser: argparse.ArgumentParser) -> None:
    """Where and how fast the stages run: workers, engine, face detection settings."""
    from deepdetect.inference.settings import DETECT_EVERY_DEFAULT
    from deepdetect.utils.cliargs import count, number

    parser.add_argument(
        "--workers",
        type=count(0, 256),
        default=2,
        help="threads that decode and detect the next files while the model scores (0: one file at a time; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where the stages run: threads here (default), or Ray Data (decode tasks, --workers model actors; "
        "needs `pip install 'deepdetect[ray]'`; see docs/performance.md for a cluster)",
    )
    parser.add_argument(
        "--ray-address",
        default="local",
        metavar="ADDR",
        help="--engine ray: `local` starts Ray on this machine (default), `auto` or HOST:PORT joins a running cluster",
    )
    parser.add_argument(
        "--detect-min-face-fraction",
        type=number(float, 0.01, 1.0),
        default=0.5,
        metavar="F",
        help="face detection searches down to F x the model's smallest training face, on a frame scaled so that "
        "is MTCNN's 20 px (default %(default)s: MTCNN's own 20 px search for min_face 40; 1.0 detects 2.3-2.7x "
        "faster but missed 12 of 150 faces >= min_face on the 1080p dev clip; docs/performance.md)",
    )
    parser.add_argument(
        "--detector",
        choices=["auto", "ort", "torch"],
        default="auto",
        help="MTCNN's backend: ort (ONNX Runtime, on the CPU; no PyTorch import), torch (facenet-pytorch), or auto "
        "(default: ort for an ONNX model on the CPU, else torch; same faces, docs/performance.md)",
    )
    parser.add_argument(
        "--detect-every",
        type=count(1, 10_000),
        default=DETECT_EVERY_DEFAULT,
        metavar="N",
        help="in a video, run the full face detector on every N-th sampled frame and follow the faces in between "
        "with MTCNN's last two stages (1: the full detector on every frame; default %(default)s; "
        "docs/performance.md measures the speed and the faces it misses)",
    )


def _error(message: object) -> int:
    from deepdetect.utils.terminal import shown

    print(f"deepdetect-predict: error: {shown(message)}", file=sys.stderr)
    return 2


def _output_problem(args: argparse.Namespace, inputs: Sequence[Any]) -> str | None:
    """Why the outputs cannot be written (a symlink, one file twice, one of `inputs`, not writable), else None."""
    from deepdetect.inference.runlog import run_header_path
    from deepdetect.inference.writers import ensure_writable
    from deepdetect.utils.io import OutputPathError, check_outputs

    try:
        outputs = {"--output": args.output, "--report": args.report, "the run header": run_header_path(args.output)}
        check_outputs(outputs, inputs)
    except OutputPathError as exc:
        return str(exc)
    for flag, target in (("--output", args.output), ("--report", args.report)):
        try:
            if target is not None:
                ensure_writable(target)
        except OSError as exc:
            return f"cannot write {flag} {target}: {exc}"  # _error escapes the names
    return None


def _stopped(message: str) -> int:
    """A run that could not go on (a full disk): one line, exit status 1."""
    from deepdetect.utils.terminal import shown

    print(f"deepdetect-predict: error: {shown(message)}", file=sys.stderr)
    return 1


def _print_summary(summary: Any, args: argparse.Namespace, predictor: Any) -> None:
    """The run's summary lines: counts per status and label, the operating point, where things went."""
    from deepdetect.utils.terminal import shown

    op = summary.operating_point
    total = sum(summary.statuses.values())
    model = shown(f"{predictor.contract.name} {predictor.contract.version}")
    print(f"{total} files -> {shown(args.output)}  (model {model})")
    if summary.resumed:
        print(f"  resumed: {summary.resumed} records kept, {summary.scored} files scored now")
    rates = f"val FPR {op.val_fpr:.3g}, val TPR {op.val_tpr:.3g}" if op.val_tpr is not None else "val rates unknown"
    print(f"  operating point: threshold {op.threshold:.4g} ({op.source}; {rates})")
    print("  status: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())))
    if args.index is not None:
        print(f"  known content: {summary.known} file(s) matched the index")
    if summary.labels:
        print("  label:  " + ", ".join(f"{k} {v}" for k, v in sorted(summary.labels.items())))
    if args.explain:
        print(f"  explanations: {summary.explained} in {shown(args.explain)}")
    if summary.report is not None:
        print(f"  triage page: {shown(summary.report)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns (and, as a script, exits with) the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from deepdetect.utils.terminal import cli_logging, shown

    cli_logging(logging.DEBUG if args.verbose else logging.INFO)
    if args.explain_top is not None and args.explain is None:
        parser.error("--explain-top needs --explain DIR (the folder the explanations go to)")

    from deepdetect.inference.predict import (
        READ_STATUSES,
        PredictFailed,
        PredictInterrupted,
        expand_inputs,
        resume_argv,
        run_predict,
    )
    from deepdetect.inference.predictor import ModelLoadError, Predictor
    from deepdetect.inference.runtime import ort_verbosity
    from deepdetect.inference.settings import PredictSettings, SettingsError, choose_operating_point
    from deepdetect.inference.writers import OutputBusyError, OutputExistsError, OutputFormatError

    try:
        settings = PredictSettings(
            device=args.device,
            frames=args.frames,
            batch_size=args.batch_size,
            min_face_score=args.min_face_score,
            threshold=args.threshold,
            fpr=args.fpr,
            aggregate=args.aggregate,
            topk=args.topk,
            explain_dir=args.explain,
            explain_top=20 if args.explain_top is None else args.explain_top,
            index=args.index,
            overwrite=args.overwrite,
            resume=args.resume,
            progress=not args.quiet,
            report=args.report,
            workers=args.workers,
            engine=args.engine,
            ray_address=args.ray_address,
            detect_min_face_fraction=args.detect_min_face_fraction,
            detect_every=args.detect_every,
            detector=args.detector,
        )
    except SettingsError as exc:
        parser.error(str(exc))
    ort_verbosity(args.verbose)
    try:
        predictor = Predictor.from_path(args.model, device=args.device, batch_size=args.batch_size)
        choose_operating_point(predictor.contract, settings)  # an operating point it cannot give: refused now
    except (ModelLoadError, SettingsError) as exc:
        return _error(str(exc))
    inputs = expand_inputs(args.paths)
    skipped = sum(err is not None and err.status == "skipped" for _, err in inputs)
    if len(inputs) == skipped:
        others = f" ({skipped} other file{'s' if skipped != 1 else ''})" if skipped else ""
        return _error(f"no image or video files found in the given paths{others}")
    problem = _output_problem(args, [*args.paths, *(p for p, err in inputs if err is None)])
    if problem is not None:
        return _error(problem)
    if args.index is not None:
        from deepdetect.hashing.index import HashIndex, IndexFileError

        try:
            HashIndex(args.index).close()
        except IndexFileError as exc:
            return _error(f"--index: {exc}")
    command = sys.argv if argv is None else ["deepdetect-predict", *argv]
    try:
        summary = run_predict(args.paths, predictor, args.output, settings, argv=command)
    except (OutputBusyError, OutputExistsError, OutputFormatError) as exc:  # raised before any file is scored
        return _error(str(exc))
    except PredictFailed as failed:
        n = failed.summary.resumed + failed.summary.scored
        return _stopped(f"{failed}; {n} records kept, the run header says failed")
    except PredictInterrupted as stop:
        n = stop.summary.resumed + stop.summary.scored
        print(
            f"deepdetect-predict: interrupted after {n} records ({stop.summary.interrupted}); go on with:\n"
            f"  {shown(shlex.join(resume_argv(command)))}",
            file=sys.stderr,
        )
        return 130
    _print_summary(summary, args, predictor)
    if summary.trust is not None:
        print(f"deepdetect-predict: warning: {shown(summary.trust)}", file=sys.stderr)
    if not any(summary.statuses[s] for s in READ_STATUSES):
        print("deepdetect-predict: nothing could be read", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
