"""Prediction records to disk as they come: JSON lines or CSV, one `write` per record, under an exclusive lock.

The output file is locked (`flock`, exclusive) for the whole run, so a second predict aimed at the same file
refuses (`OutputBusyError`) instead of interleaving with the first. What happens to an existing, non-empty output is
the caller's choice (`existing`): refuse (`OutputExistsError`), overwrite, or resume — keep its complete records
(readable as `writer.existing`), drop a half-written last line, and append after them. Each record is one complete
line handed to the OS in one `write` call, so a reader never sees half a record except, at most, a last line still
lacking its newline. JSON lines keep exact paths (names that are not UTF-8 as `\\udcXX` escapes, plus
`path_bytes_b64`); CSV cells are made spreadsheet-safe (see `deepdetect.utils.csvcells`).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from deepdetect.utils.csvcells import text_cell
from deepdetect.utils.io import check_regular
from deepdetect.utils.jsonlines import OutputWriteError
from deepdetect.utils.paths import json_line

CSV_COLUMNS = (
    "path",
    "abs_path",
    "name",
    "size_bytes",
    "sha256",
    "kind",
    "status",
    "score",
    "label",
    "threshold",
    "operating_point",
    "aggregate",
    "score_interval",
    "n_frames",
    "n_faces",
    "model_name",
    "model_version",
    "seconds",
    "scanned_at",
    "run_id",
    "tool_version",
    "error",
    "explanation",
    "faces",
    "path_bytes_b64",
    "pdq",  # with --index (known-content matching): the image's PDQ hash, or a video's per-frame hashes
    "known_match",  # with --index: the best matching indexed item, or null
    "experts",  # a fused model: the file's mean contribution of each expert to its fused logit
    "driven_by",  # a fused model: the expert with the largest mean contribution
)
JSON_CELLS = ("faces", "operating_point", "score_interval", "pdq", "known_match", "experts")  # CSV cells holding JSON
EXISTING_MODES = ("refuse", "overwrite", "resume")


class OutputBusyError(OSError):
    """Raised when another process holds the lock on the output file."""


class OutputExistsError(OSError):
    """Raised when the output already holds records and neither overwriting nor resuming was asked for."""


class OutputFormatError(ValueError):
    """Raised when an output to resume is not a predict output of this format (a bad line, other CSV columns)."""


def _jsonl_lines(data: bytes, keepends: bool = False) -> list[str]:
    """The lines of a JSON-lines file, split on "\n" only (never on U+2028, U+0085, form feeds or lone CRs)."""
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    last = lines.pop()  # "" after a final newline, else an unterminated last line
    if keepends:
        return [line + "\n" for line in lines] + ([last] if last else [])
    return [line.removesuffix("\r") for line in [*lines, *([last] if last else [])]]


def csv_line(record: dict[str, Any]) -> str:
    """One CSV row (faces as a JSON cell), every text cell spreadsheet-safe and valid UTF-8."""
    row = {k: record.get(k) for k in CSV_COLUMNS}
    for key in JSON_CELLS:
        row[key] = json.dumps(record.get(key, [] if key == "faces" else None))
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if row[k] is None else text_cell(row[k]) for k in CSV_COLUMNS])
    return buf.getvalue()


def _parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    records = []
    for n, line in enumerate(_jsonl_lines(data), 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict):
            raise OutputFormatError(f"line {n} is not a predict record")
        records.append(rec)
    return records


def _csv_rows(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")))
    if rows and rows[0] != list(CSV_COLUMNS):
        raise OutputFormatError("its CSV columns are not this version's predict columns")
    if any(len(r) != len(CSV_COLUMNS) for r in rows[1:]):
        raise OutputFormatError("a CSV row has the wrong number of cells")
    return rows


def _csv_record(row: list[str]) -> dict[str, Any]:
    """A CSV row back as a record (text cells restored, JSON cells parsed, empty cells as None)."""
    from deepdetect.utils.csvcells import restore_cell

    rec: dict[str, Any] = {}
    for key, cell in zip(CSV_COLUMNS, row, strict=True):
        if key in JSON_CELLS:
            rec[key] = json.loads(cell) if cell else None
        else:
            rec[key] = restore_cell(cell) if cell else None
    return rec


def complete_records(data: bytes, fmt: str) -> tuple[int, list[dict[str, Any]]]:
    """(bytes of `data` holding complete records, those records): a half-written last line (no newline yet) is
    left out; raises OutputFormatError when the complete part is not a predict output."""
    cut = data.rfind(b"\n") + 1
    if fmt == "jsonl":
        return cut, _parse_jsonl(data[:cut])
    while True:  # CSV: a quoted cell may hold a newline, so back off to a cut that parses into whole rows
        try:
            rows = _csv_rows(data[:cut])
            return cut, [_csv_record(r) for r in rows[1:]]
        except (OutputFormatError, csv.Error, json.JSONDecodeError):
            if cut == 0:
                raise
            cut = data.rfind(b"\n", 0, cut - 1) + 1
            if cut == 0:
                raise OutputFormatError("no complete CSV header") from None


class RecordWriter:
    """Context manager writing one record per call to `.jsonl` or `.csv`, locked and flushed per record.

    `existing` says what to do with an output that already holds data: "refuse" (OutputExistsError),
    "overwrite" (start empty) or "resume" (keep complete records, in `self.existing`; append after them).
    """

    def __init__(self, path: str | os.PathLike[str], existing: str = "overwrite") -> None:
        if existing not in EXISTING_MODES:
            raise ValueError(f"existing must be one of {EXISTING_MODES}, got {existing!r}")
        self.path = Path(path)
        self.format = "csv" if self.path.suffix.lower() == ".csv" else "jsonl"
        self.mode = existing
        self.existing: list[dict[str, Any]] = []
        self.dropped_bytes = 0
        self._fd: int | None = None

    def __enter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            check_regular(self.path)
        if self.path.is_symlink():
            raise OSError(f"{self.path} is a symlink; records are never written through one")
        # no O_TRUNC: the file is emptied only once the lock is ours, so a refused second run destroys nothing;
        # O_NOFOLLOW: a symlink put in its place meanwhile is refused, not followed
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusyError(
                f"{self.path} is being written by another process (locked); choose another --output"
            ) from None
        try:
            size = os.fstat(fd).st_size
            if size and self.mode == "refuse":
                raise OutputExistsError(
                    f"{self.path} already holds results; pass --resume to continue it or --overwrite to replace it"
                )
            keep = 0
            if size and self.mode == "resume":
                chunks, got = [], 0
                while got < size:
                    chunk = os.pread(fd, min(size - got, 1 << 24), got)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
                data = b"".join(chunks)
                try:
                    keep, self.existing = complete_records(data, self.format)
                except (OutputFormatError, csv.Error, json.JSONDecodeError) as exc:
                    raise OutputFormatError(f"cannot resume {self.path}: {exc}") from None
                self.dropped_bytes = size - keep
            os.ftruncate(fd, keep)
            os.lseek(fd, keep, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if self.format == "csv" and keep == 0:
            buf = io.StringIO()
            csv.writer(buf).writerow(CSV_COLUMNS)
            self._write(buf.getvalue())
        return self

    def _write(self, text: str) -> None:
        assert self._fd is not None, "use RecordWriter as a context manager"
        data = text.encode("utf-8")
        try:
            while data:  # one call for a whole record in practice; the loop only covers a short write
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError as exc:
            raise OutputWriteError(self.path, exc) from exc

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (one line, one write) to the file."""
        self._write(csv_line(record) if self.format == "csv" else json_line(record))

    def set_field(self, key: str, values: dict[tuple[str, str], Any]) -> None:
        """Set `key` on the records whose (run_id, abs_path) is in `values` (e.g. explanation paths known only at
        the end of a run), rewriting the file atomically (temp file + rename); other records stay byte-identical."""
        from deepdetect.utils.io import atomic_path

        assert self._fd is not None, "use RecordWriter as a context manager"
        os.fsync(self._fd)
        data = self.path.read_bytes()
        if self.format == "jsonl":
            out = []
            for line in _jsonl_lines(data, keepends=True):
                rec = json.loads(line)
                hit = (rec.get("run_id"), rec.get("abs_path"))
                out.append(json_line({**rec, key: values[hit]}) if hit in values else line)
            text = "".join(out)
        else:
            rows = _csv_rows(data)
            col = CSV_COLUMNS.index(key)
            for row in rows[1:]:
                rec = _csv_record(row)
                hit = (rec["run_id"], rec["abs_path"])
                if hit in values:
                    row[col] = str(text_cell(values[hit]))
            buf = io.StringIO()
            csv.writer(buf).writerows(rows)
            text = buf.getvalue()
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(text.encode("utf-8", "surrogateescape"))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as err:  # a full disk can fail the flush too: say so once, never over another error
                if exc is None:
                    raise OutputWriteError(self.path, err) from err
            finally:
                os.close(self._fd)  # also releases the lock
                self._fd = None


def ensure_writable(path: str | os.PathLike[str]) -> None:
    """Raise OSError now, before any work, if `path` cannot be created or written."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output path is a folder: {path}")
    if path.exists():
        check_regular(path)  # a FIFO or device as output would block or go nowhere
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8"):
        pass
    if not existed:
        path.unlink()
