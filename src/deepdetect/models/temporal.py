"""The temporal expert's model: frozen per-frame embeddings -> clip statistics of their change -> a logistic head.

Each frame of a clip is embedded twice by a frozen backbone (the pooled features before its classifier): the whole
face crop, and a square crop of the lower face around the dense landmarks' jaw, nose base and mouth. A clip's
features say how those embeddings move from frame to frame: the size of consecutive differences (motion), of second
differences (jerk: a region that flickers or jumps has large second differences for its motion), spikes, and how far
the frames stray from the clip's mean, for the face and the lower face, and the lower face relative to the face.
A logistic regression on the standardised features is the head: a handful of numbers, stored as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from deepdetect.contract import Preprocess
from deepdetect.contract.preprocess import prepare_batch, sigmoid
from deepdetect.models.detector import Detector
from deepdetect.utils.face68 import LOWER_FACE

STREAM_FEATURES = ("log_step", "log_jerk", "log_jerk_per_step", "log_spike", "step_cv", "log_spread")
FEATURE_NAMES = (
    *(f"face_{n}" for n in STREAM_FEATURES),
    *(f"lower_{n}" for n in STREAM_FEATURES),
    "lower_vs_face_step",
    "lower_vs_face_jerk",
)
EPS = 1e-6


@torch.inference_mode()
def embed(model: Detector, crops: Sequence[np.ndarray], preprocess: Preprocess, batch_size: int = 32) -> np.ndarray:
    """L2-normalised pooled backbone features (N, D) of RGB uint8 crops (the classifier's input)."""
    backbone: Any = model.backbone
    backbone.eval()
    parts = []
    for start in range(0, len(crops), batch_size):
        x = torch.from_numpy(prepare_batch(crops[start : start + batch_size], preprocess))
        feats = backbone.forward_head(backbone.forward_features(x), pre_logits=True).float()
        parts.append(torch.nn.functional.normalize(feats.flatten(1), dim=1).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, int(backbone.num_features)), np.float32)


def lower_face_box(pts68: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A square box (x0, y0, x1, y1) around the lower face points, grown by 15%, kept inside the crop."""
    pts = np.asarray(pts68, dtype=np.float32).reshape(68, 2)[list(LOWER_FACE)]
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    side = max(8.0, 1.15 * float(max(x1 - x0, y1 - y0)))
    side = min(side, float(width), float(height))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.rint(np.clip(cx - side / 2, 0, width - side)))
    top = int(np.rint(np.clip(cy - side / 2, 0, height - side)))
    return left, top, left + int(side), top + int(side)


def lower_face_crops(frames: np.ndarray, landmarks: np.ndarray | None) -> list[np.ndarray]:
    """Each frame's lower-face square (the bottom middle of the crop where a frame has no dense landmarks)."""
    t, h, w = frames.shape[:3]
    out = []
    for i in range(t):
        if landmarks is None:
            box = (w // 4, h // 2, w // 4 + w // 2, h // 2 + w // 2)
        else:
            box = lower_face_box(landmarks[i], w, h)
        x0, y0, x1, y1 = box
        out.append(np.ascontiguousarray(frames[i, y0:y1, x0:x1]))
    return out


def stream_features(emb: np.ndarray) -> np.ndarray:
    """The `STREAM_FEATURES` of one stream of L2-normalised embeddings (T >= 3, D)."""
    if len(emb) < 3:
        raise ValueError(f"a clip needs at least 3 frames for temporal features, got {len(emb)}")
    step = np.linalg.norm(np.diff(emb, axis=0), axis=1)
    jerk = np.linalg.norm(emb[2:] - 2 * emb[1:-1] + emb[:-2], axis=1)
    m1, m2 = float(step.mean()) + EPS, float(jerk.mean()) + EPS
    centre = emb.mean(axis=0)
    centre = centre / (np.linalg.norm(centre) + EPS)
    spread = float(np.mean(1.0 - emb @ centre)) + EPS
    spike = (float(step.max()) + EPS) / (float(np.median(step)) + EPS)
    return np.array(
        [np.log(m1), np.log(m2), np.log(m2 / m1), np.log(spike), float(step.std()) / m1, np.log(spread)],
        dtype=np.float64,
    )


def clip_features(face: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """A clip's feature vector (`FEATURE_NAMES`) from its face and lower-face embedding streams."""
    f, m = stream_features(face), stream_features(lower)
    return np.concatenate([f, m, [m[0] - f[0], m[1] - f[1]]])


def lower_preprocess(preprocess: Preprocess, size: int) -> Preprocess:
    """The face preprocessing at the lower-face crops' input size."""
    return replace(preprocess, input_size=(int(size), int(size)), resolution=None)


@dataclass(frozen=True)
class TemporalHead:
    """Standardisation, logistic weights, temperature and threshold of the temporal expert (all JSON numbers)."""

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    temperature: float = 1.0
    threshold: float = 0.5

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated logits of feature rows (N, F)."""
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z @ np.asarray(self.weights) + self.bias, dtype=np.float64)

    def probs(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(fake) of feature rows: sigmoid(logit / temperature)."""
        return np.asarray(sigmoid(self.logits(x) / self.temperature), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemporalHead:
        """The head `to_dict` wrote; raises ValueError when a field is missing or of the wrong length."""
        try:
            names = tuple(str(n) for n in data["feature_names"])
            head = cls(
                feature_names=names,
                mean=tuple(float(v) for v in data["mean"]),
                scale=tuple(float(v) for v in data["scale"]),
                weights=tuple(float(v) for v in data["weights"]),
                bias=float(data["bias"]),
                temperature=float(data.get("temperature", 1.0)),
                threshold=float(data.get("threshold", 0.5)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a temporal head: {exc}") from None
        if not len(head.mean) == len(head.scale) == len(head.weights) == len(names):
            raise ValueError("temporal head: mean, scale and weights must have one value per feature")
        if head.temperature <= 0 or min(head.scale) <= 0:
            raise ValueError("temporal head: temperature and scales must be > 0")
        return head


def fit_head(x: np.ndarray, y: np.ndarray, c: float = 1.0, seed: int = 0) -> TemporalHead:
    """A class-balanced logistic regression on standardised features (rows of `FEATURE_NAMES`)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(set(y.tolist())) != 2:
        raise ValueError("the temporal head needs real (0) and fake (1) clips to fit")
    mean = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), EPS)
    model = LogisticRegression(C=c, class_weight="balanced", random_state=seed, max_iter=2000)
    model.fit((x - mean) / scale, y)
    return TemporalHead(
        feature_names=FEATURE_NAMES if x.shape[1] == len(FEATURE_NAMES) else tuple(f"f{i}" for i in range(x.shape[1])),
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        weights=tuple(float(v) for v in model.coef_[0]),
        bias=float(model.intercept_[0]),
    )
