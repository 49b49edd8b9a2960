"""Post-hoc calibration: temperature scaling of logits and the choice of an operating threshold."""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import roc_curve

from deepdetect.contract.preprocess import sigmoid

log = logging.getLogger(__name__)

THRESHOLD_RULES = ("fpr", "eer")
_T_MIN, _T_MAX = 1e-2, 1e2


def _check_binary(values: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and validate a (scores, 0/1 labels) pair."""
    x = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{what} and labels differ in length: {x.shape[0]} vs {y.shape[0]}")
    if x.size == 0:
        raise ValueError(f"no {what} given")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contain NaN or infinite values")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return x, y.astype(np.int64)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy of sigmoid(logits / T), computed stably."""
    z = logits / temperature
    # log(1 + exp(-z)) for positives, log(1 + exp(z)) for negatives.
    signed = np.where(labels == 1, -z, z)
    return float(np.mean(np.logaddexp(0.0, signed)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of sigmoid(logit / T) on (validation) data."""
    x, y = _check_binary(logits, labels, "logits")
    if y.min() == y.max():
        log.warning("temperature fitted on one class only: the result is degenerate (T at a bound)")
    res = minimize_scalar(
        lambda log_t: _nll(x, y, float(np.exp(log_t))),
        bounds=(np.log(_T_MIN), np.log(_T_MAX)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = float(np.exp(res.x))
    if temperature <= _T_MIN * 1.01:
        log.warning(
            "fitted temperature %.4g sits at its lower bound: validation is perfectly separated, so calibrated "
            "scores sit near 0 and 1 and overstate certainty",
            temperature,
        )
    return temperature


def temperature_problem(temperature: float) -> str | None:
    """Why calibration failed: a temperature fitted at the upper bound of its search squashes every score
    towards 0.5 (the logits carried no usable signal on validation); else None."""
    if temperature >= _T_MAX * 0.99:
        return f"temperature fitted at its upper bound ({temperature:.4g}): every calibrated score is squashed to ~0.5"
    return None


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities sigmoid(logits / T)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


def choose_threshold(probs: np.ndarray, labels: np.ndarray, rule: str = "fpr", target_fpr: float = 0.05) -> float:
    """Operating threshold on calibrated P(fake); a sample is called fake when prob >= threshold.

    rule="fpr": the smallest threshold whose false-positive rate on the reals is <= `target_fpr`.
    rule="eer": the threshold at the equal-error point (FPR closest to FNR on the ROC curve).
    """
    p, y = _check_binary(probs, labels, "probs")
    if rule == "fpr":
        if not 0.0 <= target_fpr <= 1.0:
            raise ValueError(f"target_fpr must be in [0, 1], got {target_fpr}")
        reals = np.sort(p[y == 0])[::-1]
        if reals.size == 0:
            raise ValueError("choosing a threshold at a target FPR needs real (label 0) samples")
        allowed = int(np.floor(target_fpr * reals.size + 1e-9))
        if allowed >= reals.size:
            return 0.0
        # Any threshold above the (allowed+1)-th highest real score keeps at most `allowed` false positives.
        return float(np.nextafter(reals[allowed], np.inf))
    if rule == "eer":
        if y.min() == y.max():
            raise ValueError("the EER threshold needs both real and fake samples")
        fpr, tpr, thresholds = roc_curve(y, p)
        idx = int(np.argmin(np.abs((1.0 - tpr) - fpr)))
        return float(min(thresholds[idx], 1.0))
    raise ValueError(f"unknown threshold rule {rule!r}; expected one of {THRESHOLD_RULES}")


def operating_points(probs: np.ndarray, labels: np.ndarray, max_points: int = 200) -> list[list[float]]:
    """The validation ROC as at most `max_points` exact [threshold, fpr, tpr] points (threshold on P(fake); a
    sample is flagged when prob >= threshold), densest at low FPR where analysts operate; [] with one class only.

    Thinning keeps, for each FPR of a grid, the ROC point with the largest TPR at or under it, so
    `Calibration.point_at_fpr(t)` is exact for the FPRs analysts ask for (1, 2, 3, 5 x 10^-k from 1e-4, and every
    whole percent) and conservative (a lower FPR, never a higher one) between grid values.
    """
    p, y = _check_binary(probs, labels, "probs")
    if y.min() == y.max():
        return []
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=True)
    finite = np.isfinite(thresholds)  # sklearn's first point (threshold inf: nothing flagged) is left out
    fpr, tpr, thresholds = fpr[finite], tpr[finite], np.clip(thresholds[finite], 0.0, 1.0)
    round_fprs = [m * 10.0**e for e in range(-4, 0) for m in (1, 2, 3, 5)]
    percents = np.linspace(0.0, 1.0, 101)
    n_log = max(0, max_points - len(round_fprs) - len(percents) - 2)
    grid = np.unique(np.concatenate([round_fprs, percents, np.logspace(-4, 0, n_log)]))
    # roc_curve's fpr is non-decreasing: the last index with fpr <= g is the best point under g
    keep = np.searchsorted(fpr, grid, side="right") - 1
    keep = np.unique(np.concatenate([keep[keep >= 0], [0, len(fpr) - 1]]))
    return [[float(thresholds[i]), float(fpr[i]), float(tpr[i])] for i in keep]
