"""Evidence in WARC files (warcio): a request and a response record for every exchange, SHA-256 digests.

One WARC file per case and run, under `<evidence>/<case>/`, created 0600 in a 0700 folder, gzip per record (so
a record's offset opens it directly). Records carry UTC timestamps (WARC/1.1, microseconds), the address the
connection went to, and `WARC-Block-Digest`/`WARC-Payload-Digest` as SHA-256 (warcio's writer digests with SHA-1
unless told otherwise, hence `Sha256WarcWriter`), plus `DeepDetect-Body-SHA256` (hex) that the store holds too.
With `hash_only`, a media response record keeps its HTTP headers and the body's SHA-256 but not the body
(`WARC-Truncated: unspecified`, `DeepDetect-Body-Omitted: hash-only`). `verify_evidence` re-hashes every kept
body and compares it with the record's digest and with the store.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from deepdetect.watch.fetch import Hop

BODY_HEADER = "DeepDetect-Body-SHA256"
OMITTED_HEADER = "DeepDetect-Body-Omitted"
READ_CHUNK = 1024 * 1024


class Sha256WarcWriter(WARCWriter):
    """warcio's WARC writer with SHA-256 block and payload digests."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


def sha256_label(hex_digest: str) -> str:
    """A WARC digest value (`sha256:` + base32) for a hex SHA-256."""
    return "sha256:" + base64.b32encode(bytes.fromhex(hex_digest)).decode("ascii")


@dataclass(frozen=True)
class EvidenceRef:
    """Where a response record is: the WARC file (relative to the evidence folder), record id and offset."""

    warc_file: str
    record_id: str
    offset: int


def safe_case_folder(case: str) -> str:
    """The case name as a folder name; raises ValueError for names that are not plain (letters, digits, ._-)."""
    if not case or len(case) > 100 or case.startswith(".") or any(not (c.isalnum() or c in "._-") for c in case):
        raise ValueError(f"case name {case!r}: use letters, digits, '.', '_' and '-' (at most 100)")
    return case


class EvidenceLog:
    """Per-run WARC files, one per case, appended to by many threads (one lock per file)."""

    def __init__(self, root: str | os.PathLike[str], run_id: str, hash_only: bool = False) -> None:
        self.root = Path(root)
        self.run_id = run_id
        self.hash_only = hash_only
        self._files: dict[str, tuple[IO[bytes], Sha256WarcWriter, threading.Lock, str]] = {}
        self._lock = threading.Lock()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def _file(self, case: str) -> tuple[IO[bytes], Sha256WarcWriter, threading.Lock, str]:
        with self._lock:
            if case not in self._files:
                folder = self.root / safe_case_folder(case)
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(self.root, 0o700)
                os.chmod(folder, 0o700)
                rel = f"{case}/{self.stamp}-{self.run_id[:12]}.warc.gz"
                fd = os.open(self.root / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                fh = os.fdopen(fd, "wb")
                self._files[case] = (fh, Sha256WarcWriter(fh, gzip=True, warc_version="1.1"), threading.Lock(), rel)
            return self._files[case]

    def write_exchange(self, case: str, hop: Hop, keep_body: bool = True) -> EvidenceRef | None:
        """Write the response and request records of one hop; returns where the response is (None: no response)."""
        if hop.http_status is None:
            return None
        fh, writer, lock, rel = self._file(case)
        keep = keep_body and hop.body_path is not None
        date = hop.started_at
        resp_headers = StatusAndHeaders(
            f"{hop.http_status} {hop.http_reason}".strip(), hop.response_headers, protocol=hop.http_version
        )
        warc_headers = {"WARC-Date": date, "WARC-Target-URI": hop.url}
        if hop.address:
            warc_headers["WARC-IP-Address"] = hop.address
        if hop.sha256:
            warc_headers[BODY_HEADER] = hop.sha256
        if hop.truncated:
            warc_headers["WARC-Truncated"] = hop.truncated_why
        if not keep:
            warc_headers["WARC-Truncated"] = "unspecified"
            warc_headers[OMITTED_HEADER] = "hash-only" if hop.body_path is not None else "no body"
        with lock:
            body: IO[bytes] = hop.body_path.open("rb") if keep and hop.body_path else BytesIO(b"")
            try:
                response = writer.create_warc_record(
                    hop.url,
                    "response",
                    payload=body,
                    length=hop.body_bytes if keep else 0,
                    warc_headers_dict=warc_headers,
                    http_headers=resp_headers,
                )
                offset = fh.tell()
                writer.write_record(response)
            finally:
                body.close()
            record_id = str(response.rec_headers.get_header("WARC-Record-ID"))
            target = urlsplit(hop.url)
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            req_headers = StatusAndHeaders(f"GET {path} HTTP/1.1", hop.request_headers, is_http_request=True)
            request = writer.create_warc_record(
                hop.url,
                "request",
                http_headers=req_headers,
                warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": record_id},
            )
            writer.write_record(request)
            fh.flush()
        return EvidenceRef(rel, record_id, offset)

    def close(self) -> None:
        """Flush, sync and close every file."""
        with self._lock:
            for fh, _w, lock, _rel in self._files.values():
                with lock:
                    fh.flush()
                    os.fsync(fh.fileno())
                    fh.close()
            self._files.clear()


@dataclass
class VerifyResult:
    """What `verify_evidence` found: counts and one line per problem."""

    checked: int = 0
    ok: int = 0
    problems: list[str] | None = None

    def __post_init__(self) -> None:
        self.problems = self.problems or []


def _scan(path: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Per response record id: the recomputed payload SHA-256, the recorded digests and whether the body was kept;
    plus the error that stopped the reading (a file cut short by a killed run keeps the records before the cut)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "response":
                    continue
                digest = hashlib.sha256()
                while chunk := record.raw_stream.read(READ_CHUNK):
                    digest.update(chunk)
                h = record.rec_headers
                out[str(h.get_header("WARC-Record-ID"))] = {
                    "payload_sha256": digest.hexdigest(),
                    "payload_digest": h.get_header("WARC-Payload-Digest"),
                    "body_sha256": h.get_header(BODY_HEADER),
                    "omitted": h.get_header(OMITTED_HEADER),
                }
    except Exception as exc:  # missing, truncated or corrupt: reported with the records that could not be found
        return out, f"{type(exc).__name__}: {exc}"
    return out, None


def verify_evidence(root: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> VerifyResult:
    """Re-hash the WARC records the store points at; every kept body must hash to the store's SHA-256."""
    result = VerifyResult()
    problems: list[str] = result.problems or []
    scans: dict[str, tuple[dict[str, dict[str, Any]], str | None]] = {}
    base = Path(root)
    for row in rows:
        result.checked += 1
        name = str(row["warc_file"])
        where = f"{row['table']} {row['id']}: {name} {row['record_id']}"
        if name not in scans:
            outside = Path(name).is_absolute() or ".." in Path(name).parts
            scans[name] = ({}, "evidence path outside the evidence folder") if outside else _scan(base / name)
        scan, error = scans[name]
        rec = scan.get(str(row["record_id"]))
        if rec is None:
            problems.append(f"{where}: record not found" + (f" (reading stopped: {error})" if error else ""))
        elif rec["omitted"]:
            if rec["body_sha256"] != row["sha256"]:
                problems.append(f"{where}: SHA-256 in the record header differs from the store")
            else:
                result.ok += 1
        elif rec["payload_sha256"] != row["sha256"]:
            problems.append(f"{where}: body hashes to {rec['payload_sha256']}, the store says {row['sha256']}")
        elif row["sha256"] and rec["payload_digest"] != sha256_label(row["sha256"]):
            problems.append(f"{where}: WARC-Payload-Digest does not match the body")
        else:
            result.ok += 1
    result.problems = problems
    return result


def iter_records(path: str | os.PathLike[str]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(type, target URI, WARC headers) of every record in a WARC file (for tests and inspection)."""
    with Path(path).open("rb") as fh:
        for record in ArchiveIterator(fh):
            headers = dict(record.rec_headers.headers)
            yield record.rec_type, str(record.rec_headers.get_header("WARC-Target-URI")), headers
