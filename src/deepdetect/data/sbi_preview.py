"""A picture of self-blending: original / mask / blended crops side by side, so a researcher can check the masks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepdetect.data.sbi import HULLS, Blend, best_landmarks, blend_pair

TILE = 160


def pick_reals(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Up to `n` real rows with landmarks, one per video where possible, drawn with a seed."""
    reals = frame[frame["label"] == "real"]
    has = reals["landmarks68"].astype(str).str.strip().ne("") | reals["landmarks"].astype(str).str.strip().ne("")
    reals = reals[has]
    if len(reals) == 0:
        raise ValueError("no real rows with landmarks to self-blend")
    firsts = reals.groupby("video_id", sort=True).head(1)
    pool = firsts if len(firsts) >= n else reals
    return pool.sample(n=min(n, len(pool)), random_state=seed)


def _tile(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_AREA)


def _mask_rgb(mask: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The mask as a heat overlay on the real crop."""
    heat = np.zeros_like(real)
    heat[..., 0] = np.clip(mask * 255, 0, 255).astype(np.uint8)
    return np.clip(0.5 * real + 0.8 * heat, 0, 255).astype(np.uint8)


def preview_rows(
    frame: pd.DataFrame, n: int = 8, seed: int = 0, hulls: Sequence[str] = HULLS
) -> list[tuple[str, Blend, np.ndarray]]:
    """(caption, blend, original crop) for `n` real rows of a manifest (read with `read_manifest`); each blend's mask
    shape drawn from `hulls`."""
    from deepdetect.data.dataset import read_crop

    out = []
    for i, row in enumerate(pick_reals(frame, n, seed).itertuples(index=False)):
        crop = read_crop(str(row.abs_crop_path))
        landmarks = best_landmarks(row.landmarks68, row.landmarks)
        blend = blend_pair(crop, landmarks, np.random.default_rng([seed, i]), hulls=hulls)
        points = "68 points" if len(landmarks) == 136 else "5 points"
        out.append(
            (f"{Path(str(row.source_path)).name} · {blend.hull} ({points}) · ratio {blend.ratio:g}", blend, crop)
        )
    return out


def render_preview(
    frame: pd.DataFrame, out_path: str | Path, n: int = 8, seed: int = 0, hulls: Sequence[str] = HULLS
) -> Path:
    """Write a PNG grid: one row per real crop with the original, the mask over it, the perturbed real and the fake."""
    from PIL import Image, ImageDraw

    rows = preview_rows(frame, n, seed, hulls)
    head, cap = 18, 16
    cols = ("original", "mask", "real (as paired)", "self-blended fake", "|fake - original| x4")
    width, row_h = TILE * len(cols), TILE + cap
    canvas = Image.new("RGB", (width, head + row_h * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(cols):
        draw.text((j * TILE + 4, 3), name, fill="black")
    for i, (caption, blend, crop) in enumerate(rows):
        y = head + i * row_h
        diff = np.clip(np.abs(blend.fake.astype(np.int16) - crop.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        tiles = (crop, _mask_rgb(blend.mask, crop), blend.real, blend.fake, diff)
        for j, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(_tile(tile)), (j * TILE, y))
        draw.text((4, y + TILE + 2), caption[:120], fill="black")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
