"""The temporal expert in the leave-one-family-out study: train it on real clips, score every family's clips.

Clips come from the study's consecutive-frame extraction (`clips:` in configs/lofo.yaml). The expert trains on the
real clips of its training sources only (`training/temporal.py`), so every family is unseen to it. It scores one
clip per video: a family's images and the unseen real photos have no sequence and are not scored, and its
false-positive rate is over the unseen real videos only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from deepdetect.studies.scoring import Scored

log = logging.getLogger(__name__)


def note(frames: int | None, window: int | None) -> str:
    """The table's note on a temporal row: what one video's score is read from, and why images are not ranked."""
    clip = f"one {frames}-frame clip" if frames else "one clip"
    if window and (frames is None or frames > window):
        clip += f" per video, read as {window}-frame windows whose logits are averaged,"
    else:
        clip += " per video"
    return (
        f"temporal expert: {clip} scored (frame_auc null: there are no per-frame scores); images have no sequence, "
        "so only a family's videos are ranked and unseen reals flagged are over the unseen real videos only (no photos)"
    )


def _clips(manifests: Sequence[Path], exclude_groups: Sequence[str], min_frames: int) -> tuple[list[Any], dict]:
    from deepdetect.data.clips import clips_of
    from deepdetect.data.manifest import read_manifests

    frame = read_manifests([str(m) for m in manifests])
    frame = frame[frame["label"].isin(["real", "fake"]) & ~frame["group"].isin(list(exclude_groups))]
    return clips_of(frame, min_frames)


def fit_and_score(
    settings_cfg: Any,
    train_manifests: Sequence[Path],
    family_manifests: Sequence[Path],
    unseen_manifests: Sequence[Path],
    exclude_groups: Sequence[str],
    run_dir: Path,
    reuse: bool = True,
) -> Scored:
    """Train (or reuse) the temporal expert in `run_dir`; score the families' and the unseen reals' clips."""
    from deepdetect.training.temporal import ClipFeaturizer, TemporalSettings, load_expert, score_clips, train_temporal

    settings = TemporalSettings.from_config(settings_cfg)
    timing = run_dir / "lofo_seconds.json"
    start = time.monotonic()
    if reuse and timing.is_file() and (run_dir / "temporal.json").is_file():
        log.info("[temporal] reusing %s", run_dir)
        stored, head = load_expert(run_dir)
        if stored != settings:
            raise ValueError(f"{run_dir} holds a temporal expert of other settings; use reuse=false or another output")
        train_seconds = float(json.loads(timing.read_text())["seconds"])
    else:
        train, skipped = _clips(train_manifests, [], settings.min_frames)
        log.info("[temporal] %d training-source clips (%d videos/images without one)", len(train), len(skipped))
        head, _ = train_temporal(settings, train, run_dir)
        train_seconds = time.monotonic() - start
        timing.write_text(json.dumps({"seconds": train_seconds}))
    start = time.monotonic()
    featurizer = ClipFeaturizer(settings, run_dir / "cache")
    fams, fam_skipped = _clips(family_manifests, exclude_groups, settings.min_frames)
    unseen, unseen_skipped = _clips(unseen_manifests, [], settings.min_frames)
    families = score_clips(featurizer, head, fams)
    unseen_scores = score_clips(featurizer, head, unseen)
    skipped = {"families": fam_skipped, "unseen": unseen_skipped}
    log.info("[temporal] scored %d family clips and %d unseen clips", len(families), len(unseen_scores))
    return Scored(
        families,
        unseen_scores,
        head.threshold,
        train_seconds + time.monotonic() - start,
        experts={"skipped": skipped},
    )


def unscored_families(families: Sequence[str], scored: pd.DataFrame) -> list[str]:
    """The held-out families with no clip scored (images only, or no video with enough face frames)."""
    have = set(scored["source"].astype(str)) if len(scored) else set()
    return [f for f in families if f not in have]
