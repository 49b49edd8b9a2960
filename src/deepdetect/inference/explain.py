"""Occlusion explanations computed through the predictor's own scoring, so ONNX and checkpoint models both work.

A grey patch (the model's mean pixel, i.e. zero after normalisation) slides over the face crop; each position's
value is how much the calibrated P(fake) drops when that patch is hidden (positive: the region supports "fake";
negative: it argues against). All occluded copies go through `Predictor.score_crops` in batches. The map is drawn
over the face crop, upscaled to a readable size, with a colour scale, the face and file scores and the face box.
"""

from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from deepdetect.inference.predictor import Predictor
from deepdetect.utils.paths import bounded_name, printable_text

log = logging.getLogger(__name__)

MIN_DISPLAY_PX = 320  # the face crop is drawn at least this large


@dataclass(frozen=True)
class FaceEvidence:
    """The best face of a flagged file, kept (alone) for the explanation pass at the end of a run."""

    crop: np.ndarray
    face_score: float
    file_score: float
    box: list[float]
    frame_index: int
    time_s: float
    kind: str = "image"


def occlusion_map(
    predictor: Predictor, crop: np.ndarray, patch: int | None = None, stride: int | None = None
) -> tuple[np.ndarray, float]:
    """(HxW drop in calibrated P(fake) when each pixel's region is hidden, the unoccluded P(fake)).

    Defaults: a patch of a quarter of the crop side, moved by an eighth (7 x 7 positions, one scoring batch of 50).
    """
    h, w = crop.shape[:2]
    side = min(h, w)
    patch = max(2, side // 4) if patch is None else int(patch)
    stride = max(1, side // 8) if stride is None else int(stride)
    fill = np.clip(np.asarray(predictor.contract.preprocess.mean) * 255.0, 0, 255).astype(np.uint8)
    ys = list(range(0, max(1, h - patch + 1), stride))
    xs = list(range(0, max(1, w - patch + 1), stride))
    if ys[-1] + patch < h:
        ys.append(h - patch)
    if xs[-1] + patch < w:
        xs.append(w - patch)
    boxes = [(y, x) for y in ys for x in xs]
    copies = [crop]
    for y, x in boxes:
        hidden = crop.copy()
        hidden[y : y + patch, x : x + patch] = fill
        copies.append(hidden)
    probs = predictor.calibrate(predictor.score_crops(copies))
    base = float(probs[0])
    total = np.zeros((h, w), dtype=np.float64)
    count = np.zeros((h, w), dtype=np.float64)
    for (y, x), p in zip(boxes, probs[1:], strict=True):
        total[y : y + patch, x : x + patch] += base - float(p)
        count[y : y + patch, x : x + patch] += 1
    return total / np.maximum(count, 1), base


def render_explanation(crop: np.ndarray, heat: np.ndarray, lines: list[str]) -> np.ndarray:
    """RGB image: the crop (upscaled to >= MIN_DISPLAY_PX) under the signed map, a colour scale and caption lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(MIN_DISPLAY_PX / dpi + 1.6, MIN_DISPLAY_PX / dpi + 0.3 + 0.22 * len(lines)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.03, 0.72, 0.72 * fig.get_figwidth() / fig.get_figheight()))
    lim = max(float(np.abs(heat).max()), 1e-3)
    colours = ScalarMappable(norm=Normalize(-lim, lim), cmap="RdBu_r")
    rgba = colours.to_rgba(heat)
    rgba[..., 3] = 0.7 * np.abs(heat) / lim  # regions that do not matter stay clear
    ax.imshow(crop, interpolation="bilinear")
    ax.imshow(rgba, interpolation="bilinear")
    ax.set_axis_off()
    cax = fig.add_axes((0.8, 0.08, 0.04, 0.5))
    bar = fig.colorbar(colours, cax=cax)
    bar.set_label("drop in P(fake) when hidden", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    top = 0.985
    for i, line in enumerate(lines):
        fig.text(0.03, top - i * 0.045, printable_text(line), fontsize=8, va="top", parse_math=False)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]


def write_explanation(path: Path, evidence: FaceEvidence, predictor: Predictor, out_dir: Path) -> Path:
    """Occlusion map of a flagged file's best face, rendered to `out_dir` (a bounded, collision-free name)."""
    from PIL import Image

    heat, base = occlusion_map(predictor, evidence.crop)
    where = f"frame {evidence.frame_index}, t = {evidence.time_s:.2f} s" if evidence.kind == "video" else ""
    lines = [
        path.name[:70],
        f"file score {evidence.file_score:.3f} · this face {evidence.face_score:.3f} (re-scored {base:.3f})",
        "face box [x1, y1, x2, y2] " + ", ".join(f"{v:.0f}" for v in evidence.box) + (f" · {where}" if where else ""),
        "red: hiding it lowers P(fake) (evidence for fake); blue: the reverse",
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / bounded_name(path.stem, os.fsencode(path), ".occlusion.png")
    Image.fromarray(render_explanation(evidence.crop, heat, lines)).save(target)
    return target


class TopFlagged:
    """The `n` highest-scoring flagged files seen so far, each with only its best face kept (bounded memory)."""

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self._heap: list[tuple[float, int, Any, FaceEvidence]] = []
        self._seq = 0

    def offer(self, score: float, key: Any, evidence: FaceEvidence) -> None:
        """Keep (key, evidence) if `score` is among the `n` highest so far."""
        if self.n <= 0:
            return
        self._seq += 1
        item = (float(score), -self._seq, key, evidence)  # ties: the earlier file wins
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def items(self) -> list[tuple[Any, FaceEvidence]]:
        """(key, evidence), highest score first."""
        return [(k, e) for _, _, k, e in sorted(self._heap, key=lambda t: t[:2], reverse=True)]


def explain_kept(keep: TopFlagged, predictor: Predictor, out_dir: Path, progress: bool = False) -> dict[str, str]:
    """The explanation pass at the end of a run: an occlusion map per kept flagged file -> {abs_path: png path};
    a file that fails is skipped (logged)."""
    written: dict[str, str] = {}
    for (abs_path, given), evidence in tqdm(keep.items(), desc="explain", unit="file", disable=not progress):
        try:
            written[abs_path] = str(write_explanation(Path(given), evidence, predictor, out_dir))
        except Exception:  # an explanation must never cost the batch its records
            log.warning("could not explain %s", given, exc_info=True)
    return written
