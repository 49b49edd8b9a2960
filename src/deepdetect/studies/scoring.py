"""What a recipe hands the leave-one-family-out table: its calibrated frame probabilities and its threshold, and
the `<part>_scores.csv` files that keep them (written by lofo, read back by fusion)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from deepdetect.utils.csvcells import B64_SUFFIX, frame_csv, read_frame_csv
from deepdetect.utils.io import atomic_write_text

SCORE_COLUMNS = ("crop_path", "source_path", "label", "source", "method", "group", "video_id", "frame_index", "prob")
SCORE_TEXT = ("crop_path", "source_path", "label", "source", "method", "group", "video_id")
SCORE_EXACT = ("crop_path", "source_path")  # file names: their exact bytes kept when they are not UTF-8


@dataclass
class Scored:
    """A trained recipe's calibrated frame probabilities on the families and unseen reals, and its threshold."""

    families: pd.DataFrame
    unseen: pd.DataFrame
    threshold: float
    seconds: float
    experts: dict[str, Any] = field(default_factory=dict)


def write_scores(frame: pd.DataFrame, path: Path) -> None:
    """A recipe's scored crops (the SCORE_COLUMNS it has) as a spreadsheet-safe CSV whose names read back exactly."""
    keep = [c for c in SCORE_COLUMNS if c in frame.columns]
    text = [c for c in SCORE_TEXT if c in keep]
    atomic_write_text(path, frame_csv(frame[keep], text, [c for c in SCORE_EXACT if c in keep]))


def read_scores(path: Path) -> pd.DataFrame:
    """Inverse of `write_scores`: names exactly as written, `frame_index` as int64 and `prob` as float."""
    frame = read_frame_csv(path, SCORE_TEXT, SCORE_EXACT)
    frame = frame.drop(columns=[c for c in frame.columns if c.endswith(B64_SUFFIX)])
    return frame.assign(frame_index=frame["frame_index"].astype("int64"), prob=frame["prob"].astype(float))
