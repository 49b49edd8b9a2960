"""`deepdetect-sbi-preview`: a PNG grid of real crops, their self-blend masks and fakes, to check SBI by eye."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from deepdetect.cli._argparse import CommandError, command_parser, run_command

PROG = "deepdetect-sbi-preview"

EPILOG = """\
Each row is one real crop of the manifest (one per video where there are enough): the original, the blend mask
over it, the real as a paired sample shows it (the target, perturbed half the time), the self-blended fake, and the
difference between fake and original (x4). The caption names the file, the hull shape drawn and the blend ratio.
Crops extracted with dense landmarks (extract `dense_landmarks=true`) use the 68-point hulls of the paper; others
fall back to a polygon grown from MTCNN's 5 points, and the caption says so. --hulls draws the shapes a recipe's
data.sbi.hulls lists (default: the paper's four; `lower` is the jaw/nose/mouth region).

exit status: 0 written, 2 bad input (missing/invalid manifest, no real crops with landmarks)

example:
  deepdetect-sbi-preview crops/ffpp/manifest.csv -o sbi_preview.png -n 12
  deepdetect-sbi-preview crops/ffpp/manifest.csv --hulls lower -o lower_blends.png
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = command_parser(
        PROG, "Draw original / mask / self-blended crops of a manifest's real faces as one PNG.", EPILOG
    )
    parser.add_argument("manifest", type=Path, help="manifest.csv written by deepdetect-extract")
    parser.add_argument("-o", "--output", type=Path, default=Path("sbi_preview.png"), help="PNG to write")
    parser.add_argument("-n", type=int, default=8, help="rows (real crops) in the grid (1-64, default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the crops drawn and the blends (default 0)")
    parser.add_argument(
        "--hulls",
        default=None,
        help="comma-separated mask shapes to draw from, of facehull, extended, dfl_full, components, lower "
        "(default: the paper's four, every shape but lower)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    if not 1 <= args.n <= 64:
        raise CommandError(f"-n must be between 1 and 64, got {args.n}")
    from deepdetect.data.sbi import ALL_HULLS, HULLS, unknown_hulls

    hulls = HULLS if args.hulls is None else tuple(h.strip() for h in str(args.hulls).split(",") if h.strip())
    unknown = unknown_hulls(hulls)
    if not hulls or unknown:
        raise CommandError(f"--hulls: unknown or no shapes {unknown}; expected some of {', '.join(ALL_HULLS)}")
    from deepdetect.data.manifest import read_manifest
    from deepdetect.data.sbi_preview import render_preview
    from deepdetect.utils.terminal import shown

    out = render_preview(read_manifest(args.manifest), args.output, n=args.n, seed=args.seed, hulls=hulls)
    print(f"wrote {shown(out)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    from deepdetect.data.manifest import ManifestError

    return run_command(PROG, lambda: _run(args), (ManifestError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
