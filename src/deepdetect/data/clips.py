"""Clips: a video's consecutive face crops (extracted with `frame_sampling=consecutive`) as one ordered sequence.

A clip is one video's crops in frame order, with their 68 dense landmarks when stored. An image, or a video with
fewer crops than `min_frames` (faces missed), has no sequence to read and is listed as skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from PIL import Image

from deepdetect.data.manifest import parse_landmarks68


@dataclass(frozen=True)
class Clip:
    """One video's consecutive crops, in frame order, with what the table needs to know about the video."""

    video_id: str
    label: str
    source: str
    group: str
    split: str
    paths: tuple[str, ...]
    frame_indices: tuple[int, ...]
    landmarks: np.ndarray | None  # (T, 68, 2) crop pixels, None when a crop has no dense landmarks

    def __len__(self) -> int:
        return len(self.paths)


def clips_of(frame: pd.DataFrame, min_frames: int = 8) -> tuple[list[Clip], dict[str, str]]:
    """The clips of a manifest frame (`read_manifests` rows), and each skipped video's reason."""
    clips: list[Clip] = []
    skipped: dict[str, str] = {}
    for vid, rows in frame.groupby("video_id", sort=True):
        rows = rows.sort_values(["frame_index", "det_score"], ascending=[True, False])
        rows = rows.drop_duplicates("frame_index")  # one face per frame: the best-scored one (keep=largest: the only)
        if len(rows) < min_frames:
            what = "an image has no sequence" if len(rows) == 1 and int(rows["frame_index"].iloc[0]) == 0 else ""
            skipped[str(vid)] = what or f"{len(rows)} frames with a face, fewer than {min_frames}"
            continue
        dense = [parse_landmarks68(v) for v in rows["landmarks68"]]
        landmarks = np.asarray(dense, dtype=np.float32).reshape(len(rows), 68, 2) if all(dense) else None
        first = rows.iloc[0]
        clips.append(
            Clip(
                video_id=str(vid),
                label=str(first["label"]),
                source=str(first["source"]),
                group=str(first["group"]),
                split=str(first["split"]),
                paths=tuple(str(p) for p in rows["abs_crop_path"]),
                frame_indices=tuple(int(i) for i in rows["frame_index"]),
                landmarks=landmarks,
            )
        )
    return clips, skipped


def load_frames(paths: Sequence[str]) -> np.ndarray:
    """The crops at `paths` as a (T, H, W, 3) uint8 RGB array (each resized to the first crop's size)."""
    frames = []
    size: tuple[int, int] | None = None
    for path in paths:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            size = size or rgb.size
            frames.append(np.asarray(rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR)))
    return np.stack(frames)


def windows(clip: Clip, size: int | None) -> list[Clip]:
    """The clip cut into consecutive windows of `size` frames, in order (frames past the last whole window dropped);
    a clip no longer than `size`, or `size=None`, is its own single window."""
    if size is None or len(clip) <= size:
        return [clip]
    out = []
    for start in range(0, len(clip) - size + 1, size):
        stop = start + size
        marks = None if clip.landmarks is None else clip.landmarks[start:stop]
        out.append(
            replace(clip, paths=clip.paths[start:stop], frame_indices=clip.frame_indices[start:stop], landmarks=marks)
        )
    return out
