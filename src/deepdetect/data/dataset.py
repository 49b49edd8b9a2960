"""Datasets over manifest rows: crops read with Pillow, binary labels, optional self-blended pseudo-fakes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from deepdetect.data.manifest import ManifestError, binary_labels
from deepdetect.data.sbi import HULLS, best_landmarks, blend_pair
from deepdetect.data.transforms import CropTransform

log = logging.getLogger(__name__)

SBI_MODES = ("off", "mix", "only", "pairs")


def normalize_sbi_mode(mode: object) -> str:
    """Config value -> one of SBI_MODES (YAML may turn a bare `off` into False)."""
    if mode is None or mode is False:
        return "off"
    text = str(mode).lower()
    if text not in SBI_MODES:
        raise ValueError(f"unknown data.sbi.mode {mode!r}; expected one of {SBI_MODES}")
    return text


def check_crops_exist(frame: pd.DataFrame, what: str) -> None:
    """Raise a clear error listing missing crop files (before any training starts)."""
    missing = [p for p in frame["abs_crop_path"] if not Path(p).is_file()]
    if missing:
        raise ManifestError(f"{len(missing)} {what} crop file(s) missing, e.g. {missing[:3]}")


def read_crop(path: str) -> np.ndarray:
    """HxWx3 uint8 RGB array of an image file."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def has_landmarks(frame: pd.DataFrame) -> pd.Series:
    """Rows with landmarks to self-blend from: 68 dense points, or MTCNN's 5."""
    n5 = frame["landmarks"].astype(str).str.split().str.len() == 10
    if "landmarks68" not in frame.columns:
        return n5
    return n5 | (frame["landmarks68"].astype(str).str.split().str.len() == 136)


def with_sbi_fakes(frame: pd.DataFrame) -> pd.DataFrame:
    """The real rows with landmarks plus, for each, a self-blended fake of it (marked `sbi`; its own video id).

    Each fake keeps its real's group, source file and frame index, so paired sampling draws the two together, and
    `sbi_of` gives both rows the position of the real they are made from. Used for validation on self-blends (the
    fakes SBI-only training selects and calibrates on are the kind it makes, not a real fake type training is meant
    to never see) and for the paper's paired batches (`data.sbi.mode=pairs`).
    """
    reals = frame[(frame["label"] == "real") & has_landmarks(frame)].reset_index(drop=True)
    if len(reals) == 0:
        raise ManifestError("self-blended fakes need real rows with landmarks; none found")
    fakes = reals.copy()
    fakes["label"] = "fake"
    fakes["method"] = "sbi"
    fakes["video_id"] = "sbi:" + fakes["video_id"].astype(str)
    own = list(range(len(reals)))
    out = pd.concat([reals.assign(sbi=False, sbi_of=own), fakes.assign(sbi=True, sbi_of=own)], ignore_index=True)
    return out


class CropDataset(Dataset[tuple[torch.Tensor, torch.Tensor, int]]):
    """Manifest rows -> (image tensor, float label with fake=1, row index).

    `sbi_mode`: `off`; `mix` (each real becomes its self-blended fake with probability `sbi_prob`); `only` (the
    frame should hold reals only; each sample is the real or its self-blend with probability `sbi_prob`); `pairs`
    (the frame comes from :func:`with_sbi_fakes`: a real row and its `sbi` row show the two sides of one blend,
    drawn anew each epoch — the paper's batches). Rows of a `with_sbi_fakes` frame in any other mode (validation)
    show one fixed blend of their real and the real crop as it is. Every blend's mask shape is drawn from `sbi_hulls`.
    All randomness is seeded from (seed, epoch, index), so samples are reproducible across workers and resumes.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        transform: CropTransform,
        sbi_mode: str = "off",
        sbi_prob: float = 0.5,
        seed: int = 0,
        sbi_hulls: tuple[str, ...] = HULLS,
    ) -> None:
        self.frame = frame.reset_index(drop=True)
        self.paths = self.frame["abs_crop_path"].tolist()
        self.labels = binary_labels(self.frame).to_numpy(dtype=np.float32)
        self.transform = transform
        self.sbi_mode = normalize_sbi_mode(sbi_mode)
        self.sbi_prob = float(sbi_prob)
        self.sbi_hulls = tuple(sbi_hulls)
        self.seed = int(seed)
        self.epoch = 0
        self.landmarks: list[list[float]] = []
        # Rows marked `sbi` (see with_sbi_fakes) are shown self-blended: the same blend every epoch, except in
        # `pairs` mode, where each epoch draws a new blend shared by the pair's two rows.
        self.fixed_sbi = self.frame["sbi"].to_numpy(dtype=bool) if "sbi" in self.frame.columns else None
        self.sbi_of = self.frame["sbi_of"].to_numpy(dtype=np.int64) if "sbi_of" in self.frame.columns else None
        if self.sbi_mode == "pairs" and self.sbi_of is None:
            raise ManifestError("data.sbi.mode=pairs needs a frame from with_sbi_fakes (a real and its blend per row)")
        if self.fixed_sbi is not None or self.sbi_mode != "off":
            dense = self.frame["landmarks68"] if "landmarks68" in self.frame.columns else [""] * len(self.frame)
            self.landmarks = [best_landmarks(d, t) for d, t in zip(dense, self.frame["landmarks"], strict=True)]
        if self.sbi_mode != "off":
            usable = [i for i, lm in enumerate(self.landmarks) if lm and self.labels[i] == 0]
            if not usable:
                raise ManifestError("self-blended images need real rows with landmarks; none found")

    def set_epoch(self, epoch: int) -> None:
        """Vary the per-sample randomness by epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        crop = read_crop(self.paths[index])
        label = float(self.labels[index])
        if self.sbi_mode == "pairs" and self.sbi_of is not None:
            # both rows of a pair draw the same blend: seeded by the real's position and the epoch
            pair_rng = np.random.default_rng([self.seed, self.epoch, int(self.sbi_of[index]), 1])
            blend = blend_pair(crop, self.landmarks[index], pair_rng, hulls=self.sbi_hulls)
            crop = blend.fake if self.fixed_sbi is not None and self.fixed_sbi[index] else blend.real
        elif self.fixed_sbi is not None and self.fixed_sbi[index]:
            fixed_rng = np.random.default_rng([self.seed, int(index)])
            crop = blend_pair(crop, self.landmarks[index], fixed_rng, hulls=self.sbi_hulls).fake
        elif (
            self.sbi_mode in ("mix", "only") and label == 0.0 and self.landmarks[index] and rng.random() < self.sbi_prob
        ):
            crop = blend_pair(crop, self.landmarks[index], rng, hulls=self.sbi_hulls).fake
            label = 1.0
        image = self.transform(crop, seed=int(rng.integers(0, 2**31 - 1)))
        return image, torch.tensor(label, dtype=torch.float32), int(index)
