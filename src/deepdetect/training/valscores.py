"""A run's validation scores (`val_scores.csv`: one row per val crop, the selected weights' logit) and the
out-of-fold pool of several cross-validation runs' scores, which calibrates a refit (a run with no validation)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepdetect.training.settings import TrainConfigError
from deepdetect.utils.csvcells import frame_csv, restore_frame
from deepdetect.utils.io import atomic_write_text

VAL_SCORES = "val_scores.csv"
COLUMNS = ("crop_path", "video_id", "source", "group", "label")


def write_val_scores(path: Path, rows: pd.DataFrame, logits: np.ndarray) -> None:
    """`rows`' identifying columns and each one's logit, as CSV (text cells spreadsheet-safe, `utils/csvcells.py`)."""
    table = rows.loc[:, [c for c in COLUMNS if c in rows.columns]].reset_index(drop=True)
    table["logit"] = np.asarray(logits, dtype=np.float64)
    atomic_write_text(path, frame_csv(table, [c for c in COLUMNS if c in table.columns]))


def read_val_scores(path: Path) -> pd.DataFrame:
    """Inverse of `write_val_scores`: the identifying columns as text (cells restored) and `logit` as float."""
    part = pd.read_csv(path, dtype={c: str for c in COLUMNS})
    return restore_frame(part, COLUMNS).assign(logit=lambda f: f["logit"].astype(float))


def read_out_of_fold(runs: Sequence[str | Path]) -> pd.DataFrame:
    """The pooled `val_scores.csv` of `runs` (a `run` column names each row's run). Refuses a run without one, a
    crop scored by two runs (folds validate on disjoint people, so out-of-fold scores never overlap) and a pool
    without both labels."""
    parts = []
    for run in runs:
        path = Path(run) / VAL_SCORES
        if not path.is_file():
            raise TrainConfigError(
                f"calibration.from_runs: {path} not found (a run with validation writes it when it finishes)"
            )
        part = read_val_scores(path)
        part["run"] = str(run)
        parts.append(part)
    if not parts:
        raise TrainConfigError("calibration.from_runs is empty")
    pool = pd.concat(parts, ignore_index=True)
    twice = pool.loc[pool["crop_path"].duplicated(), "crop_path"]
    if len(twice):
        raise TrainConfigError(
            f"calibration.from_runs: {len(twice)} crops are scored by more than one run (first: {twice.iloc[0]}); "
            "out-of-fold scores come from cross-validation folds, which validate on disjoint groups"
        )
    if set(pool["label"]) != {"real", "fake"}:
        have = sorted(set(pool["label"]))
        raise TrainConfigError(f"calibration.from_runs: the pooled scores need real and fake rows, have {have}")
    return pool
