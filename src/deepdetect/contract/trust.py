"""When a model's own validation says its answers should not be trusted as they stand: the checks that predict
prints as a warning and the triage report shows as a banner (docs/numbers.md explains each figure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_VAL_FPR = 0.10  # a model that flags more of its own validation reals than this at its threshold is warned about
RULE_OF_THREE = 3.0  # no false positive among n reals bounds the FPR at about 3/n (95% one-sided)


def lowest_supported_fpr(n_real: int | None) -> float | None:
    """The lowest FPR a validation set with `n_real` real crops can vouch for (3/n, at most 1); None if unknown."""
    if not n_real or n_real <= 0:
        return None
    return min(1.0, RULE_OF_THREE / n_real)


def val_reals(calibration: Mapping[str, Any], training_data: Mapping[str, Any] | None) -> int | None:
    """Real crops the calibration saw: its `n_val_real`, else (older cards) the val split's real count."""
    n = calibration.get("n_val_real")
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    if calibration.get("calibrated_on"):  # calibrated on other runs' scores: the val split count does not apply
        return None
    splits = (training_data or {}).get("splits")
    val = splits.get("val") if isinstance(splits, Mapping) else None
    real = val.get("real") if isinstance(val, Mapping) else None
    return real if isinstance(real, int) and not isinstance(real, bool) else None


def val_unit(calibration: Mapping[str, Any]) -> str:
    """What `n_val_real` counts: real videos for a threshold set on videos (a fused model's), else real crops."""
    unit = calibration.get("unit")
    return "real videos" if isinstance(unit, str) and unit.startswith("video") else "real crops"


def trust_problems(
    *,
    threshold: float | None,
    val_fpr: float | None,
    target_fpr: float | None,
    n_val_real: int | None,
    calibration_failed: str | None,
    unit: str = "real crops",
) -> list[str]:
    """Plain sentences, one per reason not to take this model's labels at face value (none: nothing found)."""
    out = []
    if calibration_failed:
        out.append(
            f"calibration failed when the model was trained ({calibration_failed}): scores are not probabilities"
        )
    if val_fpr is not None and val_fpr > MAX_VAL_FPR:
        at = f" at threshold {threshold:.3g}" if threshold is not None else ""
        out.append(
            f"the model labels {100 * val_fpr:.0f}% of its own validation reals fake{at} (validation FPR "
            f"{val_fpr:.3f} > {MAX_VAL_FPR:g}): expect about that share of real files to be labelled fake"
        )
    lowest = lowest_supported_fpr(n_val_real)
    if target_fpr is not None and lowest is not None and target_fpr < lowest:
        out.append(
            f"its validation set had only {n_val_real} {unit}, too few to set a false-positive rate of "
            f"{target_fpr:g} (it can vouch for {lowest:.2g} and above): the real FPR at this threshold is unknown"
        )
    return out
