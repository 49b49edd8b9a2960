"""File names as text: round-trippable escapes for names that are not UTF-8, and bounded derived names."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

# Bytes kept from a source name inside a derived file name; the rest is replaced by a hash (NAME_MAX is 255).
NAME_STEM_BYTES = 60


def path_bytes(path: str | os.PathLike[str]) -> bytes:
    """The exact bytes of a path as the OS has them (undecodable bytes round-trip through surrogateescape)."""
    return os.fsencode(path)


def is_utf8_name(path: str | os.PathLike[str]) -> bool:
    """Whether the path's bytes are valid UTF-8 (so it can be written as text as is)."""
    try:
        path_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def printable_path(path: str | bytes | os.PathLike[str]) -> str:
    """Valid UTF-8 text for any path: bytes that are not UTF-8 appear as `\\xNN` escapes."""
    return printable_text(os.fspath(path) if not isinstance(path, bytes) else os.fsdecode(path))


def printable_text(text: str) -> str:
    """`text` as valid UTF-8: surrogate-escaped name bytes as `\\xNN`, any other lone surrogate as `\\uXXXX`."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def path_bytes_b64(path: str | os.PathLike[str]) -> str | None:
    """Base64 of the path's bytes when they are not valid UTF-8 (the exact name), else None."""
    if is_utf8_name(path):
        return None
    return base64.b64encode(path_bytes(path)).decode("ascii")


# Line separators other than "\n" that JSON leaves raw inside strings: escaped, so a name holding one stays on its line
# for every reader (including those that split on them, like str.splitlines).
_RAW_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(record: dict[str, Any]) -> str:
    """One JSON line; readable UTF-8 when possible, ASCII escapes when a value holds lone surrogates (a file name
    that is not UTF-8: its `\\udcXX` escapes round-trip exactly, and the line stays valid UTF-8); Unicode line
    separators (U+2028, U+2029, U+0085) always escaped."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, ensure_ascii=True)
    for raw, escaped in _RAW_SEPARATORS.items():
        text = text.replace(raw, escaped)
    return text + "\n"


def path_from_b64(text: str) -> str:
    """Inverse of `path_bytes_b64`: the path as a str (surrogateescape), usable with `open()`."""
    return os.fsdecode(base64.b64decode(text))


def bounded_name(stem: str, key: str | bytes, suffix: str, max_stem_bytes: int = NAME_STEM_BYTES) -> str:
    """`<stem, cut to max_stem_bytes UTF-8 bytes, non-UTF-8 bytes as _>.<hash of key><suffix>`: always short.

    The hash of `key` (e.g. the full source path) keeps names of different sources apart even when their stems
    were cut to the same prefix.
    """
    raw = key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(raw).hexdigest()[:12]
    text = path_bytes(stem).decode("utf-8", "replace").replace("\ufffd", "_")
    cut = text.encode("utf-8")[:max_stem_bytes].decode("utf-8", "ignore")
    safe = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in cut).strip(" .") or "file"
    return f"{safe}.{digest}{suffix}"
