"""The decode stage: refuse what is not a regular media file, sample its frames and hash its bytes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.hashing.records import hash_and_sample
from deepdetect.media import load_image, media_kind, read_video, reject_special_file
from deepdetect.utils.io import sha256_file


@dataclass
class Decoded:
    """One file's sampled frames as (index, RGB), its frame rate (0 for images or when unknown) and its sha256;
    with `hashes`, its perceptual-hash record for the known-content index, from the same decoding pass."""

    frames: list[tuple[int, np.ndarray]]
    fps: float
    sha256: str | None  # None when the bytes cannot be read
    hashes: dict[str, Any] | None = None  # as `deepdetect.hashing.records.hash_file(path, dihedral=True)` gives


def probe(path: Path) -> str:
    """The file's media kind ("image" or "video"); raises MediaError before any open of a FIFO or device."""
    reject_special_file(path)  # a FIFO or device would block or never end
    return media_kind(path)


def read_frames(path: Path, kind: str, frames: int) -> tuple[list[tuple[int, np.ndarray]], float]:
    """Sampled frames as (index, RGB) and the video's frame rate (0 for images or when unknown)."""
    if kind == "image":
        return [(0, load_image(path))], 0.0
    decoded, info = read_video(path, frames_per_video=frames)  # one open: frames and the rate for timestamps
    return decoded, info.fps


def decode(path: Path, kind: str, frames: int, sha256: str | None = None, with_hashes: bool = False) -> Decoded:
    """`frames` sampled frames of a `kind` file and its sha256 (`sha256` when the caller has it already); with
    `with_hashes` (predict --index), also its PDQ hashes, from the same decoding pass (a file is decoded once)."""
    if with_hashes:
        hashes, decoded, fps = hash_and_sample(path, kind, frames)
        digest = sha256 or sha256_file(path)
        hashes["sha256"] = digest
        return Decoded(decoded, fps, digest, hashes)
    decoded, fps = read_frames(path, kind, frames)
    return Decoded(decoded, fps, sha256 or sha256_file(path))
