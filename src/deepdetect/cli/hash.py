"""`deepdetect-hash`: PDQ hashes of images and vPDQ-style frame hashes of videos, one JSON record per file."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Sequence

from deepdetect.cli._argparse import CommandError, command_parser, run_command
from deepdetect.utils.cliargs import DEDUP_BITS, HASH_FPS

EPILOG = """\
output (one JSON line per input file, UTF-8, to --output or stdout):
  path, path_bytes_b64, sha256, kind (image|video), status, error, seconds, and
  (a name that is not UTF-8 keeps its exact bytes as \\udcXX escapes in path, and in base64 in path_bytes_b64,
  as deepdetect-predict writes it; null for UTF-8 names)
  image: pdq (64 hex characters, ThreatExchange bit order), quality (0-100; below 50 too featureless to match on)
  video: frames [{frame_index, timestamp, pdq, quality}] sampled every 1/--fps seconds, consecutive frames within
         --dedup bits of the last kept one dropped; fps, duration_s, sample_fps, n_sampled
  --faces:    faces [{frame_index, box, pdq, quality}]: PDQ of each detected face crop (MTCNN) as well
  --dihedral: dihedral [7 hex]: hashes of the rotations and flips (rot90 rot180 rot270 flip_v flip_h transpose
              anti_transpose), for matching mirrored or rotated copies

statuses: ok, unreadable, unsupported, no_video_stream, no_frames, too_large, not_found, error (as deepdetect-predict)
exit status: 0 inputs processed (per-file failures are in the records), 1 nothing could be read, or the output
  could not be written (disk full: the records before it are kept), 2 usage error

examples:
  deepdetect-hash reported/ clip.mp4 --output hashes.jsonl
  deepdetect-index add known.db hashes.jsonl --label ncii     # index the records without hashing again
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = command_parser(
        "deepdetect-hash",
        "Perceptual hashes (PDQ) of images and videos, for finding re-uploads of known content.",
        EPILOG,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or .txt path lists")
    parser.add_argument("--output", default="-", help="JSON lines file, or - for stdout (default)")
    parser.add_argument("--fps", type=HASH_FPS, default=1.0, help="video frames hashed per second (default: 1)")
    parser.add_argument(
        "--dedup", type=DEDUP_BITS, default=4, help="drop consecutive frames within this many bits (-1: keep all)"
    )
    parser.add_argument("--faces", action="store_true", help="also hash detected face crops (slower: runs MTCNN)")
    parser.add_argument("--dihedral", action="store_true", help="also output rotation/flip hashes")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="for face detection")
    return parser


def _run(args: argparse.Namespace) -> int:
    from deepdetect.hashing.records import hash_paths
    from deepdetect.media import named_inputs
    from deepdetect.utils.io import check_outputs
    from deepdetect.utils.jsonlines import JsonLinesWriter

    check_outputs({"--output": args.output}, named_inputs(args.paths))
    detector = None
    if args.faces:
        from deepdetect.faces.detect import FaceDetector

        detector = FaceDetector(device=args.device)
    out = JsonLinesWriter(args.output)  # UTF-8 whatever the terminal's encoding: the records are data
    try:
        out.open()
    except OSError as exc:
        raise CommandError(f"cannot write --output {args.output}: {exc}") from exc
    statuses: Counter[str] = Counter()
    with out:
        for rec in hash_paths(args.paths, args.fps, args.dedup, detector, args.dihedral):
            out.write(rec)
            statuses[rec["status"]] += 1
    print("deepdetect-hash: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())), file=sys.stderr)
    return 0 if statuses["ok"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    from deepdetect.utils.io import OutputPathError
    from deepdetect.utils.terminal import cli_logging

    cli_logging(logging.WARNING)
    return run_command("deepdetect-hash", lambda: _run(args), (OutputPathError,))


if __name__ == "__main__":
    sys.exit(main())
