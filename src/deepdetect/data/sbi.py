"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): a pseudo-fake made from one real crop and its landmarks.

The crop is blended with a perturbed copy of itself inside a deformed, blurred face mask, so the only cues left
are blending boundaries and colour/frequency mismatches, the artefacts face-swap methods share.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd

from deepdetect.utils.offline import import_albumentations

if TYPE_CHECKING:
    import albumentations as A

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _source_perturbation() -> A.Compose:
    """Colour (RGB/HSV shift, brightness/contrast) and frequency (sharpen, blur or down-up-scale) changes."""
    A = import_albumentations()
    return A.Compose(
        [
            A.RGBShift(r_shift_limit=(-20, 20), g_shift_limit=(-20, 20), b_shift_limit=(-20, 20), p=0.3),
            A.HueSaturationValue(
                hue_shift_limit=(-10, 10), sat_shift_limit=(-20, 20), val_shift_limit=(-20, 20), p=0.3
            ),
            A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1), p=1.0),
            A.OneOf(
                [
                    A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1.0),
                    A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.5), p=1.0),
                    A.Downscale(scale_range=(0.5, 0.8), p=1.0),
                ],
                p=1.0,
            ),
        ]
    )


_PERTURB: A.Compose | None = None


def perturb_source(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour and frequency perturbation plus a small random shift/scale of the source copy."""
    global _PERTURB
    if _PERTURB is None:
        _PERTURB = _source_perturbation()
    _PERTURB.set_random_seed(_seed(rng))
    out = np.asarray(_PERTURB(image=image)["image"])
    h, w = out.shape[:2]
    scale = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.03, 0.03) * w, rng.uniform(-0.03, 0.03) * h
    matrix = np.array([[scale, 0, (1 - scale) * w / 2 + tx], [0, scale, (1 - scale) * h / 2 + ty]], dtype=np.float32)
    return cv2.warpAffine(out, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def landmark_hull_points(landmarks: Sequence[float], expand: float = 1.0) -> np.ndarray:
    """Polygon covering the face from 5 landmarks: eyes/mouth pushed out to forehead, cheeks and chin."""
    pts = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    left_eye, right_eye, nose, mouth_l, mouth_r = pts
    eyes_c, mouth_c = (left_eye + right_eye) / 2, (mouth_l + mouth_r) / 2
    down = mouth_c - eyes_c  # eyes -> mouth, roughly the face's vertical axis
    across = right_eye - left_eye
    extra = [
        left_eye - 0.6 * down - 0.35 * across,  # forehead corners
        right_eye - 0.6 * down + 0.35 * across,
        left_eye - 0.5 * across + 0.3 * down,  # cheeks
        right_eye + 0.5 * across + 0.3 * down,
        mouth_l + 0.45 * down - 0.15 * across,  # chin
        mouth_r + 0.45 * down + 0.15 * across,
        mouth_c + 0.6 * down,
    ]
    poly = np.vstack([pts, np.asarray(extra)])
    center = nose
    return (center + (poly - center) * expand).astype(np.float32)


def face_mask(shape: tuple[int, int], landmarks: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Float mask in [0, 1]: convex hull of the expanded landmarks, randomly deformed, dilated/eroded and blurred."""
    h, w = shape
    hull = cv2.convexHull(landmark_hull_points(landmarks, expand=rng.uniform(0.9, 1.1)).astype(np.int32))
    mask: np.ndarray = np.zeros((h, w), dtype=np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    size = max(h, w)
    # Elastic-like deformation: a smooth random displacement field.
    amp = rng.uniform(0.0, 0.04) * size
    coarse = rng.normal(0.0, 1.0, size=(2, 4, 4)).astype(np.float32)
    dx = cv2.resize(coarse[0], (w, h), interpolation=cv2.INTER_CUBIC) * amp
    dy = cv2.resize(coarse[1], (w, h), interpolation=cv2.INTER_CUBIC) * amp
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mask = cv2.remap(mask, gx + dx, gy + dy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    k = max(1, round(rng.uniform(0.0, 0.06) * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    mask = cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)
    blur = round(rng.uniform(0.05, 0.15) * size) | 1
    mask = cv2.GaussianBlur(mask, (blur, blur), 0)
    if mask.max() > 0:
        mask = mask / mask.max()
    mask[mask < 1e-3] = 0.0
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def self_blend(
    image: np.ndarray, landmarks: Sequence[float], rng: np.random.Generator, ratio: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Blend a perturbed copy of `image` into itself inside a face mask; returns (uint8 image, float mask * ratio)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB crop, got {image.shape} {image.dtype}")
    if len(landmarks) != 10:
        raise ValueError(f"self-blending needs 5 landmarks (10 numbers), got {len(landmarks)}")
    target = image
    source = perturb_source(image, rng)
    mask = face_mask(image.shape[:2], landmarks, rng)
    r = float(ratio) if ratio is not None else float(BLEND_RATIOS[int(rng.integers(len(BLEND_RATIOS)))])
    alpha = (mask * r)[..., None]
    blended = alpha * source.astype(np.float32) + (1.0 - alpha) * target.astype(np.float32)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    out[alpha[..., 0] == 0] = target[alpha[..., 0] == 0]
    return out, alpha[..., 0]


def write_sbi_manifest(frame: pd.DataFrame, out_dir: str | Path, seed: int = 0) -> Path:
    """Write a self-blended fake of every real row with landmarks: crops + `manifest.csv` under `out_dir`.

    The fakes get label `fake`, method `sbi`, source `sbi-<source>` and video/group ids prefixed `sbi:`, so an
    evaluation reports them as their own source ("detection rate on SBI fakes of unseen photos"). `frame` is a
    manifest as `read_manifest` returns it (with `abs_crop_path`). Deterministic for a seed.
    """
    from PIL import Image

    from deepdetect.data.manifest import parse_landmarks, write_manifest

    out = Path(out_dir)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        landmarks = parse_landmarks(row.landmarks)
        if row.label != "real" or len(landmarks) != 10:
            continue
        with Image.open(str(row.abs_crop_path)) as img:
            crop = np.asarray(img.convert("RGB"))
        blended, _ = self_blend(crop, landmarks, np.random.default_rng([seed, i]))
        name = f"crops/sbi_{i:06d}.png"
        Image.fromarray(blended).save(out / name)
        rec = row._asdict()
        rec.update(
            crop_path=name,
            label="fake",
            method="sbi",
            source=f"sbi-{row.source}",
            video_id=f"sbi:{row.video_id}",
            group=f"sbi:{row.group}",
        )
        rows.append(rec)
    if not rows:
        raise ValueError("no real rows with landmarks to self-blend")
    path = out / "manifest.csv"
    write_manifest(pd.DataFrame(rows), path)
    return path
