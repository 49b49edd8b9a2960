"""The face crops used to check an export (from a manifest, else synthetic) and the ONNX-vs-torch comparison."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from deepdetect.contract import Preprocess
from deepdetect.contract.preprocess import prepare_batch, sigmoid
from deepdetect.data.manifest import manifest_paths, read_manifests
from deepdetect.models.scoring import auc_or_nan, score_batches

log = logging.getLogger(__name__)


@dataclass
class CheckCrops:
    """Crops (uint8 RGB) to check an export on, their labels (1 fake / 0 real / -1 unknown) and where they came from."""

    crops: list[np.ndarray]
    labels: np.ndarray
    source: str  # "manifest:<path>[,<path>...][ split=<split>]" or "synthetic"
    videos: list[str] | None = None  # each crop's video_id (manifest crops only), for video-level AUC


def load_check_crops(
    manifest: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    n: int,
    size: tuple[int, int],
    seed: int = 0,
    split: str | None = None,
) -> CheckCrops:
    """Up to `n` crops sampled (seeded, both classes when present) from one or more manifests, only rows of `split`
    when given; synthetic noise without a manifest."""
    paths = manifest_paths(manifest) if manifest is not None else []
    if paths and all(path.is_file() for path in paths):
        frame = read_manifests(paths)
        if split is not None:
            if "split" not in frame.columns or not (frame["split"] == split).any():
                raise ValueError(f"no {split!r} rows in {', '.join(map(str, paths))}")
            frame = frame[frame["split"] == split]
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
            source = "manifest:" + ",".join(map(str, paths)) + (f" split={split}" if split is not None else "")
            videos = [f"{d}:{v}" for d, v in zip(rows["dataset"], rows["video_id"], strict=True)]
            return CheckCrops(crops, labels, source, videos)
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


def video_auc_or_none(labels: np.ndarray, scores: np.ndarray, videos: Sequence[str] | None) -> float | None:
    """ROC AUC over videos (mean score of each video's labelled crops), or None without videos or both classes."""
    if videos is None:
        return None
    mask = labels >= 0
    frame = pd.DataFrame({"video": np.asarray(videos)[mask], "label": labels[mask], "score": scores[mask]})
    per_video = frame.groupby("video").agg(label=("label", "max"), score=("score", "mean"))
    return auc_or_none(per_video["label"].to_numpy(), per_video["score"].to_numpy())


def prepared(crops: CheckCrops, preprocess: Preprocess) -> np.ndarray:
    """The NCHW float32 batch for these crops (the shared preprocessing)."""
    return prepare_batch(crops.crops, preprocess)
