"""The validation ROC stored as operating points: exact points, thinned, and `--fpr` picks the best one."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

from deepdetect.contract import Calibration
from deepdetect.evaluation.calibration import operating_points


def _rates(probs: np.ndarray, labels: np.ndarray, thr: float) -> tuple[float, float]:
    flagged = probs >= thr
    return float(flagged[labels == 0].mean()), float(flagged[labels == 1].mean())


def test_points_are_exact_thinned_and_fpr_pick_is_the_best_under_the_target() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 5000)
    probs = 1 / (1 + np.exp(-(rng.normal(size=10_000) + 1.5 * labels)))
    points = operating_points(probs, labels)
    assert 10 < len(points) <= 200
    for thr, fpr, tpr in points:
        assert _rates(probs, labels, thr) == (fpr, tpr)  # each stored point is a real point of the curve
    assert [p[0] for p in points] == sorted((p[0] for p in points), reverse=True)
    cal = Calibration.from_dict({"threshold": 0.5, "threshold_rule": "fpr", "roc": points})
    full_fpr, full_tpr, _ = roc_curve(labels, probs)
    for target in (0.001, 0.01, 0.05, 0.1):
        point = cal.point_at_fpr(target)
        assert point is not None and point.fpr <= target
        assert point.tpr == full_tpr[full_fpr <= target].max()  # no threshold does better at that FPR


def test_one_class_gives_no_curve() -> None:
    assert operating_points(np.array([0.2, 0.4]), np.array([1, 1])) == []
