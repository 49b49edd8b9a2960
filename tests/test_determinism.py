"""Determinism on CPU: the same seed gives byte-identical metrics, weights and extraction manifests twice."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deepdetect.data.extract import extract
from deepdetect.training.train import train
from face_images import face_video_frames, lfw_face, save
from media_corpus import make_video
from tiny_data import make_tiny_manifest


def _digest_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png")}


@pytest.mark.timeout(300)
def test_same_seed_same_training_metrics(cfg_factory, tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "data", n_videos=8, frames_per_video=2, size=32)
    common = ["model=test", f"data.manifest={manifest}", "trainer.max_epochs=2", "augment=strong", "seed=7"]
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        train(cfg_factory("train", [*common, f"output_dir={out}"]))
    a, b = ((out / "metrics.json").read_text() for out in runs)
    assert a == b  # the file, byte for byte: every metric, the history, the calibration
    wa, wb = (load_file(str(out / "model.safetensors")) for out in runs)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)


@pytest.mark.timeout(300)
def test_same_seed_same_extraction_manifest(cfg_factory, tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for i in range(3):
        save(lfw_face(i), root / "real" / f"r{i}.png")
        save(lfw_face(30 + i), root / "fake" / f"f{i}.jpg")
    make_video(root / "fake" / "clip.mp4", face_video_frames(4, n=8), fps=10)
    outs = [tmp_path / "x", tmp_path / "y"]
    for out in outs:
        extract(cfg_factory("extract", [f"input={root}", f"output_dir={out}", "seed=3", "val_fraction=0.3"]))
    x, y = ((out / "manifest.csv").read_text(encoding="utf-8") for out in outs)
    assert x == y and len(x.splitlines()) > 6
    assert _digest_tree(outs[0] / "crops") == _digest_tree(outs[1] / "crops")
