"""The known-content stage: a finished record's perceptual hashes (PDQ) and its best match in a known-content
index (deepdetect-index), as `pdq` and `known_match`."""

from __future__ import annotations

import os
from typing import Any

from deepdetect.hashing.api import annotate_prediction
from deepdetect.hashing.index import HashIndex
from deepdetect.hashing.match import Matcher


def open_index(path: str | os.PathLike[str]) -> Matcher:
    """A matcher over the known-content index at `path` (raises IndexFileError for a missing or bad index)."""
    return Matcher(HashIndex(path))


def match_known(rec: dict[str, Any], matcher: Matcher, hashes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add `pdq` and `known_match` to a record (both null for a file that was not read); `hashes`: the file's hash
    record from the decode stage (else the file is decoded again to hash it)."""
    return annotate_prediction(rec, matcher, hashed=hashes)
