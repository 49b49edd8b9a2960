"""A trained detector loaded for evaluation, with its stored calibration, and the face crops it is scored on."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepdetect.contract import ModelCard, Preprocess
from deepdetect.data.dataset import read_crop
from deepdetect.models.checkpoint import load_detector, resolve_model_path
from deepdetect.models.detector import Detector

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A detector with its calibration and where it came from."""

    name: str
    path: str
    model: Detector
    meta: dict[str, Any]
    card: ModelCard
    preprocess: Preprocess
    temperature: float
    threshold: float
    threshold_rule: str
    reference_fpr: float
    reference_fpr_from: str


def load_run(checkpoint: str, device: torch.device, target_fpr: float = 0.05) -> LoadedRun:
    """Load a detector and its stored calibration (T=1, threshold 0.5 with a warning when absent)."""
    weights = resolve_model_path(checkpoint)
    model, meta = load_detector(weights, device=device)
    card = ModelCard.from_sidecar(meta)
    cal = card.calibration
    if not cal.calibrated:
        log.warning("%s has no stored calibration; using temperature 1 and threshold 0.5", checkpoint)
    val = dict(card.val_metrics or {})
    ref_from = "target_fpr"
    reference = target_fpr
    for source, key in (("val_metrics", "fpr_at_threshold"), ("val_metrics", "fpr"), ("calibration", "val_fpr")):
        value = (val if source == "val_metrics" else cal.extra).get(key)
        if value is not None and math.isfinite(float(value)):
            reference, ref_from = float(value), f"{source}.{key}"
            break
    run_dir = weights.parent.parent if weights.parent.name == "checkpoints" else weights.parent
    return LoadedRun(
        name=run_dir.name,
        path=str(checkpoint),
        model=model,
        meta=meta,
        card=card,
        preprocess=card.preprocess,
        temperature=cal.temperature,
        threshold=cal.threshold,
        threshold_rule=cal.threshold_rule,
        reference_fpr=reference,
        reference_fpr_from=ref_from,
    )


def load_crop(path: str) -> np.ndarray | None:
    """An HxWx3 uint8 RGB crop, or None when the file is missing or unreadable."""
    try:
        return read_crop(path)
    except (OSError, ValueError):
        return None
