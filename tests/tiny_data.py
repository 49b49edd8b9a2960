"""A tiny synthetic crop manifest for tests: real = smooth blobs, fake = the same plus a high-frequency pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from deepdetect.data.manifest import CropRecord, records_to_frame, write_manifest

SPLIT_CYCLE = ("train", "train", "val", "test")


def tiny_landmarks(size: int, rng: np.random.Generator) -> list[float]:
    """Five plausible (x, y) face landmarks in crop pixels: eyes, nose, mouth corners."""
    base = np.array([[0.35, 0.40], [0.65, 0.40], [0.50, 0.55], [0.38, 0.72], [0.62, 0.72]])
    pts = (base + rng.normal(0.0, 0.01, size=base.shape)) * size
    return [float(v) for v in pts.reshape(-1)]


def tiny_crop(size: int, fake: bool, rng: np.random.Generator) -> np.ndarray:
    """An HxWx3 uint8 'face': a smooth coloured ellipse on a gradient; fakes get a checkerboard texture."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cx, cy = 0.5 + rng.normal(0, 0.03), 0.55 + rng.normal(0, 0.03)
    face = (((xx - cx) / 0.32) ** 2 + ((yy - cy) / 0.42) ** 2 < 1.0).astype(np.float32)
    skin = rng.uniform(120, 220, size=3)
    bg = rng.uniform(20, 120, size=3)
    img = bg[None, None, :] * (1 - face[..., None]) * (0.6 + 0.4 * yy[..., None])
    img = img + skin[None, None, :] * face[..., None] * (0.8 + 0.2 * xx[..., None])
    img = img + rng.normal(0, 2.0, size=img.shape)
    if fake:
        checker = ((np.indices((size, size)).sum(axis=0) % 2) * 2 - 1).astype(np.float32)
        img = img + 28.0 * checker[..., None] * face[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def make_tiny_manifest(
    out_dir: str | Path,
    n_videos: int = 16,
    frames_per_video: int = 2,
    size: int = 64,
    seed: int = 0,
    missing_test_files: bool = False,
) -> Path:
    """Write crops and `manifest.csv` under `out_dir`; returns the manifest path.

    Videos come in (real, fake) pairs; pair k goes to split SPLIT_CYCLE[k % 4] and source `src{k % 2}`.
    With `missing_test_files=True` the test rows are listed but their crop files are never written.
    """
    out_dir = Path(out_dir)
    (out_dir / "crops").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records: list[CropRecord] = []
    for v in range(n_videos):
        pair = v // 2
        label = "fake" if v % 2 else "real"
        split = SPLIT_CYCLE[pair % len(SPLIT_CYCLE)]
        source = f"src{pair % 2}"
        video_id = f"vid{v:03d}"
        for f in range(frames_per_video):
            rel = f"crops/{label}/{video_id}_{f:03d}.png"
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            crop = tiny_crop(size, label == "fake", rng)
            if not (missing_test_files and split == "test"):
                Image.fromarray(crop).save(path)
            records.append(
                CropRecord(
                    crop_path=rel,
                    source_path=f"videos/{video_id}.mp4",
                    label=label,
                    dataset="tiny",
                    source=source,
                    method="checker" if label == "fake" else "",
                    video_id=video_id,
                    frame_index=f,
                    x1=0.0,
                    y1=0.0,
                    x2=float(size),
                    y2=float(size),
                    det_score=0.99,
                    landmarks=tiny_landmarks(size, rng),
                    split=split,
                    group=video_id,
                )
            )
    manifest = out_dir / "manifest.csv"
    write_manifest(records_to_frame(records), manifest)
    return manifest


def tiny_landmarks68(size: int, rng: np.random.Generator) -> list[float]:
    """68 plausible iBUG-ordered points (jaw, brows, nose, eyes, mouth) in crop pixels, jittered."""
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    jaw = np.stack([0.5 - 0.33 * np.cos(t), 0.45 + 0.42 * np.sin(t)], axis=1)
    brow_r = np.stack([np.linspace(0.25, 0.45, 5), 0.33 - 0.03 * np.sin(np.linspace(0, np.pi, 5))], axis=1)
    brow_l = brow_r * [-1, 1] + [1.0, 0.0]
    nose = np.concatenate(
        [
            np.stack([np.full(4, 0.5), np.linspace(0.38, 0.55, 4)], axis=1),
            np.stack([np.linspace(0.44, 0.56, 5), np.full(5, 0.6)], axis=1),
        ]
    )
    a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eye_r = np.stack([0.36 + 0.06 * np.cos(a), 0.42 + 0.025 * np.sin(a)], axis=1)
    eye_l = eye_r * [-1, 1] + [1.0, 0.0]
    m = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    mouth = np.stack([0.5 + 0.12 * np.cos(m), 0.73 + 0.04 * np.sin(m)], axis=1)
    pts = np.concatenate([jaw, brow_r, brow_l, nose, eye_r, eye_l, mouth])
    pts = (pts + rng.normal(0.0, 0.004, size=pts.shape)) * size
    return [float(v) for v in pts.reshape(-1)]
