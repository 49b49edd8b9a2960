"""A faster face finder for predict's keyframes: BlazeFace proposals refined by MTCNN's R-Net and O-Net.

MTCNN's P-Net pyramid is most of predict's time on a 1080p video (docs/performance.md §7). BlazeFace (mediapipe's
full-range model) finds faces in a fraction of that time, but its boxes are not MTCNN's, and the model was trained on
MTCNN's crops. So its boxes go only as candidates into `OrtFaceDetector.refine` (R-Net and O-Net with MTCNN's own
thresholds, the retry at 3 scales x 5 shifts, NMS): the faces that come out are MTCNN boxes. Measured against the full
MTCNN search (20 px, one thread) on predict's keyframes (every 4th of 32 sampled frames, and the last) of the 1080p dev
clip and two 512 px clips, and on the first 20 dev photos: the faces predict would score (side >= 40 px, score >=
0.9) on each side, those lost and gained (best IoU < 0.5), the IoU of the matched ones, and the seconds of each.

mediapipe is not a dependency: set `BENCH_MEDIAPIPE_PYTHON` to a Python that has mediapipe 0.10.x (whose wheel
bundles BlazeFace's models; later versions download them), e.g. `python -m venv "$MEDIAPIPE_VENV" &&
"$MEDIAPIPE_VENV/bin/pip" install 'mediapipe==0.10.14'` for a folder of your choice outside the repository.
BlazeFace runs there (`blazeface_worker.py`) on the same decoded frames, one thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MIN_FACE, MIN_SCORE = 40, 0.9  # the faces predict scores with the reference's contract
TILES = ((0, 0), (512, 384), (320, 240))  # (tile side, step) on frames larger than 1.5 tiles; 0: whole frame only


def _images(data: Path, quick: bool) -> dict[str, np.ndarray]:
    from PIL import Image

    from deepdetect.faces.track import keyframes
    from deepdetect.inference.stages.decode import read_frames

    images: dict[str, np.ndarray] = {}
    for clip in ("fnp_video_1080p.mp4",) if quick else ("fnp_video_1080p.mp4", "lp_d0.mp4", "lp_d3.mp4"):
        frames, _ = read_frames(data / "videos" / clip, "video", 32)
        for k in keyframes(len(frames), 4)[: 2 if quick else None]:
            images[f"{clip}@{frames[k][0]}"] = frames[k][1]
    for path in sorted((data / "photos").glob("*.jpg"))[: 2 if quick else 20]:
        images[path.name] = np.asarray(Image.open(path).convert("RGB"))
    return images


def _kept(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    from deepdetect.faces.boxes import box_sizes

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return boxes[(box_sizes(boxes) >= MIN_FACE) & (np.asarray(scores) >= MIN_SCORE)] if len(boxes) else boxes


def _compare(full: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    from deepdetect.faces.boxes import box_iou, box_sizes

    if len(full) and len(other):
        iou = box_iou(full, other)
        lost = iou.max(axis=1) < 0.5
        return {
            "lost": int(lost.sum()),
            "gained": int((iou.max(axis=0) < 0.5).sum()),
            "iou": [round(float(v), 4) for v in iou.max(axis=1) if v >= 0.5],
            "lost_sizes": [round(float(v), 1) for v in box_sizes(full[lost])],
        }
    return {
        "lost": len(full),
        "gained": len(other),
        "iou": [],
        "lost_sizes": [round(float(v), 1) for v in box_sizes(full)],
    }


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """The figures (see the module docstring); skipped without dev data or a mediapipe Python."""
    from deepdetect.faces.mtcnn_ort import OrtFaceDetector
    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data, python = dev_data_dir(), os.environ.get("BENCH_MEDIAPIPE_PYTHON")
    if data is None:
        return {"skipped": "no dev data (../shared/data or $DEEPDETECT_DEV_DATA)"}
    if not python:
        return {"skipped": "set BENCH_MEDIAPIPE_PYTHON to a Python with mediapipe 0.10.x (see the module docstring)"}
    images = _images(data, quick)
    detector = OrtFaceDetector(min_face_size=20)
    full, full_s = {}, {}
    for name, image in images.items():
        start = time.perf_counter()
        det = detector.detect([image])[0]
        full_s[name] = time.perf_counter() - start
        full[name] = _kept(det.boxes, det.scores)
    figures: dict[str, Any] = {"images": len(images), "faces_full": sum(len(v) for v in full.values())}
    figures["full_mtcnn_s"] = {"all": round(sum(full_s.values()), 3), "1080p": _sum_1080p(full_s)}
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames.npz"
        np.savez(frames, **{f"i{i}": image for i, image in enumerate(images.values())})
        names = dict(zip((f"i{i}" for i in range(len(images))), images, strict=True))
        for tile, step in TILES:
            out = Path(tmp) / f"blaze_{tile}.json"
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            cmd = [python, str(HERE / "blazeface_worker.py"), str(frames), str(out), str(tile), str(step)]
            subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=1800)
            blaze = {names[k]: v for k, v in json.loads(out.read_text()).items()}
            figures[f"tiles_{tile}"] = _hybrid(detector, images, full, blaze)
    return figures


def _sum_1080p(seconds: dict[str, float]) -> float:
    return round(sum(v for k, v in seconds.items() if k.startswith("fnp_video_1080p")), 3)


def _hybrid(detector: Any, images: dict[str, np.ndarray], full: dict[str, np.ndarray], blaze: dict[str, Any]) -> dict:
    """BlazeFace's boxes refined by R-Net and O-Net, against the full search."""
    refine_s: dict[str, float] = {}
    lost = gained = found = 0
    ious: list[float] = []
    differ = {}
    for name, image in images.items():
        start = time.perf_counter()
        det = detector.refine(image, np.asarray(blaze[name]["boxes"], np.float32).reshape(-1, 4))
        refine_s[name] = time.perf_counter() - start
        kept = _kept(det.boxes, det.scores)
        cmp = _compare(full[name], kept)
        found, lost, gained, ious = found + len(kept), lost + cmp["lost"], gained + cmp["gained"], ious + cmp["iou"]
        if cmp["lost"] or cmp["gained"]:
            differ[name] = {"full": len(full[name]), "hybrid": len(kept), "lost_face_sides_px": cmp["lost_sizes"]}
    blaze_s = {name: float(v["seconds"]) for name, v in blaze.items()}
    return {
        "faces": found,
        "lost": lost,
        "gained": gained,
        "iou_median": round(float(np.median(ious)), 4) if ious else None,
        "iou_p5": round(float(np.quantile(ious, 0.05)), 4) if ious else None,
        "blazeface_s": {"all": round(sum(blaze_s.values()), 3), "1080p": _sum_1080p(blaze_s)},
        "refine_s": {"all": round(sum(refine_s.values()), 3), "1080p": _sum_1080p(refine_s)},
        "files_that_differ": differ,
    }
