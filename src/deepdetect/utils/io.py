"""File IO: atomic writes (temp file + rename) and opens that only ever read regular files."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def default_mode() -> int:
    """The mode a plain `open()` gives a new file (0o666 less the umask); mkstemp's 0o600 is too strict."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is renamed to `path`, on error removed.

    A reader never sees a half-written `path`, even if the process is killed mid-write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write text to `path` atomically (fsynced before the rename)."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


class NotRegularFileError(OSError):
    """Raised when a path names a FIFO, device, socket or folder where a regular file is needed."""


def file_type_name(mode: int) -> str:
    """A human name for the file type in an `st_mode` ("FIFO", "character device", ...)."""
    for test, name in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """`os.stat(path)` (symlinks followed) or NotRegularFileError: nothing but a regular file is ever opened."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFileError(f"not a regular file ({file_type_name(st.st_mode)}): {os.fsdecode(path)}")
    return st


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for binary reading without ever blocking (O_NONBLOCK: a FIFO cannot hang the open).

    The type is checked on the opened descriptor, so a file swapped for a FIFO after a `stat` is refused too.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"not a regular file ({file_type_name(mode)}): {os.fsdecode(path)}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text_bounded(path: str | os.PathLike[str], max_bytes: int) -> str:
    """A regular text file's content (UTF-8, undecodable bytes kept as surrogates); OSError when over `max_bytes`."""
    with open_regular(path) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(f"{os.fsdecode(path)} is larger than {max_bytes} bytes")
    return data.decode("utf-8", "surrogateescape")
