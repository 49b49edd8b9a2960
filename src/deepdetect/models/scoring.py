"""Running a detector over batches of prepared crops, and the ROC AUC of the result: the one loop and the one AUC
that training (validation), evaluation and export (parity) share."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


@torch.no_grad()
def score_batches(
    model: torch.nn.Module,
    batches: Iterable[torch.Tensor | np.ndarray],
    device: torch.device | str = "cpu",
    autocast: Any = None,
    channels_last: bool = False,
) -> np.ndarray:
    """Logits (N,) float32 of `model` in eval mode over NCHW float batches (tensors or arrays), in order.

    `autocast` is an optional autocast context (mixed precision); `channels_last` converts each batch's memory
    format as the model was trained with. The model is not moved: put it on `device` first.
    """
    model.eval()
    device = torch.device(device)
    parts: list[np.ndarray] = []
    for batch in batches:
        images = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast if autocast is not None else nullcontext():
            logits = model(images)
        parts.append(logits.float().cpu().numpy().reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def auc_or_nan(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (fake = 1 positive; ties count half, as in sklearn); NaN when the labels lack a class."""
    labels = np.asarray(labels).ravel()
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64).ravel()))
