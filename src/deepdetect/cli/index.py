"""`deepdetect-index`: a known-content index of perceptual hashes (SQLite file): add, match, remove, export, import."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from deepdetect.cli._argparse import CommandError, command_parser, run_command
from deepdetect.utils.cliargs import DEDUP_BITS, HASH_FPS, PDQ_DISTANCE, fraction

EPILOG = """\
The index stores hashes, labels and metadata only, never media. It is one SQLite file: no server to start; many
readers and writers may use it at once (each write is one transaction).

commands:
  add INDEX PATH... --label L     hash files/folders (or read deepdetect-hash .jsonl records) and store them;
                                  ref = --ref, else the file's sha256; an existing ref is skipped (--replace)
  match INDEX PATH...             one JSON line per file: known_match (best match or null) and matches
                                  [{ref, label, kind, distance, via, query_share, indexed_share, query_ranges,
                                  indexed_ranges, is_match}]; shares are vPDQ's two percentages (as fractions)
  remove INDEX --ref R | --label L
  export INDEX FOLDER             pdq.txt (images), vpdq/*.txt (videos, ThreatExchange vPDQ format),
                                  faces.txt, items.csv
  import INDEX LIST...            an exported folder, a vPDQ .txt (one video; ref = file stem) or a PDQ list
                                  (hex[,quality[,ref[,label]]] per line)
  info INDEX [--verify]           counts (and a full integrity check)

matching: PDQ distance <= 31 of 256 bits; frames of quality < 50 ignored; a video matches a video when >= 80% of
its frames match (vPDQ defaults); an image or a frame matching an image matches. Rotations and flips of the query
are tried (dihedral hashes); --faces also compares face crops.

exit status: 0 done, 1 nothing could be read (match/add) or match's output could not be written (disk full: the
records before it are kept), 2 usage error or unusable index (corrupt, not an index)

examples:
  deepdetect-index add known.db reported/ --label ncii --source case-1234
  deepdetect-index match known.db uploads/ --output matches.jsonl
  deepdetect-index export known.db share/ && deepdetect-index import partner.db share/
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = command_parser(
        "deepdetect-index", "Find re-uploads of known content: an index of PDQ/vPDQ hashes with labels.", EPILOG
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def hashing_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--fps", type=HASH_FPS, default=1.0, help="video frames hashed per second (default: 1)")
        p.add_argument("--dedup", type=DEDUP_BITS, default=4, help="drop consecutive frames within this many bits")
        p.add_argument("--faces", action="store_true", help="also hash detected face crops (MTCNN)")
        p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="for face detection")

    add = sub.add_parser("add", help="hash files and store them with a label")
    add.add_argument("index")
    add.add_argument("paths", nargs="+", metavar="PATH", help="media files, folders, .txt lists or .jsonl records")
    add.add_argument("--label", required=True, help="e.g. ncii, csam, synthetic-ncii")
    add.add_argument("--ref", default=None, help="reference id (one file only; default: the file's sha256)")
    add.add_argument("--source", default=None, help="where the report came from (case id, programme)")
    add.add_argument("--replace", action="store_true", help="replace items whose ref is already present")
    hashing_options(add)

    match = sub.add_parser("match", help="match files against the index")
    match.add_argument("index")
    match.add_argument("paths", nargs="+", metavar="PATH", help="media files, folders, .txt lists or .jsonl records")
    match.add_argument("--output", default="-", help="JSON lines file or - for stdout (default)")
    match.add_argument("--engine", default="auto", choices=["auto", "brute", "flat", "mih", "faiss-mih", "hnsw"])
    match.add_argument("--max-distance", type=PDQ_DISTANCE, default=31, help="PDQ match distance (default: 31)")
    match.add_argument("--min-query-share", type=fraction(), default=0.8, help="video: share of query frames matched")
    match.add_argument("--min-indexed-share", type=fraction(), default=0.0, help="video: share of indexed frames")
    match.add_argument("--all", action="store_true", help="also list items below the video share thresholds")
    hashing_options(match)

    remove = sub.add_parser("remove", help="delete items by ref or label")
    remove.add_argument("index")
    remove.add_argument("--ref", action="append", default=[], help="a ref to remove (repeatable)")
    remove.add_argument("--label", default=None, help="remove every item with this label")

    export = sub.add_parser("export", help="write a shareable folder (ThreatExchange PDQ/vPDQ text)")
    export.add_argument("index")
    export.add_argument("folder")
    export.add_argument("--label", default=None, help="only items with this label")

    imp = sub.add_parser("import", help="read exported folders or PDQ/vPDQ text files")
    imp.add_argument("index")
    imp.add_argument("lists", nargs="+", metavar="LIST")
    imp.add_argument("--label", default=None, help="label for lists that carry none")
    imp.add_argument("--replace", action="store_true", help="replace items whose ref is already present")

    info = sub.add_parser("info", help="counts per label and kind")
    info.add_argument("index")
    info.add_argument("--verify", action="store_true", help="full integrity check of the file")
    return parser


def _detector(args: argparse.Namespace) -> Any:
    if not getattr(args, "faces", False):
        return None
    from deepdetect.faces.detect import FaceDetector

    return FaceDetector(device=args.device)


def _run(args: argparse.Namespace) -> int:
    from deepdetect.hashing import api
    from deepdetect.hashing.exchange import export_bundle, read_hash_list
    from deepdetect.hashing.index import HashIndex
    from deepdetect.hashing.match import Matcher
    from deepdetect.media import named_inputs
    from deepdetect.utils.io import check_outputs
    from deepdetect.utils.jsonlines import JsonLinesWriter
    from deepdetect.utils.terminal import shown

    if args.command == "add":
        with HashIndex(args.index, create=True) as index:
            records = api.records_for(args.paths, args.fps, args.dedup, _detector(args))
            added, skipped, failed = api.add_records(index, records, args.label, args.ref, args.source, args.replace)
        for rec in failed:
            path, why = shown(rec.get("path")), shown(rec.get("error"))
            print(f"  not added: {path}: {rec.get('status')} ({why})", file=sys.stderr)
        print(f"{shown(args.index)}: added {added}, already present {skipped}, not hashable {len(failed)}")
        return 0 if added or skipped or not failed else 1
    if args.command == "match":
        with HashIndex(args.index) as index:
            matcher = Matcher(
                index,
                args.engine,
                args.max_distance,
                min_query_share=args.min_query_share,
                min_indexed_share=args.min_indexed_share,
            )
            check_outputs({"--output": args.output}, [args.index, *named_inputs(args.paths)])
            records = api.records_for(args.paths, args.fps, args.dedup, _detector(args), dihedral=True)
            n_ok = n_matched = n = 0
            with JsonLinesWriter(args.output) as out:  # UTF-8 whatever the terminal's encoding
                for res in api.match_records(matcher, records, keep_all=args.all):
                    out.write(res)
                    n += 1
                    n_ok += res["status"] == "ok"
                    n_matched += res["known_match"] is not None
        print(
            f"deepdetect-index match: {n} files, {n_ok} hashed, {n - n_ok} not matched for their status "
            f"(see each record), {n_matched} matched known content",
            file=sys.stderr,
        )
        return 0 if n_ok else 1
    if args.command == "remove":
        if not args.ref and args.label is None:
            raise CommandError("give --ref and/or --label")
        with HashIndex(args.index) as index:
            print(f"{shown(args.index)}: removed {index.remove(args.ref, args.label)}")
        return 0
    if args.command == "export":
        with HashIndex(args.index) as index:
            print(f"{shown(args.folder)}: {export_bundle(index, args.folder, args.label)} items")
        return 0
    if args.command == "import":
        items = [it for lst in args.lists for it in read_hash_list(lst, args.label)]
        with HashIndex(args.index, create=True) as index:
            added, skipped = index.add(items, replace=args.replace)
        print(f"{shown(args.index)}: added {added}, already present {skipped}")
        return 0
    with HashIndex(args.index) as index:  # info
        if args.verify:
            index.verify()
        counts: dict[str, int] = {}
        for it in index.items(with_hashes=False):
            key = f"{it.label}/{it.kind}"
            counts[key] = counts.get(key, 0) + 1
        info = {"items": len(index), "hashes": index.n_hashes(), "by_label_kind": counts}
        print(json.dumps(info, indent=2))  # JSON escapes every control character in a label
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from deepdetect.hashing.exchange import HashListError
    from deepdetect.hashing.index import IndexFileError
    from deepdetect.utils.terminal import cli_logging

    cli_logging(logging.WARNING)
    errors = (IndexFileError, HashListError, ValueError, OSError)
    return run_command(f"deepdetect-index {args.command}", lambda: _run(args), errors)


if __name__ == "__main__":
    sys.exit(main())
