"""Datasets over manifest rows: crops read with Pillow, binary labels, optional self-blended pseudo-fakes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from deepdetect.data.manifest import ManifestError, binary_labels, parse_landmarks
from deepdetect.data.sbi import self_blend
from deepdetect.data.transforms import CropTransform

log = logging.getLogger(__name__)

SBI_MODES = ("off", "mix", "only")


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


def with_sbi_fakes(frame: pd.DataFrame) -> pd.DataFrame:
    """The real rows with landmarks plus, for each, a self-blended fake of it (marked `sbi`; its own video id).

    Validation for SBI-only training: the fakes it selects and calibrates on are the kind training makes,
    not a real fake type that training is meant to never see.
    """
    reals = frame[(frame["label"] == "real") & (frame["landmarks"].astype(str).str.split().str.len() == 10)]
    if len(reals) == 0:
        raise ManifestError("self-blended validation fakes need real rows with landmarks; none found")
    fakes = reals.copy()
    fakes["label"] = "fake"
    fakes["method"] = "sbi"
    fakes["video_id"] = "sbi:" + fakes["video_id"].astype(str)
    out = pd.concat([reals.assign(sbi=False), fakes.assign(sbi=True)], ignore_index=True)
    return out


class CropDataset(Dataset[tuple[torch.Tensor, torch.Tensor, int]]):
    """Manifest rows -> (image tensor, float label with fake=1, row index).

    `sbi_mode`: `off`; `mix` (each real becomes its self-blended fake with probability `sbi_prob`); `only` (the
    frame should hold reals only; each sample is the real or its self-blend with probability `sbi_prob`). All
    randomness is seeded from (seed, epoch, index), so samples are reproducible across workers and resumes.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        transform: CropTransform,
        sbi_mode: str = "off",
        sbi_prob: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.frame = frame.reset_index(drop=True)
        self.paths = self.frame["abs_crop_path"].tolist()
        self.labels = binary_labels(self.frame).to_numpy(dtype=np.float32)
        self.transform = transform
        self.sbi_mode = normalize_sbi_mode(sbi_mode)
        self.sbi_prob = float(sbi_prob)
        self.seed = int(seed)
        self.epoch = 0
        self.landmarks: list[list[float]] = []
        # Rows marked `sbi` (see with_sbi_fakes) are always shown self-blended, the same way every epoch.
        self.fixed_sbi = self.frame["sbi"].to_numpy(dtype=bool) if "sbi" in self.frame.columns else None
        if self.fixed_sbi is not None:
            self.landmarks = [parse_landmarks(t) for t in self.frame["landmarks"]]
        if self.sbi_mode != "off":
            self.landmarks = [parse_landmarks(t) for t in self.frame["landmarks"]]
            usable = [i for i, lm in enumerate(self.landmarks) if len(lm) == 10 and self.labels[i] == 0]
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
        if self.fixed_sbi is not None and self.fixed_sbi[index]:
            crop, _ = self_blend(crop, self.landmarks[index], np.random.default_rng([self.seed, int(index)]))
        elif (
            self.sbi_mode != "off"
            and label == 0.0
            and len(self.landmarks[index]) == 10
            and rng.random() < self.sbi_prob
        ):
            crop, _ = self_blend(crop, self.landmarks[index], rng)
            label = 1.0
        image = self.transform(crop, seed=int(rng.integers(0, 2**31 - 1)))
        return image, torch.tensor(label, dtype=torch.float32), int(index)
