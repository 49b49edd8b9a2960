"""`export(cfg)` / `run_export(settings)`: checkpoint -> EX/model.onnx with its contract, a parity check, optional
INT8/fp16, EX/export.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import onnx
from omegaconf import DictConfig

from deepdetect.contract import Preprocess
from deepdetect.contract.onnx import build_contract, validate_signature, write_contract
from deepdetect.export.onnx_export import export_onnx
from deepdetect.export.parity import (
    compare,
    load_check_crops,
    prepared,
    torch_logits,
)
from deepdetect.export.quantize import convert_fp16, freeze_static_shapes
from deepdetect.export.settings import ExportError, ExportSettings, ExportUsageError
from deepdetect.export.variants import int8_variant, variant_report
from deepdetect.inference.runtime import ort_session, run_session
from deepdetect.models.checkpoint import load_detector, resolve_model_path
from deepdetect.utils.io import atomic_path, atomic_write_text, weights_version

log = logging.getLogger(__name__)


__all__ = ["ExportError", "ExportSettings", "ExportUsageError", "export", "run_export"]


def training_manifest(meta: dict[str, Any]) -> str | None:
    """The manifest a checkpoint was trained on, as recorded in its sidecar, if any."""
    data = meta.get("training_data") or {}
    config = meta.get("config") or {}
    candidates: list[Any] = []
    for value in (data.get("manifest"), data.get("manifest_path"), (config.get("data") or {}).get("manifest")):
        candidates.extend(value if isinstance(value, list | tuple) else [value])  # several manifests: the first
    for cand in candidates:
        if cand and Path(str(cand)).is_file():
            return str(cand)
    return None


def _save_atomic(model: onnx.ModelProto, path: Path) -> None:
    """onnx.save through `utils.io.atomic_path`: a reader never sees a half-written model."""
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export the checkpoint in `cfg.checkpoint` to `cfg.output_dir`; returns (and writes) the export report."""
    return run_export(ExportSettings.from_config(cfg))


def run_export(settings: ExportSettings) -> dict[str, Any]:
    """Export `settings.checkpoint` (or the experts of `settings.fusion`) to `settings.output_dir`; returns (and
    writes) the export report."""
    if settings.fusion:
        from deepdetect.export.fused import run_fused_export

        return run_fused_export(settings)
    out = settings.output_dir
    out.mkdir(parents=True, exist_ok=True)
    weights = resolve_model_path(settings.checkpoint)
    model, meta = load_detector(weights)
    opset = settings.opset
    version = settings.model_version or weights_version(weights)
    contract = build_contract(meta, version, opset)
    preprocess = Preprocess.from_dict(contract["preprocess"])

    onnx_path = out / "model.onnx"
    tmp_path = out / ".export.onnx.tmp"
    proto = export_onnx(model, tmp_path, preprocess.input_size, opset, settings.dynamic_batch)
    tmp_path.unlink(missing_ok=True)
    if settings.fold_static_shapes:
        # timm's TF "same" padding is exported as Shape/Gather/Ceil/Pad arithmetic on the (static) H and W; as
        # constants ORT fuses the Pad into the Conv (tf_efficientnet_lite0 fp32: 1.56x, bench/bench_int8.py).
        folded = freeze_static_shapes(proto)
        onnx.checker.check_model(proto)
        log.info("folded %d static-shape tensors into constants", folded)
    write_contract(proto, contract)
    validate_signature(proto)
    _save_atomic(proto, onnx_path)
    log.info("wrote %s (opset %d)", onnx_path, opset)

    par = settings.parity
    manifest = par.manifest or training_manifest(meta)
    crops = load_check_crops(manifest, par.n, preprocess.input_size, split=par.split)
    batch = prepared(crops, preprocess)
    temperature = float(contract["calibration"]["temperature"])
    ref = torch_logits(model, batch)
    logits = run_session(ort_session(onnx_path), batch)
    parity = {**compare(ref, logits, temperature, par.atol), "n_inputs": len(batch), "inputs": crops.source}
    parity["atol"] = par.atol

    report: dict[str, Any] = {
        "onnx": str(onnx_path),
        "checkpoint": str(weights),
        "opset": opset,
        "dynamic_batch": settings.dynamic_batch,
        "model": contract["model"],
        "parity": parity,
        "variants": {},
        "contract": contract,
    }
    quant = settings.quantize
    if parity["passed"] and quant.int8:
        calib_manifest = settings.int8_calibration(training_manifest(meta))
        report["variants"]["int8"] = int8_variant(
            onnx_path, calib_manifest, preprocess, quant, batch, crops, temperature
        )
    if parity["passed"] and quant.fp16:
        try:
            fp16_path = convert_fp16(onnx_path, out / "model.fp16.onnx")
            report["variants"]["fp16"] = variant_report("fp16", fp16_path, onnx_path, batch, crops, temperature)
        except ImportError as exc:
            report["variants"]["fp16"] = {"skipped": f"onnxruntime.transformers.float16 unavailable: {exc}"}
    if settings.config is not None:
        report["config"] = settings.config
    atomic_write_text(out / "export.json", json.dumps(report, indent=2, default=str))
    if not parity["passed"]:
        raise ExportError(
            f"parity failed: max |prob diff| {parity['max_abs_diff_prob']} > {par.atol} on {parity['inputs']} "
            f"(see {out / 'export.json'})"
        )
    log.info("parity ok: max |prob diff| %.2e on %d %s inputs", parity["max_abs_diff_prob"], len(batch), crops.source)
    return report
