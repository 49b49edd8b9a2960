"""`deepdetect-lofo` with a video-level fusion recipe on generated face videos: a frame expert and the temporal
expert fused per video, from the scores the experts' own recipes saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepdetect.studies.lofo import LofoError, run_lofo
from test_lofo_temporal import make_root, study_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def test_video_fusion_recipe_fuses_the_saved_scores_per_video(cfg_factory, tmp_path: Path) -> None:
    root = make_root(tmp_path / "data")
    out = tmp_path / "lofo"
    rows = run_lofo(study_config(cfg_factory, root, out, ["fused"]))
    # no saved scores yet: each expert ran as its own recipe first (and saved them)
    for expert in ("sbi", "temporal"):
        assert (out / "scores" / expert / "families_scores.csv").is_file()
    by_family = {r["family"]: r for r in rows}
    assert set(by_family) == {"lipsync", "diffusion"}
    lip = by_family["lipsync"]
    assert lip["n_fake_videos"] == 1 and lip["n_real_videos"] == 1 and lip["n_unseen_real_videos"] == 2
    assert lip["video_auc"] is not None and lip["frame_auc"] is None and "video-level fusion" in lip["note"]
    # the diffusion still has no clip: it is scored by the frame expert alone (its only video is a fake)
    assert by_family["diffusion"]["n_fake_videos"] == 1 and by_family["diffusion"]["tpr_at_threshold"] is not None
    info = json.loads((out / "scores" / "fused" / "fusion.json").read_text())
    assert info["experts"] == ["sbi", "temporal"]
    assert info["videos_by_experts"]["families"] == {"sbi+temporal": 2, "sbi": 1}
    assert info["videos_by_experts"]["unseen"] == {"sbi+temporal": 2}
    # standardised on the training source's validation real videos only, one number per video for both experts
    counts = {e: s["n_val_real_videos"] for e, s in info["standardiser"].items()}
    assert set(info["val_real_videos"]) == {"talks"} and counts["sbi"] == counts["temporal"] >= 2
    assert sum(info["val_real_videos"].values()) == counts["sbi"]
    # a second run reuses the experts' saved scores and gives the same rows
    again = run_lofo(study_config(cfg_factory, root, out, ["fused"]))
    assert [(r["family"], r["video_auc"], r["threshold"]) for r in again] == [
        (r["family"], r["video_auc"], r["threshold"]) for r in rows
    ]
    with pytest.raises(LofoError, match="scores videos, not crops"):
        run_lofo(study_config(cfg_factory, root, out, ["crop_fused"]))
