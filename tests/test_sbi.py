"""Self-blended images as the paper makes them: hull masks from 68 landmarks, the blend, paired samples, preview."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from deepdetect.data.sbi import HULLS, blend_pair, hull_mask, landmark_hull_points, self_blend
from tiny_data import make_tiny_manifest, tiny_crop, tiny_landmarks, tiny_landmarks68


@pytest.mark.parametrize("seed", range(6))
def test_blend_changes_only_inside_the_mask_and_keeps_the_pair_aligned(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = 96
    image, landmarks = tiny_crop(size, False, rng), tiny_landmarks68(size, rng)
    out = blend_pair(image, landmarks, np.random.default_rng(100 + seed), ratio=1.0)
    assert out.fake.shape == image.shape and out.fake.dtype == np.uint8 and out.real.shape == image.shape
    assert out.mask.shape == image.shape[:2] and out.mask.dtype == np.float32
    assert out.mask.min() >= 0.0 and out.mask.max() <= 1.0 and out.mask.max() > 0.5
    assert out.hull in HULLS
    # the fake is its real (the possibly perturbed target) wherever the mask is off, and differs inside it
    outside = out.mask == 0
    assert outside.any() and (out.fake[outside] == out.real[outside]).all()
    assert np.any(out.fake != out.real, axis=2)[out.mask > 0.5].any()
    for y, x in [(0, 0), (0, size - 1), (size - 1, 0), (size - 1, size - 1)]:
        assert out.mask[y, x] == 0.0


def test_each_hull_covers_its_landmarks_and_the_extended_one_reaches_the_forehead() -> None:
    size = 128
    pts = np.asarray(tiny_landmarks68(size, np.random.default_rng(0)), np.float32).reshape(68, 2)
    areas = {}
    for kind in HULLS:
        mask = hull_mask((size, size), pts, kind)
        areas[kind] = float(mask.sum())
        eye = pts[36].round().astype(int)  # every hull holds the eyes
        assert mask[eye[1], eye[0]] == 1.0, kind
    assert areas["extended"] > areas["facehull"] > areas["components"]
    ext, face = hull_mask((size, size), pts, "extended"), hull_mask((size, size), pts, "facehull")
    top_face = np.argmax(face.any(axis=1))
    assert np.argmax(ext.any(axis=1)) < top_face - 5, "the extended hull must reach above the brows"


def test_the_lower_hull_is_the_mouth_and_jaw_and_is_drawn_only_when_listed(tmp_path: Path) -> None:
    from deepdetect.data.dataset import CropDataset, with_sbi_fakes
    from deepdetect.data.manifest import read_manifest
    from deepdetect.data.sbi import ALL_HULLS

    size = 128
    pts = np.asarray(tiny_landmarks68(size, np.random.default_rng(0)), np.float32).reshape(68, 2)
    lower = hull_mask((size, size), pts, "lower")
    mouth, eye = pts[62].round().astype(int), pts[36].round().astype(int)
    assert lower[mouth[1], mouth[0]] == 1.0 and lower[eye[1], eye[0]] == 0.0, "the mouth, not the eyes"
    assert lower.sum() < hull_mask((size, size), pts, "facehull").sum()
    assert "lower" in ALL_HULLS and "lower" not in HULLS, "the paper's draw is unchanged"
    image = tiny_crop(size, False, np.random.default_rng(1))
    drawn = {blend_pair(image, pts, np.random.default_rng(s)).hull for s in range(40)}
    assert drawn == set(HULLS), drawn
    only = blend_pair(image, pts, np.random.default_rng(0), ratio=1.0, hulls=("lower",))
    assert only.hull == "lower" and only.mask[: int(pts[36:48, 1].min()) - 8].max() == 0.0, "nothing above the eyes"

    frame = read_manifest(_with_dense_landmarks(make_tiny_manifest(tmp_path, n_videos=4, frames_per_video=1)))
    pairs = with_sbi_fakes(frame[frame["label"] == "real"])
    raw = lambda crop, seed: __import__("torch").from_numpy(crop.copy())  # noqa: E731 - identity transform
    ds = CropDataset(pairs, raw, sbi_mode="pairs", seed=3, sbi_hulls=("lower",))
    crop = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(pairs["abs_crop_path"].iloc[0]).convert("RGB"))
    landmarks = [float(v) for v in pairs["landmarks68"].iloc[0].split()]
    expect = blend_pair(crop, landmarks, np.random.default_rng([3, 0, 0, 1]), hulls=("lower",))
    assert expect.hull == "lower" and (ds[len(pairs) // 2][0].numpy() == expect.fake).all(), "the dataset's shapes"


def test_sbi_settings_take_known_hulls_only() -> None:
    from deepdetect.training.settings import SbiSettings, TrainConfigError

    assert SbiSettings.from_config({}).hulls == HULLS
    assert SbiSettings.from_config({"hulls": ["facehull", "lower"]}).hulls == ("facehull", "lower")
    with pytest.raises(TrainConfigError, match="unknown shapes"):
        SbiSettings.from_config({"hulls": ["facehull", "mouth"]})


def test_five_point_landmarks_still_blend_with_the_grown_polygon() -> None:
    lm = tiny_landmarks(64, np.random.default_rng(0))
    poly = landmark_hull_points(lm)
    assert poly.shape == (12, 2)
    assert cv2.contourArea(cv2.convexHull(poly)) > 3 * cv2.contourArea(
        cv2.convexHull(np.asarray(lm, np.float32).reshape(5, 2))
    )
    out = blend_pair(tiny_crop(64, False, np.random.default_rng(1)), lm, np.random.default_rng(2))
    assert out.hull == "mtcnn5" and out.mask.max() > 0


def test_blend_is_deterministic_for_a_seed_and_rejects_bad_input() -> None:
    image, lm = tiny_crop(64, False, np.random.default_rng(0)), tiny_landmarks68(64, np.random.default_rng(0))
    a, b = self_blend(image, lm, np.random.default_rng(7)), self_blend(image, lm, np.random.default_rng(7))
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(image, [1.0] * 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        self_blend(np.zeros((32, 32), np.uint8), [1.0] * 10, np.random.default_rng(0))


def _with_dense_landmarks(manifest: Path) -> Path:
    frame = pd.read_csv(manifest)
    rng = np.random.default_rng(0)
    frame["landmarks68"] = [" ".join(f"{v:.1f}" for v in tiny_landmarks68(64, rng)) for _ in range(len(frame))]
    frame.to_csv(manifest, index=False)
    return manifest


def test_pairs_mode_shows_both_sides_of_one_blend_per_epoch(tmp_path: Path) -> None:
    from deepdetect.data.dataset import CropDataset, with_sbi_fakes
    from deepdetect.data.manifest import read_manifest

    frame = read_manifest(_with_dense_landmarks(make_tiny_manifest(tmp_path, n_videos=4, frames_per_video=1)))
    pairs = with_sbi_fakes(frame[frame["label"] == "real"])
    n = len(pairs) // 2
    assert pairs["sbi"].tolist() == [False] * n + [True] * n
    assert (pairs["sbi_of"].iloc[:n].to_numpy() == pairs["sbi_of"].iloc[n:].to_numpy()).all()

    raw = lambda crop, seed: __import__("torch").from_numpy(crop.copy())  # noqa: E731 - identity transform
    ds = CropDataset(pairs, raw, sbi_mode="pairs", seed=3)
    real, y_real, _ = ds[0]
    fake, y_fake, _ = ds[n]
    assert (y_real.item(), y_fake.item()) == (0.0, 1.0)
    expect = blend_pair(
        np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(pairs["abs_crop_path"].iloc[0]).convert("RGB")),
        [float(v) for v in pairs["landmarks68"].iloc[0].split()],
        np.random.default_rng([3, 0, 0, 1]),
    )
    assert (real.numpy() == expect.real).all() and (fake.numpy() == expect.fake).all()
    ds.set_epoch(1)
    assert not (ds[n][0].numpy() == fake.numpy()).all(), "each epoch draws a new blend"


def test_sbi_preview_cli_draws_a_grid(tmp_path: Path) -> None:
    from PIL import Image

    from deepdetect.cli.sbi_preview import main

    manifest = _with_dense_landmarks(make_tiny_manifest(tmp_path / "m", n_videos=8))
    out = tmp_path / "grid.png"
    assert main([str(manifest), "-o", str(out), "-n", "3"]) == 0
    with Image.open(out) as img:
        assert img.size[0] == 5 * 160 and img.size[1] > 3 * 160
    frame = pd.read_csv(manifest)
    frame[frame["label"] == "fake"].to_csv(manifest, index=False)
    assert main([str(manifest), "-o", str(out)]) == 2, "no real crop to blend: one-line error, exit 2"
    assert main([str(tmp_path / "missing.csv"), "-o", str(out)]) == 2


def test_sbi_preview_draws_the_hulls_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deepdetect.cli.sbi_preview import build_parser, main
    from deepdetect.data.manifest import read_manifest
    from deepdetect.data.sbi import ALL_HULLS
    from deepdetect.data.sbi_preview import preview_rows

    manifest = _with_dense_landmarks(make_tiny_manifest(tmp_path / "m", n_videos=4))
    rows = preview_rows(read_manifest(manifest), n=3, hulls=("lower",))
    assert [blend.hull for _, blend, _ in rows] == ["lower"] * 3 and all("lower" in c for c, _, _ in rows)
    assert main([str(manifest), "-o", str(tmp_path / "lower.png"), "-n", "2", "--hulls", "lower,facehull"]) == 0
    assert main([str(manifest), "-o", str(tmp_path / "x.png"), "--hulls", "mouth"]) == 2
    assert "unknown or no shapes ['mouth']" in capsys.readouterr().err
    helptext = " ".join(build_parser().format_help().split())
    assert all(h in helptext for h in ALL_HULLS), "--help names every shape"
