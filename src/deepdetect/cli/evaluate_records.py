"""`deepdetect-evaluate-records`: measure predict's records against known labels (per family and overall)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from deepdetect.cli._argparse import CommandError, command_parser, run_command

PROG = "deepdetect-evaluate-records"

EPILOG = """\
labels: --labels CSV with a `file` (or `path`) column relative to --labels-root (default: the CSV's folder), a
`label` column (real or fake) and optional `group` (files that must be resampled together: a real video and the fakes
made from it) and `family` columns; the families folder's pairs.csv reads as it is. --real DIR / --fake DIR label
every file under DIR (family = DIR's name). Records are matched to labels by resolved absolute path; records with
no label are counted and left out.

figures: per family, its fakes against its own reals and against every real (AUC; 95% intervals resample whole
groups), the share of its fakes detected and of its reals flagged at the records' threshold (predict's stored one, or
--threshold/--fpr of that run). A file predict could not score (no face, an error) is neither detected nor flagged and
is left out of the AUCs; `not scored` counts them.

exit status: 0 figures written, 1 no labelled record could be scored, 2 usage error (a missing or unreadable file,
a bad label, an output that would overwrite an input)

examples:
  deepdetect-predict families/ photos/ --model EX/model.onnx --output fam.jsonl
  deepdetect-evaluate-records fam.jsonl --labels families/pairs.csv --real photos -o fam_figures.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    description = "How a model did on labelled files: AUC, detection and false flags from deepdetect-predict records."
    parser = command_parser(PROG, description, EPILOG)
    parser.add_argument("records", type=Path, help="predictions .jsonl or .csv written by deepdetect-predict")
    parser.add_argument("--labels", type=Path, action="append", default=[], help="labels CSV (repeatable)")
    parser.add_argument("--labels-root", type=Path, default=None, help="folder the CSV's paths are relative to")
    parser.add_argument("--real", type=Path, action="append", default=[], help="a folder of real files (repeatable)")
    parser.add_argument("--fake", type=Path, action="append", default=[], help="a folder of fake files (repeatable)")
    parser.add_argument(
        "--exclude-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="leave out the files of this label group, e.g. one the model trained on (repeatable)",
    )
    parser.add_argument("-o", "--output", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="also draw every file's score per family (PNG)")
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="group resamples for the intervals (0: none; default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from deepdetect.evaluation.labelled import (
        FolderLabel,
        LabelError,
        label_records,
        labels_from_csv,
        markdown_table,
        measure,
        plot_scores,
    )
    from deepdetect.triage.records import read_records
    from deepdetect.utils.io import check_outputs
    from deepdetect.utils.terminal import shown

    if not args.records.is_file():
        raise CommandError(f"records file not found: {args.records}")
    if not (args.labels or args.real or args.fake):
        raise CommandError("no labels: give --labels CSV, --real DIR or --fake DIR")
    for folder in [*args.real, *args.fake]:
        if not folder.is_dir():
            raise CommandError(f"not a folder: {folder}")
    check_outputs({"--output": args.output, "--plot": args.plot}, [args.records, *args.labels])
    try:
        labels = [lab for csv_path in args.labels for lab in labels_from_csv(csv_path, args.labels_root)]
    except LabelError as exc:
        raise CommandError(str(exc)) from None
    folders = [FolderLabel(str(f), "real") for f in args.real] + [FolderLabel(str(f), "fake") for f in args.fake]
    try:
        recordset = read_records(args.records)
    except OSError as exc:
        raise CommandError(f"cannot read {args.records}: {exc}") from exc
    for warning in recordset.warnings:
        print(f"{PROG}: warning: {shown(warning)}", file=sys.stderr)
    frame, unjoined = label_records(recordset.records, labels, folders, args.exclude_group)
    result = {**measure(frame, args.bootstrap, args.seed), **unjoined, "records": str(args.records)}
    if len(result["thresholds"]) > 1:
        print(f"{PROG}: warning: the records hold {len(result['thresholds'])} thresholds", file=sys.stderr)
    print(markdown_table(result))
    print(
        f"{PROG}: {len(frame)} labelled records ({frame['score'].notna().sum()} scored); "
        f"{unjoined['unlabelled_records']} records without a label, {unjoined['labelled_without_record']} labelled "
        f"files without a record, {unjoined['repeated_records']} repeated records, {unjoined['excluded_records']} "
        "left out by --exclude-group",
        file=sys.stderr,
    )
    if args.output is not None:
        try:
            args.output.write_text(json.dumps(result, indent=2) + "\n")
        except OSError as exc:
            raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if args.plot is not None:
        try:
            plot_scores(frame, result, args.plot)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot write {args.plot}: {exc}") from None
    return 0 if frame["score"].notna().any() else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.bootstrap < 0:
        parser.error("--bootstrap must be >= 0")
    from deepdetect.utils.io import OutputPathError
    from deepdetect.utils.terminal import cli_logging

    cli_logging(logging.WARNING)
    return run_command(PROG, lambda: _run(args), (OutputPathError,))


if __name__ == "__main__":
    sys.exit(main())
