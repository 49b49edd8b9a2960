"""Prediction records to disk as they come: JSON lines or CSV, one `write` per record, under an exclusive lock.

The output file is locked (`flock`, exclusive) for the whole run, so a second predict aimed at the same file
refuses (`OutputBusyError`) instead of interleaving with the first. Each record is one complete line handed to the
OS in one `write` call, so a reader never sees half a record except, at most, a last line still lacking its
newline. JSON lines keep exact paths (names that are not UTF-8 as `\\udcXX` escapes, plus `path_bytes_b64`); CSV
cells are made spreadsheet-safe (see `deepdetect.utils.csvcells`).
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

CSV_COLUMNS = (
    "path",
    "sha256",
    "kind",
    "status",
    "score",
    "label",
    "threshold",
    "n_frames",
    "n_faces",
    "model_name",
    "model_version",
    "seconds",
    "error",
    "explanation",
    "faces",
    "path_bytes_b64",
)


class OutputBusyError(OSError):
    """Raised when another process holds the lock on the output file."""


def json_line(record: dict[str, Any]) -> str:
    """One JSON line; readable UTF-8 when possible, ASCII escapes when a value holds lone surrogates."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: `\\udcff` escapes round-trip exactly
        text = json.dumps(record, ensure_ascii=True)
    return text + "\n"


def csv_line(record: dict[str, Any]) -> str:
    """One CSV row (faces as a JSON cell), every text cell spreadsheet-safe and valid UTF-8."""
    row = {k: record.get(k) for k in CSV_COLUMNS}
    row["faces"] = json.dumps(record.get("faces", []))
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if row[k] is None else text_cell(row[k]) for k in CSV_COLUMNS])
    return buf.getvalue()


class RecordWriter:
    """Context manager writing one record per call to `.jsonl` or `.csv`, locked and flushed per record."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.format = "csv" if self.path.suffix.lower() == ".csv" else "jsonl"
        self._fd: int | None = None

    def __enter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            check_regular(self.path)
        # no O_TRUNC: the file is emptied only once the lock is ours, so a refused second run destroys nothing
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusyError(
                f"{self.path} is being written by another process (locked); choose another --output"
            ) from None
        os.ftruncate(fd, 0)
        self._fd = fd
        if self.format == "csv":
            buf = io.StringIO()
            csv.writer(buf).writerow(CSV_COLUMNS)
            self._write(buf.getvalue())
        return self

    def _write(self, text: str) -> None:
        assert self._fd is not None, "use RecordWriter as a context manager"
        data = text.encode("utf-8")
        while data:  # one call for a whole record in practice; the loop only covers a short write
            written = os.write(self._fd, data)
            data = data[written:]

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (one line, one write) to the file."""
        self._write(csv_line(record) if self.format == "csv" else json_line(record))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
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
