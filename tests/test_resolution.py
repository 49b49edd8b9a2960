"""Crop-level resolution normalisation: one field of the shared preprocessing, carried to every scoring path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from deepdetect.cli._hydra import config_dir
from deepdetect.contract import Preprocess
from deepdetect.inference.preprocess import prepare_batch, resize_crop
from deepdetect.models.detector import build_from_config


def _pre(resolution: int | None) -> Preprocess:
    return Preprocess(input_size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resolution=resolution)


def test_resolution_removes_detail_finer_than_it() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)  # pixel-level noise: all high frequency
    plain = resize_crop(sharp, _pre(None))
    normalised = resize_crop(sharp, _pre(16))
    assert plain.shape == normalised.shape == (64, 64, 3)

    # Through 16 px, neighbouring pixels come from the same 4x4 block: far smoother than the direct resize.
    def roughness(img: np.ndarray) -> float:
        return float(np.abs(np.diff(img.astype(int), axis=0)).mean())

    assert roughness(normalised) < 0.5 * roughness(plain)
    # Two crops of one face at different source resolutions end up alike once normalised.
    small = np.asarray(Image.fromarray(sharp).resize((32, 32), Image.Resampling.BOX))
    gap_plain = np.abs(resize_crop(small, _pre(None)).astype(int) - plain.astype(int)).mean()
    gap_norm = np.abs(resize_crop(small, _pre(16)).astype(int) - normalised.astype(int)).mean()
    assert gap_norm < gap_plain


def test_resolution_round_trips_and_reaches_the_batch() -> None:
    pre = _pre(24)
    assert Preprocess.from_dict(pre.to_dict()) == pre
    assert Preprocess.from_dict(_pre(None).to_dict()).resolution is None
    crop = np.random.default_rng(1).integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    assert not np.allclose(prepare_batch([crop], pre), prepare_batch([crop], _pre(None)))


def test_model_config_sets_it() -> None:
    cfg = OmegaConf.load(Path(config_dir()) / "model" / "test.yaml")
    cfg.resolution = 32
    _, _, pre, _ = build_from_config(cfg)
    assert pre.resolution == 32 and pre.input_size == (64, 64)
