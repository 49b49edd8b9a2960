"""Frame scores -> one file score (mean, max, top-k mean, or confidence-weighted mean).

Evaluation (video-level metrics) and predict (one score per video) must aggregate the same way, so the rule lives
here, below both; `deepdetect.evaluation.aggregate` re-exports it.
"""

from __future__ import annotations

import numpy as np

AGGREGATIONS = ("mean", "max", "topk", "confidence")


def aggregate_scores(scores: np.ndarray, method: str = "mean", k: int = 3) -> float:
    """One video score from its frame scores."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("cannot aggregate an empty list of scores")
    if method == "mean":
        return float(s.mean())
    if method == "max":
        return float(s.max())
    if method == "topk":
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return float(np.sort(s)[::-1][:k].mean())
    if method == "confidence":
        # Frames far from 0.5 (confident) weigh more; all-0.5 videos fall back to the plain mean.
        weights = np.abs(s - 0.5)
        total = weights.sum()
        return float(s.mean()) if total <= 0 else float((weights * s).sum() / total)
    raise ValueError(f"unknown aggregation {method!r}; expected one of {AGGREGATIONS}")
