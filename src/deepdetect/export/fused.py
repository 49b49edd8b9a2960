"""Experts and their stacker as one ONNX model: `logit` [N] (the fused logit, temperature 1) and `experts` [N, E]
(each expert's contribution weight * logit / temperature), with a contract that lists the experts; with
`quantize.int8=true` also EX/model.int8.onnx, each expert quantized with its own float prefix (`keep_fp32`) and the
stacker's sum in float.

The stacker is the one `deepdetect-reference` (`OUT/fusion/stacker.json`) or `deepdetect-lofo`
(`scores/<fusion recipe>/stacker.json`) fits on validation data: weights and a bias on the experts' calibrated
logits (evaluation/stacking.py: a logistic regression, or the label-free standardised mean). The experts must
share one preprocessing and face-crop geometry, so one input tensor serves them all. Parity: the ONNX outputs
against the same sum computed from each expert's PyTorch logits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from deepdetect.contract import Calibration, ModelCard, OperatingPoint
from deepdetect.contract.onnx import EXPERTS_NAME, OUTPUT_NAME, validate_signature, write_contract
from deepdetect.export.onnx_export import export_onnx
from deepdetect.export.parity import CheckCrops, compare, load_check_crops, prepared, torch_logits
from deepdetect.export.quantize import freeze_static_shapes
from deepdetect.export.settings import ExportError, ExportSettings, ExportUsageError
from deepdetect.export.variants import int8_variant
from deepdetect.inference.runtime import ort_session
from deepdetect.models.checkpoint import load_detector, resolve_model_path
from deepdetect.utils.io import atomic_path, atomic_write_text, weights_version

log = logging.getLogger(__name__)

MAX_STACKER_BYTES = 1_000_000


@dataclass(frozen=True)
class Stacker:
    """A fitted stacker: expert names (output order), their run folders, weights and bias, and its validation
    calibration (threshold on the fused probability, validation rates and ROC over videos)."""

    experts: tuple[str, ...]
    runs: tuple[Path, ...]
    weights: tuple[float, ...]
    bias: float
    calibration: Calibration
    val_video_auc: float | None = None

    @classmethod
    def read(cls, path: Path) -> Stacker:
        """Parse and check a stacker.json; raises ExportUsageError with one line for anything wrong."""
        if not path.is_file():
            raise ExportUsageError(f"fusion stacker not found: {path}")
        if path.stat().st_size > MAX_STACKER_BYTES:
            raise ExportUsageError(f"{path}: larger than {MAX_STACKER_BYTES} bytes, not a stacker file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            experts = tuple(str(e) for e in data["experts"])
            weights = tuple(float(data["weights"][e]) for e in experts)
            runs = tuple((path.parent / str(data["runs"][e])).resolve() for e in experts)
            bias = float(data["bias"])
            cal = Calibration(
                temperature=1.0,
                threshold=float(data["threshold"]),
                threshold_rule="fpr",
                target_fpr=float(data["target_fpr"]),
                val_fpr=_opt(data.get("val_fpr")),
                val_tpr=_opt(data.get("val_tpr")),
                roc=tuple(OperatingPoint.from_list(p) for p in data.get("roc") or ()),
                n_val_real=int(data["val_videos"]["real"]),
                n_val_fake=int(data["val_videos"]["fake"]),
                extra={"unit": "video: mean of the frames' fused probabilities (validation of every expert's data)"},
            )
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise ExportUsageError(f"{path}: not a stacker file ({type(exc).__name__}: {exc})") from None
        if not experts or not all(math.isfinite(v) for v in (*weights, bias)):
            raise ExportUsageError(f"{path}: a stacker needs at least one expert and finite weights")
        return cls(experts, runs, weights, bias, cal, _opt(data.get("val_video_auc")))


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


class FusedDetector(torch.nn.Module):
    """The experts on one input; returns (fused logit [N], contributions [N, E])."""

    def __init__(self, experts: list[torch.nn.Module], scale: np.ndarray, bias: float) -> None:
        super().__init__()
        self.experts = torch.nn.ModuleList(experts)
        self.scale: torch.Tensor
        self.bias: torch.Tensor
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each expert's logit times its weight / temperature, and their sum plus the bias."""
        logits = torch.stack([m(x).reshape(-1) for m in self.experts], dim=1)
        contrib = logits * self.scale
        return contrib.sum(dim=1) + self.bias, contrib


def _expert_cards(stacker: Stacker) -> tuple[list[torch.nn.Module], list[ModelCard], list[str]]:
    """Each expert's model, card and weights version; refuses experts that disagree on preprocessing or crops."""
    models: list[torch.nn.Module] = []
    cards: list[ModelCard] = []
    versions: list[str] = []
    for name, run in zip(stacker.experts, stacker.runs, strict=True):
        try:
            weights = resolve_model_path(run)
            model, meta = load_detector(weights)
        except Exception as exc:  # a missing or broken run folder: one line
            raise ExportUsageError(f"expert {name}: cannot load {run}: {exc}") from None
        versions.append(weights_version(weights))
        models.append(model)
        cards.append(ModelCard.from_sidecar(meta, versions[-1]))
    first = cards[0]
    for name, card in zip(stacker.experts[1:], cards[1:], strict=True):
        if card.preprocess != first.preprocess:
            raise ExportUsageError(
                f"expert {name} preprocesses {card.preprocess.to_dict()}, expert {stacker.experts[0]} "
                f"{first.preprocess.to_dict()}: a fused model needs one preprocessing"
            )
        if (card.crop_size, card.margin) != (first.crop_size, first.margin):
            raise ExportUsageError(f"expert {name} was trained on other face crops than {stacker.experts[0]}")
    return models, cards, versions


def fused_card(stacker: Stacker, cards: list[ModelCard], versions: list[str], version: str | None) -> ModelCard:
    """The fused model's card: the experts' shared preprocessing and crops, the stacker's calibration, the experts."""
    experts = [
        {"name": n, "weight": w, "temperature": c.temperature, "model": c.name, "version": v}
        for n, w, c, v in zip(stacker.experts, stacker.weights, cards, versions, strict=True)
    ]
    digest = hashlib.sha256(json.dumps([experts, stacker.bias], sort_keys=True).encode()).hexdigest()[:12]
    return replace(
        cards[0],
        name="fusion",
        version=version or digest,
        spec={"name": "fusion", "experts": [c.spec for c in cards]},
        calibration=stacker.calibration,
        training_data={n: c.training_data for n, c in zip(stacker.experts, cards, strict=True)},
        val_metrics={"video_auc": stacker.val_video_auc},
        init_weights=None,
        tuning=None,
        config=None,
        fusion={"bias": stacker.bias, "experts": experts},
    )


def _trained_on(cards: list[ModelCard]) -> Any:
    """The manifest(s) the first expert was trained on, as its card records them (None when not recorded)."""
    return (cards[0].training_data or {}).get("manifest")


def _check_crops(cards: list[ModelCard], settings: ExportSettings) -> CheckCrops:
    """The crops parity (and an INT8 variant's AUC change) is measured on: real crops when known."""
    manifest = settings.parity.manifest or _trained_on(cards)
    return load_check_crops(manifest, settings.parity.n, cards[0].preprocess.input_size, split=settings.parity.split)


def _parity(onnx_path: Path, fused: FusedDetector, crops: CheckCrops, batch: np.ndarray, atol: float) -> dict[str, Any]:
    """The ONNX outputs against the stacker sum of each expert's PyTorch logits."""
    ref_contrib = np.stack([torch_logits(m, batch) for m in fused.experts], axis=1) * fused.scale.numpy()
    session = ort_session(onnx_path)
    logit, contrib = session.run([OUTPUT_NAME, EXPERTS_NAME], {session.get_inputs()[0].name: batch})
    out = compare(ref_contrib.sum(axis=1) + float(fused.bias), np.asarray(logit).reshape(-1), 1.0, atol)
    out["max_abs_diff_experts"] = float(np.max(np.abs(ref_contrib - np.asarray(contrib)))) if len(batch) else None
    return {**out, "n_inputs": len(batch), "inputs": crops.source, "atol": atol}


def run_fused_export(settings: ExportSettings) -> dict[str, Any]:
    """Export the experts and stacker of `settings.fusion` as EX/model.onnx; returns (and writes) the report."""
    if settings.quantize.fp16:
        raise ExportUsageError("quantize.fp16 applies to single models; export the fused model without it")
    stacker = Stacker.read(Path(str(settings.fusion)))
    models, cards, versions = _expert_cards(stacker)
    card = fused_card(stacker, cards, versions, settings.model_version)
    scale = np.array([w / c.temperature for w, c in zip(stacker.weights, cards, strict=True)])
    fused = FusedDetector(models, scale, stacker.bias)
    out = settings.output_dir
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "model.onnx"
    with atomic_path(onnx_path) as tmp:
        proto = export_onnx(
            fused, tmp, card.preprocess.input_size, settings.opset, settings.dynamic_batch, (OUTPUT_NAME, EXPERTS_NAME)
        )
        if settings.fold_static_shapes:  # as for one model: ORT then fuses timm's "same" Pad into each Conv
            log.info("folded %d static-shape tensors into constants", freeze_static_shapes(proto))
            onnx.checker.check_model(proto)
        contract = card.to_onnx_metadata(settings.opset, "input", OUTPUT_NAME)
        write_contract(proto, contract)
        validate_signature(proto)
        onnx.save(proto, str(tmp))
    log.info("wrote %s: %d experts (%s)", onnx_path, len(models), ", ".join(stacker.experts))
    crops = _check_crops(cards, settings)
    batch = prepared(crops, card.preprocess)
    parity = _parity(onnx_path, fused, crops, batch, settings.parity.atol)
    report: dict[str, Any] = {
        "onnx": str(onnx_path),
        "fusion": str(settings.fusion),
        "experts": contract["fusion"]["experts"],
        "opset": settings.opset,
        "parity": parity,
        "contract": contract,
        "variants": {},
    }
    quant = settings.quantize
    if parity["passed"] and quant.int8:  # calibrated on the first expert's training crops when known; stacker float
        calib_manifest = settings.int8_calibration(_trained_on(cards))
        report["variants"]["int8"] = int8_variant(onnx_path, calib_manifest, card.preprocess, quant, batch, crops, 1.0)
        log.info("int8 variant: %s", {k: report["variants"]["int8"][k] for k in ("auc_change", "speedup", "coverage")})
    atomic_write_text(out / "export.json", json.dumps(report, indent=2, default=str))
    if not parity["passed"]:
        raise ExportError(f"parity failed: max |prob diff| {parity['max_abs_diff_prob']} > {parity['atol']}")
    log.info("parity ok: max |prob diff| %.2e on %d %s inputs", parity["max_abs_diff_prob"], *_shown(parity))
    return report


def _shown(parity: dict[str, Any]) -> tuple[int, str]:
    return int(parity["n_inputs"]), str(parity["inputs"])
