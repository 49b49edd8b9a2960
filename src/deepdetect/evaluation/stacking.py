"""Experts fused by a stacker on their calibrated logits, fitted on validation data only.

Each expert is a trained run (its own temperature). The stacker sees, per face crop, the vector of the experts'
calibrated logits (`x_<expert>` = logit / T) on the *validation* split of the experts' training sources — the reals,
the fakes there, and a self-blend of each validation real, so a blending expert has fakes it can speak for.

Two stackers:
- `logistic`: a logistic regression on the calibrated logits, every video weighing the same. It learns which
  expert separates the training sources' own fakes best.
- `mean`: no weight is learned from labels. Each expert's logit is standardised against the validation *real*
  crops (mean and spread, every video weighing the same) and the fused logit is the mean of those standardised logits:
  every expert speaks in one unit, "how far from real faces", and an expert that is sure of in-distribution fakes
  cannot outvote the rest. That is the point when the fakes to catch come from families no expert trained on.

The threshold is set at the target FPR of the validation real videos. Each score's contributions (weight x
calibrated logit per expert) say which expert drove it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

KEY = ["source_path", "crop_path", "frame_index"]  # one crop, whichever manifest folder it was read from
VAL_FRAMES_PER_VIDEO = 8  # the stacker weighs videos equally: a few frames of each are enough to fit it
STACKERS = ("logistic", "mean")


def crop_rows(manifests: Sequence[Path], split: str = "all", exclude_groups: Sequence[str] = ()) -> pd.DataFrame:
    """The labelled crops of `manifests` (`split`: all, or one split) outside `exclude_groups`: what is scored."""
    from deepdetect.data.manifest import read_manifests, select_split

    frame = read_manifests([str(m) for m in manifests])
    if split != "all":
        frame = select_split(frame, split)
    frame = frame[frame["label"].isin(["real", "fake"]) & ~frame["group"].isin(list(exclude_groups))]
    return frame.reset_index(drop=True)


def score_rows(
    run_dir: Path, manifests: Sequence[Path], exclude_groups: Sequence[str] = (), split: str = "all"
) -> tuple[pd.DataFrame, float]:
    """Every crop of `manifests` (`split`: all, or one split) with the run's calibrated P(fake), and the run's
    stored threshold."""
    from deepdetect.evaluation.calibration import apply_temperature
    from deepdetect.evaluation.evaluate import load_run, score_crops
    from deepdetect.utils.device import resolve_device

    device = resolve_device("cpu")
    run = load_run(str(run_dir), device)
    frame = crop_rows(manifests, split, exclude_groups)
    logits = score_crops(run.model, frame["abs_crop_path"].tolist(), run.preprocess, 64, device, desc="scoring")
    frame["logit"] = logits
    frame = frame[np.isfinite(logits)].reset_index(drop=True)
    frame["prob"] = apply_temperature(frame["logit"].to_numpy(), run.temperature)
    return frame, float(run.threshold)


def expert_features(
    runs: dict[str, Path],
    manifests: Sequence[Path],
    exclude: Sequence[str] = (),
    split: str = "all",
    cached: Callable[[str], pd.DataFrame | None] | None = None,
) -> pd.DataFrame:
    """Rows of `manifests` with one calibrated-logit column per expert (`x_<name>`), on the crops every expert
    could read; `cached(name)` may hand an expert's already computed scores of the same rows instead."""
    base: pd.DataFrame | None = None
    for name, run_dir in runs.items():
        frame = cached(name) if cached is not None else None
        if frame is None:
            frame, _ = score_rows(run_dir, manifests, exclude, split)
        frame = frame.assign(frame_index=frame["frame_index"].astype("int64"))
        frame = frame[~frame["group"].isin(list(exclude))]
        prob = frame["prob"].astype(float).clip(1e-7, 1 - 1e-7)
        frame = frame.assign(**{f"x_{name}": np.log(prob / (1 - prob))})
        frame = frame.drop(columns=[c for c in ("prob", "logit") if c in frame.columns])
        base = frame if base is None else base.merge(frame[[*KEY, f"x_{name}"]], on=KEY, how="inner")
    if base is None:
        raise ValueError("fusion needs at least one expert")
    return base.reset_index(drop=True)


def saved_scores(
    files: dict[str, Path], runs: dict[str, Path], rows: pd.DataFrame
) -> Callable[[str], pd.DataFrame | None]:
    """A lookup for `expert_features`: expert name -> `rows` (what `crop_rows` gives) with the calibrated `prob`
    that expert's evaluation saved in `files[name]` (evaluate's scores.csv), or None — with the reason logged —
    when that file is missing, unreadable, from another run, older than the run's weights, or does not cover
    every row, so the expert scores the rows itself. Crops the evaluation could not read are left out, as
    scoring leaves them out."""
    from deepdetect.evaluation.scorefile import read_scores
    from deepdetect.models.checkpoint import FINAL_NAME

    wanted = rows.assign(frame_index=rows["frame_index"].astype("int64"))

    def lookup(name: str) -> pd.DataFrame | None:
        path = files.get(name)
        if path is None:
            log.info("[fuse] %s: no saved scores of these crops; scoring its %d crops", name, len(wanted))
            return None
        why = ""
        saved = pd.DataFrame()
        weights = runs[name] / FINAL_NAME
        if not path.is_file():
            why = "not found"
        elif weights.is_file() and path.stat().st_mtime < weights.stat().st_mtime:
            why = f"older than {weights}"
        else:
            try:
                saved = read_scores(path)
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                why = f"unreadable ({exc})"
        if not why:
            why = _coverage_problem(saved, runs[name].name, wanted)
        if why:
            log.info("[fuse] %s: %s %s; scoring its %d crops again", name, path, why, len(wanted))
            return None
        frames = saved[saved["level"] == "frame"] if "level" in saved.columns else saved
        frames = frames.assign(frame_index=frames["frame_index"].astype("int64")).drop_duplicates(KEY)
        out = wanted.merge(frames[[*KEY, "prob"]], on=KEY, how="left", validate="many_to_one")
        out = out[np.isfinite(out["prob"].to_numpy(dtype=np.float64))].reset_index(drop=True)
        log.info("[fuse] %s: %d crops' scores read from %s", name, len(out), path)
        return out

    return lookup


def _coverage_problem(saved: pd.DataFrame, run_name: str, wanted: pd.DataFrame) -> str:
    """Why `saved` (a scores table) cannot stand for `run_name`'s scores of `wanted`; empty when it can."""
    missing = [c for c in (*KEY, "prob") if c not in saved.columns]
    if missing:
        return f"has no {', '.join(missing)} column (written before evaluate saved them)"
    if "run" in saved.columns and set(saved["run"].dropna()) - {run_name}:
        return f"holds scores of another run ({sorted(set(saved['run'].dropna()) - {run_name})[:3]})"
    frames = saved[saved["level"] == "frame"] if "level" in saved.columns else saved
    if frames["frame_index"].isna().any():
        return "has crop rows without a frame index"
    have = pd.MultiIndex.from_frame(frames[KEY].astype({"frame_index": "int64"}))
    need = pd.MultiIndex.from_frame(wanted[KEY])
    n_missing = int((~need.isin(have)).sum())
    if n_missing:
        return f"covers {len(wanted) - n_missing} of the {len(wanted)} crops"
    return ""


def validation_rows(manifests: Sequence[Path], out_dir: Path, seed: int) -> list[Path]:
    """The val split of `manifests` (up to 8 frames per video) as one manifest, plus a self-blend of each val real."""
    from deepdetect.data.manifest import read_manifests, select_split, write_rows
    from deepdetect.data.sbi import write_sbi_manifest

    frame = select_split(read_manifests([str(m) for m in manifests]), "val")
    frame = frame.groupby("video_id", sort=False).head(VAL_FRAMES_PER_VIDEO).reset_index(drop=True)
    val_path = write_rows(frame, out_dir / "val" / "manifest.csv")
    sbi = write_sbi_manifest(frame[frame["label"] == "real"], out_dir / "val_sbi", seed=seed)
    return [val_path, sbi]


def fit_logistic(frame: pd.DataFrame, experts: Sequence[str], seed: int = 0) -> tuple[np.ndarray, float]:
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


def standardised_mean(frame: pd.DataFrame, experts: Sequence[str]) -> tuple[np.ndarray, float]:
    """Weights and bias of the mean of each expert's logit standardised on the real crops of `frame`:
    (x_e - mean_e) / std_e, mean and std over the real crops with every video weighing the same. Crops, not
    per-video means: a validation split may hold only a handful of real videos (the face-swap sources' val split
    has 4), and the ratio of two spreads estimated from 4 numbers each is noise; only that ratio changes a ranking.
    """
    reals = frame[frame["label"] == "real"]
    if reals["video_id"].nunique() < 2:
        raise ValueError("the mean stacker needs at least two real validation videos")
    x = reals[[f"x_{e}" for e in experts]].to_numpy(dtype=np.float64)
    weight = 1.0 / reals.groupby("video_id")["video_id"].transform("count").to_numpy(dtype=np.float64)
    weight /= weight.sum()
    mean = weight @ x
    std = np.maximum(np.sqrt(weight @ (x - mean) ** 2), 1e-3)
    w = 1.0 / (len(experts) * std)
    return w, float(-(mean * w).sum())


def fit_stacker(frame: pd.DataFrame, experts: Sequence[str], method: str, seed: int = 0) -> tuple[np.ndarray, float]:
    """Weights and bias of the `method` stacker (logistic | mean) on validation rows with `x_<expert>` columns."""
    if method not in STACKERS:
        raise ValueError(f"unknown stacker {method!r}; choose one of {', '.join(STACKERS)}")
    return fit_logistic(frame, experts, seed) if method == "logistic" else standardised_mean(frame, experts)


def apply_stacker(frame: pd.DataFrame, experts: Sequence[str], w: np.ndarray, b: float) -> pd.DataFrame:
    """The frame with the fused `prob` and each expert's contribution `c_<expert>` (weight × calibrated logit)."""
    x = frame[[f"x_{e}" for e in experts]].to_numpy(dtype=np.float64)
    z = x @ w + b
    out = frame.assign(prob=1.0 / (1.0 + np.exp(-z)))
    for i, e in enumerate(experts):
        out[f"c_{e}"] = x[:, i] * w[i]
    return out


def threshold_over_reals(reals: np.ndarray, target_fpr: float) -> float:
    """Just above the (1 - `target_fpr`) quantile of the real videos' scores (numpy's `higher` method): the fused
    threshold of the crop- and the video-level stackers; ValueError when there are none."""
    if len(reals) == 0:
        raise ValueError("no real validation videos to set the fused threshold on")
    q = float(np.quantile(np.asarray(reals, dtype=np.float64), 1.0 - target_fpr, method="higher"))
    return float(np.nextafter(q, np.inf))


def threshold_at_fpr(frame: pd.DataFrame, target_fpr: float) -> float:
    """The lowest threshold that flags at most `target_fpr` of the real videos (mean of frame probabilities)."""
    reals = frame[frame["label"] == "real"].groupby("video_id")["prob"].mean().to_numpy()
    return threshold_over_reals(reals, target_fpr)


def fit_on_validation(
    val: pd.DataFrame, experts: Sequence[str], method: str, target_fpr: float, seed: int = 0
) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Fit the stacker on validation rows, set its threshold; returns weights, bias and the stacker file's fields
    (experts, weights, bias, threshold, validation video AUC, rates and ROC) — `runs` is the caller's to add."""
    from deepdetect.evaluation import metrics as M
    from deepdetect.evaluation.calibration import operating_points

    w, b = fit_stacker(val, experts, method, seed)
    fused = apply_stacker(val, experts, w, b)
    threshold = threshold_at_fpr(fused, target_fpr)
    videos = fused.groupby("video_id").agg(prob=("prob", "mean"), label=("label", "first"))
    y = (videos["label"] == "fake").to_numpy(dtype=np.int64)
    both = len(set(y.tolist())) == 2
    flagged = videos["prob"].to_numpy() >= threshold
    info = {
        "stacker": method,
        "experts": list(experts),
        "weights": {e: float(v) for e, v in zip(experts, w, strict=True)},
        "bias": b,
        "threshold": threshold,
        "target_fpr": target_fpr,
        "val_video_auc": M.roc_auc(y, videos["prob"].to_numpy()) if both else float("nan"),
        "val_videos": {"real": int((y == 0).sum()), "fake": int((y == 1).sum())},
        "val_fpr": float(flagged[y == 0].mean()) if (y == 0).any() else None,
        "val_tpr": float(flagged[y == 1].mean()) if (y == 1).any() else None,
        "roc": operating_points(videos["prob"].to_numpy(), y) if both else [],
    }
    log.info("stacker: %s", {k: v for k, v in info.items() if k != "roc"})
    return w, b, info


def drivers(frame: pd.DataFrame, experts: Sequence[str]) -> pd.Series:
    """Per row, the expert whose contribution pushed the fused score up the most; `none` where no expert's
    contribution is positive (the stacker's bias made the score)."""
    cols = [f"c_{e}" for e in experts]
    names = frame[cols].idxmax(axis=1).str.removeprefix("c_")
    return names.where(frame[cols].max(axis=1) > 0, "none")


def drivers_summary(frame: pd.DataFrame, experts: Sequence[str], by: str = "source") -> dict[str, Any]:
    """How often each expert drove the fused score, per `by` value, over fake crops."""
    fakes = frame[frame["label"] == "fake"]
    out: dict[str, Any] = {}
    for key, part in fakes.groupby(by):
        counts = drivers(part, experts).value_counts(normalize=True)
        out[str(key)] = {e: round(float(counts.get(e, 0.0)), 3) for e in [*experts, "none"]}
    return out


def fused_metrics(frame: pd.DataFrame, threshold: float, boot_n: int, seed: int) -> dict[str, Any]:
    """Frame- and video-level metrics of fused rows (`prob`, `label`, `video_id`, `group`) at `threshold`, with
    bootstrap intervals resampling whole groups; a video's score is the mean of its frames' fused probabilities."""
    from deepdetect.evaluation.evaluate import level_metrics

    frames = frame.assign(y=(frame["label"] == "fake").astype("int64"))
    videos = frames.groupby("video_id", sort=False).agg(
        prob=("prob", "mean"), y=("y", "first"), group=("group", "first")
    )
    return {
        "frame": level_metrics(frames, threshold, boot_n, seed, "group"),
        "video": level_metrics(videos.reset_index(), threshold, boot_n, seed, "group"),
    }
