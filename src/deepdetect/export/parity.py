"""The face crops used to check an export (from a manifest, else synthetic) and the ONNX-vs-torch comparison."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from deepdetect.contract import Preprocess
from deepdetect.contract.preprocess import prepare_batch, sigmoid
from deepdetect.data.manifest import read_manifest
from deepdetect.models.scoring import auc_or_nan, score_batches

log = logging.getLogger(__name__)


@dataclass
class CheckCrops:
    """Crops (uint8 RGB) to check an export on, their labels (1 fake / 0 real / -1 unknown) and where they came from."""

    crops: list[np.ndarray]
    labels: np.ndarray
    source: str  # "manifest:<path>" or "synthetic"


def load_check_crops(
    manifest: str | os.PathLike[str] | None, n: int, size: tuple[int, int], seed: int = 0
) -> CheckCrops:
    """Up to `n` crops sampled (seeded, both classes when present) from a manifest; synthetic noise without one."""
    if manifest is not None and Path(manifest).is_file():
        frame = read_manifest(manifest)
        frame = frame[[Path(p).is_file() for p in frame["abs_crop_path"]]]
        if len(frame):
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(frame))
            # Interleave the classes so a small n still holds both labels when the manifest has them.
            labels_all = frame["label"].to_numpy()
            groups = [list(order[labels_all[order] == lab]) for lab in ("fake", "real", "unknown")]
            picked = [int(g[i]) for i in range(len(order)) for g in groups if i < len(g)][:n]
            rows = frame.iloc[picked]
            crops = [np.asarray(Image.open(p).convert("RGB")) for p in rows["abs_crop_path"]]
            labels = np.array([{"fake": 1, "real": 0}.get(lab, -1) for lab in rows["label"]], dtype=np.int64)
            return CheckCrops(crops, labels, f"manifest:{manifest}")
        log.warning("manifest %s lists no existing crop; using synthetic inputs", manifest)
    rng = np.random.default_rng(seed)
    h, w = size
    crops = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(n)]
    return CheckCrops(crops, np.full(n, -1, dtype=np.int64), "synthetic")


def torch_logits(model: torch.nn.Module, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """PyTorch logits (N,) for a float32 NCHW batch on CPU (the model is moved to CPU)."""
    chunks = (batch[i : i + batch_size] for i in range(0, len(batch), batch_size))
    return score_batches(model.cpu(), chunks, "cpu")


def compare(ref_logits: np.ndarray, logits: np.ndarray, temperature: float, atol: float) -> dict[str, Any]:
    """Max absolute differences of logits and calibrated probabilities; `passed` when prob diff <= atol."""
    if len(ref_logits) == 0:
        return {"max_abs_diff_prob": None, "max_abs_diff_logit": None, "passed": False}
    diff_logit = float(np.max(np.abs(ref_logits - logits)))
    diff_prob = float(np.max(np.abs(sigmoid(ref_logits / temperature) - sigmoid(logits / temperature))))
    return {"max_abs_diff_prob": diff_prob, "max_abs_diff_logit": diff_logit, "passed": bool(diff_prob <= atol)}


def auc_or_none(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC over the labelled inputs (label >= 0), or None when both classes are not present."""
    mask = labels >= 0
    auc = auc_or_nan(labels[mask], scores[mask])
    return None if np.isnan(auc) else auc


def prepared(crops: CheckCrops, preprocess: Preprocess) -> np.ndarray:
    """The NCHW float32 batch for these crops (the shared preprocessing)."""
    return prepare_batch(crops.crops, preprocess)
