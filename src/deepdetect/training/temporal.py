"""Train the temporal expert on real clips only: each train real clip against its temporal self-blends.

Steps: embed every clip's frames once with a frozen backbone (ImageNet weights, or a trained run's backbone) and cache
the embeddings; fit the head on the train split's real clips (label 0) and `blends_per_clip` temporal self-blends of
each (label 1, `data/temporal_blend.py`) — `head: stats`, a logistic regression on 14 statistics of the clip's motion
(models/temporal.py), or `head: conv`, a small 1D convolution trained over the sequence of embedding changes
(models/temporal_seq.py); on the validation split's real clips and their own blends,
fit the temperature and set the threshold at `target_fpr` of the validation real clips (one clip per video, so of
the real videos). No manipulated video is ever seen, so every manipulation family is unseen.

With `window: N` each clip is cut into consecutive windows of N frames: the head trains on every window of every train
real clip (and each window's own self-blends), and a video's logit — in validation and in scoring alike — is the mean
of its windows' logits, so a longer clip gives more training sequences from the same real videos and a steadier score.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from deepdetect.contract.preprocess import sigmoid
from deepdetect.data.clips import Clip, load_frames
from deepdetect.data.clips import windows as cut_windows
from deepdetect.data.temporal_blend import KINDS, temporal_blend
from deepdetect.models.temporal import (
    FEATURE_NAMES,
    TemporalHead,
    clip_features,
    embed,
    fit_head,
    lower_face_crops,
    lower_preprocess,
)
from deepdetect.models.temporal_seq import SequenceHead, Streams, fit_sequence_head

log = logging.getLogger(__name__)

EXPERT_FILE = "temporal.json"
SEQUENCE_FILE = "temporal_head.npz"  # the conv head's arrays, beside temporal.json
HEADS = ("stats", "conv")
Head = TemporalHead | SequenceHead


@dataclass(frozen=True)
class TemporalSettings:
    """How the temporal expert is built and trained (the `temporal:` block of a lofo recipe)."""

    backbone: str = "tf_efficientnet_lite0"  # a timm name, frozen (ImageNet weights offline when pretrained)
    pretrained: bool = True
    run: str | None = None  # a trained run folder whose backbone embeds instead (overrides `backbone`)
    input_size: int | None = 128  # face crops' input size (null: the backbone's own; 128 keeps CPU cost low)
    lower_size: int = 96  # lower-face crops' input size
    blends_per_clip: int = 2  # temporal self-blends of each train real clip (flicker and desync alternate)
    val_blends_per_clip: int = 2
    min_frames: int = 8  # a video with fewer face crops has no clip
    window: int | None = None  # cut each clip into consecutive windows of this many frames: each window of a train
    # clip is a training clip of its own, and a video's logit is the mean of its windows' (null: the whole clip)
    head: str = "stats"  # stats: logistic regression on 14 motion statistics | conv: 1D convolution over the changes
    c: float = 1.0  # inverse L2 strength of the logistic head (stats)
    pca_k: int = 8  # conv: main directions of change kept per stream (face, lower face)
    epochs: int = 300  # conv: full-batch training steps
    target_fpr: float = 0.05  # threshold: this share of validation real videos flagged at most
    seed: int = 0
    batch_size: int = 32

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> TemporalSettings:
        """The known keys of a config mapping (others refused: a typo must not silently keep a default)."""
        values = dict(cfg or {})
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown temporal settings {unknown}; known: {[f.name for f in fields(cls)]}")
        settings = cls(**values)
        if settings.blends_per_clip < 1 or settings.val_blends_per_clip < 1 or settings.min_frames < 3:
            raise ValueError("temporal: blends_per_clip and val_blends_per_clip must be >= 1, min_frames >= 3")
        if settings.window is not None and settings.window < settings.min_frames:
            raise ValueError(f"temporal: window must be >= min_frames ({settings.min_frames}), got {settings.window}")
        if not 0.0 < settings.target_fpr < 1.0:
            raise ValueError(f"temporal: target_fpr must be in (0, 1), got {settings.target_fpr}")
        if settings.head not in HEADS or settings.pca_k < 1 or settings.epochs < 1:
            raise ValueError(f"temporal: head must be one of {HEADS}, pca_k and epochs >= 1")
        return settings

    def backbone_id(self) -> str:
        """What the cached features depend on besides the clip and its blend."""
        what = {k: v for k, v in asdict(self).items() if k in ("backbone", "pretrained", "run", "input_size")}
        return json.dumps({**what, "lower_size": self.lower_size, "features": FEATURE_NAMES}, sort_keys=True)


class ClipFeaturizer:
    """What the head reads of a clip (real, or one of its temporal self-blends): the frames' embeddings, computed once
    and cached on disk, and the statistics head's feature vector of them."""

    def __init__(self, settings: TemporalSettings, cache_dir: Path | None = None) -> None:
        from deepdetect.models.detector import build_detector, resolve_preprocess

        self.settings = settings
        self.cache_dir = cache_dir
        if settings.run:
            from deepdetect.evaluation.runs import load_run

            run = load_run(settings.run, torch.device("cpu"))
            self.model, self.preprocess = run.model, run.preprocess
        else:
            self.model, _ = build_detector(settings.backbone, pretrained=settings.pretrained)
            self.preprocess = resolve_preprocess(self.model, settings.input_size)
        self.model.eval()
        self.lower = lower_preprocess(self.preprocess, settings.lower_size)
        self._id = settings.backbone_id()

    def _key(self, clip: Clip, variant: str, k: int) -> str:
        text = json.dumps([self._id, list(clip.paths), variant, k, self.settings.seed])
        return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()

    def blended(self, clip: Clip, k: int) -> np.ndarray:
        """The k-th temporal self-blend of a real clip (flicker for even k, desync for odd; deterministic)."""
        if clip.landmarks is None:
            raise ValueError(f"clip {clip.video_id} has no dense landmarks to blend")
        seed = zlib.crc32(clip.video_id.encode("utf-8", "surrogateescape"))
        where = [clip.frame_indices[0]] if self.settings.window else []  # each window of a video draws its own
        rng = np.random.default_rng([self.settings.seed, seed, k, *where])
        return temporal_blend(load_frames(clip.paths), clip.landmarks, rng, KINDS[k % len(KINDS)])[0]

    def streams(self, clip: Clip, blend: int | None = None) -> Streams:
        """The clip's face and lower-face embeddings (T, D) each; `blend=k`: its k-th temporal self-blend's."""
        variant = "real" if blend is None else "blend"
        key = self._key(clip, f"{variant}-streams", blend or 0)
        path = self.cache_dir / f"{key}.npz" if self.cache_dir else None
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as data:
                return data["face"], data["lower"]
        frames = load_frames(clip.paths) if blend is None else self.blended(clip, blend)
        face = embed(self.model, list(frames), self.preprocess, self.settings.batch_size)
        lower = embed(self.model, lower_face_crops(frames, clip.landmarks), self.lower, self.settings.batch_size)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, face=face, lower=lower)
        return face, lower

    def features(self, clip: Clip, blend: int | None = None) -> np.ndarray:
        """The clip's statistics (`FEATURE_NAMES`); `blend=k` gives its k-th temporal self-blend's instead."""
        return clip_features(*self.streams(clip, blend))

    def inputs(self, clip: Clip, blend: int | None = None) -> Any:
        """What the configured head reads: the statistics (stats) or the embedding streams (conv)."""
        return self.features(clip, blend) if self.settings.head == "stats" else self.streams(clip, blend)

    def windows(self, clip: Clip) -> list[Clip]:
        """The clip's windows (`window` frames each; the whole clip when `window` is null or the clip is short)."""
        return cut_windows(clip, self.settings.window)


def _design(featurizer: ClipFeaturizer, reals: Sequence[Clip], blends: int, desc: str) -> tuple[list[Any], np.ndarray]:
    """The head's inputs of each window of each real clip (y=0) and of `blends` temporal self-blends of it (y=1)."""
    rows: list[Any] = []
    ys = []
    for clip in tqdm(reals, desc=desc, unit="clip", leave=False):
        for window in featurizer.windows(clip):
            rows.append(featurizer.inputs(window))
            ys.append(0)
            for k in range(blends):
                rows.append(featurizer.inputs(window, blend=k))
                ys.append(1)
    return rows, np.asarray(ys, dtype=np.int64)


def head_logits(head: Head, rows: Sequence[Any]) -> np.ndarray:
    """Uncalibrated logits of `ClipFeaturizer.inputs` rows: statistics vectors, or embedding streams (conv)."""
    if isinstance(head, SequenceHead):
        return head.logits(list(rows))
    return head.logits(np.asarray(rows, dtype=np.float64))


def clip_logit(featurizer: ClipFeaturizer, head: Head, clip: Clip, blend: int | None = None) -> float:
    """A video's uncalibrated logit: the mean over its clip's windows (`blend=k`: each window's k-th self-blend)."""
    return float(np.mean(head_logits(head, [featurizer.inputs(w, blend) for w in featurizer.windows(clip)])))


def _video_logits(
    featurizer: ClipFeaturizer, head: Head, reals: Sequence[Clip], blends: int, desc: str
) -> tuple[np.ndarray, np.ndarray]:
    """Video-level logits of each real clip (y=0) and of its `blends` self-blends (y=1): what scoring computes."""
    logits, ys = [], []
    for clip in tqdm(reals, desc=desc, unit="clip", leave=False):
        for blend in (None, *range(blends)):
            logits.append(clip_logit(featurizer, head, clip, blend))
            ys.append(0 if blend is None else 1)
    return np.asarray(logits, dtype=np.float64), np.asarray(ys, dtype=np.int64)


def _fit(settings: TemporalSettings, x: list[Any], y: np.ndarray) -> Head:
    if settings.head == "stats":
        return fit_head(np.asarray(x, dtype=np.float64), y, settings.c, settings.seed)
    return fit_sequence_head(x, y, k=settings.pca_k, epochs=settings.epochs, seed=settings.seed)


def blendable(clips: Sequence[Clip], split: str) -> list[Clip]:
    """The real clips of `split` that carry dense landmarks (what a temporal self-blend needs)."""
    chosen = [c for c in clips if c.label == "real" and c.split == split]
    missing = [c.video_id for c in chosen if c.landmarks is None]
    if missing:
        log.warning("%d %s real clips without dense landmarks are left out: %s", len(missing), split, missing[:5])
    return [c for c in chosen if c.landmarks is not None]


def train_temporal(settings: TemporalSettings, clips: Sequence[Clip], out_dir: Path) -> tuple[Head, dict[str, Any]]:
    """Fit the head on the train split's real clips and their blends, calibrate on validation; writes temporal.json."""
    from deepdetect.evaluation import metrics as M
    from deepdetect.evaluation.calibration import choose_threshold, fit_temperature, operating_points

    train, val = blendable(clips, "train"), blendable(clips, "val")
    if not train or not val:
        raise ValueError(
            f"the temporal expert needs real clips with dense landmarks in both train and val splits "
            f"(got {len(train)} train, {len(val)} val): extract consecutive clips of real videos first"
        )
    featurizer = ClipFeaturizer(settings, out_dir / "cache")
    x, y = _design(featurizer, train, settings.blends_per_clip, "temporal train")
    head = _fit(settings, x, y)
    logits, yv = _video_logits(featurizer, head, val, settings.val_blends_per_clip, "temporal val")
    temperature = fit_temperature(logits, yv)
    head = replace(head, temperature=temperature)
    probs = np.asarray(sigmoid(logits / temperature), dtype=np.float64)
    threshold = choose_threshold(probs, yv, "fpr", settings.target_fpr)
    head = replace(head, threshold=threshold)
    flagged = probs >= threshold
    info = {
        "train_clips": {"real": len(train), "windows": int((y == 0).sum()), "blends": int(y.sum())},
        "val_clips": {"real": len(val), "blends": int(yv.sum())},
        "val_auc": float(M.roc_auc(yv, probs)),
        "val_fpr": float(flagged[yv == 0].mean()),
        "val_tpr": float(flagged[yv == 1].mean()),
        "target_fpr": settings.target_fpr,
        "roc": operating_points(probs, yv),
    }
    log.info("temporal expert: val AUC %.3f, val FPR %.3f, TPR %.3f", info["val_auc"], info["val_fpr"], info["val_tpr"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(head, SequenceHead):
        head.save(out_dir / SEQUENCE_FILE)
        stored = {"kind": "conv", "file": SEQUENCE_FILE}
    else:
        stored = head.to_dict()
    doc = {"settings": asdict(settings), "head": stored, "validation": info}
    (out_dir / EXPERT_FILE).write_text(json.dumps(doc, indent=2))
    return head, info


def load_expert(out_dir: Path) -> tuple[TemporalSettings, Head]:
    """The settings and head `train_temporal` wrote to `out_dir/temporal.json` (and, for a conv head, its arrays)."""
    doc = json.loads((out_dir / EXPERT_FILE).read_text())
    settings = TemporalSettings.from_config(doc["settings"])
    if doc["head"].get("kind") == "conv":
        return settings, SequenceHead.load(out_dir / SEQUENCE_FILE)
    return settings, TemporalHead.from_dict(doc["head"])


def score_clips(featurizer: ClipFeaturizer, head: Head, clips: Sequence[Clip]) -> pd.DataFrame:
    """One row per clip: video_id, label, source, group, split, n_frames, first crop, logit and calibrated prob."""
    rows = []
    for clip in tqdm(clips, desc="temporal scoring", unit="clip", leave=False):
        logit = np.array([clip_logit(featurizer, head, clip)])  # once: the calibrated prob is read from it
        rows.append(
            {
                "crop_path": clip.paths[0],
                "video_id": clip.video_id,
                "label": clip.label,
                "source": clip.source,
                "group": clip.group,
                "split": clip.split,
                "frame_index": clip.frame_indices[0],
                "n_frames": len(clip),
                "logit": float(logit[0]),
                "prob": float(sigmoid(logit / head.temperature)[0]),
            }
        )
    columns = ["crop_path", "video_id", "label", "source", "group", "split", "frame_index", "n_frames", "logit", "prob"]
    return pd.DataFrame(rows, columns=columns)
