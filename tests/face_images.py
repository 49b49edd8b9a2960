"""Real face images generated offline for extraction tests (skimage's astronaut and LFW subset)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image


@cache
def _lfw() -> np.ndarray:
    from skimage.data import lfw_subset

    return lfw_subset()


def astronaut() -> np.ndarray:
    """skimage's 512x512 RGB astronaut photo (one face, found by MTCNN)."""
    from skimage.data import astronaut as _astronaut

    return _astronaut()


def lfw_face(i: int, canvas: int = 200, offset: tuple[int, int] = (50, 50), background: int = 90) -> np.ndarray:
    """LFW face `i` (25x25 grey) upscaled x4 (bicubic) and pasted on a canvas x canvas RGB background."""
    face = (_lfw()[i % 200] * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(face).resize((100, 100), Image.Resampling.BICUBIC))
    img = np.full((canvas, canvas), background, dtype=np.uint8)
    y, x = offset
    img[y : y + 100, x : x + 100] = big
    return np.repeat(img[:, :, None], 3, axis=2)


def blank(canvas: int = 200) -> np.ndarray:
    """A face-free image: a smooth gradient."""
    ramp = np.linspace(40, 200, canvas, dtype=np.float32)
    img = (ramp[None, :] * 0.5 + ramp[:, None] * 0.5).astype(np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2)


def save(img: np.ndarray, path: Path) -> Path:
    """Write an RGB array as an image file (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def face_video_frames(i: int = 0, n: int = 12, canvas: int = 200) -> list[np.ndarray]:
    """`n` frames of LFW face `i` drifting slowly to the right (one track)."""
    return [lfw_face(i, canvas, offset=(50, 30 + 3 * k)) for k in range(n)]
