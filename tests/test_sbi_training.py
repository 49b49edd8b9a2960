"""SBI-only training never touches a real fake: not in training, and not in validation (selection, calibration)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from deepdetect.data.dataset import with_sbi_fakes
from deepdetect.data.manifest import read_manifest
from deepdetect.training.train import train
from tiny_data import make_tiny_manifest


def test_with_sbi_fakes_pairs_every_real(tmp_path: Path) -> None:
    val = read_manifest(make_tiny_manifest(tmp_path, n_videos=8))
    val = val[val["split"] == "val"]
    out = with_sbi_fakes(val)
    reals = val[val["label"] == "real"]
    assert len(out) == 2 * len(reals)
    assert (out.loc[out["sbi"], "label"] == "fake").all() and (out.loc[~out["sbi"], "label"] == "real").all()
    assert out.loc[out["sbi"], "video_id"].str.startswith("sbi:").all(), "a blend is its own video"


def test_sbi_only_validates_on_self_blends(cfg_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deepdetect.data.dataset as dataset_mod

    manifest = make_tiny_manifest(tmp_path / "data", n_videos=16)
    frame = pd.read_csv(manifest)
    fake_paths = {str((manifest.parent / p).resolve()) for p in frame.loc[frame["label"] == "fake", "crop_path"]}
    opened: list[str] = []
    real_read = dataset_mod.read_crop
    monkeypatch.setattr(dataset_mod, "read_crop", lambda p: opened.append(str(Path(p).resolve())) or real_read(p))
    out = tmp_path / "run"
    cfg = cfg_factory("train", ["model=test", "experiment=sbi_only", f"data.manifest={manifest}", f"output_dir={out}"])
    metrics = train(cfg)
    assert opened and not (set(opened) & fake_paths), "no real fake is read, for training or for validation"
    assert metrics["val/n_frames"] == 2 * ((frame["split"] == "val") & (frame["label"] == "real")).sum()
