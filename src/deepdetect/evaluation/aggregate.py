"""Frame scores -> video scores (mean, max, top-k mean, or confidence-weighted mean); the per-video rule is
`deepdetect.contract.aggregate.aggregate_scores` (shared with predict)."""

from __future__ import annotations

import pandas as pd

from deepdetect.contract.aggregate import AGGREGATIONS, aggregate_scores

__all__ = ["AGGREGATIONS", "CARRIED_COLUMNS", "aggregate_scores", "aggregate_videos"]

CARRIED_COLUMNS = ("dataset", "source", "method", "compression", "split")


def _first(values: pd.Series) -> object:
    """The most common value of a column within one video (first one on ties)."""
    counts = values.value_counts(sort=True)
    return counts.index[0] if len(counts) else ""


def aggregate_videos(
    df: pd.DataFrame,
    score_col: str = "prob",
    method: str = "mean",
    k: int = 3,
    group_col: str = "video_id",
    label_col: str = "label",
) -> pd.DataFrame:
    """One row per video: video_id, label, score, n_frames, plus dataset/source/method/compression/split."""
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}; expected one of {AGGREGATIONS}")
    for col in (group_col, score_col, label_col):
        if col not in df.columns:
            raise ValueError(f"aggregate_videos needs a {col!r} column")
    mixed = df.groupby(group_col, sort=True)[label_col].nunique()
    if (mixed > 1).any():
        bad = list(mixed[mixed > 1].index[:5])
        raise ValueError(f"videos with both real and fake frames cannot be aggregated: {bad}")
    carried = [c for c in CARRIED_COLUMNS if c in df.columns]
    rows = []
    for vid, frame in df.groupby(group_col, sort=True):
        row: dict[str, object] = {
            group_col: vid,
            label_col: frame[label_col].iloc[0],
            "score": aggregate_scores(frame[score_col].to_numpy(), method=method, k=k),
            "n_frames": len(frame),
        }
        row.update({c: _first(frame[c]) for c in carried})
        rows.append(row)
    return pd.DataFrame(rows, columns=[group_col, label_col, "score", "n_frames", *carried])
