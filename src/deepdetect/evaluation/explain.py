"""Grad-CAM explanations of an evaluation's most confident mistakes, ready for the report."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepdetect.evaluation.report import array_to_data_uri
from deepdetect.evaluation.runs import LoadedRun, load_crop

log = logging.getLogger(__name__)


def build_explanations(run: LoadedRun, scored: pd.DataFrame, n: int, device: torch.device) -> list[dict[str, Any]]:
    """Grad-CAM overlays for the `n` most confident false positives and false negatives."""
    from deepdetect.contract.preprocess import prepare_batch
    from deepdetect.models.gradcam import gradcam, overlay

    if n <= 0:
        return []
    fp = scored[(scored["y"] == 0) & (scored["prob"] >= run.threshold)].nlargest(n, "prob")
    fn = scored[(scored["y"] == 1) & (scored["prob"] < run.threshold)].nsmallest(n, "prob")
    out: list[dict[str, Any]] = []
    for kind, rows in (("false positive", fp), ("false negative", fn)):
        for row in rows.itertuples(index=False):
            crop = load_crop(str(row.abs_crop_path))
            if crop is None:
                continue
            batch = torch.from_numpy(prepare_batch([crop], run.preprocess)).to(device)
            try:
                heat = gradcam(run.model, batch)[0]
            except RuntimeError as exc:  # explanation is best-effort; never fail the evaluation over it
                log.warning("Grad-CAM failed for %s: %s", row.crop_path, exc)
                continue
            out.append(
                {
                    "kind": kind,
                    "crop_path": str(row.crop_path),
                    "source": str(getattr(row, "source", "")),
                    "prob": float(row.prob),
                    "image": array_to_data_uri(np.hstack([crop, overlay(crop, heat)])),
                    "layout": "left: the face crop as scored; right: its Grad-CAM heat map (red = evidence for fake)",
                }
            )
    return out
