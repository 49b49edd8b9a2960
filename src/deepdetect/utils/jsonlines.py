"""Records to a JSON-lines output (a file, or `-` for stdout) one complete line at a time, and the one error a
write that fails mid-run raises (disk full, quota, I/O error): what was written before it stays, whole lines only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from types import TracebackType
from typing import Any

from deepdetect.utils.paths import json_line


class OutputWriteError(OSError):
    """Raised when a record cannot be written (the disk is full, a quota is reached, an I/O error). Its message is
    one line, "disk full ..." for ENOSPC and EDQUOT, with how many records were kept when the writer knows;
    `errno` is the cause's."""

    def __init__(self, path: str | os.PathLike[str], cause: OSError, kept: int | None = None) -> None:
        what = "disk full" if cause.errno in (errno.ENOSPC, errno.EDQUOT) else "cannot write"
        tail = "" if kept is None else f"; {kept} records before it kept"
        super().__init__(f"{what} while writing {os.fsdecode(path)} ({cause.strerror or cause}){tail}")
        self.errno = cause.errno
        self.kept = kept


class JsonLinesWriter:
    """Context manager writing one JSON line per record, UTF-8 whatever the terminal's encoding, each handed to the
    OS as it comes. A write to a file that fails cuts the file back to the records before it and raises
    OutputWriteError, so the file never ends in half a record."""

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self.output = output
        self.written = 0
        self._stdout = os.fspath(output) == "-"
        self._fd: int | None = None
        self._end = 0

    def open(self) -> JsonLinesWriter:
        """Create (or empty) the output file now, so that a path that cannot be written fails before any work."""
        if not self._stdout and self._fd is None:
            self._fd = os.open(self.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        return self

    def __enter__(self) -> JsonLinesWriter:
        return self.open()

    def _put(self, data: bytes) -> None:
        if self._fd is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        while data:  # one call for a whole record in practice; the loop covers a short write
            data = data[os.write(self._fd, data) :]

    def write(self, record: dict[str, Any]) -> None:
        """Append `record` as one line; raises OutputWriteError (a file cut back to whole records) on failure."""
        if not self._stdout and self._fd is None:
            raise RuntimeError("use JsonLinesWriter as a context manager")
        data = json_line(record).encode("utf-8")
        try:
            self._put(data)
        except OSError as exc:
            if self._fd is not None:
                with contextlib.suppress(OSError):  # else the half line stays: readers drop an unterminated line
                    os.ftruncate(self._fd, self._end)
            raise OutputWriteError(self.output, exc, kept=self.written) from exc
        self._end += len(data)
        self.written += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
