"""MTCNN throughput on CPU (and GPU when present): per-frame vs batched, full vs half resolution."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from deepdetect.faces.detect import FaceDetector
from deepdetect.media import read_video_frames
from deepdetect.utils.devdata import dev_data_dir


def _time(detector: FaceDetector, frames: list[Any]) -> float:
    start = time.perf_counter()
    detector.detect(frames)
    return time.perf_counter() - start


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Frames per second of MTCNN on fnp_video_1080p.mp4 for each device, batching mode and resolution.

    The modes are timed in alternation, best of `repeats` rounds, so load from other processes hits both alike.
    CPU runs with 1 torch thread (stable on a shared machine) and, unless quick, with torch's default count.
    """
    data = dev_data_dir()
    if data is None:
        return {"skipped": "development data not found"}
    n, repeats = (4, 1) if quick else (16, 3)
    default_threads = torch.get_num_threads()
    cpu_threads = [1] if quick or default_threads == 1 else [1, default_threads]
    frames = [f for _, f in read_video_frames(data / "videos" / "fnp_video_1080p.mp4", n)]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results: dict[str, Any] = {
        "video": "fnp_video_1080p.mp4",
        "frames": len(frames),
        "repeats": repeats,
        "default_torch_threads": default_threads,
    }
    runs = [(f"cpu_t{t}", "cpu", t) for t in cpu_threads] + [(d, d, default_threads) for d in devices if d != "cpu"]
    for label, device, threads in runs:
        torch.set_num_threads(threads)
        for res_name, downscale in (("full", None), ("half", 0.5)):
            modes = {
                "per_frame": FaceDetector(device=device, batch=False, downscale=downscale),
                "batched": FaceDetector(device=device, batch=True, downscale=downscale),
            }
            for det in modes.values():
                det.detect(frames[:1])  # warm-up
            best = dict.fromkeys(modes, float("inf"))
            for _ in range(repeats):
                for name, det in modes.items():
                    best[name] = min(best[name], _time(det, frames))
            for name in modes:
                results[f"{label}_{res_name}_{name}_fps"] = round(len(frames) / best[name], 3)
            results[f"{label}_{res_name}_batched_over_per_frame"] = round(best["per_frame"] / best["batched"], 3)
    torch.set_num_threads(default_threads)
    return results


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(Path("."), quick="--quick" in sys.argv), indent=2))
