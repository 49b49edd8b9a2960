"""`deepdetect-predict`: score image and video files with an exported ONNX model or a checkpoint."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

log = logging.getLogger("deepdetect.predict")

EPILOG = """\
inputs:
  image files (jpg png bmp webp gif tif), video files (mp4 avi mov mkv webm), folders (searched
  recursively) and .txt files listing one path per line (# comments allowed).

output (one record per input file, written and flushed as soon as it is computed):
  path, path_bytes_b64 (base64 of a non-UTF-8 name's bytes, else null), sha256, kind (image|video),
  status, score (calibrated P(fake) or null), label (fake|real at the threshold, null when not ok), threshold,
  n_frames, n_faces, faces [{frame_index, box, det_score, score}], model_name, model_version, seconds, error.
  score: image = max over its faces; video = mean over sampled frames with a face of the frame's
  max face score. A file with no face is never given a score.

statuses:
  ok               scored
  no_face          decoded, but no face found: score null
  unreadable       empty, corrupt, truncated, permission denied, symlink loop, or not a
                   regular file (FIFO, device, socket: never opened)
  unsupported      not an image or video extension
  no_video_stream  a media container without video (e.g. audio only)
  no_frames        a video with no decodable frame
  too_large        over the pixel limit (decompression bombs, any oversized video frame)
  not_found        missing file or dangling symlink
  error            unexpected failure while scoring (message in `error`)

exit status:
  0  inputs were processed (per-file failures are in the records)
  1  nothing could be read at all (every file failed to decode)
  2  usage error: no inputs, bad model path, ONNX file without the deepdetect contract,
     a contract value of the wrong type or range, an output locked by another predict

CSV output: text cells starting with = + - @ ' (or tab/CR) get a leading ' (spreadsheet-safe);
JSON lines keep exact paths.

example:
  deepdetect-predict suspect/ clip.mp4 --model EX/model.onnx --output results.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
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
        "--frames", type=int, default=None, help="frames sampled per video (default: the model's, as in training)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="face crops per model batch (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="override the model's stored threshold")
    parser.add_argument(
        "--min-face-score",
        type=float,
        default=None,
        help="minimum face detection score (default: the model's, as in training; faces smaller than training's "
        "smallest are never scored)",
    )
    parser.add_argument(
        "--explain", metavar="DIR", default=None, help="Grad-CAM overlay per flagged file (checkpoints)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--index", default=None, help="known-content index (deepdetect-index): add `pdq` and `known_match` per file"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns (and, as a script, exits with) the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if (args.frames is not None and args.frames < 1) or args.batch_size < 1:
        parser.error("--frames and --batch-size must be positive")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        parser.error("--threshold must be a probability in [0, 1]")

    from deepdetect.inference.predict import READ_STATUSES, expand_inputs, run_predict
    from deepdetect.inference.predictor import ModelLoadError, OnnxBackend, Predictor
    from deepdetect.inference.writers import OutputBusyError, ensure_writable

    try:
        predictor = Predictor.from_path(args.model, device=args.device, batch_size=args.batch_size)
    except ModelLoadError as exc:
        print(f"deepdetect-predict: error: {exc}", file=sys.stderr)
        return 2
    if args.explain and isinstance(predictor, OnnxBackend):
        print(
            "deepdetect-predict: error: --explain needs a checkpoint (Grad-CAM needs gradients); "
            "pass the training run folder as --model",
            file=sys.stderr,
        )
        return 2
    if not expand_inputs(args.paths):
        print("deepdetect-predict: error: no image or video files found in the given paths", file=sys.stderr)
        return 2
    try:
        ensure_writable(args.output)
    except OSError as exc:
        print(f"deepdetect-predict: error: cannot write --output {args.output}: {exc}", file=sys.stderr)
        return 2
    if args.index is not None:
        from deepdetect.hashing.index import HashIndex, IndexFileError

        try:
            HashIndex(args.index).close()
        except IndexFileError as exc:
            print(f"deepdetect-predict: error: --index: {exc}", file=sys.stderr)
            return 2
    try:
        statuses, labels = run_predict(
            args.paths,
            predictor,
            args.output,
            device=args.device,
            frames=args.frames,
            batch_size=args.batch_size,
            threshold=args.threshold,
            min_face_score=args.min_face_score,
            explain_dir=args.explain,
            progress=not args.quiet,
            index=args.index,
        )
    except OutputBusyError as exc:  # raised when the output is opened, before any file is scored
        print(f"deepdetect-predict: error: {exc}", file=sys.stderr)
        return 2
    total = sum(statuses.values())
    print(f"{total} files -> {args.output}  (model {predictor.contract.name} {predictor.contract.version})")
    print("  status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    if labels:
        print("  label:  " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())))
    if args.explain:
        print(f"  explanations: {args.explain}")
    if not any(statuses[s] for s in READ_STATUSES):
        print("deepdetect-predict: nothing could be read", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
