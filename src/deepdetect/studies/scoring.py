"""What a recipe hands the leave-one-family-out table: its calibrated frame probabilities and its threshold, and
the `<part>_scores.csv` files that keep them (written by lofo, read back by fusion with evaluation/scorefile.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from deepdetect.evaluation.scorefile import write_scores

SCORE_COLUMNS = ("crop_path", "source_path", "label", "source", "method", "group", "video_id", "frame_index", "prob")


@dataclass
class Scored:
    """A trained recipe's calibrated frame probabilities on the families and unseen reals, and its threshold."""

    families: pd.DataFrame
    unseen: pd.DataFrame
    threshold: float
    seconds: float
    experts: dict[str, Any] = field(default_factory=dict)


def write_study_scores(frame: pd.DataFrame, path: Path) -> None:
    """A recipe's scored crops (the SCORE_COLUMNS it has) as a spreadsheet-safe CSV whose names read back exactly."""
    write_scores(frame, path, SCORE_COLUMNS)
