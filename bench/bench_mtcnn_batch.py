"""MTCNN on ONNX Runtime, frames through each net together vs one at a time, and the session's thread settings.

On the keyframes predict's tracked detection runs the full cascade on (every 4th of 32 sampled frames and the last:
9 frames) of a 512² clip (`videos/lp_d0.mp4`) and of the 1080p clip, with predict's detector settings for a model
whose contract has min_face 40 (MTCNN's 20 px search): `OrtFaceDetector.detect` per frame vs batched (each pyramid
scale's P-Net on the stack of the frames' levels, R-Net and O-Net on the candidates of all frames, each in one call),
each with 1 and 2 frame threads, and batched with one frame thread but 2 intra-op threads per ORT session. The
variants run interleaved (A B C ... A B C ...); medians of the repeats; the records of every variant are compared
with the per-frame ones (largest box, landmark and score difference). Also the pyramid resampling alone: the
two-pass `area_resize` vs the four-corner `area_resample` on the same frames, the summed-area table by OpenCV
(`integral_image`) vs numpy's two cumsums (as it was computed before), and P-Net on the first pyramid level
at ONNX Runtime's graph optimisation levels (all, the default; extended; basic). `BENCH_MTCNN_BATCH_VARIANTS`: the
variants to run (comma-separated; the per-frame one-thread reference always runs): each detector keeps its own
ONNX Runtime arenas, and the batched ones at 1080p need several GB.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

CLIPS = {"512": "lp_d0.mp4", "1080p": "fnp_video_1080p.mp4"}
SAMPLED, EVERY = 32, 4


def _keyframes(path: Path) -> list[np.ndarray]:
    from deepdetect.faces.track import keyframes
    from deepdetect.media import read_video_frames

    frames = [f for _, f in read_video_frames(path, SAMPLED)]
    return [frames[i] for i in keyframes(len(frames), EVERY)]


def _largest_difference(a: list[Any], b: list[Any]) -> float | None:
    """Largest |difference| of boxes, landmarks and scores between two detectors' records (None: face counts differ)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if len(x) != len(y):
            return None
        if len(x):
            worst = max(worst, *(float(np.abs(u - v).max()) for u, v in ((x.boxes, y.boxes),
                        (x.landmarks, y.landmarks), (x.scores, y.scores))))  # fmt: skip
    return worst


def _resampling(frames: list[np.ndarray], repeats: int) -> dict[str, float]:
    from deepdetect.faces.mtcnn_ort import area_resample, area_resize, integral_image, pyramid_scales

    h, w = frames[0].shape[:2]
    tables = [integral_image(f) for f in frames]
    sizes = [(int(h * s + 1), int(w * s + 1)) for s in pyramid_scales(h, w, 20)]
    whole_r, whole_c = np.array([[0, h]]), np.array([[0, w]])
    times: dict[str, list[float]] = {"four_corner_s": [], "two_pass_s": [], "cumsum_table_s": [], "cv2_table_s": []}
    for _ in range(repeats):
        start = time.perf_counter()
        for f in frames:  # the summed-area table as it was computed before: numpy's two cumsums
            table = np.zeros((h + 1, w + 1, 3), np.int32)
            np.cumsum(f, axis=0, dtype=np.int32, out=table[1:, 1:])
            np.cumsum(table[1:, 1:], axis=1, dtype=np.int32, out=table[1:, 1:])
        times["cumsum_table_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for f in frames:
            integral_image(f)
        times["cv2_table_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for t in tables:
            for size in sizes:
                area_resample(t, whole_r, whole_c, size)
        times["four_corner_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for t in tables:
            for size in sizes:
                area_resize(t, size)
        times["two_pass_s"].append(time.perf_counter() - start)
    out = {k: round(float(np.median(v)), 4) for k, v in times.items()}
    out["resize_speedup"] = round(out["four_corner_s"] / max(out["two_pass_s"], 1e-9), 2)
    out["table_speedup"] = round(out["cumsum_table_s"] / max(out["cv2_table_s"], 1e-9), 2)
    return out


def _pnet_graph_levels(frame: np.ndarray, repeats: int) -> dict[str, float]:
    """P-Net on the first pyramid level of `frame` (MTCNN's 20 px search) at ORT's graph optimisation levels, one
    intra-op thread: median seconds per call, interleaved."""
    import onnxruntime as ort

    from deepdetect.faces.mtcnn_onnx import mtcnn_onnx_paths
    from deepdetect.faces.mtcnn_ort import area_resize, integral_image, pyramid_scales

    h, w = frame.shape[:2]
    scale = pyramid_scales(h, w, 20)[0]
    level = area_resize(integral_image(frame), (int(h * scale + 1), int(w * scale + 1)))[None]
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}  # fmt: skip
    sessions = {}
    for name, value in levels.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.graph_optimization_level = 1, 1, value
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[name] = ort.InferenceSession(str(mtcnn_onnx_paths()["pnet"]), opts, ["CPUExecutionProvider"])
        sessions[name].run(None, {"image": level})
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(max(3, repeats)):
        for name, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, {"image": level})
            times[name].append(time.perf_counter() - start)
    return {name: round(float(np.median(t)), 4) for name, t in times.items()}


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Per-frame vs batched detection (and thread settings) on the keyframes of a 512² clip and the 1080p clip."""
    from deepdetect.faces.mtcnn_onnx import mtcnn_onnx_paths
    from deepdetect.faces.mtcnn_ort import MtcnnNets, OrtFaceDetector
    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data = dev_data_dir()
    if data is None:
        return {"skipped": "no dev data (../shared/data or $DEEPDETECT_DEV_DATA)"}
    repeats = 2 if quick else 5
    variants = {
        "per_frame_1_thread": {"batched": False, "frame_workers": 1},
        "batched_1_thread": {"batched": True, "frame_workers": 1},
        "per_frame_2_threads": {"batched": False, "frame_workers": 2},
        "batched_2_threads": {"batched": True, "frame_workers": 2},
        "batched_1_thread_ort_2": {"batched": True, "frame_workers": 1, "ort_threads": 2},
    }
    if os.environ.get("BENCH_MTCNN_BATCH_VARIANTS"):  # e.g. per_frame_1_thread,per_frame_2_threads (less memory)
        chosen = os.environ["BENCH_MTCNN_BATCH_VARIANTS"].split(",")
        variants = {k: v for k, v in variants.items() if k in chosen or k == "per_frame_1_thread"}
    paths = mtcnn_onnx_paths()
    detectors = {}
    for name, v in variants.items():
        det = OrtFaceDetector(batched=v["batched"], frame_workers=v["frame_workers"])
        if v.get("ort_threads"):
            det.nets = MtcnnNets(paths, threads=v["ort_threads"])
        detectors[name] = det
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(), "repeats": repeats}
    for key, clip in CLIPS.items():
        frames = _keyframes(data / "videos" / clip)
        reference = detectors["per_frame_1_thread"].detect(frames)
        times: dict[str, list[float]] = {name: [] for name in detectors}
        found: dict[str, Any] = {}
        for name, det in detectors.items():  # warm-up, and the records to compare
            found[name] = det.detect(frames)
        for _ in range(repeats):
            for name, det in detectors.items():
                start = time.perf_counter()
                det.detect(frames)
                times[name].append(time.perf_counter() - start)
        medians = {name: float(np.median(t)) for name, t in times.items()}
        base = medians["per_frame_1_thread"]
        out[key] = {
            "clip": clip,
            "frames": len(frames),
            "frame_hw": list(frames[0].shape[:2]),
            "faces": sum(len(d) for d in reference),
            "seconds_median": {n: round(s, 4) for n, s in medians.items()},
            "seconds_all": {n: [round(x, 4) for x in t] for n, t in times.items()},
            "speedup_vs_per_frame_1_thread": {n: round(base / s, 3) for n, s in medians.items()},
            "largest_record_difference_vs_per_frame": {n: _largest_difference(reference, f) for n, f in found.items()},
            "resampling": _resampling(frames, repeats),
            "pnet_first_level_s_by_graph_optimisation": _pnet_graph_levels(frames[0], repeats),
        }
        print(key, out[key]["seconds_median"], flush=True)
    out["load_avg_end"] = os.getloadavg()
    return out
