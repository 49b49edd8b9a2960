"""Range search over packed 256-bit hashes: every stored hash within a Hamming distance of each query.

One interface, several engines (`make_searcher(name, codes)`):
- `brute`: numpy XOR + popcount over all rows; exact, no build cost, fine up to ~10^5 hashes.
- `flat`: FAISS `IndexBinaryFlat`; exact, SIMD popcount.
- `mih`: multi-index hashing in numpy (`deepdetect.hashing.mih`): one table per chunk of the hash, probed around
  the query's chunk so that the pigeonhole principle guarantees every match is a candidate, then an exact popcount.
  Exact at every distance; sub-linear, the fastest from about 10^5 hashes on (bench/bench_hash.py).
- `faiss-mih`: FAISS `IndexBinaryMultiHash`, 16 tables of 16 bits probed with 1 bit flipped; exact at distance
  <= 31 by the same pigeonhole argument. Kept for comparison: slower than `mih` and `flat` here.
- `hnsw`: FAISS `IndexBinaryHNSW` k-NN then a distance filter; approximate (recall measured in bench/bench_hash.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from deepdetect.hashing.mih import MultiIndexHash
from deepdetect.hashing.pdq import HASH_BYTES, MATCH_DISTANCE

ENGINES = ("brute", "flat", "mih", "faiss-mih", "hnsw")
DEFAULT_ENGINE_CUTOFF = 20_000  # `auto`: brute force below this many hashes, `mih` above (bench_hash.py)

Hits = list[tuple[np.ndarray, np.ndarray]]  # per query: (row ids int64, distances int32), sorted by distance


class Searcher(Protocol):
    """Finds, for each query hash, the stored rows within `max_distance` bits."""

    name: str

    def search(self, queries: np.ndarray, max_distance: int = MATCH_DISTANCE) -> Hits: ...

    def memory_bytes(self) -> int: ...


def _check(codes: np.ndarray) -> np.ndarray:
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2 or codes.shape[1] != HASH_BYTES:
        raise ValueError(f"expected an (N, {HASH_BYTES}) uint8 array of packed hashes, got {codes.shape}")
    return codes


def _sorted(ids: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((ids, dist))
    return ids[order].astype(np.int64), dist[order].astype(np.int32)


class BruteForce:
    """Exact search with numpy: XOR against every row, popcount, threshold."""

    name = "brute"

    def __init__(self, codes: np.ndarray, chunk: int = 262_144) -> None:
        self.words = _check(codes).view(">u8")  # (N, 4) 64-bit words
        self.chunk = chunk

    def distances(self, query: np.ndarray) -> np.ndarray:
        """Hamming distance of one packed query to every stored row."""
        q = _check(query.reshape(1, -1)).view(">u8")
        return np.bitwise_count(self.words ^ q).sum(axis=1, dtype=np.int32)

    def search(self, queries: np.ndarray, max_distance: int = MATCH_DISTANCE) -> Hits:
        out: Hits = []
        for q in _check(queries).view(">u8"):
            ids_parts, dist_parts = [], []
            for start in range(0, len(self.words), self.chunk):
                d = np.bitwise_count(self.words[start : start + self.chunk] ^ q).sum(axis=1, dtype=np.int32)
                hit = np.flatnonzero(d <= max_distance)
                ids_parts.append(hit + start)
                dist_parts.append(d[hit])
            ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int64)
            dist = np.concatenate(dist_parts) if dist_parts else np.zeros(0, np.int32)
            out.append(_sorted(ids, dist))
        return out

    def memory_bytes(self) -> int:
        return int(self.words.nbytes)


def _split_range_result(lims: np.ndarray, dist: np.ndarray, ids: np.ndarray) -> Hits:
    return [_sorted(ids[lims[i] : lims[i + 1]], dist[lims[i] : lims[i + 1]]) for i in range(len(lims) - 1)]


class FaissSearcher:
    """FAISS binary index (`flat`, `faiss-mih` or `hnsw`); see the module docstring for exactness."""

    def __init__(self, codes: np.ndarray, name: str = "flat", hnsw_neighbors: int = 32, hnsw_k: int = 64) -> None:
        import faiss

        codes = _check(codes)
        bits = HASH_BYTES * 8
        self.name = name
        self.hnsw_k = hnsw_k
        self.index: Any
        if name == "flat":
            self.index = faiss.IndexBinaryFlat(bits)
        elif name == "faiss-mih":
            self.index = faiss.IndexBinaryMultiHash(bits, 16, 16)
            self.index.nflip = 1
        elif name == "hnsw":
            self.index = faiss.IndexBinaryHNSW(bits, hnsw_neighbors)
            self.index.hnsw.efSearch = max(128, hnsw_k)
        else:
            raise ValueError(f"unknown FAISS engine {name!r}; expected flat, faiss-mih or hnsw")
        if len(codes):
            self.index.add(codes)
        self.n = len(codes)

    def search(self, queries: np.ndarray, max_distance: int = MATCH_DISTANCE) -> Hits:
        queries = _check(queries)
        if self.n == 0 or len(queries) == 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.int32)) for _ in range(len(queries))]
        if self.name == "faiss-mih" and max_distance > 31:
            raise ValueError("the faiss-mih engine is exact only up to distance 31; use mih, flat or brute")
        if self.name == "hnsw":
            k = min(self.hnsw_k, self.n)
            dist, ids = self.index.search(queries, k)
            out: Hits = []
            for d, i in zip(dist, ids, strict=True):
                keep = (i >= 0) & (d <= max_distance)
                out.append(_sorted(i[keep], d[keep]))
            return out
        # FAISS binary range search keeps distances strictly below the radius
        lims, dist, ids = self.index.range_search(queries, max_distance + 1)
        return _split_range_result(lims, dist, ids)

    def memory_bytes(self) -> int:
        import faiss

        # serialised size: the codes plus the index structure (hash tables, graph links)
        return int(faiss.serialize_index_binary(self.index).nbytes)


def make_searcher(name: str, codes: np.ndarray) -> Searcher:
    """A searcher by engine name (one of `ENGINES`, or `auto` by size); refuses unknown names."""
    if name == "auto":
        name = "brute" if len(codes) < DEFAULT_ENGINE_CUTOFF else "mih"
    if name == "brute":
        return BruteForce(codes)
    if name == "mih":
        return MultiIndexHash(_check(codes))
    if name in ("flat", "faiss-mih", "hnsw"):
        return FaissSearcher(codes, name)
    raise ValueError(f"unknown search engine {name!r}; expected one of {(*ENGINES, 'auto')}")
