"""Prediction records to disk as they come: JSON lines or CSV, flushed after every record."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

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
)


class RecordWriter:
    """Context manager writing one record per call to `.jsonl` or `.csv` (faces as a JSON cell), flushed per record."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.format = "csv" if self.path.suffix.lower() == ".csv" else "jsonl"
        self._fh: IO[str] | None = None
        self._csv: Any = None

    def __enter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8", newline="")
        if self.format == "csv":
            self._csv = csv.DictWriter(self._fh, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
            self._csv.writeheader()
        return self

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS."""
        assert self._fh is not None, "use RecordWriter as a context manager"
        if self.format == "csv":
            row = {k: record.get(k) for k in CSV_COLUMNS}
            row["faces"] = json.dumps(record.get("faces", []))
            self._csv.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def ensure_writable(path: str | os.PathLike[str]) -> None:
    """Raise OSError now, before any work, if `path` cannot be created or written."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output path is a folder: {path}")
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8"):
        pass
    if not existed:
        path.unlink()
