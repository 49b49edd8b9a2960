"""The study's configuration, read without running it: every recipe composes, clip lengths resolve."""

from __future__ import annotations

import pytest
from omegaconf import open_dict

from deepdetect.studies.lofo import LofoError


def test_clip_frames_come_from_the_recipe_or_its_temporal_expert(cfg_factory) -> None:
    from deepdetect.studies.lofo import clip_frames

    cfg = cfg_factory("lofo")
    assert clip_frames(cfg, "temporal") is None and clip_frames(cfg, "fusion_temporal") is None
    with open_dict(cfg):
        cfg.recipes["temporal"]["clip_frames"] = 64
    assert clip_frames(cfg, "temporal") == 64 and clip_frames(cfg, "fusion_temporal") == 64, "the expert's length"
    with open_dict(cfg):
        cfg.recipes["mixed"] = {"experts": ["temporal", "temporal_b8"], "stacker": "video_mean"}
        cfg.recipes["bad"] = {"temporal": {}, "sources": ["ffpp-c23"], "clip_frames": "many"}
    with pytest.raises(LofoError, match="different lengths"):
        clip_frames(cfg, "mixed")
    with pytest.raises(LofoError, match="clip_frames must be an integer"):
        clip_frames(cfg, "bad")


def test_every_training_recipe_of_the_study_composes_into_train_settings(cfg_factory) -> None:
    from deepdetect.training.settings import TrainSettings
    from deepdetect.utils.config import compose_stage

    recipes = cfg_factory("lofo", fast=False).recipes
    trained = {name: list(r.train) for name, r in recipes.items() if "train" in r}
    assert "sbi_lower" in trained and len(trained) >= 10, sorted(trained)
    for name, overrides in trained.items():
        settings = TrainSettings.from_config(compose_stage("train", [*overrides, "data.manifest=m.csv"]))
        assert settings.data.sbi.mode in ("off", "mix", "only", "pairs"), name
    lower = TrainSettings.from_config(compose_stage("train", [*trained["sbi_lower"], "data.manifest=m.csv"]))
    assert lower.data.sbi.hulls[-1] == "lower" and len(lower.data.sbi.hulls) == 5
