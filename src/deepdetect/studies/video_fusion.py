"""The study's video-level fusion recipes (`stacker: video_mean`): frame experts and the temporal expert, per video.

The fusion itself is evaluation/video_fusion.py's. Here: what each expert hands it, all of it already computed —
- the families' and unseen reals' scores the study saved when the expert ran as a recipe
  (`scores/<expert>/<part>_scores.csv`: a frame expert's crops, the temporal expert's one clip per video);
- its validation rows, from its training sources' validation split only: a frame expert's `val_scores.csv` (the
  logits training wrote for its val crops, calibrated here with the run's temperature), the temporal expert's
  validation real clips of the `clips:` extraction, scored with its stored head.
No held-out family and no unseen real ever enters the standardisation or the threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepdetect.evaluation.stacking import drivers_summary
from deepdetect.evaluation.video_fusion import (
    coverage,
    expert_videos,
    fit_standardiser,
    fuse_videos,
    threshold_at_fpr,
)
from deepdetect.studies.scoring import Scored

log = logging.getLogger(__name__)

STACKER = "video_mean"
NOTE = (
    "video-level fusion: each expert's video score (a frame expert's mean calibrated logit over the video's crops, the "
    "temporal expert's clip) standardised on the validation real videos of its training sources, averaged over the "
    "experts that scored the video (a still or a video without a clip: the frame experts alone); frame_auc null: one "
    "score per video"
)
VIDEO_TEXT = ("source", "video_id", "label", "group", "experts")


@dataclass(frozen=True)
class ExpertScores:
    """One expert's scored rows (`prob`: calibrated P(fake)) of the families, the unseen reals and its validation."""

    name: str
    families: pd.DataFrame
    unseen: pd.DataFrame
    val: pd.DataFrame


def frame_expert_val(run_dir: Path) -> pd.DataFrame:
    """A frame expert's validation real crops (the run's `val_scores.csv`) with calibrated `prob` (its temperature)."""
    from deepdetect.contract import ModelCard
    from deepdetect.evaluation.calibration import apply_temperature
    from deepdetect.models.checkpoint import read_meta
    from deepdetect.training.valscores import VAL_SCORES, read_val_scores

    path = run_dir / VAL_SCORES
    if not path.is_file():
        raise ValueError(f"{path} not found: the frame expert needs the validation scores its training writes")
    temperature = ModelCard.from_sidecar(read_meta(run_dir)).temperature
    rows = read_val_scores(path)
    rows = rows[rows["label"] == "real"]
    return rows.assign(prob=apply_temperature(rows["logit"].to_numpy(dtype=np.float64), temperature))


def temporal_expert_val(run_dir: Path, clip_manifests: Sequence[Path]) -> pd.DataFrame:
    """The temporal expert's scores of the validation real clips of `clip_manifests` (its training sources)."""
    from deepdetect.data.clips import clips_of
    from deepdetect.data.manifest import read_manifests
    from deepdetect.training.temporal import ClipFeaturizer, load_expert, score_clips

    settings, head = load_expert(run_dir)
    frame = read_manifests([str(m) for m in clip_manifests])
    frame = frame[(frame["split"] == "val") & (frame["label"] == "real")]
    clips, _ = clips_of(frame, settings.min_frames)
    return score_clips(ClipFeaturizer(settings, run_dir / "cache"), head, clips)


def _videos(rows: pd.DataFrame, exclude_groups: Sequence[str]) -> pd.DataFrame:
    rows = rows[rows["label"].isin(["real", "fake"]) & ~rows["group"].isin(list(exclude_groups))]
    return expert_videos(rows)


def fused_rows(fused: pd.DataFrame) -> pd.DataFrame:
    """Fused videos as the table's scored rows: one row per video (`frame_index` 0), `prob` its fused score; a
    `video_id` that two sources share is prefixed with its source (the table groups rows by `video_id`)."""
    shared = fused["video_id"].duplicated(keep=False)
    video_id = fused["video_id"].where(~shared, fused["source"].astype(str) + ":" + fused["video_id"].astype(str))
    return fused.assign(video_id=video_id, frame_index=0).reset_index(drop=True)


def save_fused(folder: Path, scored: Scored) -> None:
    """Each part's fused videos with every expert's standardised score and share (`<part>_videos.csv`)."""
    from deepdetect.utils.csvcells import frame_csv
    from deepdetect.utils.io import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    for part, frame in (("families", scored.families), ("unseen", scored.unseen)):
        atomic_write_text(folder / f"{part}_videos.csv", frame_csv(frame, VIDEO_TEXT))


def fit_and_score(experts: Sequence[ExpertScores], exclude_groups: Sequence[str], target_fpr: float = 0.05) -> Scored:
    """Standardise each expert on its validation real videos (its `val` rows' reals, nothing else), fuse the
    families' and unseen reals' videos, and set the threshold at `target_fpr` of the validation real videos' fused
    scores."""
    names = [e.name for e in experts]
    val = {e.name: _videos(e.val[e.val["label"] == "real"], []) for e in experts}  # label-free: reals only
    standardiser = fit_standardiser(val)
    val_fused = fuse_videos(val, standardiser)
    threshold = threshold_at_fpr(val_fused, target_fpr)
    families = fuse_videos({e.name: _videos(e.families, exclude_groups) for e in experts}, standardiser)
    unseen = fuse_videos({e.name: _videos(e.unseen, exclude_groups) for e in experts}, standardiser)
    val_reals = val_fused[val_fused["label"] == "real"]
    info: dict[str, Any] = {
        "stacker": STACKER,
        "experts": names,
        "standardiser": standardiser.to_dict(),
        "threshold": threshold,
        "target_fpr": target_fpr,
        "val_real_videos": {str(k): int(v) for k, v in val_reals.groupby("source").size().items()},
        "val_fpr": float((val_reals["prob"] >= threshold).mean()),
        "videos_by_experts": {
            "validation reals": coverage(val_reals),
            "families": coverage(families),
            "unseen": coverage(unseen),
        },
        "drivers_of_fake_videos": drivers_summary(families, names),
    }
    log.info("video fusion: %s", {k: info[k] for k in ("standardiser", "threshold", "val_real_videos")})
    return Scored(fused_rows(families), fused_rows(unseen), threshold, 0.0, info)
