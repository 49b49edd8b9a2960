"""Metric functions, video aggregation, bootstrap and calibration against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepdetect.evaluation import metrics as M
from deepdetect.evaluation.aggregate import aggregate_scores, aggregate_videos
from deepdetect.evaluation.calibration import apply_temperature, choose_threshold, fit_temperature
from deepdetect.evaluation.sources import fpr_is_far_above, group_table, holdout_split

Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])


def test_auc_hand_case_perfect_inverted_and_ties() -> None:
    assert M.roc_auc(Y, S) == pytest.approx(0.75)  # 3 of 4 (fake, real) pairs ordered right
    assert M.roc_auc(Y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.roc_auc(Y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert M.roc_auc(Y, [0.5, 0.5, 0.5, 0.5]) == 0.5  # ties count half
    assert M.roc_auc(Y, [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.875)  # 3 wins + one tie


def test_one_class_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="AUC needs both real and fake samples"):
        M.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="both real and fake"):
        M.eer([0, 0], [0.1, 0.2])
    assert np.isnan(M.compute_metrics(np.array([0, 0]), np.array([0.1, 0.7]), 0.5)["auc"])


def test_ap_eer_tpr_at_fpr() -> None:
    # Ranked: 0.8 fake, 0.4 real, 0.35 fake, 0.1 real -> precision 1 at recall .5, 2/3 at recall 1.
    assert M.average_precision(Y, S) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert M.eer(Y, S) == pytest.approx(0.5)
    assert M.eer(Y, [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert M.tpr_at_fpr(Y, S, 0.01) == pytest.approx(0.5)
    y = np.r_[np.zeros(100), np.ones(10)]
    s = np.r_[np.linspace(0, 0.5, 100), np.full(10, 0.45)]  # fakes tie with reals around 0.45
    assert M.tpr_at_fpr(y, s, 0.01) == 0.0
    assert M.tpr_at_fpr(y, s, 0.2) == 1.0


def test_threshold_metrics_and_calibration_scores() -> None:
    assert M.accuracy(Y, S, 0.5) == 0.75
    assert M.balanced_accuracy(Y, S, 0.38) == pytest.approx(0.5)  # tpr .5, tnr .5
    r = M.rates_at_threshold(Y, S, 0.3)
    assert (r["fpr"], r["tpr"], r["false_positives"]) == (0.5, 1.0, 1)
    assert M.brier([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)
    assert M.log_loss([0, 1], [0.5, 0.5]) == pytest.approx(np.log(2))
    assert M.ece([0, 1, 1, 0], [0.1, 0.9, 0.9, 0.1]) == pytest.approx(0.1)
    m = M.compute_metrics(Y, S, 0.5)
    assert m["auc"] == pytest.approx(0.75) and m["n_real"] == 2 and m["threshold"] == 0.5


def test_aggregation_hand_example() -> None:
    df = pd.DataFrame(
        {
            "video_id": ["a", "a", "a", "b", "b"],
            "label": ["fake"] * 3 + ["real"] * 2,
            "prob": [0.2, 0.9, 0.7, 0.1, 0.3],
            "source": ["s1"] * 3 + ["s2"] * 2,
        }
    )
    mean = aggregate_videos(df, method="mean").set_index("video_id")
    assert mean.loc["a", "score"] == pytest.approx(0.6) and mean.loc["b", "n_frames"] == 2
    assert mean.loc["b", "source"] == "s2" and mean.loc["a", "label"] == "fake"
    assert aggregate_videos(df, method="max").set_index("video_id").loc["a", "score"] == 0.9
    assert aggregate_videos(df, method="topk", k=2).set_index("video_id").loc["a", "score"] == pytest.approx(0.8)
    assert aggregate_scores(np.array([0.5, 1.0]), "confidence") == 1.0  # a 0.5 frame carries no weight
    with pytest.raises(ValueError, match="both real and fake"):
        aggregate_videos(df.assign(video_id="x"))


def test_bootstrap_resamples_videos_not_frames() -> None:
    n = 500
    # Two videos of many frames with very different scores: resampling videos gives a wide interval,
    # resampling frames would give a razor-thin one around 0.5.
    df = pd.DataFrame({"video_id": ["a"] * n + ["b"] * n, "y": [1] * 2 * n, "prob": [0.1] * n + [0.9] * n})
    mean_score = lambda y, s: float(np.mean(s))  # noqa: E731
    lo, hi = M.bootstrap_ci(df, mean_score, n=200, seed=1)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.9)
    flo, fhi = M.bootstrap_ci(df.assign(video_id=np.arange(2 * n)), mean_score, n=200, seed=1)
    assert fhi - flo < 0.1
    assert np.isnan(M.bootstrap_ci(df, M.roc_auc, n=20)[0])  # one class in every resample: undefined, not a crash


def test_temperature_recovers_known_value() -> None:
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 2.5, 20000)
    y = (rng.uniform(size=true_logit.size) < apply_temperature(true_logit, 1.0)).astype(int)
    t = fit_temperature(3.0 * true_logit, y)  # an over-confident model: logits 3x too large
    assert t == pytest.approx(3.0, rel=0.08)


def test_threshold_achieves_target_fpr() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(1000), np.ones(1000)].astype(int)
    p = np.r_[rng.beta(2, 5, 1000), rng.beta(5, 2, 1000)]
    th = choose_threshold(p, y, "fpr", 0.05)
    fpr = float(np.mean(p[y == 0] >= th))
    assert fpr <= 0.05 and fpr > 0.04
    assert np.mean(p[y == 0] >= np.nextafter(th, -np.inf) - 1e-9) > 0.05  # smallest such threshold
    th_eer = choose_threshold(p, y, "eer")
    assert abs(np.mean(p[y == 0] >= th_eer) - np.mean(p[y == 1] < th_eer)) < 0.01
    with pytest.raises(ValueError, match="unknown threshold rule"):
        choose_threshold(p, y, "best")


def test_sources_table_warning_rule_and_holdout() -> None:
    df = pd.DataFrame(
        {"source": ["a", "a", "b", "b"], "y": [0, 1, 0, 0], "prob": [0.9, 0.8, 0.1, 0.2], "split": ["train"] * 4}
    )
    tab = group_table(df, "source", 0.5).set_index("source")
    assert tab.loc["a", "fpr"] == 1.0 and tab.loc["a", "detection_rate"] == 1.0 and np.isnan(tab.loc["b", "auc"])
    assert fpr_is_far_above(0.11, 0.05) and not fpr_is_far_above(0.10, 0.05)  # +5 points rule
    assert fpr_is_far_above(0.61, 0.30) and not fpr_is_far_above(0.60, 0.30)  # 2x rule
    moved = holdout_split(df, "b")
    assert list(moved["split"]) == ["train", "train", "test", "test"] and list(df["split"]) == ["train"] * 4


scores_st = st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=40)


@settings(max_examples=40, deadline=None)
@given(scores_st, st.integers(0, 2**31 - 1))
def test_auc_antisymmetric_and_order_invariant(scores: list[float], seed: int) -> None:
    s = np.array(scores)
    y = np.arange(len(s)) % 2
    auc = M.roc_auc(y, s)
    assert M.roc_auc(y, -s) == pytest.approx(1 - auc)
    perm = np.random.default_rng(seed).permutation(len(s))
    a, b = M.compute_metrics(y, s, 0.5), M.compute_metrics(y[perm], s[perm], 0.5)
    for k, v in a.items():
        assert b[k] == pytest.approx(v, nan_ok=True)


@settings(max_examples=40, deadline=None)
@given(scores_st, st.sampled_from(["mean", "max", "topk", "confidence"]))
def test_video_score_within_frame_range(scores: list[float], method: str) -> None:
    df = pd.DataFrame({"video_id": "v", "label": "real", "prob": scores})
    score = float(aggregate_videos(df, method=method, k=3)["score"].iloc[0])
    assert min(scores) - 1e-12 <= score <= max(scores) + 1e-12
