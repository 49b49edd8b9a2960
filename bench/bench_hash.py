"""Benchmark: PDQ lookups/s, memory and recall of the search engines at 10k-1M hashes; hashing speed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.hashing.search import make_searcher
from deepdetect.utils.devdata import dev_data_dir

N_TRUE = 1000  # planted "true" hashes, each queried at a random distance 0..31 (and some 32..48)


def _perturb(rng: np.random.Generator, rows: np.ndarray, distances: np.ndarray) -> np.ndarray:
    out = rows.copy()
    for r, d in zip(out, distances, strict=True):
        bits = np.unpackbits(r)
        bits[rng.choice(256, int(d), replace=False)] ^= 1
        r[:] = np.packbits(bits)
    return out


def search_scaling(sizes: list[int], n_queries: int, engines: list[str], max_hnsw: int) -> list[dict[str, Any]]:
    """Per size and engine: build seconds, lookups/s, memory, recall vs brute force at distance <= 31."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        true_ids = rng.choice(n, N_TRUE, replace=False)
        q_ids = true_ids[:n_queries]
        distances = rng.integers(0, 49, n_queries)  # about 1/3 beyond the threshold
        queries = _perturb(rng, codes[q_ids], distances)
        reference = None
        for engine in engines:
            if engine == "hnsw" and n > max_hnsw:
                continue
            start = time.perf_counter()
            searcher = make_searcher(engine, codes)
            build = time.perf_counter() - start
            start = time.perf_counter()
            hits = searcher.search(queries, 31)
            elapsed = time.perf_counter() - start
            found = [set(ids.tolist()) for ids, _ in hits]
            if reference is None:
                reference = found  # brute force comes first
            expected = sum(len(r) for r in reference)
            recall = sum(len(f & r) for f, r in zip(found, reference, strict=True)) / max(expected, 1)
            planted = sum(int(q) in f for q, f, d in zip(q_ids, found, distances, strict=True) if d <= 31)
            rows.append(
                {
                    "n_hashes": n,
                    "engine": engine,
                    "build_s": round(build, 3),
                    "lookups_per_s": round(n_queries / elapsed, 1),
                    "ms_per_lookup": round(1000 * elapsed / n_queries, 3),
                    "memory_mb": round(searcher.memory_bytes() / 2**20, 1),
                    "recall_vs_brute": round(recall, 4),
                    "planted_found": f"{planted}/{int((distances <= 31).sum())}",
                }
            )
            print(rows[-1], flush=True)
    return rows


def hashing_speed(quick: bool) -> dict[str, Any]:
    """Images hashed per second (dev photos) and video seconds hashed per second at 1 fps (dev videos)."""
    from deepdetect.faces.media import load_image, video_info
    from deepdetect.hashing.pdq import hash_rgb
    from deepdetect.hashing.video import hash_video

    root = dev_data_dir()
    if root is None:
        return {"skipped": "development data not found"}
    photos = sorted((root / "gan-faces" / "real").glob("*.jpg"))[: 50 if quick else 300]
    big = sorted((root / "photos").glob("*.jpg"))[: 10 if quick else 68]
    out: dict[str, Any] = {}
    for name, files in (("images_300px", photos), ("photos_330_4352px", big)):
        start = time.perf_counter()
        decode = 0.0
        for f in files:
            t = time.perf_counter()
            img = load_image(f)
            decode += time.perf_counter() - t
            hash_rgb(img)
        total = time.perf_counter() - start
        out[name] = {
            "files": len(files),
            "images_per_s": round(len(files) / total, 1),
            "hash_only_images_per_s": round(len(files) / (total - decode), 1),
        }
    videos = sorted((root / "videos").glob("*.mp4"))[: 3 if quick else 13]
    seconds = sum(video_info(v).duration_s for v in videos)
    start = time.perf_counter()
    for v in videos:
        hash_video(v, fps=1.0)
    total = time.perf_counter() - start
    out["videos_1fps"] = {
        "files": len(videos),
        "video_seconds": round(seconds, 1),
        "video_seconds_per_s": round(seconds / total, 1),
    }
    return out


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    return {
        "threshold": 31,
        "queries": 200,
        "note": "random 256-bit hashes plus planted true ones queried at distance 0..48; recall_vs_brute = share "
        "of brute force's hits (distance <= 31) that the engine returns; memory = packed codes (brute) or the "
        "serialised FAISS index",
        "search": search_scaling(
            sizes, 200, ["brute", "flat", "mih", "hnsw"], max_hnsw=100_000 if quick else 1_000_000
        ),
        "hashing": hashing_speed(quick),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(Path("bench/results"), quick=True), indent=2))
