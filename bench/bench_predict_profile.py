"""Where predict's time goes: decode, detect, crop, preprocess, model, write, timed stage by stage, plus peak RSS.

Each stage calls the same library function `deepdetect.inference.predict.score_file` calls, in the same order and
with predict's detector (`predict_detector`: MTCNN's pyramid tied to the contract's `min_face`; the contract's face
selection: detection score >= its min_score, faces >= its min_face; its crop size and margin; the predictor's
batch size), so the stage sum tracks an end-to-end `score_file` call on the same file, which is timed too. Inputs:
an image of about 512 px with one face, a <= 720p clip and the 1080p clip, 32 frames each. The model is an ONNX
export of `efficientnet_b0` at 224 px (random init: speed only; contract min_face 40, min_score 0.9), fp32 and its
INT8. Torch runs with one thread, as predict runs detection. Detection settings, thread counts, the file pipeline
and RSS over a long run are in `bench_predict_throughput.py`.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

FRAMES = 32
MIN_FACE_SCORE = 0.9
# MTCNN (torch) threads during the stage profile, as predict runs it; ONNX Runtime keeps its own default.
PROFILE_TORCH_THREADS = 1
AIMS_S = {"image": 1 / 25, "video_720p": 1.5, "video_1080p": 3.0}


def _rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


@contextmanager
def _timer(out: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    out[key] = out.get(key, 0.0) + time.perf_counter() - start


def _make_model(scratch: Path, name: str = "efficientnet_b0", size: int = 224) -> tuple[Path, Path]:
    """fp32 ONNX export with a deepdetect contract, and its INT8 variant (default settings)."""
    import onnx
    import torch

    from deepdetect.contract.onnx import build_contract, write_contract
    from deepdetect.export.onnx_export import export_onnx
    from deepdetect.export.quantize import quantize_int8
    from deepdetect.models.detector import create_detector, resolve_preprocess

    torch.manual_seed(0)
    model = create_detector(name).eval()
    meta = {"model": {"name": name}, "preprocess": resolve_preprocess(model, size).to_dict(),
            "face_crop": {"detector": "mtcnn", "margin": 0.3, "size": size, "min_face": 40.0,
                          "min_score": 0.9}}  # fmt: skip
    fp32 = scratch / f"{name}.onnx"
    proto = export_onnx(model, fp32, (size, size))
    write_contract(proto, build_contract(meta, "bench"))
    onnx.save(proto, str(fp32))
    calib = np.random.default_rng(0).standard_normal((8, 3, size, size)).astype(np.float32)
    int8 = quantize_int8(fp32, scratch / f"{name}.int8.onnx", calib)  # carries the contract over
    return fp32, int8


def profile_file(
    path: Path, predictors: dict[str, Any], detector: Any, writer: Any, frames: int = FRAMES
) -> dict[str, Any]:
    """Seconds per stage for one file, following `score_file` step by step; the model stages once per predictor."""
    from deepdetect.contract.preprocess import prepare_batch
    from deepdetect.faces.crop import crop_face
    from deepdetect.faces.track import select_faces
    from deepdetect.media import load_image, media_kind, read_video_frames
    from deepdetect.utils.io import sha256_file as sha256_of

    first = next(iter(predictors.values()))
    t: dict[str, float] = {}
    with _timer(t, "decode"):
        kind = media_kind(path)
        decoded = [(0, load_image(path))] if kind == "image" else read_video_frames(path, frames_per_video=frames)
    with _timer(t, "hash"):
        sha256_of(path)
    with _timer(t, "detect"):
        min_side = int(getattr(detector, "min_face_size", 20))
        decoded = [(i, f) for i, f in decoded if min(f.shape[:2]) >= min_side]
        detections = detector.detect([f for _, f in decoded]) if decoded else []
    crops: list[np.ndarray] = []
    with _timer(t, "crop"):
        contract = first.contract
        size, margin = contract.crop_size, contract.margin
        for (_, frame), det in zip(decoded, detections, strict=True):
            keep = select_faces(det, "all", contract.min_face, contract.min_score)
            for box, lm in zip(det.boxes[keep], det.landmarks[keep], strict=True):
                crops.append(crop_face(frame, box, lm, margin, size)[0])
    per_model: dict[str, dict[str, float]] = {}
    for name, predictor in predictors.items():
        m: dict[str, float] = {}
        batches: list[np.ndarray] = []
        with _timer(m, "preprocess"):
            for i in range(0, len(crops), predictor.batch_size):
                batches.append(prepare_batch(crops[i : i + predictor.batch_size], predictor.contract.preprocess))
        with _timer(m, "model"):
            logits = [predictor._logits(b).reshape(-1) for b in batches]  # the session call inside score_crops
        with _timer(m, "write"):
            scores = predictor.calibrate(np.concatenate(logits)) if logits else np.zeros(0)
            writer.write({"path": str(path), "n_faces": len(crops), "scores": [round(float(x), 6) for x in scores]})
        per_model[name] = m
    frame_shape = decoded[0][1].shape[:2] if decoded else None
    out: dict[str, Any] = {"frames": len(decoded), "frame_hw": frame_shape, "faces": len(crops)}
    for name, m in per_model.items():
        stages = {**t, **m}
        out[name] = {"stages_s": {k: round(v, 4) for k, v in stages.items()}, "total_s": round(sum(stages.values()), 4)}
    return out


def _median_profile(runs: list[dict[str, Any]]) -> dict[str, Any]:
    stages = {k: round(float(np.median([r["stages_s"][k] for r in runs])), 4) for k in runs[0]["stages_s"]}
    totals = [r["total_s"] for r in runs]
    return {
        "stages_median_s": stages,
        "stage_share": {k: round(v / max(sum(stages.values()), 1e-9), 3) for k, v in stages.items()},
        "total_median_s": round(float(np.median(totals)), 4),
        "totals_s": totals,
    }


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Stage profile of predict on an image, a <= 720p clip and the 1080p clip (quick: image + 720p, 8 frames)."""
    import torch

    from deepdetect.inference.predict import RunInfo, predict_detector, score_file
    from deepdetect.inference.predictor import Predictor
    from deepdetect.inference.settings import PredictSettings
    from deepdetect.inference.writers import RecordWriter
    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data = dev_data_dir()
    if data is None:
        return {"skipped": "no dev data (../shared/data or $DEEPDETECT_DEV_DATA)"}
    frames = 8 if quick else FRAMES
    repeats = 1 if quick else 2
    files = {"image": data / "photos" / "img50.jpg", "video_720p": data / "videos" / "lp_d0.mp4"}
    if not quick:
        files["video_1080p"] = data / "videos" / "fnp_video_1080p.mp4"
    rss_start = _rss_mb()
    results: dict[str, Any] = {"frames_per_video": frames, "repeats": repeats, "aims_s": AIMS_S}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        fp32, int8 = _make_model(scratch)
        detector = predict_detector(Predictor.from_path(fp32).contract)
        default_threads = torch.get_num_threads()
        torch.set_num_threads(PROFILE_TORCH_THREADS)
        predictors = {"fp32": Predictor.from_path(fp32), "int8": Predictor.from_path(int8)}
        settings = PredictSettings(frames=frames, progress=False)
        run_info = RunInfo.start(predictors["fp32"], settings)
        results["model"] = "efficientnet_b0 224 px ONNX (random init), batch 32"
        results["rss_after_load_mb"] = round(_rss_mb(), 1)
        profiles: dict[str, Any] = {}
        with RecordWriter(scratch / "out.jsonl") as writer:
            profile_file(files["image"], predictors, detector, writer, frames)  # warm-up (sessions, MTCNN)
            for key, path in files.items():
                runs = [profile_file(path, predictors, detector, writer, frames) for _ in range(repeats)]
                start = time.perf_counter()
                score_file(path, predictors["fp32"], detector, settings, run_info)
                end_to_end = time.perf_counter() - start
                profiles[key] = {
                    "file": path.name,
                    **{k: runs[0][k] for k in ("frames", "frame_hw", "faces")},
                    **{name: _median_profile([r[name] for r in runs]) for name in predictors},
                    "score_file_fp32_s": round(end_to_end, 4),
                    "aim_s": AIMS_S[key],
                    "peak_rss_mb": round(_peak_rss_mb(), 1),
                }
        results["profiles"] = profiles
        results["profile_torch_threads"] = PROFILE_TORCH_THREADS
        # Memory over many files: the same image scored repeatedly must not grow the process.
        n_mem = 20 if quick else 100
        rss_before = _rss_mb()
        start = time.perf_counter()
        for _ in range(n_mem):
            score_file(files["image"], predictors["fp32"], detector, settings, run_info)
        results["image_files_per_s_fp32"] = round(n_mem / (time.perf_counter() - start), 2)
        torch.set_num_threads(default_threads)
        results["memory"] = {"rss_start_mb": round(rss_start, 1), "rss_before_loop_mb": round(rss_before, 1),
                             "rss_after_loop_mb": round(_rss_mb(), 1), "loop_files": n_mem,
                             "peak_rss_mb": round(_peak_rss_mb(), 1)}  # fmt: skip
    return json.loads(json.dumps(results, default=str))
