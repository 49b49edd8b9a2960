"""PDQ hashes of RGB arrays: 256 bits packed as 32 bytes, hex as in ThreatExchange, Hamming distance, dihedral hashes.

Bit order follows Meta's reference implementation: the 64-character hex string is the 256-bit hash written most
significant word first, which is what `pdqhash`'s bit vector gives when packed big-endian (`np.packbits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HASH_BYTES = 32
HASH_HEX_LEN = 64
MATCH_DISTANCE = 31  # ThreatExchange's standard PDQ match threshold (of 256 bits)
MIN_QUALITY = 50  # below this PDQ quality a hash is too featureless to match on (ThreatExchange's default)
MIN_SIDE = 5  # smaller pictures are upscaled to this before hashing
# pdqhash.compute_dihedral order
DIHEDRAL = ("original", "rot90", "rot180", "rot270", "flip_v", "flip_h", "transpose", "anti_transpose")


@dataclass(frozen=True)
class PdqHash:
    """One PDQ hash (32 bytes) with its quality (0-100)."""

    bits: bytes
    quality: int

    @property
    def hex(self) -> str:
        return self.bits.hex()


def _prepare(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {arr.shape}")
    if min(arr.shape[:2]) < MIN_SIDE:  # tiny pictures: repeat pixels; the hash comes out featureless (quality ~0)
        reps = (-(-MIN_SIDE // arr.shape[0]), -(-MIN_SIDE // arr.shape[1]))
        arr = np.repeat(np.repeat(arr, reps[0], axis=0), reps[1], axis=1)
    return np.ascontiguousarray(arr[:, :, :3], dtype=np.uint8)


def _pack(vector: np.ndarray) -> bytes:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes()


def hash_rgb(rgb: np.ndarray) -> PdqHash:
    """PDQ hash and quality of an HxWx3 uint8 RGB array (greyscale HxW accepted)."""
    import pdqhash

    vector, quality = pdqhash.compute(_prepare(rgb))
    return PdqHash(_pack(vector), int(quality))


def hash_rgb_dihedral(rgb: np.ndarray) -> tuple[list[bytes], int]:
    """The 8 hashes of the image's rotations and flips (order `DIHEDRAL`) from one PDQ transform, and the quality."""
    import pdqhash

    vectors, quality = pdqhash.compute_dihedral(_prepare(rgb))
    return [_pack(v) for v in vectors], int(quality)


def from_hex(text: str) -> bytes:
    """32 bytes from a 64-character hex PDQ hash; raises ValueError otherwise."""
    text = text.strip().lower()
    if len(text) != HASH_HEX_LEN:
        raise ValueError(f"a PDQ hash is {HASH_HEX_LEN} hex characters, got {len(text)}: {text[:80]!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"not a hex PDQ hash: {text!r}") from None


def hamming(a: bytes, b: bytes) -> int:
    """Number of differing bits between two packed hashes of equal length."""
    if len(a) != len(b):
        raise ValueError(f"hash lengths differ: {len(a)} vs {len(b)} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def to_matrix(hashes: list[bytes]) -> np.ndarray:
    """Stack packed hashes into an (N, 32) uint8 array."""
    if not hashes:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    return np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), HASH_BYTES).copy()
