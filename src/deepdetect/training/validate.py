"""Scoring a dataset with a model and the validation metrics used for model selection (frame and video AUC)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from deepdetect.contract.preprocess import sigmoid
from deepdetect.models.scoring import auc_or_nan, score_batches
from deepdetect.training.distributed import DistInfo, gather_objects


def predict_logits(
    model: nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    autocast: Any = None,
    channels_last: bool = False,
    info: DistInfo | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, logits) over the loader, gathered from every rank and sorted by index (duplicates dropped)."""
    idx_parts: list[np.ndarray] = []

    def images() -> Iterator[torch.Tensor]:
        for batch, _, index in loader:
            idx_parts.append(index.numpy())
            yield batch

    logits = score_batches(model, images(), device, autocast, channels_last)
    local = (np.concatenate(idx_parts) if idx_parts else np.zeros(0, dtype=np.int64), logits)
    parts = gather_objects(local, info or DistInfo())
    index = np.concatenate([p[0] for p in parts])
    logits = np.concatenate([p[1] for p in parts])
    index, first = np.unique(index, return_index=True)
    return index, logits[first].astype(np.float64)


def validation_metrics(
    frame: pd.DataFrame, labels: np.ndarray, logits: np.ndarray, prefix: str = "val"
) -> dict[str, float]:
    """Frame AUC, video AUC (mean frame probability per `video_id`), loss and accuracy at 0.5."""
    probs = sigmoid(np.asarray(logits, dtype=np.float64))
    labels = np.asarray(labels, dtype=np.float64)
    loss = float(np.mean(np.logaddexp(0.0, np.where(labels == 1, -logits, logits)))) if len(labels) else float("nan")
    per_video = pd.DataFrame({"video": frame["video_id"].to_numpy(), "y": labels, "p": probs}).groupby("video").mean()
    return {
        f"{prefix}/loss": loss,
        f"{prefix}/frame_auc": auc_or_nan(labels, probs),
        f"{prefix}/video_auc": auc_or_nan(per_video["y"].round().to_numpy(), per_video["p"].to_numpy()),
        f"{prefix}/acc": float(np.mean((probs >= 0.5) == (labels == 1))) if len(labels) else float("nan"),
        f"{prefix}/n_frames": float(len(labels)),
        f"{prefix}/n_videos": float(len(per_video)),
    }


def is_better(value: float, best: float | None, mode: str) -> bool:
    """Whether `value` improves on `best` (NaN never improves; anything beats None)."""
    if np.isnan(value):
        return best is None
    if best is None or np.isnan(best):
        return True
    return value > best if mode == "max" else value < best
