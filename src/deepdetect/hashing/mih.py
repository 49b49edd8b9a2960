"""Exact Hamming range search by multi-index hashing, in numpy.

The 256 bits of each hash are cut into `m` disjoint chunks (each inside one 64-bit word), and every chunk gets a
table: the row ids sorted by the chunk's value, with an offset per value, so a bucket is one slice. A query within
distance `D` of a stored hash must come close to it on at least one chunk, by the pigeonhole principle: if chunk
`j` is probed with every key within `t_j` bits of the query's chunk and `sum(t_j + 1) >= D + 1`, then a stored
hash missed by every probe differs in at least `t_j + 1` bits on every chunk, so in at least `D + 1` bits in all.
Thresholds are shared out as evenly as that sum allows (a chunk may get `t_j = -1`: not probed), wider chunks
first. Each candidate's full distance is then computed with a popcount, so the answer is exactly brute force's,
for any `D`.

Two layouts: 16 chunks of 16 bits (`t = 1` each at `D = 31`: 17 probes per chunk), or 12 chunks of 21-22 bits
(`t = 2` on 8 chunks, `t = 1` on 4: about 1,950 probes and N / 1,400 candidates per query), which pays from about
a million hashes on. Queries are answered in batches: every step is one numpy call over all the batch's probes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import combinations, pairwise
from math import comb

import numpy as np

# hashes from which the 12-chunk layout is used: at 1M it answered 4x faster than 16 x 16 bits; at 100k about as
# fast, for 10x the build time and memory (its offset tables have 4M entries per chunk)
WIDE_FROM = 1 << 19
LAYOUTS = {16: (16, 16, 16, 16), 12: (22, 21, 21)}  # chunks in all -> chunk widths within each 64-bit word
BATCH = 512  # queries per numpy pass: bounds the candidate arrays to a few tens of MB
THREADS_FROM = 32  # queries from which a call spreads its chunks over threads (below, starting them costs more)


@lru_cache(maxsize=64)
def flip_masks(width: int, radius: int) -> np.ndarray:
    """Every `width`-bit mask with at most `radius` bits set (the XOR patterns probed around a key)."""
    out = [0]
    for k in range(1, radius + 1):
        out += [sum(1 << i for i in c) for c in combinations(range(width), k)]
    masks = np.asarray(out, dtype=np.int64)
    masks.setflags(write=False)
    return masks


def thresholds(widths: list[int], max_distance: int) -> list[int]:
    """Per chunk, the probe radius `t_j` with `sum(t_j + 1) >= max_distance + 1`, spread evenly, wider chunks first."""
    budget = max_distance + 1
    base, extra = divmod(budget, len(widths))
    order = sorted(range(len(widths)), key=lambda j: -widths[j])
    out = [base - 1] * len(widths)
    for j in order[:extra]:
        out[j] += 1
    return out


class MultiIndexHash:
    """Exact range search over packed 256-bit hashes with one table per chunk (see the module docstring)."""

    name = "mih"

    def __init__(self, codes: np.ndarray, n_chunks: int | None = None, threads: int | None = None) -> None:
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != 32:
            raise ValueError(f"expected an (N, 32) uint8 array of packed hashes, got {codes.shape}")
        if len(codes) >= 2**32:
            raise ValueError("multi-index hashing keeps row ids in 32 bits: at most 4,294,967,295 hashes")
        n_chunks = n_chunks or (12 if len(codes) >= WIDE_FROM else 16)
        if n_chunks not in LAYOUTS:
            raise ValueError(f"n_chunks must be one of {sorted(LAYOUTS)}, got {n_chunks}")
        self.n = len(codes)
        self.threads = threads or os.cpu_count() or 1
        self.words = codes.view("<u8")  # (N, 4): any fixed bit order works, queries are cut the same way
        self.rows = codes.view("V32").ravel()  # one 32-byte item per hash: `np.take` on it gathers ~5x faster
        self.chunks: list[tuple[int, int, int]] = []  # (word, shift, width)
        for w in range(4):
            shift = 64
            for width in LAYOUTS[n_chunks]:
                shift -= width
                self.chunks.append((w, shift, width))
        self.widths = [c[2] for c in self.chunks]
        with ThreadPoolExecutor(self.threads) as pool:
            tables = list(pool.map(self._table, self.chunks))
        self.postings = [p for p, _ in tables]  # per chunk: row ids ordered by the chunk's value (uint32)
        self.offsets = [o for _, o in tables]  # per chunk: bucket v is postings[offsets[v]:offsets[v + 1]]

    def _table(self, chunk: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        w, shift, width = chunk
        keys = self._keys(self.words[:, w], shift, width)
        offsets = np.zeros((1 << width) + 1, dtype=np.uint32)
        np.cumsum(np.bincount(keys, minlength=1 << width), out=offsets[1:])
        return np.argsort(keys).astype(np.uint32), offsets

    @staticmethod
    def _keys(word: np.ndarray, shift: int, width: int) -> np.ndarray:
        return ((word >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.uint32)

    def memory_bytes(self) -> int:
        """Bytes held: the codes, the posting lists and the offset tables."""
        return int(self.words.nbytes + sum(p.nbytes for p in self.postings) + sum(o.nbytes for o in self.offsets))

    def search(self, queries: np.ndarray, max_distance: int = 31) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: (row ids int64, distances int32) within `max_distance`, sorted by distance then row."""
        q, rows, dist = self.pairs(queries, max_distance)
        order = np.lexsort((rows, dist, q))
        q, rows, dist = q[order], rows[order], dist[order]
        bounds = np.searchsorted(q, np.arange(len(queries) + 1))
        return [(rows[a:b], dist[a:b]) for a, b in pairwise(bounds)]

    def probes_per_query(self, max_distance: int) -> int:
        """How many buckets one query looks up at this distance."""
        return sum(
            sum(comb(width, k) for k in range(min(t, width) + 1))
            for width, t in zip(self.widths, thresholds(self.widths, max_distance), strict=True)
        )

    def pairs(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (query number, row id, distance) within `max_distance`, each pair once, ordered by query then row."""
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        if queries.ndim != 2 or queries.shape[1] != 32:
            raise ValueError(f"expected an (N, 32) uint8 array of packed query hashes, got {queries.shape}")
        # at large distances the probes outnumber the rows: a plain scan is then cheaper, and just as exact
        batch = self._scan if self.probes_per_query(max_distance) >= self.n else self._batch
        parts = [batch(queries[s : s + BATCH], max_distance, s) for s in range(0, len(queries), BATCH)]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
        q, rows, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
        return q, rows, dist

    def _scan(self, queries: np.ndarray, max_distance: int, first: int) -> tuple[np.ndarray, ...]:
        found_q, found_rows, found_d = [], [], []
        for i, qw in enumerate(queries.view("<u8")):
            dist = np.bitwise_count(self.words ^ qw).sum(axis=1, dtype=np.int32)
            rows = np.flatnonzero(dist <= max_distance)
            found_q.append(np.full(len(rows), first + i, np.int64))
            found_rows.append(rows.astype(np.int64))
            found_d.append(dist[rows])
        return np.concatenate(found_q), np.concatenate(found_rows), np.concatenate(found_d)

    def _batch(self, queries: np.ndarray, max_distance: int, first: int) -> tuple[np.ndarray, ...]:
        radii = thresholds(self.widths, max_distance)
        probed = [j for j, t in enumerate(radii) if t >= 0]
        if self.threads > 1 and len(probed) > 1 and len(queries) >= THREADS_FROM:
            with ThreadPoolExecutor(min(self.threads, len(probed))) as pool:  # numpy releases the GIL in each step
                found = list(pool.map(lambda j: self._chunk(j, radii[j], queries, max_distance), probed))
        else:
            found = [self._chunk(j, radii[j], queries, max_distance) for j in probed]
        if not found:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
        q, rows, dist = (np.concatenate(parts) for parts in zip(*found, strict=True))
        rows = rows.astype(np.int64)
        # a stored hash close on several chunks was found several times: keep one of each (query, row)
        _, first_seen = np.unique(q * max(self.n, 1) + rows, return_index=True)
        return q[first_seen] + first, rows[first_seen], dist[first_seen]

    def _chunk(self, j: int, radius: int, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, ...]:
        """The candidates from chunk `j`'s table within `radius` of each query's chunk, kept if within the distance."""
        w, shift, width = self.chunks[j]
        qwords = queries.view("<u8")
        nq = len(qwords)
        masks = flip_masks(width, min(radius, width))
        probes = self._keys(qwords[:, w], shift, width).astype(np.int64)[:, None] ^ masks[None, :]  # (nq, P)
        offsets = self.offsets[j]
        start = offsets[probes].astype(np.int64).ravel()
        length = offsets[probes + 1].astype(np.int64).ravel() - start
        total = int(length.sum())
        # positions of every candidate in the postings: each bucket's start, then 0, 1, 2, ... within it
        skip = np.cumsum(length) - length
        rows = self.postings[j][np.repeat(start - skip, length) + np.arange(total)]
        qi = np.repeat(np.arange(nq), length.reshape(nq, -1).sum(axis=1))
        stored = np.take(self.rows, rows).view("<u8").reshape(-1, 4)
        query = np.take(queries.view("V32").ravel(), qi).view("<u8").reshape(-1, 4)
        dist = np.bitwise_count(stored ^ query).sum(axis=1, dtype=np.int32)
        keep = dist <= max_distance
        return qi[keep], rows[keep], dist[keep]
