"""Temporal self-blends: a pseudo-fake *clip* made from one real clip, in the spirit of Self-Blended Images.

Lip-sync and reenactment regenerate the lower face frame by frame: each frame looks plausible, the sequence does
not. A temporal self-blend imitates that from a real clip alone, on the lower face (jaw, nose base and mouth hull of
the 68 dense landmarks), with an *independent* draw in every frame:

- `flicker`: each frame's lower face is self-blended (`sbi.py`: a colour/frequency-perturbed copy, moved a little,
  an elastic, eroded and blurred mask, a random ratio) with its own draws, and about a third of the frames are left
  as they are, so the region flickers from frame to frame;
- `desync`: each frame's lower face is taken from a frame a few steps away (its mouth moved onto this frame's
  mouth), blended with a freshly drawn soft mask: the mouth lags or leads the rest of the face.

Nothing here ever sees a manipulated face; the real clip and its blends share everything outside the lower face.
"""

from __future__ import annotations

import cv2
import numpy as np

from deepdetect.data.sbi import BLEND_RATIOS, blend_mask, hull_mask, move_with_mask, perturb
from deepdetect.utils.face68 import MOUTH

KINDS = ("flicker", "desync")
KEEP_FRAME = 0.35  # flicker: share of frames left untouched (the blend switches on and off)


def lower_face_mask(shape: tuple[int, int], pts68: np.ndarray) -> np.ndarray:
    """Binary float32 mask of the lower face hull (`sbi.hull_mask`'s `lower`: jaw 2-14, nose 29-35, mouth) of 68
    crop-pixel points (5 points: MTCNN's grown face polygon)."""
    return hull_mask(shape, np.asarray(pts68, dtype=np.float32).reshape(-1, 2), "lower")


def _mix(target: np.ndarray, source: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a3 = alpha[..., None]
    mixed = np.rint(a3 * source.astype(np.float32) + (1.0 - a3) * target.astype(np.float32))
    out: np.ndarray = np.clip(mixed, 0, 255).astype(np.uint8)
    out[alpha == 0] = target[alpha == 0]
    return out


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    h, w = image.shape[:2]
    return np.asarray(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT_101))


def flicker_frame(frame: np.ndarray, pts68: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One frame's lower face self-blended with draws of its own (perturbed copy, moved mask, ratio)."""
    mask = lower_face_mask(frame.shape[:2], pts68)
    source, moved = move_with_mask(perturb(frame, rng), mask, rng)
    ratio = float(BLEND_RATIOS[int(rng.integers(len(BLEND_RATIOS)))])
    return _mix(frame, source, blend_mask(moved, rng) * ratio)


def temporal_blend(
    frames: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, kind: str | None = None
) -> tuple[np.ndarray, str]:
    """A temporal self-blend of a real clip ((T, H, W, 3) uint8, (T, 68, 2) crop-pixel landmarks) and its kind."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected a (T, H, W, 3) uint8 clip, got {frames.shape} {frames.dtype}")
    if landmarks.shape[:1] != frames.shape[:1]:
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark sets")
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    if kind not in KINDS:
        raise ValueError(f"unknown temporal blend {kind!r}; expected one of {KINDS}")
    n = len(frames)
    out = frames.copy()
    if kind == "flicker":
        for t in range(n):
            if rng.random() >= KEEP_FRAME:
                out[t] = flicker_frame(frames[t], landmarks[t], rng)
        if np.array_equal(out, frames):  # every frame kept by chance: blend one
            t = int(rng.integers(n))
            out[t] = flicker_frame(frames[t], landmarks[t], rng)
        return out, kind
    lag = int(rng.integers(2, max(3, min(6, n // 2) + 1))) * (1 if rng.random() < 0.5 else -1)
    mouth = list(MOUTH)
    for t in range(n):
        s = int(np.clip(t + lag, 0, n - 1))
        if s == t:
            s = int(np.clip(t - lag, 0, n - 1))
        dx, dy = landmarks[t][mouth].mean(axis=0) - landmarks[s][mouth].mean(axis=0)
        source = _shift(frames[s], float(dx), float(dy))
        mask = lower_face_mask(frames.shape[1:3], landmarks[t])
        out[t] = _mix(frames[t], source, blend_mask(mask, rng))
    return out, kind
