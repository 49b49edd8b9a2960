"""Experts fused per video: each expert's video score standardised on validation real videos, then averaged.

The crop-level stacker (`stacking.py`) needs every expert to score the same face crops. A temporal expert scores a
clip of consecutive frames, one number per video, from another extraction; so here the unit is the video:

- an expert's video score is the mean calibrated logit (logit / T) of its rows of that video: a frame expert's
  crops, or the temporal expert's one clip;
- each expert's video scores are standardised against its *validation real videos* (mean and spread over those
  videos, one number per video): every expert speaks in one unit, "how far from real videos". No weight is learned
  from fake labels;
- the fused score of a video is the mean of the standardised scores of the experts that scored it: a still image
  has no clip, so its score is the frame experts' mean;
- videos are matched across the experts' tables on (`source`, `video_id`), which both extractions of the study
  derive from the same source file; a match whose `label` or `group` differs is refused.

`prob` of a fused row is sigmoid(fused score): an increasing map of it, not a calibrated probability. The threshold
flags at most `target_fpr` of the validation real videos' fused scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepdetect.evaluation.stacking import threshold_over_reals

KEY = ["source", "video_id"]
MIN_REAL_VIDEOS = 2
MIN_STD = 1e-3


def expert_videos(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (`source`, `video_id`) of an expert's scored rows (`prob`: calibrated P(fake)): its `label`,
    `group`, number of rows `n` and `score`, the mean calibrated logit."""
    prob = rows["prob"].astype(float).clip(1e-7, 1 - 1e-7)
    frame = rows.assign(_logit=np.log(prob / (1 - prob)))
    grouped = frame.groupby(KEY, sort=True)
    out = grouped.agg(
        label=("label", "first"), group=("group", "first"), n=("_logit", "size"), score=("_logit", "mean")
    )
    mixed = grouped["label"].nunique()
    if (mixed > 1).any():
        raise ValueError(f"video {mixed[mixed > 1].index[0]} has rows of both labels")
    return out.reset_index()


@dataclass(frozen=True)
class Standardiser:
    """Each expert's mean and spread of video scores over its validation real videos, and how many there were."""

    mean: dict[str, float]
    std: dict[str, float]
    n_real_videos: dict[str, int]

    @property
    def experts(self) -> list[str]:
        """The experts, in fitting order."""
        return list(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: per expert its mean, std and number of validation real videos."""
        return {
            e: {"mean": self.mean[e], "std": self.std[e], "n_val_real_videos": self.n_real_videos[e]}
            for e in self.experts
        }


def fit_standardiser(val_videos: Mapping[str, pd.DataFrame]) -> Standardiser:
    """Mean and spread (population, floored at 1e-3) of each expert's `expert_videos` scores over the *real* rows
    of its validation table; an expert with fewer than two real validation videos is refused."""
    mean, std, count = {}, {}, {}
    for name, videos in val_videos.items():
        reals = videos.loc[videos["label"] == "real", "score"].to_numpy(dtype=np.float64)
        if len(reals) < MIN_REAL_VIDEOS:
            raise ValueError(
                f"expert {name}: {len(reals)} real validation videos; standardising needs at least {MIN_REAL_VIDEOS}"
            )
        mean[name] = float(reals.mean())
        std[name] = float(max(reals.std(), MIN_STD))
        count[name] = len(reals)
    if not mean:
        raise ValueError("video fusion needs at least one expert")
    return Standardiser(mean, std, count)


def fuse_videos(videos: Mapping[str, pd.DataFrame], standardiser: Standardiser) -> pd.DataFrame:
    """The union of the experts' video tables matched on (`source`, `video_id`): `z_<e>` (the standardised score, NaN
    where expert e did not score the video), `n_experts`, the fused `score` (mean of the available `z_<e>`),
    `c_<e>` (each expert's share of it, z_e / n_experts), `experts` (which scored it) and `prob` = sigmoid(score)."""
    experts = standardiser.experts
    missing = sorted(set(experts) - set(videos))
    if missing:
        raise ValueError(f"no video scores for experts {missing}")
    merged: pd.DataFrame | None = None
    for e in experts:
        part = videos[e][[*KEY, "label", "group", "score"]]
        part = part.assign(score=(part["score"] - standardiser.mean[e]) / standardiser.std[e])
        part = part.rename(columns={"score": f"z_{e}", "label": f"label_{e}", "group": f"group_{e}"})
        merged = part if merged is None else merged.merge(part, on=KEY, how="outer")
    assert merged is not None
    for what in ("label", "group"):
        cols = merged[[f"{what}_{e}" for e in experts]]
        differ = cols.nunique(axis=1, dropna=True) > 1
        if differ.any():
            first = merged.loc[differ, KEY].iloc[0].tolist()
            raise ValueError(f"video {first} is matched across experts but its {what} differs: {cols[differ].iloc[0]}")
        merged[what] = cols.bfill(axis=1).iloc[:, 0]
    z = merged[[f"z_{e}" for e in experts]].to_numpy(dtype=np.float64)
    scored = np.isfinite(z)
    n = scored.sum(axis=1)
    merged["n_experts"] = n
    merged["score"] = np.where(scored, z, 0.0).sum(axis=1) / n
    for i, e in enumerate(experts):
        merged[f"c_{e}"] = z[:, i] / n
    merged["experts"] = ["+".join(e for e, ok in zip(experts, row, strict=True) if ok) for row in scored]
    merged["prob"] = 1.0 / (1.0 + np.exp(-merged["score"]))
    keep = [*KEY, "label", "group", "n_experts", "experts", "score", "prob"]
    return merged[keep + [f"z_{e}" for e in experts] + [f"c_{e}" for e in experts]].reset_index(drop=True)


def threshold_at_fpr(fused: pd.DataFrame, target_fpr: float) -> float:
    """The lowest `prob` threshold that flags at most `target_fpr` of the real rows (one row per video)."""
    return threshold_over_reals(fused.loc[fused["label"] == "real", "prob"].to_numpy(), target_fpr)


def coverage(fused: pd.DataFrame) -> dict[str, int]:
    """How many videos each combination of experts scored (e.g. `sbi_ref+faceswap`: a still, no clip)."""
    return {str(k): int(v) for k, v in fused["experts"].value_counts().items()}
