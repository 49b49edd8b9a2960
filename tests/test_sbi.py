"""Self-blended images: shapes, mask sanity, and that only the masked region changes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepdetect.data.sbi import landmark_hull_points, self_blend
from tiny_data import tiny_crop, tiny_landmarks


@pytest.mark.parametrize("seed", range(6))
def test_self_blend_shape_mask_and_locality(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = 96
    image, landmarks = tiny_crop(size, False, rng), tiny_landmarks(size, rng)
    out, mask = self_blend(image, landmarks, np.random.default_rng(100 + seed), ratio=1.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    # Inside the landmarks' own hull the mask is on; far outside (image corners) it is zero.
    pts = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    inner = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(inner, cv2.convexHull(pts.astype(np.int32)), 1)
    assert (mask[inner > 0] > 0).all()
    for y, x in [(0, 0), (0, size - 1), (size - 1, 0), (size - 1, size - 1)]:
        assert mask[y, x] == 0.0
    # Pixels differ from the original only where the mask is on.
    changed = np.any(out != image, axis=2)
    assert changed.any()
    assert not changed[mask == 0].any()


def test_self_blend_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(np.zeros((32, 32, 3), np.uint8), [1.0] * 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        self_blend(np.zeros((32, 32), np.uint8), [1.0] * 10, np.random.default_rng(0))


def test_hull_covers_more_than_landmarks() -> None:
    lm = tiny_landmarks(64, np.random.default_rng(0))
    poly = landmark_hull_points(lm)
    assert poly.shape == (12, 2)
    assert cv2.contourArea(cv2.convexHull(poly)) > 3 * cv2.contourArea(
        cv2.convexHull(np.asarray(lm, np.float32).reshape(5, 2))
    )
