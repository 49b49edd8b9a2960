"""The fusion stackers on hand-made expert logits: the label-free standardised mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepdetect.evaluation.stacking import apply_stacker, standardised_mean


def _frame(rng: np.random.Generator) -> pd.DataFrame:
    """Two experts on 40 real and 40 fake videos (3 crops each): `loud` speaks in logits ten times `quiet`'s, and
    each puts the fakes two of its own real-video spreads above the reals."""
    rows = []
    for v in range(80):
        fake = v >= 40
        for _ in range(3):
            quiet = rng.normal(2.0 if fake else 0.0, 1.0)
            loud = rng.normal(25.0 if fake else 5.0, 10.0)
            rows.append({"video_id": f"v{v}", "label": "fake" if fake else "real", "x_quiet": quiet, "x_loud": loud})
    return pd.DataFrame(rows)


def test_standardised_mean_puts_experts_on_the_reals_scale() -> None:
    frame = _frame(np.random.default_rng(0))
    w, b = standardised_mean(frame, ["quiet", "loud"])
    reals = frame[frame["label"] == "real"]  # 3 crops per video: equal video weights = plain crop statistics
    std = reals[["x_quiet", "x_loud"]].std(ddof=0).to_numpy()
    np.testing.assert_allclose(w, 1.0 / (2 * std))
    assert w[0] > 5 * w[1]  # the loud expert is scaled down, not trusted for its larger numbers
    fused = apply_stacker(frame, ["quiet", "loud"], w, b)
    z = np.log(fused["prob"] / (1 - fused["prob"]))
    assert abs(z[frame["label"] == "real"].mean()) < 1e-9  # the real crops centre on 0
    # each expert contributes about as much to the fakes' score
    fakes = fused[fused["label"] == "fake"]
    ratio = fakes["c_loud"].mean() / fakes["c_quiet"].mean()
    assert 0.5 < ratio < 2.0


def test_every_real_video_weighs_the_same() -> None:
    """A real video with many crops does not set the scale alone."""
    rows = [{"video_id": "long", "label": "real", "x_a": 0.0} for _ in range(100)]
    rows += [{"video_id": "short", "label": "real", "x_a": 2.0}]
    w, b = standardised_mean(pd.DataFrame(rows), ["a"])
    assert -b / w[0] == pytest.approx(1.0)  # the mean of the two videos, not of the crops
    assert w[0] == pytest.approx(1.0)  # spread 1 around it


def test_standardised_mean_needs_real_videos() -> None:
    frame = _frame(np.random.default_rng(1))
    with pytest.raises(ValueError, match="two real validation videos"):
        standardised_mean(frame[frame["label"] == "fake"], ["quiet", "loud"])
