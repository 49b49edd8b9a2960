"""A converted variant of an exported model (INT8, fp16) measured against the fp32 export it came from."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.contract import Preprocess
from deepdetect.export.parity import CheckCrops, auc_or_none, compare, load_check_crops, prepared, video_auc_or_none
from deepdetect.export.quantize import int8_coverage, quantize_int8, runtime_op_counts, time_sessions
from deepdetect.export.settings import QuantizeSettings
from deepdetect.inference.runtime import ort_session, run_session


def variant_report(
    kind: str, path: Path, fp32_path: Path, batch: np.ndarray, crops: CheckCrops, temperature: float
) -> dict[str, Any]:
    """Parity, AUC change and CPU speed-up of a converted model against the fp32 export."""
    fp32 = ort_session(fp32_path)
    other = ort_session(path)
    ref, logits = run_session(fp32, batch), run_session(other, batch)
    auc_ref, auc_new = auc_or_none(crops.labels, ref), auc_or_none(crops.labels, logits)
    vauc_ref = video_auc_or_none(crops.labels, ref, crops.videos)
    vauc_new = video_auc_or_none(crops.labels, logits, crops.videos)
    # Interleaved runs on the same inputs; the median of each side (a shared machine's noise hits both alike).
    times = time_sessions({"fp32": fp32, kind: other}, batch, repeats=5)
    t_ref, t_new = float(np.median(times["fp32"])), float(np.median(times[kind]))
    diff = compare(ref, logits, temperature, atol=float("inf"))
    return {
        "path": str(path),
        "size_mb": round(path.stat().st_size / 1e6, 3),
        "max_abs_diff_prob_vs_fp32": diff["max_abs_diff_prob"],
        "auc_fp32": auc_ref,
        "auc": auc_new,
        "auc_change": None if auc_ref is None or auc_new is None else auc_new - auc_ref,
        "auc_note": None if auc_ref is not None else f"no AUC: the {crops.source} inputs lack both labels",
        "video_auc_fp32": vauc_ref,  # mean logit per video
        "video_auc": vauc_new,
        "video_auc_change": None if vauc_ref is None or vauc_new is None else vauc_new - vauc_ref,
        "seconds_fp32": t_ref,
        "seconds": t_new,
        "speedup": t_ref / t_new if t_new > 0 else None,
        "seconds_repeats": {name: [round(t, 4) for t in ts] for name, ts in times.items()},
        "n_inputs": len(batch),
        "kind": kind,
    }


def int8_variant(
    onnx_path: Path,
    calibration_manifest: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    preprocess: Preprocess,
    quant: QuantizeSettings,
    batch: np.ndarray,
    crops: CheckCrops,
    temperature: float,
) -> dict[str, Any]:
    """Quantize `onnx_path` to `model.int8.onnx` beside it, calibrated on `quant.calibration_n` crops of
    `calibration_manifest` (another draw than the checked crops), and measure it against `onnx_path` on `batch`:
    the `variants.int8` entry of export.json."""
    calib = load_check_crops(
        calibration_manifest, quant.calibration_n, preprocess.input_size, seed=1, split=quant.calibration_split
    )
    calibration = prepared(calib, preprocess)
    int8_path = quantize_int8(onnx_path, onnx_path.with_name("model.int8.onnx"), calibration, quant.int8_settings)
    ops = runtime_op_counts(int8_path)
    return {
        **variant_report("int8", int8_path, onnx_path, batch, crops, temperature),
        "calibration": {"inputs": calib.source, "n": len(calibration)},
        "settings": quant.int8_settings.to_dict(),
        "coverage": int8_coverage(ops),
        "runtime_ops": ops,
    }
