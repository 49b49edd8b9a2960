"""Benchmark: seconds to get N evenly spaced frames by seeking vs decoding the whole clip, PyAV vs OpenCV."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect import media
from deepdetect.utils.devdata import dev_data_dir


def _best_of(fn: Callable[[], Any], repeats: int, budget_s: float = 3.0) -> tuple[float, Any]:
    """Best time of `repeats` runs (fewer once `budget_s` is spent: slow strategies are slow anyway)."""
    best, result, spent = float("inf"), None, 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > budget_s:
            break
    return best, result


def _pyav(path: Path, targets: list[int], mode: str, min_gap: int = media.SEEK_MIN_GAP) -> list[int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        dec = media._Decoder(container, stream, media._stream_info(container, stream), path)
        if mode == "seek":
            frames = media._decode_seeking(dec, targets, min_gap) or []
        elif mode == "sequential":
            frames, _ = media._decode_sequential(dec, targets)
        else:  # whole clip: decode every frame to the end, convert only the targets
            wanted, frames = set(targets), []
            for i, frame in enumerate(dec.frames(None)):
                if i in wanted:
                    frames.append((i, frame.to_ndarray(format="rgb24")))
        return [i for i, _ in frames]


def _opencv(path: Path, targets: list[int], mode: str) -> list[int]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    got: list[int] = []
    try:
        if mode == "seek":
            for t in targets:
                cap.set(cv2.CAP_PROP_POS_FRAMES, t)
                ok, frame = cap.read()
                if ok:
                    cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    got.append(t)
        else:
            wanted, i = set(targets), 0
            while cap.grab():
                if i in wanted:
                    ok, frame = cap.retrieve()
                    if ok:
                        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                        got.append(i)
                i += 1
    finally:
        cap.release()
    return got


def _compare(path: Path, n: int, repeats: int) -> dict[str, Any]:
    info = media.video_info(path)
    targets = media.sample_frame_indices(info.frame_count, n)
    row: dict[str, Any] = {
        "frames_in_clip": info.frame_count,
        "size": f"{info.width}x{info.height}",
        "frames_asked": len(targets),
        "mean_gap": round(info.frame_count / max(len(targets), 1), 2),
    }
    runs = {
        "pyav_auto_s": lambda: [i for i, _ in media.read_video_frames(path, frames_per_video=n)],
        "pyav_seek_every_target_s": lambda: _pyav(path, targets, "seek", min_gap=0),
        "pyav_sequential_to_last_target_s": lambda: _pyav(path, targets, "sequential"),
        "pyav_whole_clip_s": lambda: _pyav(path, targets, "whole"),
        "opencv_seek_s": lambda: _opencv(path, targets, "seek"),
        "opencv_whole_clip_s": lambda: _opencv(path, targets, "whole"),
    }
    for key, fn in runs.items():
        seconds, got = _best_of(fn, repeats)
        row[key] = round(seconds, 4)
        if got != targets:
            row[key.replace("_s", "_frames_mismatch")] = len(set(got) ^ set(targets))
    row["speedup_auto_vs_whole_clip"] = round(row["pyav_whole_clip_s"] / max(row["pyav_auto_s"], 1e-9), 2)
    return row


def _generated_clip(directory: Path, frames: int, gop: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from media_corpus import make_video

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(360, 640, 3), dtype=np.uint8)
    arrays = [np.roll(base, 4 * i, axis=1) for i in range(frames)]  # moving texture: realistic decode cost
    return make_video(
        directory / "generated.mp4",
        arrays,
        fps=25,
        gop_size=gop,
        codec="libx264",
        codec_options={"preset": "ultrafast"},
    )


def run(out_dir: Path, quick: bool) -> dict:
    """Time frame sampling strategies on the dev 1080p clip and on a generated 640x360 clip."""
    repeats = 3
    results: dict[str, Any] = {"seek_min_gap": media.SEEK_MIN_GAP, "repeats": repeats}
    data = dev_data_dir()
    clip = data / "videos" / "fnp_video_1080p.mp4" if data else None
    if clip is not None and clip.is_file():
        results["fnp_video_1080p_32_frames"] = _compare(clip, 32, repeats)
    else:
        results["fnp_video_1080p_32_frames"] = {"skipped": "development data not found (../shared/data)"}
    with tempfile.TemporaryDirectory() as tmp:
        frames, gop = (300, 50) if quick else (1000, 50)
        generated = _generated_clip(Path(tmp), frames, gop)
        results[f"generated_640x360_h264_gop{gop}_32_frames"] = _compare(generated, 32, repeats)
        sweep = {}
        for n in (8, 16, 32, 64) if quick else (4, 8, 16, 32, 64, 128, 256):
            targets = media.sample_frame_indices(frames, n)
            seek_s, _ = _best_of(partial(_pyav, generated, targets, "seek", min_gap=0), repeats)
            seq_s, _ = _best_of(partial(_pyav, generated, targets, "sequential"), repeats)
            sweep[f"gap_{frames / len(targets):.1f}"] = {"seek_s": round(seek_s, 4), "sequential_s": round(seq_s, 4)}
        results["generated_gap_sweep"] = sweep
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(Path(), quick="--quick" in sys.argv), indent=2))
