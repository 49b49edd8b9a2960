"""File IO: atomic writes (temp file + rename), opens that only ever read regular files, output paths that destroy
nothing."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
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


def sha256_file(path: str | os.PathLike[str]) -> str | None:
    """Hex sha256 of a regular file's bytes, or None when it cannot be read (FIFOs and devices are never read)."""
    digest = hashlib.sha256()
    try:
        with open_regular(path) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def weights_version(path: str | os.PathLike[str]) -> str:
    """A model version derived from its weights file: the first 12 hex digits of its sha256."""
    digest = sha256_file(path)
    if digest is None:
        raise OSError(f"cannot read {path}")
    return digest[:12]


class OutputPathError(ValueError):
    """Raised when an output path is a symlink, names the same file as another output, or is one of the inputs."""


def _same_file_key(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(path)


def check_outputs(
    outputs: Mapping[str, str | os.PathLike[str] | None], inputs: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Refuse, before any work, an output that would destroy something: one that is a symlink (writing would follow
    it onto another file, or replace the link), two outputs naming one file, or an output that is one of `inputs`.

    `outputs` maps a name for the message (e.g. `--report`) to a path (None or "-": not written, skipped).
    """
    taken: dict[str, str] = {}
    given = {_same_file_key(p) for p in inputs}
    for flag, path in outputs.items():
        if path is None or os.fspath(path) == "-":
            continue
        name = os.fsdecode(path)
        if os.path.islink(path):
            raise OutputPathError(f"{flag} {name} is a symlink; name the file it points to, or another path")
        key = _same_file_key(path)
        if key in taken:
            raise OutputPathError(f"{flag} {name} is the same file as {taken[key]}; give each output its own path")
        if key in given:
            raise OutputPathError(f"{flag} {name} is one of the inputs; writing it would destroy that input")
        taken[key] = flag
