"""Checkpoints: final weights as safetensors + a JSON sidecar, full training state as a weights-only torch file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from deepdetect.contract.card import SIDECAR_FORMAT
from deepdetect.models.detector import Detector, ModelBuildError, create_detector
from deepdetect.models.tuning import plain_state_dict
from deepdetect.models.weights import UnsafeCheckpointError as UnsafeCheckpointError
from deepdetect.models.weights import safe_torch_load as safe_torch_load
from deepdetect.utils.io import atomic_path, atomic_write_text

FINAL_NAME = "model.safetensors"


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """torch.save to a temp file in the same folder, then rename."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def sidecar_path(weights: str | os.PathLike[str]) -> Path:
    """`x.safetensors` -> `x.json`."""
    return Path(weights).with_suffix(".json")


def save_detector(model: torch.nn.Module, path: str | os.PathLike[str], meta: dict[str, Any]) -> Path:
    """Write weights as safetensors and `meta` as the JSON sidecar beside it, both atomically.

    `meta` must hold `model` (create_detector kwargs incl. `name`) and `preprocess`; see docs for the schema.
    Low-rank residuals (models.tuning) are merged into their weights: the file holds a plain timm model.
    """
    for key in ("model", "preprocess"):
        if key not in meta:
            raise ValueError(f"model metadata needs a {key!r} entry")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in plain_state_dict(model).items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": SIDECAR_FORMAT})
    atomic_write_text(sidecar_path(path), json.dumps({"format": SIDECAR_FORMAT, **meta}, indent=2, default=str))
    return path


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """A run folder, a checkpoints folder, or a `.safetensors` file -> the weights file to load."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / FINAL_NAME, path / "checkpoints" / "best.safetensors", path / "best.safetensors"):
            if candidate.is_file():
                return candidate
        raise ModelBuildError(f"no {FINAL_NAME} or checkpoints/best.safetensors under {path}")
    if not path.is_file():
        raise ModelBuildError(f"model not found: {path}")
    if path.suffix != ".safetensors":
        raise ModelBuildError(f"expected a run folder or a .safetensors file, got {path}")
    return path


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the JSON sidecar of a weights file or run folder."""
    weights = resolve_model_path(path)
    side = sidecar_path(weights)
    if not side.is_file():
        raise ModelBuildError(f"{weights} has no sidecar {side.name}; cannot know how to build the model")
    meta: dict[str, Any] = json.loads(side.read_text(encoding="utf-8"))
    return meta


def load_detector(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Detector, dict[str, Any]]:
    """Build the detector described by the sidecar and load its safetensors weights (eval mode)."""
    weights = resolve_model_path(path)
    meta = read_meta(weights)
    spec = dict(meta["model"])
    name = spec.pop("name")
    spec.pop("pretrained", None)
    spec.pop("weights", None)
    model = create_detector(name, pretrained=False, **spec)
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelBuildError(f"{weights} does not match {name}: missing={missing[:5]} unexpected={unexpected[:5]}")
    model.to(device).eval()
    return model, meta
