"""MTCNN on ONNX Runtime vs facenet-pytorch's MTCNN: same faces, and predict's start-up and wall time with each.

- `parity`: both detectors (MTCNN's own settings: 20 px, thresholds 0.6/0.7/0.7, one thread each) on dev photos
  and frames of dev videos: faces found by each, every PyTorch face's best box IoU and landmark distance on the
  ONNX Runtime side, faces lost (no ORT box with IoU >= 0.5) and gained, and each side's detection seconds.
- `startup` and `wall`: `python -m deepdetect.cli.predict FILE --model M --detector ort|torch` in a fresh process,
  the two detectors alternated (A B A B ...): start-up is the whole command on a small face-free image (imports,
  model and detector loading, run header), wall the whole command on a dev photo and a dev clip; both as wall
  seconds and the child's CPU seconds (user + system), which a loaded machine inflates far less. The records of
  the two detectors are compared (status, faces, score).
The model is an ONNX export of efficientnet_b0 at 224 px (random init: speed only; contract min_face 40,
min_score 0.9). MTCNN's ONNX files are exported once into a fresh cache folder first (timed apart).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from siblings import load

DETECTORS = ("ort", "torch")
PHOTOS, PHOTOS_QUICK = 20, 4
VIDEOS = ("fnp_video_1080p.mp4", "lp_d0.mp4", "lp_d3.mp4")
VIDEO_FRAMES, VIDEO_FRAMES_QUICK = 8, 2


def _compare(ref: Any, ort: Any) -> dict[str, Any]:
    """One frame: faces on each side, best IoU and landmark distance of each PyTorch face, lost and gained faces."""
    from deepdetect.faces.boxes import box_iou

    out: dict[str, Any] = {"torch_faces": len(ref), "ort_faces": len(ort), "iou": [], "landmark_px": []}
    if len(ref) and len(ort):
        iou = box_iou(ref.boxes, ort.boxes)
        match = iou.argmax(axis=1)
        out["iou"] = [round(float(v), 6) for v in iou.max(axis=1)]
        dist = np.linalg.norm(ref.landmarks - ort.landmarks[match], axis=2).max(axis=1)
        out["landmark_px"] = [round(float(v), 4) for v in dist]
        out["lost"] = int((iou.max(axis=1) < 0.5).sum())
        out["gained"] = int((iou.max(axis=0) < 0.5).sum())
    else:
        out["lost"], out["gained"] = len(ref), len(ort)
    return out


def parity(data: Path, quick: bool) -> dict[str, Any]:
    """Both detectors on the same photos and video frames (see the module docstring)."""
    import torch
    from PIL import Image

    from deepdetect.faces.detect import FaceDetector
    from deepdetect.faces.mtcnn_ort import OrtFaceDetector
    from deepdetect.media import read_video_frames

    torch.set_num_threads(1)
    ref, ort = FaceDetector(device="cpu"), OrtFaceDetector()
    inputs: list[tuple[str, np.ndarray]] = []
    for p in sorted((data / "photos").glob("*.jpg"))[: PHOTOS_QUICK if quick else PHOTOS]:
        inputs.append((p.name, np.asarray(Image.open(p).convert("RGB"))))
    for name in VIDEOS[:1] if quick else VIDEOS:
        frames = read_video_frames(data / "videos" / name, VIDEO_FRAMES_QUICK if quick else VIDEO_FRAMES)
        inputs += [(f"{name}#{i}", f) for i, f in frames]
    rows, seconds = [], {"torch": 0.0, "ort": 0.0}
    for name, img in inputs:
        t0 = time.perf_counter()
        a = ref.detect([img])[0]
        t1 = time.perf_counter()
        b = ort.detect([img])[0]
        seconds["torch"] += t1 - t0
        seconds["ort"] += time.perf_counter() - t1
        rows.append({"input": name, "shape": list(img.shape[:2]), **_compare(a, b)})
    ious = [v for r in rows for v in r["iou"]]
    marks = [v for r in rows for v in r["landmark_px"]]
    return {
        "inputs": len(rows),
        "photos": sum("#" not in r["input"] for r in rows),
        "video_frames": sum("#" in r["input"] for r in rows),
        "torch_faces": sum(r["torch_faces"] for r in rows),
        "ort_faces": sum(r["ort_faces"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "gained": sum(r["gained"] for r in rows),
        "iou_mean": float(np.mean(ious)) if ious else None,
        "iou_min": float(np.min(ious)) if ious else None,
        "landmark_px_max": float(np.max(marks)) if marks else None,
        "detect_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "torch_over_ort": round(seconds["torch"] / max(seconds["ort"], 1e-9), 3),
        "per_input": rows,
    }


def _predict(target: Path, model: Path, detector: str, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """One `deepdetect-predict` process: wall and CPU seconds, and its records."""
    cmd = [sys.executable, "-m", "deepdetect.cli.predict", str(target), "--model", str(model), "--detector",
           detector, "--output", str(out), "--overwrite", "--quiet"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"predict failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "records": records}


def _same_records(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """How the two detectors' records differ: statuses, face counts, largest score difference."""
    diffs = [
        abs(x["score"] - y["score"])
        for x, y in zip(a, b, strict=True)
        if x["score"] is not None and y["score"] is not None
    ]
    return {
        "same_status": all(x["status"] == y["status"] for x, y in zip(a, b, strict=True)),
        "same_n_faces": all(x["n_faces"] == y["n_faces"] for x, y in zip(a, b, strict=True)),
        "max_score_diff": max(diffs) if diffs else None,
    }


def timed_runs(targets: dict[str, Path], model: Path, scratch: Path, cache: Path, repeats: int) -> dict[str, Any]:
    """Each target through predict with each detector, alternated, `repeats` times: medians and every repeat."""
    env = {**os.environ, "DEEPDETECT_CACHE_DIR": str(cache)}
    out: dict[str, Any] = {}
    for label, target in targets.items():
        runs: dict[str, list[dict[str, Any]]] = {d: [] for d in DETECTORS}
        for _ in range(repeats):
            for det in DETECTORS:
                runs[det].append(_predict(target, model, det, scratch / f"{label}-{det}.jsonl", env))
        entry: dict[str, Any] = {"file": target.name}
        for det in DETECTORS:
            entry[det] = {
                "wall_s_median": float(np.median([r["wall_s"] for r in runs[det]])),
                "cpu_s_median": float(np.median([r["cpu_s"] for r in runs[det]])),
                "wall_s": [r["wall_s"] for r in runs[det]],
                "cpu_s": [r["cpu_s"] for r in runs[det]],
            }
        for key in ("wall_s_median", "cpu_s_median"):
            entry[f"torch_over_ort_{key}"] = round(entry["torch"][key] / max(entry["ort"][key], 1e-9), 3)
        entry["records"] = _same_records(runs["ort"][-1]["records"], runs["torch"][-1]["records"])
        out[label] = entry
    return out


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Parity of the two detectors, then predict's start-up and wall time with each (see the module docstring)."""
    from PIL import Image

    from deepdetect.faces.mtcnn_onnx import mtcnn_onnx_paths
    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data = dev_data_dir()
    if data is None:
        return {"skipped": "development data not found (DEEPDETECT_DEV_DATA or ../shared/data)"}
    figures: dict[str, Any] = {"load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        start = time.perf_counter()
        mtcnn_onnx_paths(scratch / "cache")
        figures["onnx_export_once_s"] = round(time.perf_counter() - start, 2)
        figures["parity"] = parity(data, quick)
        model = load("bench_predict_throughput")._make_model(scratch)
        blank = scratch / "blank.png"
        Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(blank)
        targets = {"startup": blank, "photo": data / "photos" / "img50.jpg"}
        if not quick:
            targets["video_512"] = data / "videos" / "lp_d0.mp4"
        figures["predict"] = timed_runs(targets, model, scratch, scratch / "cache", 2 if quick else 3)
    figures["load_average_after"] = os.getloadavg()
    return figures
