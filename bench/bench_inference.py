"""ONNX Runtime vs PyTorch images/s on CPU (same batch and threads), INT8 vs fp32, and seconds per video end to end."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DFDC_BUDGET_S = 8.1


def _images_per_s(fn: Any, batch: np.ndarray, repeats: int) -> float:
    fn(batch)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batch)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best


def _throughput(name: str, size: int, out_dir: Path, batch_size: int, threads: int, repeats: int) -> dict[str, Any]:
    import torch

    from deepdetect.contract.onnx import INPUT_NAME
    from deepdetect.export.onnx_export import export_onnx
    from deepdetect.export.quantize import quantize_int8
    from deepdetect.inference.runtime import ort_session
    from deepdetect.models.detector import create_detector

    torch.set_num_threads(threads)
    model = create_detector(name, img_size=size if "vit" in name else None).eval()
    fp32 = out_dir / f"{name}.onnx"
    export_onnx(model, fp32, (size, size))
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((batch_size, 3, size, size)).astype(np.float32)
    int8 = quantize_int8(fp32, out_dir / f"{name}.int8.onnx", batch[:8])
    sess32, sess8 = ort_session(fp32, threads=threads), ort_session(int8, threads=threads)

    def run_torch(x: np.ndarray) -> None:
        with torch.inference_mode():
            model(torch.from_numpy(x))

    torch_ips = _images_per_s(run_torch, batch, repeats)
    ort_ips = _images_per_s(lambda x: sess32.run(None, {INPUT_NAME: x}), batch, repeats)
    int8_ips = _images_per_s(lambda x: sess8.run(None, {INPUT_NAME: x}), batch, repeats)
    return {
        "model": name,
        "input_size": size,
        "batch": batch_size,
        "threads": threads,
        "torch_images_per_s": round(torch_ips, 1),
        "onnxruntime_fp32_images_per_s": round(ort_ips, 1),
        "onnxruntime_int8_images_per_s": round(int8_ips, 1),
        "ort_vs_torch": round(ort_ips / torch_ips, 3),
        "int8_vs_fp32": round(int8_ips / ort_ips, 3),
    }


def _video_seconds(out_dir: Path, frames: int) -> dict[str, Any]:
    """Decode + detect + classify `frames` frames of one clip with the tiny ONNX model, on CPU."""
    from deepdetect.faces.detect import FaceDetector
    from deepdetect.inference.predict import RunInfo, score_file
    from deepdetect.inference.predictor import Predictor
    from deepdetect.inference.settings import PredictSettings
    from deepdetect.utils.devdata import dev_data_dir

    onnx_path = out_dir / "test_efficientnet.onnx"
    import onnx

    from deepdetect.contract.onnx import build_contract, write_contract
    from deepdetect.models.detector import create_detector, resolve_preprocess

    model = create_detector("test_efficientnet")
    meta = {"model": {"name": "test_efficientnet"}, "preprocess": resolve_preprocess(model, 64).to_dict(),
            "face_crop": {"detector": "mtcnn", "margin": 0.3, "size": 64}}  # fmt: skip
    from deepdetect.export.onnx_export import export_onnx

    proto = export_onnx(model, onnx_path, (64, 64))
    write_contract(proto, build_contract(meta, "bench"))
    onnx.save(proto, str(onnx_path))
    data = dev_data_dir()
    clips = sorted((data / "videos").glob("lp_*.mp4")) if data else []
    if clips:
        clip, source = clips[0], f"dev data {clips[0].name}"
    else:
        import av
        from skimage.data import astronaut

        clip, source = out_dir / "clip.mp4", "generated 256x256 astronaut clip"
        with av.open(str(clip), "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
            for _ in range(frames * 2):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(astronaut()[:256, 64:320]), format="rgb24")
                for pkt in stream.encode(vf):
                    container.mux(pkt)
            for pkt in stream.encode(None):
                container.mux(pkt)
    predictor, detector = Predictor.from_path(onnx_path), FaceDetector(device="cpu")
    start = time.perf_counter()
    settings = PredictSettings(frames=frames, progress=False)
    rec, _ = score_file(clip, predictor, detector, settings, RunInfo.start(predictor, settings))
    seconds = time.perf_counter() - start
    return {
        "clip": source,
        "frames": rec["n_frames"],
        "faces": rec["n_faces"],
        "status": rec["status"],
        "seconds_per_video_cpu": round(seconds, 3),
        "dfdc_budget_s": DFDC_BUDGET_S,
        "within_budget": seconds <= DFDC_BUDGET_S,
    }


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Throughput figures (quick: test_efficientnet only) and end-to-end seconds per video."""
    import torch

    del out_dir  # models and clips are scratch files: they go to a temporary folder, not next to the figures
    threads = max(1, min(4, torch.get_num_threads()))
    results: dict[str, Any] = {"threads": threads, "throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        results["throughput"].append(_throughput("test_efficientnet", 64, scratch, 32, threads, 3 if quick else 10))
        if not quick:
            results["throughput"].append(_throughput("efficientnet_b0", 224, scratch, 32, threads, 3))
        results["video"] = _video_seconds(scratch, 8 if quick else 32)  # quick: 8 frames to stay under a minute
    return results
