"""INT8 variants vs fp32 in ONNX Runtime on CPU: speed (interleaved repeats, medians) and which ops run as int8.

For each backbone: the fp32 export, the same graph after `prepare_for_int8` (still fp32: shows what the graph
clean-up alone gives), and INT8 variants: `plain` (the old path: QDQ straight on the export), `default` (prepared,
QDQ, per-channel s8 weights, u8 activations), `qoperator`, `per_tensor`. Random init and random inputs: this is a
speed benchmark; the accuracy of INT8 on a trained model is measured by `deepdetect-export ... quantize.int8=true`
(AUC change in export.json; see docs/performance.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {"prepare": False},
    "default": {},
    "qoperator": {"format": "qoperator"},
    "per_tensor": {"per_channel": False},
}


def _model_figures(name: str, size: int, scratch: Path, batch_size: int, threads: int, repeats: int) -> dict[str, Any]:
    import torch

    from deepdetect.export.onnx_export import export_onnx
    from deepdetect.export.quantize import (
        Int8Settings,
        int8_coverage,
        prepare_for_int8,
        quantize_int8,
        runtime_op_counts,
        time_sessions,
    )
    from deepdetect.inference.runtime import ort_session
    from deepdetect.models.detector import create_detector

    torch.manual_seed(0)
    fp32 = scratch / f"{name}.onnx"
    export_onnx(create_detector(name).eval(), fp32, (size, size))
    prepared = scratch / f"{name}.prepared.onnx"
    prep_stats = prepare_for_int8(fp32, prepared)
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((batch_size, 3, size, size)).astype(np.float32)
    paths = {"fp32": fp32, "fp32_prepared": prepared}
    for variant, overrides in VARIANTS.items():
        paths[f"int8_{variant}"] = quantize_int8(
            fp32, scratch / f"{name}.{variant}.int8.onnx", batch[:8], Int8Settings(**overrides)
        )
    sessions = {key: ort_session(path, threads=threads) for key, path in paths.items()}
    times = time_sessions(sessions, batch, repeats)
    ref = sessions["fp32"].run(None, {"input": batch})[0].reshape(-1)
    base = float(np.median(times["fp32"]))
    rows: dict[str, Any] = {}
    for key, session in sessions.items():
        out = session.run(None, {"input": batch})[0].reshape(-1)
        ops = runtime_op_counts(paths[key])
        median = float(np.median(times[key]))
        rows[key] = {
            "images_per_s": round(batch_size / median, 1),
            "median_s": round(median, 4),
            "vs_fp32": round(base / median, 3),
            "repeats_s": [round(t, 4) for t in times[key]],
            "max_abs_logit_diff_vs_fp32": float(np.max(np.abs(out - ref))),
            "coverage": int8_coverage(ops),
            "runtime_ops": ops,
        }
    return {
        "model": name,
        "input_size": size,
        "batch": batch_size,
        "threads": threads,
        "weights": "random init; random normal inputs (speed only)",
        "prepare_stats": prep_stats,
        "variants": rows,
    }


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """INT8 vs fp32 per variant (quick: test_efficientnet at 64 px only)."""
    import torch

    del out_dir  # models are scratch files
    threads = max(1, min(4, torch.get_num_threads()))
    models = [("test_efficientnet", 64)] if quick else [("efficientnet_b0", 224), ("tf_efficientnet_lite0", 224)]
    results: dict[str, Any] = {"threads": threads, "models": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in models:
            results["models"].append(_model_figures(name, size, Path(tmp), 32, threads, 5 if quick else 9))
    return results
