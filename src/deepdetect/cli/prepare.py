"""`deepdetect-prepare`: export MTCNN's three nets to ONNX into the cache ahead of the first predict run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EPILOG = """\
The ONNX Runtime face detector (predict's default for an ONNX model on the CPU) needs MTCNN's P-Net, R-Net and
O-Net as ONNX files. They are exported from the installed facenet-pytorch weights (PyTorch is imported for it, so
it takes a while) into a folder named by the weights' SHA-256, and reused from then on. Without this step the
first predict run pays for the export. Nothing is downloaded.

cache folder: --cache-dir, else $DEEPDETECT_CACHE_DIR, else $XDG_CACHE_HOME/deepdetect, else ~/.cache/deepdetect
(predict reads the same environment variables, not --cache-dir).
exit status: 0 the files are there (exported now or before), 2 they cannot be made (message on stderr)
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="deepdetect-prepare",
        description="Export the face detector's nets (MTCNN, ONNX) into the cache, so predict's first run is fast.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache folder (default: see below)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the three files' paths on stdout, or a one-line error (exit 2)."""
    args = build_parser().parse_args(argv)
    from deepdetect.faces.mtcnn_onnx import MtcnnOnnxError, mtcnn_onnx_paths

    try:
        paths = mtcnn_onnx_paths(args.cache_dir)
    except MtcnnOnnxError as exc:
        print(f"deepdetect-prepare: error: {exc}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
