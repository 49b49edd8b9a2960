"""Benchmark: PDQ lookups/s, memory and recall of the search engines at 10k-10M hashes; hashing speed.

Search: random 256-bit hashes (generated here, never stored) plus queries planted at distance 0..48 of stored rows.
Every engine answers the same queries in one batch; `mih` and `flat` are timed alternately (A B A B ...) and the
speed-up is the median of the per-round ratios, so the machine's load affects both alike. At 10M hashes the process's
resident memory (RSS) is read after generating the hashes and after building the index.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.hashing.search import Searcher, make_searcher
from deepdetect.utils.devdata import dev_data_dir

N_QUERIES = 500
THRESHOLD = 31
ROUNDS = 3  # alternating timing rounds per engine
LIMITS = {"brute": 1_000_000, "faiss-mih": 1_000_000, "hnsw": 100_000}  # larger sizes skip these (too slow)
BRUTE_QUERIES = 100  # brute force is timed on the first 100 queries only


def rss_mb() -> float | None:
    """Resident memory of this process now (Linux), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def available_mb() -> float | None:
    """Memory the machine can still give (Linux MemAvailable), MB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _perturb(rng: np.random.Generator, rows: np.ndarray, distances: np.ndarray) -> np.ndarray:
    out = rows.copy()
    for r, d in zip(out, distances, strict=True):
        bits = np.unpackbits(r)
        bits[rng.choice(256, int(d), replace=False)] ^= 1
        r[:] = np.packbits(bits)
    return out


def _timed(searcher: Searcher, queries: np.ndarray) -> tuple[float, list[set[int]]]:
    start = time.perf_counter()
    hits = searcher.search(queries, THRESHOLD)
    return time.perf_counter() - start, [set(ids.tolist()) for ids, _ in hits]


def search_size(n: int, engines: list[str], seed: int = 0) -> list[dict[str, Any]]:
    """One index size: build s, lookups/s, memory, recall vs an exact reference, mih's speed-up over flat."""
    rng = np.random.default_rng(seed)
    rss_start = rss_mb()
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    rss_codes = rss_mb()
    q_ids = rng.choice(n, N_QUERIES, replace=False)
    distances = rng.integers(0, 49, N_QUERIES)  # about 1/3 beyond the threshold
    queries = _perturb(rng, codes[q_ids], distances)
    searchers: dict[str, Searcher] = {}
    rows: dict[str, dict[str, Any]] = {}
    for engine in engines:
        if n > LIMITS.get(engine, n):
            continue
        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        searchers[engine] = make_searcher(engine, codes)
        build = time.perf_counter() - start
        after = rss_mb()
        rows[engine] = {
            "n_hashes": n,
            "engine": engine,
            "build_s": round(build, 3),
            "memory_mb": round(searchers[engine].memory_bytes() / 2**20, 1),
            "rss_growth_mb": round(after - before, 1) if after is not None and before is not None else None,
        }
    # timing: brute once on a subset; the others on every query, alternately, ROUNDS times
    times: dict[str, list[float]] = {e: [] for e in searchers}
    found: dict[str, list[set[int]]] = {}
    for _ in range(ROUNDS):
        for engine, searcher in searchers.items():
            if engine == "brute":
                if not times[engine]:
                    t, found[engine] = _timed(searcher, queries[:BRUTE_QUERIES])
                    times[engine].append(t / BRUTE_QUERIES)
                continue
            if engine in ("hnsw", "faiss-mih") and times[engine]:
                continue  # one round is enough for the engines that are not compared
            t, found[engine] = _timed(searcher, queries)
            times[engine].append(t / N_QUERIES)
    # flat (FAISS's exhaustive scan) is the reference on every query; brute force checks flat on its subset
    for engine, row in rows.items():
        per_query = statistics.median(times[engine])
        got = found[engine]
        reference = found["brute" if engine == "flat" and "brute" in found else "flat"][: len(got)]
        got = got[: len(reference)]
        expected = sum(len(r) for r in reference)
        recall = sum(len(f & r) for f, r in zip(got, reference, strict=True)) / max(expected, 1)
        planted = [(int(q) in f, d <= THRESHOLD) for q, f, d in zip(q_ids, got, distances, strict=False)]
        row.update(
            {
                "queries": len(got),
                "lookups_per_s": round(1 / per_query, 1),
                "ms_per_lookup": round(1000 * per_query, 3),
                "recall_vs_exact": round(recall, 4),
                "identical_to_exact": got == reference,
                "planted_found": f"{sum(f for f, w in planted if w)}/{sum(w for _, w in planted)}",
                "planted_beyond_found": sum(f for f, w in planted if not w),
            }
        )
    if "mih" in times and "flat" in times:
        ratios = [f / m for f, m in zip(times["flat"], times["mih"], strict=True)]
        rows["mih"]["speedup_vs_flat"] = round(statistics.median(ratios), 2)
        rows["mih"]["speedup_vs_flat_rounds"] = [round(r, 2) for r in ratios]
    if "mih" in rows:
        mih = searchers["mih"]
        start = time.perf_counter()
        for s in range(0, N_QUERIES, 64):  # one file's hashes per call: a frame's 8 dihedral hashes, 8 frames
            mih.search(queries[s : s + 64], THRESHOLD)
        rows["mih"]["lookups_per_s_batch_64"] = round(N_QUERIES / (time.perf_counter() - start), 1)
        rows["mih"]["rss_mb_process"] = rss_mb()
        rows["mih"]["rss_mb_codes_only"] = round(rss_codes - rss_start, 1) if rss_codes and rss_start else None
    for row in rows.values():
        print(row, flush=True)
    return list(rows.values())


def search_scaling(sizes: list[int], engines: list[str]) -> list[dict[str, Any]]:
    """Per size and engine: see `search_size`. Sizes run one after the other, freeing the last before the next."""
    out: list[dict[str, Any]] = []
    for n in sizes:
        need_mb = n * 32 * 6 / 2**20 + 500  # codes, flat's copy, mih's tables, temporaries
        free = available_mb()
        if free is not None and free < need_mb:
            out.append({"n_hashes": n, "skipped": f"{free:.0f} MB available, about {need_mb:.0f} MB needed"})
            continue
        out += search_size(n, engines)
        gc.collect()
    return out


def hashing_speed(quick: bool) -> dict[str, Any]:
    """Images hashed per second (dev photos) and video seconds hashed per second at 1 fps (dev videos)."""
    from deepdetect.hashing.pdq import hash_rgb
    from deepdetect.hashing.video import hash_video
    from deepdetect.media import load_image, video_info

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
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000, 10_000_000]
    if os.environ.get("BENCH_HASH_SIZES"):
        sizes = [int(float(x)) for x in os.environ["BENCH_HASH_SIZES"].split(",")]
    return {
        "threshold": THRESHOLD,
        "queries": N_QUERIES,
        "cpu_count": os.cpu_count(),
        "note": "random 256-bit hashes plus planted true ones queried at distance 0..48, all queries in one call; "
        "recall_vs_exact = share of the exact hits that the engine returns (reference: FAISS flat on every query, "
        "itself checked against brute force on the first 100 up to 1M); "
        "memory_mb = the engine's own arrays or serialised FAISS index; "
        "speedup_vs_flat = median over alternating rounds of flat's time / mih's time on the same queries",
        "search": search_scaling(
            sizes, os.environ.get("BENCH_HASH_ENGINES", "brute,flat,mih,faiss-mih,hnsw").split(",")
        ),
        "hashing": hashing_speed(quick) if not os.environ.get("BENCH_HASH_SIZES") else {"skipped": "sizes given"},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(Path("bench/results"), quick=True), indent=2))
