"""Benchmark: the triage page (deepdetect-report) for a 10,000-file batch: build time, HTML size, browser time.

Synthetic records (random scores, every status, videos with per-frame faces) point at a few small generated
images and videos, so the top-N rows decode real files for their thumbnails and provenance. When Debian's
Chromium is installed, the page is loaded headless and its DOM dumped after the scripts ran (the wall time of that
includes Chromium's start, measured separately on an empty page), and the filter script reports how long one pass
over all rows took.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepdetect.media import write_video
from deepdetect.triage.records import read_records
from deepdetect.triage.report import build_report_from
from deepdetect.utils.devdata import dev_data_dir

STATUSES = ["ok"] * 80 + ["no_face"] * 12 + ["unreadable", "not_found", "too_large", "error"] * 2


def make_media(root: Path, n_images: int = 40, n_videos: int = 10) -> list[tuple[Path, str]]:
    """Files to point the records at: the development data's photos and clips when present (real JPEG/H.264, so
    thumbnail sizes are realistic), else generated noise JPEGs (480x360, a worst case for JPEG) and small videos."""
    root_dev = dev_data_dir()
    if root_dev is not None:
        photos = sorted((root_dev / "photos").glob("*.jpg"))[:n_images]
        clips = sorted((root_dev / "faceswap-dfl" / "fake").glob("*.mp4"))[:n_videos]
        if photos and clips:
            return [(p, "image") for p in photos] + [(c, "video") for c in clips]
    rng = np.random.default_rng(0)
    out: list[tuple[Path, str]] = []
    for i in range(n_images):
        arr = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
        path = root / f"img_{i:03d}.jpg"
        Image.fromarray(arr).save(path, quality=85)
        out.append((path, "image"))
    for i in range(n_videos):
        frames = [np.full((120, 160, 3), (j * 4) % 255, np.uint8) for j in range(64)]
        out.append((write_video(root / f"vid_{i:03d}.mp4", frames, fps=25), "video"))
    return out


def make_records(n: int, media: list[tuple[Path, str]], seed: int = 0) -> list[dict[str, Any]]:
    """`n` predict-like records: statuses in realistic shares, per-face scores, per-frame times for videos."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        path, kind = media[i % len(media)]
        status = STATUSES[int(rng.integers(len(STATUSES)))]
        faces = []
        if status == "ok":
            frames = range(0, 64, 4) if kind == "video" else [0]
            faces = [
                {
                    "frame_index": f,
                    "time_s": f / 25,
                    "box": [40.0, 30.0, 120.0, 110.0],
                    "det_score": 0.99,
                    "score": round(float(rng.beta(1, 4)), 4),
                }
                for f in frames
            ]
        per_frame = [f["score"] for f in faces]
        score = round(float(np.mean(per_frame)), 6) if per_frame else None
        recs.append(
            {
                "path": str(path),
                "name": f"upload_{i:05d}{path.suffix}",
                "path_bytes_b64": None,
                "sha256": f"{i:064x}",
                "kind": kind if status != "not_found" else None,
                "status": status,
                "score": score,
                "label": None if score is None else ("fake" if score >= 0.5 else "real"),
                "threshold": 0.5,
                "n_frames": len(faces),
                "n_faces": len(faces),
                "faces": faces,
                "score_interval": [min(per_frame), max(per_frame)] if per_frame else None,
                "size_bytes": path.stat().st_size,
                "model_name": "bench",
                "model_version": "0",
                "seconds": 0.1,
                "error": None if status in ("ok", "no_face") else f"synthetic {status}",
            }
        )
    return recs


def browser_times(page: Path, chromium: str, workdir: Path) -> dict[str, Any]:
    """Seconds to load the page and dump its DOM in headless Chromium, and the in-page filter pass (ms)."""

    def dump(target: Path) -> tuple[float, str]:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={workdir / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--dump-dom",
            target.resolve().as_uri(),
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return time.perf_counter() - start, proc.stdout

    blank = workdir / "blank.html"
    blank.write_text("<!DOCTYPE html><title>x</title>")
    dump(blank)  # warm the profile
    startup = min(dump(blank)[0] for _ in range(2))
    runs = [dump(page) for _ in range(2)]
    dom = runs[-1][1]
    shown = re.search(r"(\d+) of (\d+) files shown", dom)
    filter_ms = re.search(r'data-filter-ms="([\d.]+)"', dom)
    return {
        "dump_dom_s": round(min(t for t, _ in runs), 2),
        "chromium_startup_s": round(startup, 2),
        "page_s_over_startup": round(min(t for t, _ in runs) - startup, 2),
        "script_ran": 'data-ready="1"' in dom,
        "rows_shown": shown.group(0) if shown else None,
        "filter_pass_ms": float(filter_ms.group(1)) if filter_ms else None,
    }


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    n, top_n = (2_000, 200) if quick else (10_000, 500)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        media = make_media(root)
        records_path = root / "predictions.jsonl"
        records_path.write_text("".join(json.dumps(r) + "\n" for r in make_records(n, media)))
        start = time.perf_counter()
        recordset = read_records(records_path)
        read_s = time.perf_counter() - start
        figures: dict[str, Any] = {
            "media": "generated"
            if media[0][0].is_relative_to(root)
            else "development data: photos, faceswap-dfl fakes",
            "load_avg_1m_before": round(os.getloadavg()[0], 2),
            "records": n,
            "top_n": top_n,
            "records_file_mb": round(records_path.stat().st_size / 2**20, 2),
        }
        for label, kwargs in (("full", {}), ("no_media", {"thumbnails": False, "provenance": False})):
            start = time.perf_counter()
            result = build_report_from(recordset, root / f"{label}.html", top_n=top_n, **kwargs)
            figures[label] = {
                "build_s": round(time.perf_counter() - start, 2),
                "html_mb": round(result.bytes / 2**20, 2),
                "embedded_rows": result.n_embedded,
            }
        figures["read_records_s"] = round(read_s, 2)
        page = root / "full.html"
        figures["thumbnail_kb_mean"] = round(
            sum(len(u) for u in re.findall(r'src="(data:image/jpeg[^"]*)"', page.read_text())) / top_n / 1024, 1
        )
        figures["browser"] = browser_times(page, chromium, root) if chromium else {"skipped": "chromium not installed"}
    figures["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, indent=2), flush=True)
    return figures
