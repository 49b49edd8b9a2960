"""Video-level fusion on hand-made expert scores: standardised on validation real videos, averaged per video."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepdetect.evaluation.video_fusion import (
    expert_videos,
    fit_standardiser,
    fuse_videos,
    threshold_at_fpr,
)
from deepdetect.studies.video_fusion import ExpertScores, fit_and_score, fused_rows


def _logit_to_prob(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _rows(videos: dict[str, tuple[str, list[float]]], source: str = "fam") -> pd.DataFrame:
    """Scored rows: per video (label, calibrated logits of its crops or clip)."""
    rows = []
    for vid, (label, logits) in videos.items():
        for i, x in enumerate(logits):
            rows.append(
                {"source": source, "video_id": vid, "group": f"g_{vid}", "label": label, "frame_index": i}
                | {"prob": _logit_to_prob(x)}
            )
    return pd.DataFrame(rows)


def test_expert_videos_mean_calibrated_logit_per_source_and_video() -> None:
    rows = pd.concat([_rows({"v": ("fake", [1.0, 3.0])}, "a"), _rows({"v": ("real", [-2.0])}, "b")], ignore_index=True)
    videos = expert_videos(rows).set_index("source")
    assert videos.loc["a", "score"] == pytest.approx(2.0) and videos.loc["a", "n"] == 2
    assert videos.loc["b", "score"] == pytest.approx(-2.0) and videos.loc["b", "label"] == "real"


def test_still_without_a_temporal_score_is_the_frame_experts_mean() -> None:
    val = {
        "frame": expert_videos(_rows({"r1": ("real", [0.0]), "r2": ("real", [2.0])})),  # mean 1, std 1
        "temporal": expert_videos(_rows({"r1": ("real", [10.0]), "r2": ("real", [14.0])})),  # mean 12, std 2
    }
    st = fit_standardiser(val)
    assert st.mean == pytest.approx({"frame": 1.0, "temporal": 12.0})
    assert st.std == pytest.approx({"frame": 1.0, "temporal": 2.0})
    fused = fuse_videos(
        {
            "frame": expert_videos(_rows({"clip": ("fake", [3.0, 3.0]), "still": ("fake", [4.0])})),
            "temporal": expert_videos(_rows({"clip": ("fake", [16.0])})),
        },
        st,
    ).set_index("video_id")
    clip, still = fused.loc["clip"], fused.loc["still"]
    assert clip["n_experts"] == 2 and clip["experts"] == "frame+temporal"
    assert clip["score"] == pytest.approx((2.0 + 2.0) / 2)  # z_frame = (3-1)/1, z_temporal = (16-12)/2
    assert still["n_experts"] == 1 and still["experts"] == "frame"
    assert still["score"] == pytest.approx(3.0) and np.isnan(still["z_temporal"])
    assert still["prob"] == pytest.approx(_logit_to_prob(3.0))
    assert clip["c_frame"] + clip["c_temporal"] == pytest.approx(clip["score"])  # each expert's share of the score


def test_unmatched_videos_keep_the_experts_that_scored_them_and_mismatches_are_refused() -> None:
    st = fit_standardiser({e: expert_videos(_rows({"r1": ("real", [0.0]), "r2": ("real", [2.0])})) for e in "ab"})
    a = expert_videos(_rows({"both": ("fake", [1.0]), "only_a": ("real", [1.0])}))
    b = expert_videos(_rows({"both": ("fake", [3.0]), "only_b": ("fake", [5.0])}))
    fused = fuse_videos({"a": a, "b": b}, st).set_index("video_id")
    assert fused.loc["only_b", "experts"] == "b" and fused.loc["only_b", "score"] == pytest.approx(4.0)
    assert fused.loc["only_a", "label"] == "real" and fused.loc["only_b", "label"] == "fake"
    assert fused.loc["both", "score"] == pytest.approx(1.0)  # (0 + 2) / 2
    # the same (source, video_id) with another label in one expert's table is a matching error, not a fusion
    relabelled = b.assign(label=np.where(b["video_id"] == "both", "real", b["label"]))
    with pytest.raises(ValueError, match="label differs"):
        fuse_videos({"a": a, "b": relabelled}, st)


def test_an_expert_needs_two_real_validation_videos() -> None:
    with pytest.raises(ValueError, match="1 real validation videos"):
        fit_standardiser({"a": expert_videos(_rows({"r": ("real", [0.0, 1.0]), "f": ("fake", [3.0])}))})


def test_threshold_flags_at_most_the_target_share_of_validation_reals() -> None:
    fused = pd.DataFrame({"label": ["real"] * 4 + ["fake"], "prob": [0.1, 0.2, 0.3, 0.4, 0.35]})
    t = threshold_at_fpr(fused, 0.05)
    assert 0.4 < t < 0.41  # 4 reals: 5% allows none, so just above the highest
    assert threshold_at_fpr(fused, 0.3) == pytest.approx(0.4, abs=1e-6)  # one of four flagged


def _expert(name: str, shift: float, test_real_shift: float = 0.0, val_fake_shift: float = 0.0) -> ExpertScores:
    rng = np.random.default_rng(len(name))
    val = {f"val{i}": ("real", list(rng.normal(shift, 1.0, 3))) for i in range(4)}
    val |= {f"valfake{i}": ("fake", [shift + 5.0 + val_fake_shift]) for i in range(3)}
    fams = {f"r{i}": ("real", [shift + test_real_shift + i]) for i in range(3)}
    fams |= {f"f{i}": ("fake", [shift + 3.0 + i]) for i in range(3)}
    unseen = {f"u{i}": ("real", [shift + test_real_shift - i]) for i in range(3)}
    return ExpertScores(name, _rows(fams), _rows(unseen, "unseen"), _rows(val, "val"))


def test_standardisation_and_threshold_come_from_validation_reals_only() -> None:
    base = fit_and_score([_expert("frame", 0.0), _expert("temporal", 5.0)], [])
    # the held-out families' and the unseen reals moved far off, and the validation fakes too: if any of them
    # entered the standardisation or the threshold, these would change
    moved = fit_and_score([_expert("frame", 0.0, 100.0, -50.0), _expert("temporal", 5.0, -100.0, 50.0)], [])
    assert moved.experts["standardiser"] == base.experts["standardiser"]
    assert moved.threshold == base.threshold
    val = _expert("temporal", 5.0).val
    reals = val[val["label"] == "real"].assign(x=lambda f: np.log(f["prob"] / (1 - f["prob"])))
    per_video = reals.groupby("video_id")["x"].mean()
    got = base.experts["standardiser"]["temporal"]
    assert got["mean"] == pytest.approx(per_video.mean()) and got["std"] == pytest.approx(per_video.std(ddof=0))
    assert got["n_val_real_videos"] == 4 and base.experts["val_real_videos"] == {"val": 4}
    assert base.experts["val_fpr"] == 0.0
    # the families' fakes sit above their reals for both experts, so the fused ranking keeps them there
    fams = base.families
    assert fams.loc[fams["label"] == "fake", "prob"].min() > fams.loc[fams["label"] == "real", "prob"].max()
    assert len(fams) == 6 and set(fams["experts"]) == {"frame+temporal"}


def test_excluded_groups_are_not_fused() -> None:
    scored = fit_and_score([_expert("frame", 0.0)], ["g_f0"])
    assert "f0" not in set(scored.families["video_id"]) and len(scored.families) == 5


def test_a_video_id_two_sources_share_stays_two_videos_in_the_table() -> None:
    fused = pd.DataFrame({"source": ["photos", "videos", "videos"], "video_id": ["x", "x", "y"], "prob": [0.1] * 3})
    assert fused_rows(fused)["video_id"].tolist() == ["photos:x", "videos:x", "y"]
