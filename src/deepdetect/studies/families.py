"""Per-family figures of one detector: each manipulation family's fakes against its own reals, and the unseen reals.

Plain functions over scored crop rows (columns `label`, `source`, `group`, `video_id`, `prob`), so any recipe —
one model, or experts fused by a stacker — is measured the same way. A family is a manifest `source` (the `pairs`
layout sets it); intervals resample whole groups (a real clip with every fake made from it), never frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepdetect.evaluation import metrics as M
from deepdetect.evaluation.aggregate import aggregate_videos


@dataclass(frozen=True)
class FamilyRow:
    """One row of the leave-one-family-out table (`docs/results/families.json`)."""

    family: str
    recipe: str
    video_auc: float | None
    video_auc_ci95: list[float | None]
    frame_auc: float | None
    frame_auc_ci95: list[float | None]
    fpr_unseen_real: float | None
    tpr_at_threshold: float | None
    seconds: float
    command: str
    video_auc_all_reals: float | None = None  # the family's fakes against every real of the table (its + unseen)
    n_fake_videos: int = 0
    n_real_videos: int = 0
    n_unseen_real_videos: int = 0
    threshold: float | None = None
    note: str | None = None  # how this recipe's row differs from the others (e.g. clips instead of frames)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN -> None)."""
        return {k: _finite(v) for k, v in asdict(self).items()}


def _finite(value: Any) -> Any:
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def _auc_ci(df: pd.DataFrame, score_col: str, boot_n: int, seed: int) -> tuple[float | None, list[float | None]]:
    return M.auc_with_ci(df["y"].to_numpy(), df[score_col].to_numpy(), df["group"].to_numpy(), boot_n, seed)


def videos_of(frames: pd.DataFrame, aggregate: str = "mean") -> pd.DataFrame:
    """Video scores (aggregate of frame probabilities) with their label, source and group."""
    videos = aggregate_videos(frames, "prob", method=aggregate, label_col="label")
    group = frames.groupby("video_id", sort=True)["group"].first()
    videos["group"] = videos["video_id"].map(group)
    videos["y"] = (videos["label"] == "fake").astype("int64")
    return videos


@dataclass(frozen=True)
class RowMeta:
    """What a row says about how it was made: the recipe, its seconds and command, and the metric settings."""

    recipe: str
    seconds: float
    command: str
    boot_n: int = 1000
    seed: int = 0
    aggregate: str = "mean"


def family_row(
    family: str,
    family_frames: pd.DataFrame,
    unseen_frames: pd.DataFrame,
    threshold: float,
    meta: RowMeta,
    all_family_reals: pd.DataFrame | None = None,
) -> FamilyRow:
    """The table row of one family: AUCs of its fakes against its own reals (video and frame, intervals over
    groups), detection of its fakes and the unseen reals' false-positive rate at the stored `threshold`."""
    recipe, seconds, command, boot_n, seed, aggregate = (
        meta.recipe, meta.seconds, meta.command, meta.boot_n, meta.seed, meta.aggregate
    )  # fmt: skip
    frames = family_frames.assign(y=(family_frames["label"] == "fake").astype("int64")).reset_index(drop=True)
    videos = videos_of(frames, aggregate)
    fakes = videos[videos["y"] == 1]
    unseen = videos_of(unseen_frames, aggregate) if len(unseen_frames) else unseen_frames
    all_reals = [videos[videos["y"] == 0]]
    if all_family_reals is not None and len(all_family_reals):
        all_reals = [videos_of(all_family_reals, aggregate)]
    if len(unseen):
        all_reals.append(unseen[unseen["y"] == 0])
    pooled = pd.concat([fakes, *all_reals], ignore_index=True)
    video_auc, video_ci = _auc_ci(videos, "score", boot_n, seed)
    frame_auc, frame_ci = _auc_ci(frames, "prob", boot_n, seed)
    return FamilyRow(
        family=family,
        recipe=recipe,
        video_auc=video_auc,
        video_auc_ci95=video_ci,
        frame_auc=frame_auc,
        frame_auc_ci95=frame_ci,
        fpr_unseen_real=float((unseen["score"] >= threshold).mean()) if len(unseen) else None,
        tpr_at_threshold=float((fakes["score"] >= threshold).mean()) if len(fakes) else None,
        seconds=round(float(seconds), 1),
        command=command,
        video_auc_all_reals=M.auc_or_none(pooled["y"].to_numpy(), pooled["score"].to_numpy()),
        n_fake_videos=len(fakes),
        n_real_videos=int((videos["y"] == 0).sum()),
        n_unseen_real_videos=len(unseen),
        threshold=float(threshold),
    )
