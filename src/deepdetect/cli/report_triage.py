"""`deepdetect-report`: the analysts' triage page (one self-contained HTML file) from predict's records."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from deepdetect.cli._argparse import CommandError, command_parser, run_command

PROG = "deepdetect-report"

EPILOG = """\
input: the records `deepdetect-predict ... --output predictions.jsonl` wrote (.jsonl or .csv); a run header
`predictions.jsonl.run.json` beside it adds the model card and the operating point. A last line cut short (a run
still going or killed) and unreadable lines are left out with a warning on the page.

the page: a summary (counts per status and label, the model, its validation FPR/TPR, the operating point, and
warnings when the model catches few fakes at its threshold or the batch is one-sided), then one row per file,
highest score first, failures last, filterable by status and label and searchable by name, path or sha256.
The first --top-n rows carry a thumbnail with the face boxes and scores, the container/EXIF/C2PA provenance,
a per-frame score strip for videos and the explanation image; the rest are compact rows. Nothing in the page
loads from the network (images are embedded). See docs/triage.md.

exit status: 0 page written, 1 page written but no record could be read, 2 usage error (missing or unreadable
records file, output not writable, bad option)

examples:
  deepdetect-report predictions.jsonl -o triage.html
  deepdetect-report predictions.jsonl -o triage.html --top-n 2000      # more rows with thumbnails
  deepdetect-report predictions.csv -o quick.html --no-thumbnails --no-provenance   # never opens the media
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    description = "Build the triage HTML report (self-contained, no network) from deepdetect-predict records."
    parser = command_parser(PROG, description, EPILOG)
    parser.add_argument("records", type=Path, help="predictions .jsonl or .csv written by deepdetect-predict")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="HTML file to write (default: <records>.triage.html)"
    )
    parser.add_argument(
        "--top-n", type=int, default=500, help="rows with thumbnail, provenance and explanation (default: 500)"
    )
    parser.add_argument("--no-thumbnails", action="store_true", help="do not decode the files for thumbnails")
    parser.add_argument("--no-provenance", action="store_true", help="do not read container/EXIF/C2PA metadata")
    parser.add_argument("--title", default=None, help="page title (default: the records file name)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from deepdetect.triage.records import read_records
    from deepdetect.triage.report import build_report_from
    from deepdetect.utils.io import check_outputs
    from deepdetect.utils.terminal import shown

    if not args.records.exists():
        raise CommandError(f"records file not found: {args.records}")
    output = args.output or args.records.with_name(args.records.name + ".triage.html")
    if output.is_dir():
        raise CommandError(f"--output is a folder: {output}")
    check_outputs({"--output": output}, [args.records])
    try:
        recordset = read_records(args.records)
    except OSError as exc:
        raise CommandError(f"cannot read {args.records}: {exc}") from exc
    try:
        result = build_report_from(
            recordset,
            output,
            thumbnails=not args.no_thumbnails,
            provenance=not args.no_provenance,
            top_n=args.top_n,
            title=args.title,
        )
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc}") from exc
    for warning in result.read_warnings:
        print(f"{PROG}: warning: {shown(warning)}", file=sys.stderr)
    if result.summary.trust:
        trust = shown("; ".join(result.summary.trust))
        print(f"{PROG}: warning: do not take the labels at face value: {trust}", file=sys.stderr)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.summary.statuses.items())) or "no records"
    print(
        f"{PROG}: {shown(result.path)} ({result.n_records} files: known content {result.summary.known}; {counts}; "
        f"{result.bytes / 2**20:.1f} MiB)",
        file=sys.stderr,
    )
    return 0 if result.n_records else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top_n < 0:
        parser.error("--top-n must be >= 0")
    from deepdetect.utils.io import OutputPathError
    from deepdetect.utils.terminal import cli_logging

    cli_logging(logging.WARNING)
    return run_command(PROG, lambda: _run(args), (OutputPathError,))


if __name__ == "__main__":
    sys.exit(main())
