"""The GPU path, measured: training feed ratio, MTCNN batched vs per frame, ORT CUDA EP vs PyTorch, predict s/video.

Needs a CUDA device; without one the JSON says `skipped` (CI and the 2-core dev machine have none). One command:

    make bench-gpu          # = python bench/run.py --only gpu --out bench/results

`DEEPDETECT_BENCH_GPU_ON_CPU=1` runs every section on the CPU with tiny settings: it checks the code path, and its
figures mean nothing for a GPU.

Sections (aims from the speed issue):
- `train`: efficientnet_b4 at 380 px, bf16 autocast, channels_last: end-to-end images/s through the toolkit's
  dataset/augmentation/loader over the raw model-step images/s (aim >= 0.9: the loader must not starve the GPU).
- `mtcnn`: frames/s of MTCNN on 1080p frames, one batched call vs one call per frame.
- `ort_vs_torch`: images/s of the exported model through ONNX Runtime's CUDA EP vs PyTorch (fp32 and bf16).
- `predict`: seconds per video of predict's `score_file` on the dev videos (DFDC's budget was 8.1 s; aim <= 0.5 s).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from siblings import load

DFDC_BUDGET_S = 8.1


def _measure_train(device: str, small: bool, n_batches: int) -> dict[str, Any]:
    """Training throughput: EfficientNet-B4 at 380 px, bf16, channels-last (a tiny model at 64 px when `small`)."""
    return load("bench_train").measure(
        device=device,
        model_name="test_efficientnet" if small else "efficientnet_b4",
        size=64 if small else 380,
        batch=4 if small else 32,
        precision="bf16",
        channels_last=True,
        workers=2 if small else min(8, os.cpu_count() or 1),
        n_batches=n_batches,
    )


def _frames_1080p(n: int) -> tuple[str, list[np.ndarray]]:
    from deepdetect.media import read_video_frames
    from deepdetect.utils.devdata import dev_data_dir

    data = dev_data_dir()
    clip = data / "videos" / "fnp_video_1080p.mp4" if data else None
    if clip is not None and clip.is_file():
        return clip.name, [f for _, f in read_video_frames(clip, n)]
    rng = np.random.default_rng(0)  # no dev data: noise frames (no faces; times the pyramid only)
    return "noise", [rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8) for _ in range(n)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_seconds(fn: Any, repeats: int, device: str) -> float:
    fn()  # warm-up (cuDNN autotune, lazy init)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def mtcnn(device: str, n: int, repeats: int) -> dict[str, Any]:
    from deepdetect.faces.detect import FaceDetector

    source, frames = _frames_1080p(n)
    out: dict[str, Any] = {"video": source, "frames": len(frames), "device": device}
    for name, batch in (("per_frame", False), ("batched", True)):
        det = FaceDetector(device=device, batch=batch)
        seconds = _best_seconds(lambda d=det: d.detect(frames), repeats, device)
        out[f"{name}_fps"] = round(len(frames) / seconds, 2)
    out["batched_over_per_frame"] = round(out["batched_fps"] / out["per_frame_fps"], 3)
    return out


def ort_vs_torch(device: str, onnx_path: Path, name: str, size: int, batch: int, repeats: int) -> dict[str, Any]:
    import onnxruntime as ort

    from deepdetect.contract.onnx import INPUT_NAME
    from deepdetect.models.detector import create_detector

    torch.manual_seed(0)
    model = create_detector(name).eval().to(device)
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    xt = torch.from_numpy(x).to(device)
    out: dict[str, Any] = {"model": name, "input_size": size, "batch": batch, "device": device}

    def torch_run(dtype: torch.dtype | None) -> None:
        with torch.inference_mode():
            if dtype is None:
                model(xt)
            else:
                with torch.autocast(xt.device.type, dtype=dtype):
                    model(xt)

    out["torch_fp32_images_per_s"] = round(batch / _best_seconds(lambda: torch_run(None), repeats, device), 1)
    out["torch_bf16_images_per_s"] = round(batch / _best_seconds(lambda: torch_run(torch.bfloat16), repeats, device), 1)
    providers = ort.get_available_providers()
    out["ort_providers"] = providers
    wanted = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
    if wanted not in providers:
        out["ort_skipped"] = f"{wanted} not in this onnxruntime build (install onnxruntime-gpu)"
        return out
    sess = ort.InferenceSession(str(onnx_path), providers=[wanted])
    out["ort_provider_used"] = sess.get_providers()[0]
    ort_ips = batch / _best_seconds(lambda: sess.run(None, {INPUT_NAME: x}), repeats, device)
    out["ort_fp32_images_per_s"] = round(ort_ips, 1)
    out["ort_fp32_over_torch_fp32"] = round(ort_ips / out["torch_fp32_images_per_s"], 3)
    return out


def predict_videos(device: str, onnx_path: Path, n_videos: int) -> dict[str, Any]:
    from deepdetect.faces.detect import FaceDetector
    from deepdetect.inference.predict import RunInfo, score_file
    from deepdetect.inference.predictor import Predictor
    from deepdetect.inference.settings import PredictSettings
    from deepdetect.utils.devdata import dev_data_dir

    data = dev_data_dir()
    if data is None:
        return {"skipped": "development data not found"}
    videos = sorted((data / "videos").glob("*.mp4"), key=lambda p: p.stat().st_size)[:n_videos]  # smallest first
    predictor = Predictor.from_path(onnx_path, device=device, batch_size=64)
    detector = FaceDetector(device=device, batch=True)
    settings = PredictSettings(device=device, batch_size=64, progress=False)
    run = RunInfo.start(predictor, settings)
    score_file(videos[0], predictor, detector, settings, run)  # warm-up
    per_video = []
    for path in videos:
        start = time.perf_counter()
        rec, _ = score_file(path, predictor, detector, settings, run)
        seconds = round(time.perf_counter() - start, 3)
        per_video.append({"video": path.name, "seconds": seconds, "faces": rec["n_faces"]})
    secs = [v["seconds"] for v in per_video]
    return {
        "device": device,
        "predictor": predictor.kind,
        "videos": per_video,
        "median_seconds_per_video": round(float(np.median(secs)), 3),
        "max_seconds_per_video": round(max(secs), 3),
        "dfdc_budget_s": DFDC_BUDGET_S,
        "aim_s": 0.5,
    }


def no_gpu_reason() -> str | None:
    """Why the GPU figures cannot be measured here (no CUDA device), or None when they can."""
    if not torch.cuda.is_available():
        return "no GPU: torch sees no CUDA device here, so there are no GPU figures to measure (nothing written)"
    return None


def _machine(device: str) -> dict[str, Any]:
    import platform

    import onnxruntime as ort

    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "onnxruntime": ort.__version__,
        "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
    }


def figures(out_dir: Path, device: str = "cuda", tiny: bool = False) -> dict[str, Path]:
    """The issue's first GPU figures in one short run (a few minutes on one GPU), one JSON file each in `out_dir`:
    `gpu_train.json` (training images/s, end to end and raw), `gpu_predict.json` (predict s/video on the dev
    videos) and `gpu_ort.json` (ONNX Runtime CUDA s/batch beside PyTorch). `tiny`: CPU-sized settings that only
    check the code path. Returns the files written."""
    import json
    import sys

    out_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "figures()"
    written: dict[str, Path] = {}

    def write(topic: str, measured: dict[str, Any], seconds: float) -> None:
        record = {"topic": topic, "command": command, "seconds": round(seconds, 2), "tiny": tiny,
                  "machine": _machine(device), "figures": measured}  # fmt: skip
        path = out_dir / f"gpu_{topic}.json"
        path.write_text(json.dumps(record, indent=2, default=str))
        written[topic] = path
        print(f"[gpu] {topic}: {seconds:.1f} s -> {path}", flush=True)

    start = time.perf_counter()
    train = _measure_train(device, small=tiny, n_batches=2 if tiny else 30)
    write("train", train, time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        name, size, batch = ("test_efficientnet", 64, 4) if tiny else ("efficientnet_b0", 224, 64)
        fp32, _ = load("bench_predict_profile")._make_model(Path(tmp), name, size)
        start = time.perf_counter()
        ort_figures = ort_vs_torch(device, fp32, name, size, batch, 1 if tiny else 10)
        if ort_figures.get("ort_fp32_images_per_s"):
            ort_figures["ort_seconds_per_batch"] = round(batch / ort_figures["ort_fp32_images_per_s"], 5)
        write("ort", ort_figures, time.perf_counter() - start)
        start = time.perf_counter()
        write("predict", predict_videos(device, fp32, 1 if tiny else 6), time.perf_counter() - start)
    return written


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Every GPU section on `cuda` (or tiny, on the CPU, with DEEPDETECT_BENCH_GPU_ON_CPU=1)."""
    del out_dir
    on_cpu = os.environ.get("DEEPDETECT_BENCH_GPU_ON_CPU") == "1"
    if not torch.cuda.is_available() and not on_cpu:
        return {"skipped": "no CUDA device; run `make bench-gpu` where there is one"}
    device = "cpu" if on_cpu else "cuda"
    tiny = on_cpu or quick
    results: dict[str, Any] = {"device": device, "dry_run_on_cpu": on_cpu}
    if not on_cpu:
        results["gpu"] = torch.cuda.get_device_name(0)
    results["train"] = _measure_train(device, small=on_cpu, n_batches=2 if tiny else 40)
    results["mtcnn"] = mtcnn(device, n=2 if on_cpu else (8 if quick else 32), repeats=1 if tiny else 3)
    with tempfile.TemporaryDirectory() as tmp:
        name, size = ("test_efficientnet", 64) if on_cpu else ("efficientnet_b0", 224)
        fp32, _ = load("bench_predict_profile")._make_model(Path(tmp), name, size)
        results["ort_vs_torch"] = ort_vs_torch(device, fp32, name, size, 4 if on_cpu else 64, 1 if tiny else 10)
        results["predict"] = predict_videos(device, fp32, 1 if on_cpu else (3 if quick else 20))
    return results


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(Path("."), quick="--quick" in sys.argv), indent=2))
