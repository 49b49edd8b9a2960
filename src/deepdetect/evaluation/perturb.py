"""Image perturbations for the robustness sweep: JPEG re-compression, blur, downscaling."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Perturbation = Callable[[np.ndarray], np.ndarray]


def jpeg(quality: int) -> Perturbation:
    """Re-encode as JPEG at `quality`."""

    def apply(crop: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(crop).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB"))

    return apply


def blur(radius: float = 1.5) -> Perturbation:
    """Gaussian blur with `radius` pixels."""
    return lambda crop: np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(radius)))


def downscale(factor: float = 0.5) -> Perturbation:
    """Shrink by `factor` then resize back to the original size (loses detail, keeps geometry)."""

    def apply(crop: np.ndarray) -> np.ndarray:
        h, w = crop.shape[:2]
        small = Image.fromarray(crop).resize(
            (max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR
        )
        return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))

    return apply


def get_perturbation(name: str) -> Perturbation:
    """`jpegQ` (e.g. jpeg70), `blur` / `blurR` (radius), `downscale` / `downscaleP` (percent, e.g. downscale25)."""
    if m := re.fullmatch(r"jpeg(\d{1,3})", name):
        q = int(m.group(1))
        if not 1 <= q <= 100:
            raise ValueError(f"JPEG quality must be 1..100 in {name!r}")
        return jpeg(q)
    if m := re.fullmatch(r"blur(\d+(?:\.\d+)?)?", name):
        return blur(float(m.group(1)) if m.group(1) else 1.5)
    if m := re.fullmatch(r"downscale(\d{1,2})?", name):
        return downscale(int(m.group(1)) / 100 if m.group(1) else 0.5)
    raise ValueError(f"unknown perturbation {name!r}; use jpegQ (jpeg90..jpeg30), blur[R], or downscale[PCT]")
