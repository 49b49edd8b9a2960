"""Crop transforms: albumentations augmentation, then the exact inference preprocessing (resize, normalise)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from deepdetect.contract import Preprocess
from deepdetect.inference.preprocess import prepare_batch
from deepdetect.utils.offline import import_albumentations

if TYPE_CHECKING:
    import albumentations as A

AUGMENT_KEYS = (
    "hflip",
    "jpeg_p",
    "jpeg_quality",
    "blur_p",
    "downscale_p",
    "downscale",
    "noise_p",
    "color_p",
    "cutout_p",
    "random_order",
)


def _pair(value: Any, default: tuple[float, float]) -> tuple[float, float]:
    """A 2-element range from a config list (or the default)."""
    if value is None:
        return default
    lo, hi = value
    return float(lo), float(hi)


def build_augmentation(aug_cfg: Mapping[str, Any] | None) -> A.Compose | None:
    """Albumentations pipeline from an `augment/*.yaml` node; None when every probability is 0.

    The degradations (downscale, JPEG, blur, noise) form one chain; with `random_order` they run in a random
    order per sample, as real-world re-encoding chains do.
    """
    A = import_albumentations()
    cfg = dict(aug_cfg or {})
    unknown = sorted(set(cfg) - {*AUGMENT_KEYS, "name"})
    if unknown:
        raise ValueError(f"unknown augment keys {unknown}; known: {AUGMENT_KEYS}")
    geometric: list[Any] = []
    degrade: list[Any] = []
    photometric: list[Any] = []
    if cfg.get("hflip", 0.0) > 0:
        geometric.append(A.HorizontalFlip(p=float(cfg["hflip"])))
    if cfg.get("downscale_p", 0.0) > 0:
        degrade.append(A.Downscale(scale_range=_pair(cfg.get("downscale"), (0.35, 0.9)), p=float(cfg["downscale_p"])))
    if cfg.get("jpeg_p", 0.0) > 0:
        q = _pair(cfg.get("jpeg_quality"), (30, 100))
        degrade.append(A.ImageCompression(quality_range=(int(q[0]), int(q[1])), p=float(cfg["jpeg_p"])))
    if cfg.get("blur_p", 0.0) > 0:
        degrade.append(A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.3, 2.0), p=float(cfg["blur_p"])))
    if cfg.get("noise_p", 0.0) > 0:
        degrade.append(A.GaussNoise(std_range=(0.01, 0.06), p=float(cfg["noise_p"])))
    if cfg.get("color_p", 0.0) > 0:
        photometric.append(
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03, p=float(cfg["color_p"]))
        )
    if cfg.get("cutout_p", 0.0) > 0:
        photometric.append(
            A.CoarseDropout(
                num_holes_range=(1, 3),
                hole_height_range=(0.1, 0.25),
                hole_width_range=(0.1, 0.25),
                p=float(cfg["cutout_p"]),
            )
        )
    if degrade and cfg.get("random_order", False):
        # One of every ordering, picked uniformly per sample (SomeOf keeps the listed order).
        orders = [A.Sequential(list(perm), p=1.0) for perm in itertools.permutations(degrade)]
        degrade = [A.OneOf(orders, p=1.0)]
    steps = geometric + degrade + photometric
    return A.Compose(steps) if steps else None


class CropTransform:
    """uint8 RGB crop -> normalised CHW float tensor; augmentation (if any) is seeded per call for reproducibility."""

    def __init__(self, preprocess: Preprocess, augmentation: A.Compose | None = None) -> None:
        self.preprocess = preprocess
        self.augmentation = augmentation

    def __call__(self, crop: np.ndarray, seed: int | None = None) -> torch.Tensor:
        """Augment (seeded when `seed` is given), then resize and normalise exactly like `prepare_batch`."""
        if self.augmentation is not None:
            if seed is not None:
                self.augmentation.set_random_seed(seed)
            crop = self.augmentation(image=crop)["image"]
        return torch.from_numpy(prepare_batch([np.ascontiguousarray(crop)], self.preprocess)[0])


def build_transforms(aug_cfg: Mapping[str, Any] | None, preprocess: Preprocess) -> tuple[CropTransform, CropTransform]:
    """(train transform with augmentation, eval transform = resize + normalise only)."""
    return CropTransform(preprocess, build_augmentation(aug_cfg)), CropTransform(preprocess, None)
