"""Per-crop score tables on disk: evaluate's `scores.csv` and the families study's `<part>_scores.csv` share one
writer and one reader, so text cells are spreadsheet-safe and file names and ids read back exactly as written
(utils/csvcells)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepdetect.utils.csvcells import B64_SUFFIX, frame_csv, read_frame_csv
from deepdetect.utils.io import atomic_write_text

TEXT_COLUMNS = (
    "run",
    "manifest",
    "level",
    "video_id",
    "crop_path",
    "source_path",
    "label",
    "pred",
    "dataset",
    "source",
    "method",
    "compression",
    "split",
    "status",
    "group",
)
EXACT_COLUMNS = ("crop_path", "source_path")  # file names: their exact bytes kept when they are not UTF-8
INDEX_COLUMNS = ("frame_index", "y", "n_frames")  # whole numbers; empty where a row has none (a video row)


def write_scores(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    """The `columns` of `frame` that it has, in that order, as a spreadsheet-safe CSV whose names read back exactly."""
    keep = [c for c in columns if c in frame.columns]
    text = [c for c in TEXT_COLUMNS if c in keep]
    atomic_write_text(path, frame_csv(frame[keep], text, [c for c in EXACT_COLUMNS if c in keep]))


def read_scores(path: Path) -> pd.DataFrame:
    """Inverse of `write_scores`: text and names exactly as written, whole-number columns as int64 (nullable Int64
    where some rows have none), every other column as float (empty cells NaN).

    Raises ValueError (pandas' ParserError is one) or UnicodeDecodeError for a file that is not such a table."""
    frame = read_frame_csv(path, TEXT_COLUMNS, EXACT_COLUMNS)
    frame = frame.drop(columns=[c for c in frame.columns if c.endswith(B64_SUFFIX)])
    for col in frame.columns:
        if col in TEXT_COLUMNS:
            continue
        values = frame[col].replace("", np.nan).astype(float)
        if col in INDEX_COLUMNS:
            whole = values.round()
            if not (whole.eq(values) | values.isna()).all():
                raise ValueError(f"{path}: column {col} holds numbers that are not whole")
            frame[col] = whole.astype("int64") if values.notna().all() else whole.astype("Int64")
        else:
            frame[col] = values
    return frame
