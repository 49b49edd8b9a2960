"""`deepdetect-lofo` with the temporal recipe on generated face videos: consecutive clips, training, family rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import open_dict

from deepdetect.data.manifest import read_manifest
from deepdetect.media import write_video
from deepdetect.studies.lofo import render_markdown, run_lofo
from face_images import face_video_frames, lfw_face, save
from test_families import PAIRS_HEADER

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _video(path: Path, face: int, n: int = 20, flicker: bool = False) -> Path:
    frames = face_video_frames(face, n)
    if flicker:  # the lower face jumps in brightness from frame to frame
        rng = np.random.default_rng(face)
        frames = [f.copy() for f in frames]
        for f in frames:
            f[100:140, 60:140] = np.clip(f[100:140, 60:140].astype(int) + int(rng.integers(-60, 60)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, fps=10)


def make_root(root: Path) -> Path:
    for i in range(6):
        _video(root / "talks" / "real" / f"p{i}.mp4", 40 + i)
    for i in range(2):
        _video(root / "videos" / f"v{i}.mp4", 70 + i)
    fam = root / "families"
    rows = [
        ("lipsync", "lipsync/real/a.mp4", "real", "g_a", lambda p: _video(p, 80)),
        ("lipsync", "lipsync/fake/a_fake.mp4", "fake", "g_a", lambda p: _video(p, 80, flicker=True)),
        ("diffusion", "diffusion/fake/d.png", "fake", "g_d", lambda p: save(lfw_face(90), p)),
    ]
    fam.mkdir(parents=True, exist_ok=True)
    with (fam / "pairs.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PAIRS_HEADER)
        for family, rel, label, group, make in rows:
            make(fam / rel)
            w.writerow([family, "org/repo", "c0ffee", "x", rel, label, group, ""])
    return root


TINY = ["model=test", "model.input_size=64", "data.batch_size=4", "trainer.max_epochs=1"]


def study_config(cfg_factory, root: Path, out: Path, recipes: list[str]):
    """The study on make_root's data: a tiny SBI expert, the temporal expert and two fusions of them."""
    cfg = cfg_factory("lofo", [f"data_root={root}", f"output_dir={out}", f"recipes_to_run=[{','.join(recipes)}]"])
    with open_dict(cfg):
        cfg.extract = ["size=64", "num_workers=0", "torch_threads=1", "val_fraction=0.34", "test_fraction=0.17"]
        cfg.sources = {
            "talks": {"path": "talks", "role": "train", "extract": []},
            "videos": {"path": "videos", "role": "unseen", "extract": ["layout=single", "label=real"]},
            "families": {"path": "families", "role": "families", "extract": ["layout=pairs"]},
        }
        cfg.clips = {"extract": ["frame_sampling=consecutive", "frames_per_video=12"], "sources": list(cfg.sources)}
        cfg.exclude_groups = []
        cfg.recipes = {
            "sbi": {"train": ["experiment=sbi_reference", *TINY], "sources": ["talks"]},
            "temporal": {
                "temporal": {"backbone": "test_efficientnet", "pretrained": False, "lower_size": 32, "min_frames": 8},
                "sources": ["talks"],
            },
            "fused": {"experts": ["sbi", "temporal"], "stacker": "video_mean"},
            "crop_fused": {"experts": ["sbi", "temporal"], "stacker": "mean"},
        }
    return cfg


def test_lofo_temporal_recipe_writes_clip_level_rows(cfg_factory, tmp_path: Path) -> None:
    root = make_root(tmp_path / "data")
    out = tmp_path / "lofo"
    cfg = study_config(cfg_factory, root, out, ["temporal"])
    rows = run_lofo(cfg)
    by_family = {r["family"]: r for r in rows}
    assert set(by_family) == {"lipsync", "diffusion"}
    lip = by_family["lipsync"]
    assert lip["n_fake_videos"] == 1 and lip["n_real_videos"] == 1 and lip["n_unseen_real_videos"] == 2
    assert lip["video_auc"] is not None and lip["frame_auc"] is None and "one 12-frame clip per video" in lip["note"]
    assert 0.0 <= lip["fpr_unseen_real"] <= 1.0
    diffusion = by_family["diffusion"]
    assert diffusion["video_auc"] is None and "no video" in diffusion["note"], "images have no sequence"
    clips = read_manifest(out / "clips" / "families" / "manifest.csv")
    fake = clips[clips["source_path"].str.endswith("a_fake.mp4")]
    first = int(fake["frame_index"].min())
    assert sorted(fake["frame_index"]) == list(range(first, first + 12)), "12 consecutive frames of the fake video"
    expert = json.loads((out / "runs" / "temporal" / "temporal.json").read_text())
    assert expert["validation"]["val_clips"]["real"] >= 1 and expert["validation"]["train_clips"]["blends"] > 0
    assert "`temporal`:" in render_markdown(rows)
    assert not (out / "crops").exists(), "a temporal-only study extracts no frame crops"


def test_a_recipe_with_its_own_clip_length_reads_windows_of_longer_clips(cfg_factory, tmp_path: Path) -> None:
    root = make_root(tmp_path / "data")
    out = tmp_path / "lofo"
    cfg = study_config(cfg_factory, root, out, ["windowed"])
    with open_dict(cfg):
        windowed = {**cfg.recipes["temporal"]["temporal"], "window": 8}
        cfg.recipes["windowed"] = {"temporal": windowed, "sources": ["talks"], "clip_frames": 16}
    rows = run_lofo(cfg)
    lip = next(r for r in rows if r["family"] == "lipsync")
    assert lip["video_auc"] is not None and lip["command"].startswith("deepdetect-lofo 'recipes_to_run=[windowed]'")
    assert "one 16-frame clip per video, read as 8-frame windows" in lip["note"]
    clips = read_manifest(out / "clips16" / "families" / "manifest.csv")
    fake = clips[clips["source_path"].str.endswith("a_fake.mp4")]
    first = int(fake["frame_index"].min())
    assert sorted(fake["frame_index"]) == list(range(first, first + 16)), "the recipe's 16 frames, not clips: 12"
    assert not (out / "clips").exists(), "only the clip length a recipe reads is extracted"
    trained = json.loads((out / "runs" / "windowed" / "temporal.json").read_text())["validation"]["train_clips"]
    assert trained["windows"] == 2 * trained["real"], "two 8-frame windows of each 16-frame train clip"
