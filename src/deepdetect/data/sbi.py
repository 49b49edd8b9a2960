"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): a pseudo-fake made from one real crop and its landmarks.

One real face is blended with a slightly changed copy of itself inside a face-shaped mask, so the only cues left are
the ones face manipulations share: a blending boundary, and colour or frequency that differ inside it. The steps
follow the paper, on the crop geometry training uses (the square MTCNN crop):

1. **Mask**: a hull of the 68 dense landmarks (`faces/landmarks.py`), one of four shapes drawn at random as in the
   paper's random hull (whole-face hull, hull extended up over the forehead, DeepFaceLab's "full face", or the
   facial components only). Crops without dense landmarks fall back to a polygon grown from MTCNN's 5 points,
   which covers the face far more roughly. A fifth shape, `lower` (the jaw below the cheekbones, the lower nose and
   the mouth: the region lip-sync regenerates), is not the paper's and is drawn only when listed (`data.sbi.hulls`).
2. **Source/target augmentation**: a copy of the face gets colour (RGB shift, hue/saturation/value, brightness and
   contrast) and frequency (down-and-up-scaling or sharpening) changes. As in the paper, half the time the copy is
   the source pasted in, half the time the target it is pasted into; `Blend.real` is the target, so a paired real
   sample shows the same colour statistics outside the mask as its fake.
3. **Geometry**: the source and the mask move together by a small random translation and scale; the mask alone is
   deformed elastically.
4. **Blend**: the mask is eroded and blurred at a random scale (blurred, cut to its core, blurred again), then
   multiplied by a blend ratio drawn from (0.25, 0.5, 0.75, 1, 1, 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd

from deepdetect.utils.face68 import BROW_L, BROW_R, EYE_L, EYE_R, LOWER_FACE, MOUTH, NOSE_BRIDGE, NOSE_LOW
from deepdetect.utils.offline import import_albumentations

if TYPE_CHECKING:
    import albumentations as A

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
HULLS = ("facehull", "extended", "dfl_full", "components")  # the paper's random hull: the default draw
ALL_HULLS = (*HULLS, "lower")


def unknown_hulls(hulls: Sequence[str]) -> list[str]:
    """The names in `hulls` that are not mask shapes (`ALL_HULLS`), sorted: what a config or a command must refuse."""
    return sorted(set(hulls) - set(ALL_HULLS))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


@dataclass(frozen=True)
class Blend:
    """One self-blend: the (perturbed) target shown as the real sample, the blended fake, its mask and draws."""

    real: np.ndarray
    fake: np.ndarray
    mask: np.ndarray  # float32 HxW in [0, 1]: the blend weight of the source (mask × ratio)
    hull: str
    ratio: float


# ------------------------------------------------------------------------------------------------------ landmarks


def as_points(landmarks: Sequence[float] | np.ndarray) -> np.ndarray:
    """(5, 2) or (68, 2) float32 points from a flat list of 10 / 136 numbers or an (n, 2) array."""
    pts = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    if len(pts) not in (5, 68):
        raise ValueError(f"self-blending needs 5 or 68 landmarks (10 or 136 numbers), got {pts.size} numbers")
    return pts


def landmark_hull_points(landmarks: Sequence[float] | np.ndarray, expand: float = 1.0) -> np.ndarray:
    """Polygon covering the face from MTCNN's 5 points: eyes/mouth pushed out to forehead, cheeks and chin."""
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
    return (nose + (poly - nose) * expand).astype(np.float32)


def forehead_points(pts68: np.ndarray, lift: float = 0.6) -> np.ndarray:
    """The eyebrow points moved up the face's axis (brow height above the nose tip × `lift`): a forehead line."""
    brows = pts68[list(BROW_R) + list(BROW_L)]
    up = brows.mean(axis=0) - pts68[33]  # nose tip -> brows
    return (brows + lift * up).astype(np.float32)


def _fill_hulls(shape: tuple[int, int], parts: Sequence[np.ndarray]) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.float32)
    for part in parts:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(part).astype(np.int32)), 1.0)
    return mask


def hull_mask(shape: tuple[int, int], landmarks: Sequence[float] | np.ndarray, kind: str = "facehull") -> np.ndarray:
    """Binary float32 face mask of one hull shape (`ALL_HULLS`) from 68 points; 5 points give the grown polygon."""
    pts = as_points(landmarks)
    if len(pts) == 5:
        return _fill_hulls(shape, [landmark_hull_points(pts)])
    take = lambda *ranges: pts[[i for r in ranges for i in r]]  # noqa: E731
    if kind == "facehull":
        parts = [pts]
    elif kind == "extended":
        parts = [np.vstack([pts, forehead_points(pts)])]
    elif kind == "dfl_full":  # DeepFaceLab's full-face mask: each half of the jaw with its brow, plus the nose
        parts = [
            np.vstack([take(range(0, 9), BROW_R), pts[[27, 30]]]),
            np.vstack([take(range(8, 17), BROW_L), pts[[27, 30]]]),
            take(NOSE_BRIDGE, NOSE_LOW),
            take(range(3, 14), MOUTH),
        ]
    elif kind == "components":  # the inner parts only: brows, eyes and nose; nose and mouth (no jaw, no cheeks)
        parts = [take(BROW_R, BROW_L, EYE_R, EYE_L, NOSE_BRIDGE), take(NOSE_LOW, MOUTH), take(NOSE_BRIDGE, NOSE_LOW)]
    elif kind == "lower":  # the lower face: jaw below the cheekbones, lower nose and mouth
        parts = [pts[list(LOWER_FACE)]]
    else:
        raise ValueError(f"unknown hull {kind!r}; expected one of {ALL_HULLS}")
    return _fill_hulls(shape, parts)


# ------------------------------------------------------------------------------------------ augmentation of a copy

_TRANSFORMS: dict[str, A.Compose] = {}


def _transforms() -> dict[str, A.Compose]:
    """The paper's source/target perturbation, geometry (image + mask) and mask deformation, built once."""
    if not _TRANSFORMS:
        A = import_albumentations()
        _TRANSFORMS["colour_frequency"] = A.Compose(
            [
                A.RGBShift(r_shift_limit=(-20, 20), g_shift_limit=(-20, 20), b_shift_limit=(-20, 20), p=0.3),
                A.HueSaturationValue(
                    hue_shift_limit=(-10, 10), sat_shift_limit=(-20, 20), val_shift_limit=(-20, 20), p=0.3
                ),
                A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1), p=1.0),
                A.OneOf(
                    [
                        A.Downscale(
                            scale_range=(0.25, 0.5),
                            interpolation_pair={"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_LINEAR},
                            p=1.0,
                        ),
                        A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1.0),
                    ],
                    p=1.0,
                ),
            ]
        )
        _TRANSFORMS["geometry"] = A.Compose(
            [
                A.Affine(
                    translate_percent={"x": (-0.03, 0.03), "y": (-0.015, 0.015)},
                    scale=(0.95, 1 / 0.95),
                    border_mode=cv2.BORDER_REFLECT_101,
                    p=1.0,
                )
            ]
        )
        _TRANSFORMS["deform"] = A.Compose([A.ElasticTransform(alpha=50, sigma=7, p=1.0)])
    return _TRANSFORMS


def perturb(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour and frequency perturbation of a uint8 RGB crop (the paper's source transform)."""
    t = _transforms()["colour_frequency"]
    t.set_random_seed(_seed(rng))
    return np.asarray(t(image=image)["image"])


def move_with_mask(source: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same small random translation/scale of source and mask, then an elastic deformation of the mask."""
    t = _transforms()
    t["geometry"].set_random_seed(_seed(rng))
    moved = t["geometry"](image=source, mask=mask)
    t["deform"].set_random_seed(_seed(rng))
    deformed = t["deform"](image=moved["image"], mask=moved["mask"])["mask"]
    return np.asarray(moved["image"]), np.asarray(deformed, dtype=np.float32)


def blend_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soft mask in [0, 1]: at a random 192-256 px scale, blurred, cut to its core (< 1 -> 0), blurred again."""
    h, w = mask.shape
    size = (int(rng.integers(192, 257)), int(rng.integers(192, 257)))  # (w, h)
    soft: np.ndarray = cv2.resize(mask.astype(np.float32), size)
    k1, k2 = (int(rng.integers(2, 13)) * 2 + 1 for _ in range(2))  # odd kernels 5..25
    soft = cv2.GaussianBlur(soft, (k1, k1), 0)
    if soft.max() <= 0:
        return np.zeros((h, w), np.float32)
    soft = (soft / soft.max()).astype(np.float32)
    soft[soft < 1] = 0  # erode: keep only the core the blur left untouched
    if soft.max() <= 0:  # a tiny mask has no core at this blur: keep the blurred hull instead
        soft = cv2.GaussianBlur(cv2.resize(mask.astype(np.float32), size), (k1, k1), 0)
    soft = cv2.GaussianBlur(soft, (k2, k2), float(rng.integers(5, 46)))
    soft = (soft / max(float(soft.max()), 1e-6)).astype(np.float32)
    return np.clip(cv2.resize(soft, (w, h)), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- the blend


def blend_pair(
    image: np.ndarray,
    landmarks: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    ratio: float | None = None,
    hull: str | None = None,
    hulls: Sequence[str] = HULLS,
) -> Blend:
    """Self-blend one real RGB uint8 crop as the paper does; returns the real/fake pair and the mask used (its
    shape is `hull`, else drawn from `hulls`)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB crop, got {image.shape} {image.dtype}")
    pts = as_points(landmarks)
    kind = hull or (hulls[int(rng.integers(len(hulls)))] if len(pts) == 68 else "mtcnn5")
    mask = hull_mask(image.shape[:2], pts, kind if len(pts) == 68 else "facehull")
    source, target = image.copy(), image.copy()
    if rng.random() < 0.5:
        source = perturb(source, rng)
    else:
        target = perturb(target, rng)
    source, mask = move_with_mask(source, mask, rng)
    r = float(ratio) if ratio is not None else float(BLEND_RATIOS[int(rng.integers(len(BLEND_RATIOS)))])
    alpha = blend_mask(mask, rng) * r
    a3 = alpha[..., None]
    mixed = np.rint(a3 * source.astype(np.float32) + (1.0 - a3) * target.astype(np.float32))
    fake: np.ndarray = np.clip(mixed, 0, 255).astype(np.uint8)
    fake[alpha == 0] = target[alpha == 0]
    return Blend(real=target, fake=fake, mask=alpha.astype(np.float32), hull=kind, ratio=r)


def self_blend(
    image: np.ndarray, landmarks: Sequence[float], rng: np.random.Generator, ratio: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The blended fake of `image` and its float mask × ratio (see :func:`blend_pair`)."""
    out = blend_pair(image, landmarks, rng, ratio)
    return out.fake, out.mask


def best_landmarks(landmarks68: str | float | None, landmarks5: str | float | None) -> list[float]:
    """A manifest row's landmarks for blending: the 68 dense points when present, else MTCNN's 5 (else [])."""
    from deepdetect.data.manifest import parse_landmarks, parse_landmarks68

    dense = parse_landmarks68(landmarks68)
    return dense if dense else parse_landmarks(landmarks5)


def write_sbi_manifest(frame: pd.DataFrame, out_dir: str | Path, seed: int = 0) -> Path:
    """Write a self-blended fake of every real row with landmarks: crops + `manifest.csv` under `out_dir`.

    The fakes get label `fake`, method `sbi`, source `sbi-<source>` and video/group ids prefixed `sbi:`, so an
    evaluation reports them as their own source ("detection rate on SBI fakes of unseen photos"). `frame` is a
    manifest as `read_manifest` returns it (with `abs_crop_path`). Deterministic for a seed.
    """
    from PIL import Image

    from deepdetect.data.manifest import write_manifest

    out = Path(out_dir)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        landmarks = best_landmarks(getattr(row, "landmarks68", None), row.landmarks)
        if row.label != "real" or not landmarks:
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
