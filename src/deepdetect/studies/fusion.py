"""Experts fused by a stacker: a logistic regression on the experts' calibrated logits, fitted on validation only.

Each expert is a trained run (its own temperature). The stacker sees, per face crop, the vector of the experts'
calibrated logits (logit / T) and is fitted on the *validation* split of the experts' training sources — the reals,
the fakes there, and a self-blend of each validation real, so a blending expert has fakes it can speak for — with
every video weighted equally. Its threshold is set at the target FPR of the validation real videos. The held-out
families and unseen reals are only scored. Each score's contributions (weight × calibrated logit per expert) say
which expert drove it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepdetect.studies.scoring import Scored, read_scores, score_rows

log = logging.getLogger(__name__)


KEY = ["source_path", "crop_path", "frame_index"]  # one crop, whichever manifest folder it was read from
VAL_FRAMES_PER_VIDEO = 8  # the stacker weighs videos equally: a few frames of each are enough to fit it


def _cached(run_dir: Path, part: str | None) -> pd.DataFrame | None:
    """The expert's saved `<part>_scores.csv` of this study (written when it ran as a recipe), if any."""
    if part is None:
        return None
    path = run_dir.parent.parent / "scores" / run_dir.name / f"{part}_scores.csv"
    return read_scores(path) if path.is_file() else None


def _features(
    runs: dict[str, Path], manifests: Sequence[Path], exclude: Sequence[str], part: str | None = None
) -> pd.DataFrame:
    """Rows of `manifests` with one calibrated-logit column per expert (`x_<name>`); an expert's saved scores of
    the same rows (`part`: families / unseen) are reused instead of scoring them again."""
    base: pd.DataFrame | None = None
    for name, run_dir in runs.items():
        frame = _cached(run_dir, part)
        if frame is None:
            frame, _ = score_rows(run_dir, manifests, exclude)
        frame = frame.assign(frame_index=frame["frame_index"].astype("int64"))
        frame = frame[~frame["group"].isin(list(exclude))]
        prob = frame["prob"].astype(float).clip(1e-7, 1 - 1e-7)
        frame = frame.assign(**{f"x_{name}": np.log(prob / (1 - prob))})
        frame = frame.drop(columns=[c for c in ("prob", "logit") if c in frame.columns])
        base = frame if base is None else base.merge(frame[[*KEY, f"x_{name}"]], on=KEY, how="inner")
    if base is None:
        raise ValueError("fusion needs at least one expert")
    return base.reset_index(drop=True)


def validation_rows(manifests: Sequence[Path], out_dir: Path, seed: int) -> list[Path]:
    """The val split of `manifests` (up to 8 frames per video) as one manifest, plus a self-blend of each val real."""
    from deepdetect.data.manifest import read_manifests, select_split, write_rows
    from deepdetect.data.sbi import write_sbi_manifest

    frame = select_split(read_manifests([str(m) for m in manifests]), "val")
    frame = frame.groupby("video_id", sort=False).head(VAL_FRAMES_PER_VIDEO).reset_index(drop=True)
    val_path = write_rows(frame, out_dir / "val" / "manifest.csv")
    sbi = write_sbi_manifest(frame[frame["label"] == "real"], out_dir / "val_sbi", seed=seed)
    return [val_path, sbi]


def fit_stacker(frame: pd.DataFrame, experts: Sequence[str], seed: int = 0) -> tuple[np.ndarray, float]:
    """Logistic-regression weights and bias over `x_<expert>` columns; every video weighs the same."""
    from sklearn.linear_model import LogisticRegression

    x = frame[[f"x_{e}" for e in experts]].to_numpy(dtype=np.float64)
    y = (frame["label"] == "fake").to_numpy(dtype=np.int64)
    per_video = frame.groupby("video_id")["video_id"].transform("count").to_numpy(dtype=np.float64)
    weight = 1.0 / per_video
    for cls in (0, 1):  # both classes weigh the same in total
        weight[y == cls] /= weight[y == cls].sum()
    model = LogisticRegression(C=1.0, random_state=seed, max_iter=1000)
    model.fit(x, y, sample_weight=weight)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def apply_stacker(frame: pd.DataFrame, experts: Sequence[str], w: np.ndarray, b: float) -> pd.DataFrame:
    """The frame with the fused `prob` and each expert's contribution `c_<expert>` (weight × calibrated logit)."""
    x = frame[[f"x_{e}" for e in experts]].to_numpy(dtype=np.float64)
    z = x @ w + b
    out = frame.assign(prob=1.0 / (1.0 + np.exp(-z)))
    for i, e in enumerate(experts):
        out[f"c_{e}"] = x[:, i] * w[i]
    return out


def threshold_at_fpr(frame: pd.DataFrame, target_fpr: float) -> float:
    """The lowest threshold that flags at most `target_fpr` of the real videos (mean of frame probabilities)."""
    reals = frame[frame["label"] == "real"].groupby("video_id")["prob"].mean().to_numpy()
    if len(reals) == 0:
        raise ValueError("no real validation videos to set the fused threshold on")
    q = float(np.quantile(reals, 1.0 - target_fpr, method="higher"))
    return float(np.nextafter(q, np.inf))


def fit_and_score(
    runs: dict[str, Path],
    val_manifests: Sequence[Path],
    family_manifests: Sequence[Path],
    unseen_manifests: Sequence[Path],
    exclude_groups: Sequence[str],
    target_fpr: float = 0.05,
    seed: int = 0,
) -> Scored:
    """Fit the stacker on the experts' validation rows; score the families and unseen reals with it."""
    from deepdetect.evaluation import metrics as M
    from deepdetect.evaluation.calibration import operating_points

    experts = list(runs)
    work = next(iter(runs.values())).parent.parent / "fusion_val"
    val = _features(runs, validation_rows(val_manifests, work, seed), [])
    w, b = fit_stacker(val, experts, seed)
    val = apply_stacker(val, experts, w, b)
    threshold = threshold_at_fpr(val, target_fpr)
    videos = val.groupby("video_id").agg(prob=("prob", "mean"), label=("label", "first"))
    y = (videos["label"] == "fake").to_numpy(dtype=np.int64)
    val_auc = M.roc_auc(y, videos["prob"].to_numpy()) if len(set(y.tolist())) == 2 else float("nan")
    flagged = videos["prob"].to_numpy() >= threshold
    info = {
        "experts": experts,
        "weights": {e: float(v) for e, v in zip(experts, w, strict=True)},
        "bias": b,
        "threshold": threshold,
        "target_fpr": target_fpr,
        "val_video_auc": val_auc,
        "val_videos": {"real": int((y == 0).sum()), "fake": int((y == 1).sum())},
        "val_fpr": float(flagged[y == 0].mean()) if (y == 0).any() else None,
        "val_tpr": float(flagged[y == 1].mean()) if (y == 1).any() else None,
        "roc": operating_points(videos["prob"].to_numpy(), y) if len(set(y.tolist())) == 2 else [],
    }
    log.info("stacker: %s", info)
    families = apply_stacker(_features(runs, family_manifests, exclude_groups, "families"), experts, w, b)
    unseen = apply_stacker(_features(runs, unseen_manifests, [], "unseen"), experts, w, b)
    return Scored(families, unseen, threshold, 0.0, experts=info)


def drivers(frame: pd.DataFrame, experts: Sequence[str]) -> pd.Series:
    """Per row, the expert whose contribution pushed the fused score up the most; `none` where no expert's
    contribution is positive (the stacker's bias made the score)."""
    cols = [f"c_{e}" for e in experts]
    names = frame[cols].idxmax(axis=1).str.removeprefix("c_")
    return names.where(frame[cols].max(axis=1) > 0, "none")


def summary(frame: pd.DataFrame, experts: Sequence[str]) -> dict[str, Any]:
    """How often each expert drove the fused score, per family (source), over fake crops."""
    fakes = frame[frame["label"] == "fake"]
    out: dict[str, Any] = {}
    for fam, part in fakes.groupby("source"):
        counts = drivers(part, experts).value_counts(normalize=True)
        out[str(fam)] = {e: round(float(counts.get(e, 0.0)), 3) for e in [*experts, "none"]}
    return out
