"""A trained run's calibrated scores on manifest rows, and what a recipe hands the leave-one-family-out table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Scored:
    """A trained recipe's calibrated frame probabilities on the families and unseen reals, and its threshold."""

    families: pd.DataFrame
    unseen: pd.DataFrame
    threshold: float
    seconds: float
    experts: dict[str, Any] = field(default_factory=dict)


def score_rows(run_dir: Path, manifests: Sequence[Path], exclude_groups: Sequence[str]) -> tuple[pd.DataFrame, float]:
    """Every crop of `manifests` (all splits) with the run's calibrated P(fake), and the run's stored threshold."""
    from deepdetect.data.manifest import read_manifests
    from deepdetect.evaluation.calibration import apply_temperature
    from deepdetect.evaluation.evaluate import load_run, score_crops
    from deepdetect.utils.device import resolve_device

    device = resolve_device("cpu")
    run = load_run(str(run_dir), device)
    frame = read_manifests([str(m) for m in manifests])
    frame = frame[frame["label"].isin(["real", "fake"]) & ~frame["group"].isin(list(exclude_groups))]
    frame = frame.reset_index(drop=True)
    logits = score_crops(run.model, frame["abs_crop_path"].tolist(), run.preprocess, 64, device, desc="scoring")
    frame["logit"] = logits
    frame = frame[np.isfinite(logits)].reset_index(drop=True)
    frame["prob"] = apply_temperature(frame["logit"].to_numpy(), run.temperature)
    return frame, float(run.threshold)
