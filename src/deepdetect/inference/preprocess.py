"""Turn RGB face crops into the model's input tensor, with numpy and Pillow only (shared by ONNX and torch paths)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from deepdetect.contract import Preprocess

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize_crop(crop: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """Resize an HxWx3 uint8 RGB crop to the model's input size (through `preprocess.resolution` when set)."""
    h, w = preprocess.input_size
    resample = _RESAMPLE.get(preprocess.interpolation, Image.Resampling.BILINEAR)
    image = Image.fromarray(crop)
    if preprocess.resolution and crop.shape[:2] != (preprocess.resolution, preprocess.resolution):
        side = preprocess.resolution
        image = image.resize((side, side), Image.Resampling.BOX if side < min(crop.shape[:2]) else resample)
    if image.size == (w, h):
        return np.asarray(image)
    return np.asarray(image.resize((w, h), resample))


def prepare_batch(crops: Sequence[np.ndarray], preprocess: Preprocess) -> np.ndarray:
    """Stack uint8 RGB crops into a float32 NCHW batch: resize, /255, (x - mean) / std."""
    if len(crops) == 0:
        h, w = preprocess.input_size
        return np.zeros((0, 3, h, w), dtype=np.float32)
    batch = np.stack([resize_crop(c, preprocess) for c in crops]).astype(np.float32) / 255.0
    mean = np.asarray(preprocess.mean, dtype=np.float32)
    std = np.asarray(preprocess.std, dtype=np.float32)
    batch = (batch - mean) / std
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))
