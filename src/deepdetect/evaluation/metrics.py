"""Detection metrics on numpy arrays (labels: 1 = fake, 0 = real; scores: P(fake)) and video-level bootstrap CIs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

_EPS = 1e-12


def _arrays(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and validate labels (0/1) and finite scores."""
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if y.size == 0:
        raise ValueError("no samples to score")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    return y.astype(np.int64), s


def _both_classes(y: np.ndarray, what: str = "AUC") -> None:
    """Raise a clear error when only one class is present."""
    if y.min() == y.max():
        raise ValueError(f"{what} needs both real and fake samples")


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half, as in sklearn)."""
    y, s = _arrays(labels, scores)
    _both_classes(y)
    return float(roc_auc_score(y, s))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the step PR curve) with fake as the positive class."""
    y, s = _arrays(labels, scores)
    _both_classes(y, "average precision")
    return float(average_precision_score(y, s))


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: where FPR equals FNR, linearly interpolated between ROC points."""
    y, s = _arrays(labels, scores)
    _both_classes(y, "EER")
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1.0 - tpr
    diff = fnr - fpr  # decreasing from 1 to -1 along the curve
    idx = int(np.argmax(diff <= 0))
    if idx == 0 or diff[idx] == 0:
        return float((fpr[idx] + fnr[idx]) / 2)
    # Interpolate between points idx-1 (diff > 0) and idx (diff < 0).
    w = diff[idx - 1] / (diff[idx - 1] - diff[idx])
    f = fpr[idx - 1] + w * (fpr[idx] - fpr[idx - 1])
    return float(f)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> float:
    """Highest TPR reachable with FPR <= max_fpr (no interpolation: an achievable operating point)."""
    y, s = _arrays(labels, scores)
    _both_classes(y, "TPR at FPR")
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    ok = fpr <= max_fpr + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """Fraction correct when predicting fake for score >= threshold."""
    y, s = _arrays(labels, scores)
    return float(np.mean((s >= threshold).astype(np.int64) == y))


def rates_at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | int]:
    """FPR on reals and TPR (detection rate) on fakes at a threshold, with counts (NaN where a class is absent)."""
    y, s = _arrays(labels, scores)
    pred = s >= threshold
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    fp, tp = int((pred & (y == 0)).sum()), int((pred & (y == 1)).sum())
    return {
        "n_real": n_real,
        "n_fake": n_fake,
        "false_positives": fp,
        "true_positives": tp,
        "fpr": fp / n_real if n_real else float("nan"),
        "tpr": tp / n_fake if n_fake else float("nan"),
    }


def balanced_accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """Mean of TPR and TNR at a threshold (needs both classes)."""
    y, _ = _arrays(labels, scores)
    _both_classes(y, "balanced accuracy")
    r = rates_at_threshold(labels, scores, threshold)
    return float((r["tpr"] + (1.0 - r["fpr"])) / 2)


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities (clipped to [1e-12, 1 - 1e-12])."""
    y, p = _arrays(labels, probs)
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean squared error between probability and label."""
    y, p = _arrays(labels, probs)
    return float(np.mean((p - y) ** 2))


def reliability_bins(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Equal-width bins on [0, 1]: count, mean confidence and fraction of fakes per bin."""
    y, p = _arrays(labels, probs)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        rows.append(
            {
                "lo": edges[b],
                "hi": edges[b + 1],
                "count": n,
                "mean_prob": float(p[m].mean()) if n else float("nan"),
                "frac_fake": float(y[m].mean()) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def ece(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of P(fake) with equal-width bins."""
    bins = reliability_bins(labels, probs, n_bins)
    used = bins[bins["count"] > 0]
    gaps = (used["mean_prob"] - used["frac_fake"]).abs()
    return float((used["count"] * gaps).sum() / used["count"].sum())


def compute_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float | int]:
    """All scalar metrics for one set of (label, calibrated probability) pairs.

    Rank metrics need both classes; with a single class they are NaN here (use `roc_auc` for a hard error).
    """
    y, p = _arrays(labels, probs)
    two = y.min() != y.max()
    nan = float("nan")
    rates = rates_at_threshold(y, p, threshold)
    return {
        "n": int(y.size),
        "n_real": rates["n_real"],
        "n_fake": rates["n_fake"],
        "auc": roc_auc(y, p) if two else nan,
        "ap": average_precision(y, p) if two else nan,
        "eer": eer(y, p) if two else nan,
        "accuracy": accuracy(y, p, threshold),
        "balanced_accuracy": balanced_accuracy(y, p, threshold) if two else nan,
        "fpr_at_threshold": rates["fpr"],
        "tpr_at_threshold": rates["tpr"],
        "tpr_at_fpr_1pct": tpr_at_fpr(y, p, 0.01) if two else nan,
        "tpr_at_fpr_0.1pct": tpr_at_fpr(y, p, 0.001) if two else nan,
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": ece(y, p),
        "threshold": float(threshold),
    }


MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _group_members(groups: pd.Series) -> list[np.ndarray]:
    """Row indices of each group, in sorted group order."""
    codes, uniques = pd.factorize(groups, sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques)))
    ends = np.append(starts[1:], len(codes))
    return [order[a:b] for a, b in zip(starts, ends, strict=True)]


def bootstrap_cis(
    df: pd.DataFrame,
    metrics: dict[str, MetricFn],
    group_col: str = "video_id",
    n: int = 1000,
    seed: int = 0,
    label_col: str = "y",
    score_col: str = "prob",
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile (1 - alpha) intervals of several metrics from one set of resamples of whole groups (videos).

    Resamples where a metric is undefined (e.g. one class drawn) are skipped for it; (nan, nan) if none is defined.
    """
    for col in (group_col, label_col, score_col):
        if col not in df.columns:
            raise ValueError(f"bootstrap needs a {col!r} column")
    if len(df) == 0:
        raise ValueError("no groups to resample")
    members = _group_members(df[group_col])
    n_groups = len(members)
    y = df[label_col].to_numpy()
    s = df[score_col].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {name: [] for name in metrics}
    for _ in range(n):
        pick = rng.integers(0, n_groups, n_groups)
        rows = np.concatenate([members[g] for g in pick])
        yy, ss = y[rows], s[rows]
        for name, fn in metrics.items():
            try:
                v = fn(yy, ss)
            except ValueError:
                continue
            if np.isfinite(v):
                values[name].append(v)
    out: dict[str, tuple[float, float]] = {}
    for name, vals in values.items():
        if not vals:
            out[name] = (float("nan"), float("nan"))
        else:
            lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
            out[name] = (float(lo), float(hi))
    return out


def bootstrap_ci(
    df: pd.DataFrame,
    metric: MetricFn,
    group_col: str = "video_id",
    n: int = 1000,
    seed: int = 0,
    label_col: str = "y",
    score_col: str = "prob",
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile (1 - alpha) interval of `metric(labels, scores)` resampling whole groups (videos) with replacement."""
    cis = bootstrap_cis(df, {"m": metric}, group_col, n, seed, label_col, score_col, alpha)
    return cis["m"]


def auc_or_none(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC-AUC, or None where `labels` hold one class only (a family with no real of its own, a set of reals)."""
    y = np.asarray(labels, dtype=np.int64)
    return roc_auc(y, np.asarray(scores, dtype=np.float64)) if len(set(y.tolist())) == 2 else None


def auc_with_ci(
    labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, n: int = 1000, seed: int = 0
) -> tuple[float | None, list[float | None]]:
    """AUC (None with one class only) and its percentile 95% interval over `n` resamples of whole `groups` (a video,
    a person: rows that are not independent); an end is None where undefined, both with `n` <= 0."""
    y = np.asarray(labels, dtype=np.int64)
    auc = auc_or_none(y, scores)
    if auc is None or n <= 0:
        return auc, [None, None]
    frame = pd.DataFrame({"y": y, "prob": np.asarray(scores, dtype=np.float64), "group": np.asarray(groups)})
    lo, hi = bootstrap_ci(frame, roc_auc, "group", n, seed)
    return auc, [lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None]
