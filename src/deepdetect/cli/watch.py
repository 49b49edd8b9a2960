"""`deepdetect-watch`: watch reported URLs, keep evidence in WARC files, verify removal (add, check, report, verify,
run)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from deepdetect.cli._argparse import command_parser, run_command

EPILOG = """\
STORE is a SQLite file (created by `add`), or a postgresql://user@host/db URL for a team. Evidence (WARC files,
one per case and run, mode 0600) goes to --evidence, by default STORE.evidence/ beside a SQLite store.

commands:
  add URLS.csv --store S [--case C]     a `url` column (optional `note`, `reported_at`), normalised and
                                        de-duplicated; rows that cannot be watched are listed and skipped
  check --store S [--due]               fetch every URL (or those due), keep evidence, find and score media,
                                        record live | removed | changed | unreachable | blocked
  report --store S --format csv|html -o FILE [--case C]
  verify --store S                      re-hash the WARC records against the SHA-256s in the store
  run --store S --every 15m             check what is due, again and again (SIGTERM/SIGINT: finish and stop)

Fetching refuses loopback, private, link-local, multicast and reserved addresses, on the first request and every
redirect hop (--allow-host HOST|ADDRESS|NETWORK for a lab), ignores proxy settings in the environment, and caps
time, size, redirects and content types.

exit status: 0 done, 1 verify found problems (or nothing could be added), 2 usage error or unusable store/input
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    from deepdetect.watch.fetch import FetchLimits

    lim = FetchLimits()
    parser = command_parser("deepdetect-watch", "Watch reported URLs, keep evidence, verify removal.", EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def store_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", required=True, help="SQLite file or postgresql:// URL")

    def check_options(p: argparse.ArgumentParser) -> None:
        store_arg(p)
        p.add_argument("--case", default=None, help="only this case's URLs")
        p.add_argument("--evidence", default=None, help="folder for WARC files (default: STORE.evidence)")
        p.add_argument("--model", default=None, help="detector (.onnx or run folder) to score media with")
        p.add_argument("--index", default=None, help="known-content index to match media against")
        p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        p.add_argument(
            "--allow-host", action="append", default=[], metavar="HOST", help="exempt from the address policy"
        )
        p.add_argument("--hash-only", action="store_true", help="keep no media bodies, only hashes and scores")
        p.add_argument("--yt-dlp", action="store_true", help="use yt-dlp extractors on pages without embedded media")
        p.add_argument("--workers", type=int, default=8, help="URLs checked at once (default: 8)")
        p.add_argument("--per-host", type=int, default=4, help="requests at once per host (default: 4)")
        p.add_argument("--host-rate", type=float, default=5.0, help="requests per second per host, 0: no limit")
        p.add_argument("--timeout", type=float, default=lim.total_timeout, help="seconds per response, in all")
        p.add_argument("--max-page-mb", type=float, default=lim.max_page_bytes / 2**20)
        p.add_argument("--max-media-mb", type=float, default=lim.max_media_bytes / 2**20)
        p.add_argument("--max-redirects", type=int, default=lim.max_redirects)

    add = sub.add_parser("add", help="add reported URLs from a CSV file")
    add.add_argument("csv", metavar="URLS.csv")
    store_arg(add)
    add.add_argument("--case", default="default", help="case name (letters, digits, . _ -)")
    add.add_argument("--by", default=None, help="who reports them (default: the login name)")

    check = sub.add_parser("check", help="check the URLs once")
    check_options(check)
    check.add_argument("--due", action="store_true", help="only URLs that are due")
    check.add_argument("--every", default="15m", help="when checked URLs come due again (default: 15m)")

    report = sub.add_parser("report", help="one row per URL for takedown requests")
    store_arg(report)
    report.add_argument("--format", required=True, choices=["csv", "html"])
    report.add_argument("-o", "--output", required=True)
    report.add_argument("--case", default=None)

    verify = sub.add_parser("verify", help="re-hash the WARC evidence against the store")
    store_arg(verify)
    verify.add_argument("--evidence", default=None, help="folder of the WARC files (default: STORE.evidence)")

    run = sub.add_parser("run", help="check what is due, every period, until stopped")
    check_options(run)
    run.add_argument("--every", required=True, help="period, e.g. 15m, 1h")
    return parser


def _options(args: argparse.Namespace) -> Any:
    from deepdetect.watch.api import CheckOptions
    from deepdetect.watch.fetch import FetchLimits

    if args.workers < 1 or args.timeout <= 0 or args.max_redirects < 0:
        raise ValueError("--workers and --timeout must be positive, --max-redirects >= 0")
    limits = FetchLimits(
        total_timeout=args.timeout,
        read_timeout=min(FetchLimits().read_timeout, args.timeout),
        max_page_bytes=int(args.max_page_mb * 2**20),
        max_media_bytes=int(args.max_media_mb * 2**20),
        max_redirects=args.max_redirects,
    )
    return CheckOptions(
        evidence_dir=args.evidence,
        model=args.model,
        index=args.index,
        device=args.device,
        allow_hosts=tuple(args.allow_host),
        hash_only=args.hash_only,
        platform_extractor=args.yt_dlp,
        workers=args.workers,
        per_host=args.per_host,
        host_rate=args.host_rate,
        limits=limits,
    )


def _counts(counts: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing due"


def _run(args: argparse.Namespace) -> int:
    from deepdetect.utils.terminal import shown
    from deepdetect.watch import api
    from deepdetect.watch.report import write_report
    from deepdetect.watch.schedule import parse_duration

    if args.command == "add":
        intake, added, present = api.add_csv(args.store, args.csv, args.case, args.by)
        for line in intake.refused:
            print(f"  refused: {shown(line)}", file=sys.stderr)
        print(
            f"{shown(args.store)}: case {shown(args.case)}: added {added}, already present {present}, "
            f"duplicates in the file {intake.duplicates}, refused {len(intake.refused)}"
        )
        return 0 if added or present or not intake.refused else 1
    if args.command == "check":
        counts = api.check_store(args.store, _options(args), args.due, args.case, parse_duration(args.every))
        print(f"deepdetect-watch check: {sum(counts.values())} URLs: {_counts(counts)}")
        return 0
    if args.command == "report":
        from deepdetect.watch.store import Store

        with Store(args.store) as store:
            n = write_report(store, args.format, args.output, args.case)
        print(f"{shown(args.output)}: {n} URLs")
        return 0
    if args.command == "verify":
        res = api.verify_store(args.store, args.evidence)
        for line in res.problems or []:
            print(f"  {shown(line)}", file=sys.stderr)
        print(f"deepdetect-watch verify: {res.checked} records, {res.ok} ok, {len(res.problems or [])} problems")
        return 0 if not res.problems else 1
    every = parse_duration(args.every)  # run
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    passes = api.run_store(
        args.store, _options(args), every, stop, args.case, on_pass=lambda c: print(f"pass: {_counts(c)}", flush=True)
    )
    print(f"deepdetect-watch run: stopped after {passes} passes")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from deepdetect.hashing.index import IndexFileError
    from deepdetect.inference.predictor import ModelLoadError
    from deepdetect.utils.terminal import cli_logging
    from deepdetect.watch.intake import IntakeError
    from deepdetect.watch.store import StoreError

    cli_logging(logging.WARNING)
    errors = (StoreError, IntakeError, ModelLoadError, IndexFileError, ValueError, OSError)
    return run_command(f"deepdetect-watch {args.command}", lambda: _run(args), errors)


if __name__ == "__main__":
    sys.exit(main())
