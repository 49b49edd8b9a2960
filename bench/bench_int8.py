"""INT8 variants vs fp32 in ONNX Runtime on CPU: speed (interleaved repeats, medians) and which ops run as int8.

For each backbone: the fp32 export, the same graph after `prepare_for_int8` (still fp32: shows what the graph
clean-up alone gives), and INT8 variants: `plain` (the old path: QDQ straight on the export), `default` (prepared,
QDQ, per-channel s8 weights, u8 activations, every node int8), `qoperator`, `per_tensor`, and `shipped`: the
settings in configs/export.yaml (`quantize.int8_settings`, a float prefix). Random init and random inputs: this part
is a speed benchmark. When the face-swap reference run and its crops are there (outputs/reference, see
docs/performance.md §1), the full run also exports it with the shipped settings and records the AUC change on the
dev test split (`reference_accuracy`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXPORT_CONFIG = ROOT / "src" / "deepdetect" / "configs" / "export.yaml"
REFERENCE_RUN = ROOT / "outputs" / "reference" / "runs" / "main"
REFERENCE_CROPS = [
    ROOT / "outputs" / "reference" / "crops" / s / "manifest.csv" for s in ("faceswap-dfl", "ffpp-c23", "dfdc-sample")
]


def shipped_settings() -> dict[str, Any]:
    """`quantize.int8_settings` from configs/export.yaml: what `deepdetect-export quantize.int8=true` uses."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(EXPORT_CONFIG).quantize.int8_settings
    plain = OmegaConf.to_container(node)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}


VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {"prepare": False},
    "default": {"keep_fp32": []},
    "qoperator": {"format": "qoperator", "keep_fp32": []},
    "per_tensor": {"per_channel": False, "keep_fp32": []},
    "shipped": {},  # filled from configs/export.yaml at run time
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
        settings = Int8Settings.from_config(overrides or shipped_settings())
        paths[f"int8_{variant}"] = quantize_int8(fp32, scratch / f"{name}.{variant}.int8.onnx", batch[:8], settings)
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


def reference_accuracy(scratch: Path) -> dict[str, Any]:
    """Export the face-swap reference run with the shipped INT8 settings; AUC change on its dev test split."""
    from omegaconf import OmegaConf

    from deepdetect.export.pipeline import export

    if not REFERENCE_RUN.is_dir() or not all(p.is_file() for p in REFERENCE_CROPS):
        return {"skipped": f"no reference run/crops under {ROOT / 'outputs' / 'reference'} (docs/performance.md §1)"}
    crops = [str(p) for p in REFERENCE_CROPS]
    cfg = OmegaConf.load(EXPORT_CONFIG)
    overrides = {
        "checkpoint": str(REFERENCE_RUN),
        "output_dir": str(scratch / "reference"),
        "parity": {"manifest": crops, "split": "test", "n": 100000},
        "quantize": {"int8": True, "calibration_manifest": crops, "calibration_split": "train"},
    }
    plain = OmegaConf.to_container(cfg, resolve=False)  # output_dir's ${now:} resolver exists only under Hydra
    assert isinstance(plain, dict)
    cfg = OmegaConf.merge({k: v for k, v in plain.items() if k not in ("defaults", "hydra")}, overrides)
    int8 = export(cfg)["variants"]["int8"]
    keys = ("auc_fp32", "auc", "auc_change", "video_auc_fp32", "video_auc", "video_auc_change", "speedup")
    return {
        **{k: int8[k] for k in keys},
        "max_abs_diff_prob_vs_fp32": int8["max_abs_diff_prob_vs_fp32"],
        "n_inputs": int8["n_inputs"],
        "settings": int8["settings"],
        "coverage": int8["coverage"],
        "seconds_repeats": int8["seconds_repeats"],
    }


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """INT8 vs fp32 per variant (quick: test_efficientnet at 64 px only); full: also the reference model's AUC."""
    import torch

    del out_dir  # models are scratch files
    threads = max(1, min(4, torch.get_num_threads()))
    models = [("test_efficientnet", 64)] if quick else [("efficientnet_b0", 224), ("tf_efficientnet_lite0", 224)]
    results: dict[str, Any] = {"threads": threads, "shipped_settings": shipped_settings(), "models": []}
    with tempfile.TemporaryDirectory() as tmp:
        if not quick:  # the trained 128 px lite0 first: the speed-up at the size it runs at
            results["models"].append(_model_figures("tf_efficientnet_lite0", 128, Path(tmp), 32, threads, 9))
        for name, size in models:
            results["models"].append(_model_figures(name, size, Path(tmp), 32, threads, 5 if quick else 9))
        if not quick:
            results["reference_accuracy"] = reference_accuracy(Path(tmp))
    return results
