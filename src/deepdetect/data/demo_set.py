"""Build the offline demo sample set: real face photos and videos, and face-swap fakes made from them.

Faces come from images bundled with scikit-image (`lfw_subset`: 100 small greyscale LFW faces, and
`astronaut`), so nothing is downloaded. Real images place a face on a textured background at a random
position and scale. Fakes are face swaps: another identity's face, resampled at a lower resolution (as
generators do), colour-matched to the target face and blended in with a feathered elliptical mask — the
boundary and resolution artefacts real face-swap pipelines leave. Videos are encoded with PyAV.
The result is a `folder` layout: `real/<source>/...` and `fake/<method>/...`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from deepdetect.media import write_video

log = logging.getLogger(__name__)

CANVAS = 192  # side of generated photos and video frames, in pixels


@dataclass(frozen=True)
class DemoSet:
    """Where the sample set was written and what it holds."""

    root: Path
    n_real_images: int
    n_fake_images: int
    videos: tuple[Path, ...]


def _faces() -> list[np.ndarray]:
    """RGB face images (uint8) from scikit-image's bundled data."""
    from skimage import data

    lfw = data.lfw_subset()[:100]  # the first 100 entries are faces, the rest are not
    faces = []
    for grey in lfw:
        img = Image.fromarray((grey * 255).astype(np.uint8)).resize((96, 96), Image.Resampling.BICUBIC)
        faces.append(np.asarray(img.convert("RGB")))
    astro = Image.fromarray(data.astronaut()).crop((150, 30, 300, 200)).resize((96, 96), Image.Resampling.BICUBIC)
    faces.append(np.asarray(astro))
    return faces


def _tint(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give a greyscale face a plausible skin tint, so colour carries no label."""
    tint = np.array([1.0, 0.85, 0.72]) * rng.uniform(0.85, 1.1) + rng.normal(0, 0.03, 3)
    return np.clip(face.astype(np.float32) * tint, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, size: int = CANVAS) -> np.ndarray:
    """A smooth random-colour background with mild texture."""
    base = rng.uniform(40, 220, size=3)
    low = rng.normal(0, 25, size=(6, 6, 3))
    field = np.asarray(
        Image.fromarray(np.uint8(np.clip(low + 128, 0, 255))).resize((size, size), Image.Resampling.BICUBIC)
    )
    img = base + (field.astype(np.float32) - 128) + rng.normal(0, 4, size=(size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _ellipse_mask(h: int, w: int, feather: float) -> np.ndarray:
    """A soft elliptical mask covering the inner face region."""
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((xx - w / 2 + 0.5) / (w * 0.36)) ** 2 + ((yy - h * 0.52) / (h * 0.44)) ** 2
    mask = np.clip((1.0 - d) / feather, 0.0, 1.0)
    return mask.astype(np.float32)


def swap_face(target: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend the donor's face into the target face (same size crops): low-res synthesis, colour match, soft mask."""
    h, w = target.shape[:2]
    low = int(rng.integers(12, 20))
    synth = (
        Image.fromarray(donor).resize((low, low), Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.BILINEAR)
    )
    src = np.asarray(synth).astype(np.float32)
    tgt = target.astype(np.float32)
    mask = _ellipse_mask(h, w, feather=float(rng.uniform(0.05, 0.2)))[..., None]
    # Move the donor's colour statistics towards the target's inside the mask (a standard swap step).
    wsum = mask.sum()
    for c in range(3):
        s_mean = (src[..., c] * mask[..., 0]).sum() / wsum
        t_mean = (tgt[..., c] * mask[..., 0]).sum() / wsum
        s_std = np.sqrt(((src[..., c] - s_mean) ** 2 * mask[..., 0]).sum() / wsum) + 1e-3
        t_std = np.sqrt(((tgt[..., c] - t_mean) ** 2 * mask[..., 0]).sum() / wsum) + 1e-3
        matched = (src[..., c] - s_mean) * (t_std / s_std) + t_mean
        src[..., c] = 0.5 * matched + 0.5 * src[..., c]  # partial match: a faint tone seam remains
    out = mask * src + (1.0 - mask) * tgt
    return np.clip(out, 0, 255).astype(np.uint8)


def _place(face: np.ndarray, rng: np.random.Generator, size: int = CANVAS) -> np.ndarray:
    """Paste a face on a background at a random scale and position."""
    canvas = _background(rng, size)
    side = int(rng.integers(80, 120))
    img = np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC))
    x = int(rng.integers(0, size - side))
    y = int(rng.integers(0, size - side))
    canvas[y : y + side, x : x + side] = img
    return canvas


def _save_jpeg(img: np.ndarray, path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(img)
    if rng.random() < 0.3:
        pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.8))))
    pil.save(path, quality=int(rng.integers(80, 96)))


def _clip(face: np.ndarray, rng: np.random.Generator, n_frames: int) -> list[np.ndarray]:
    """A short 'talking head' clip: the face drifts and zooms slowly over a fixed background."""
    bg = _background(rng)
    x0, y0 = rng.integers(20, 60, size=2)
    frames = []
    for t in range(n_frames):
        side = int(96 + 10 * np.sin(t / 5.0))
        img = np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC))
        frame = bg.copy()
        x = int(x0 + 6 * np.sin(t / 4.0))
        y = int(y0 + 4 * np.cos(t / 6.0))
        frame[y : y + side, x : x + side] = img
        frames.append(frame)
    return frames


def build_demo_set(root: str | Path, n_real: int = 60, n_fake: int = 60, n_videos: int = 2, seed: int = 0) -> DemoSet:
    """Write the demo set under `root` (folder layout) and return what it holds. Deterministic for a seed."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    faces = [_tint(f, rng) for f in _faces()]
    n = len(faces)
    for i in range(n_real):
        _save_jpeg(_place(faces[i % n], rng), root / "real" / "portraits" / f"real_{i:03d}.jpg", rng)
    for i in range(n_fake):
        target = faces[(i * 7 + 3) % n]
        donor = faces[(i * 13 + 5) % n]
        _save_jpeg(_place(swap_face(target, donor, rng), rng), root / "fake" / "faceswap" / f"swap_{i:03d}.jpg", rng)
    videos: list[Path] = []
    for v in range(n_videos):
        face = faces[(v * 11 + 1) % n]
        if v % 2 == 1:
            face = swap_face(face, faces[(v * 17 + 2) % n], rng)
            path = root / "fake" / "faceswap" / f"clip_{v:02d}.mp4"
        else:
            path = root / "real" / "clips" / f"clip_{v:02d}.mp4"
        write_video(path, _clip(face, rng, n_frames=24), fps=12)
        videos.append(path)
    log.info("demo set: %d real, %d fake images, %d videos under %s", n_real, n_fake, len(videos), root)
    return DemoSet(root=root, n_real_images=n_real, n_fake_images=n_fake, videos=tuple(videos))
