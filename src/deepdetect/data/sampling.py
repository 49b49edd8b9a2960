"""Per-epoch sampling: k frames per video, class- or source-balanced draws, sharded across DDP ranks."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
from torch.utils.data import Sampler

BALANCE_MODES = ("none", "class", "source")


def balance_weights(frame: pd.DataFrame, balance: str) -> np.ndarray:
    """Sampling weight per row: equal total weight per label (`class`) or per (source, label) group (`source`)."""
    if balance not in BALANCE_MODES:
        raise ValueError(f"unknown data.balance {balance!r}; expected one of {BALANCE_MODES}")
    if balance == "none" or len(frame) == 0:
        return np.ones(len(frame), dtype=np.float64)
    keys = frame["label"].astype(str) if balance == "class" else frame["source"].astype(str) + "|" + frame["label"]
    counts = keys.map(keys.value_counts())
    return (1.0 / counts.to_numpy(dtype=np.float64)) / keys.nunique()


class EpochSampler(Sampler[int]):
    """Deterministic per-epoch index stream over a manifest frame.

    Each epoch (seeded by `seed` and the epoch number, so a resumed run draws the same) it picks up to
    `frames_per_video` frames of every video (None = all), then orders them: a shuffle (`none`) or a weighted draw
    with replacement (`class` / `source`). Under DDP each rank takes every `world_size`-th index of the same stream.

    `paired`: a real frame and the fake frame made from it (same group, same source file name, same frame index: an
    original/swap pair such as DeepFaceLive's real/X.mp4 and fake/X.mp4) are drawn together and come out next to
    each other, so they share a batch (except a pair that straddles a batch boundary, or the end of a weighted
    draw); the frames of a pair's two
    videos count as one video for `frames_per_video`, and a weighted draw weighs a pair by its two rows. Frames
    without a partner are drawn alone. Under DDP each rank then takes a contiguous share of the stream.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        frames_per_video: int | None = None,
        balance: str = "none",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        paired: bool = False,
    ) -> None:
        if balance not in BALANCE_MODES:
            raise ValueError(f"unknown data.balance {balance!r}; expected one of {BALANCE_MODES}")
        self.frames_per_video = int(frames_per_video) if frames_per_video else None
        self.balance = balance
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.videos = [np.asarray(ix, dtype=np.int64) for ix in frame.groupby("video_id", sort=True).indices.values()]
        self.weights = balance_weights(frame.reset_index(drop=True), balance)
        self.paired = bool(paired)
        self.units: list[list[np.ndarray]] = pair_units(frame) if self.paired else []
        if self.paired:  # a video's units all have one size: 2 for a pair's, 1 for a lone video's
            per_epoch = sum(len(u[0]) * self._per_video(len(u)) for u in self.units)
        else:
            per_epoch = sum(self._per_video(len(v)) for v in self.videos)
        self.total = int(np.ceil(per_epoch / self.world_size)) * self.world_size

    def _per_video(self, n: int) -> int:
        """How many of a video's n frames (or pairs) one epoch draws."""
        return n if self.frames_per_video is None else min(n, self.frames_per_video)

    def _fit_to_total(self, stream: np.ndarray) -> np.ndarray:
        """The stream cut or padded (by repeating its start) to `total`, so every rank gets the same count."""
        stream = stream[: self.total]
        if 0 < len(stream) < self.total:
            stream = np.concatenate([stream, stream[: self.total - len(stream)]])
        return stream.astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw `__iter__` yields."""
        self.epoch = int(epoch)

    def epoch_indices(self) -> np.ndarray:
        """The full (all-rank) index stream of the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.paired:
            return self._paired_indices(rng)
        chosen = []
        for ix in self.videos:
            k = self._per_video(len(ix))
            chosen.append(ix if k == len(ix) else rng.choice(ix, size=k, replace=False))
        pool = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
        if self.balance == "none":
            order = rng.permutation(pool)
        else:
            p = self.weights[pool] / self.weights[pool].sum()
            order = rng.choice(pool, size=len(pool), replace=True, p=p)
        return self._fit_to_total(order)

    def _paired_indices(self, rng: np.random.Generator) -> np.ndarray:
        chosen: list[np.ndarray] = []  # units (one index, or a real and its fake)
        for units in self.units:
            k = self._per_video(len(units))
            pick = np.arange(len(units)) if k == len(units) else rng.choice(len(units), size=k, replace=False)
            chosen.extend(units[int(i)] for i in pick)
        if not chosen:
            return np.zeros(0, dtype=np.int64)
        if self.balance == "none":
            order = rng.permutation(len(chosen))
        else:
            w = np.array([self.weights[u].sum() for u in chosen])
            order = rng.choice(len(chosen), size=len(chosen), replace=True, p=w / w.sum())
        return self._fit_to_total(np.concatenate([chosen[int(i)] for i in order]))

    def __iter__(self) -> Iterator[int]:
        stream = self.epoch_indices()
        if self.paired:  # a contiguous share per rank keeps pairs together
            share = len(stream) // self.world_size
            yield from (int(i) for i in stream[self.rank * share : (self.rank + 1) * share])
            return
        yield from (int(i) for i in stream[self.rank :: self.world_size])

    def __len__(self) -> int:
        return self.total // self.world_size


def pair_units(frame: pd.DataFrame) -> list[list[np.ndarray]]:
    """The frame's rows (positional indices) as sampling units, listed per pair of videos or lone video.

    A real row and a fake row with the same group, source file name and frame index form one unit [real, fake];
    every other row is a unit of its own. Units of a real video and its fake partner are listed together.
    """
    rows = frame.reset_index(drop=True)
    name = rows["source_path"].astype(str).str.replace("\\", "/").str.rsplit("/", n=1).str[-1]
    key = rows["group"].astype(str) + "|" + name + "|" + rows["frame_index"].astype(str)
    label = rows["label"].astype(str)
    real_at = {k: i for i, k in enumerate(key) if label.iat[i] == "real"}
    fake_at = {k: i for i, k in enumerate(key) if label.iat[i] == "fake"}
    partner = {k: (real_at[k], fake_at[k]) for k in real_at.keys() & fake_at.keys()}
    paired_rows = {i for pair in partner.values() for i in pair}
    by_video: dict[str, list[np.ndarray]] = {}
    for _, (r, f) in sorted(partner.items()):
        video = f"pair|{rows['group'].iat[r]}|{name.iat[r]}"
        by_video.setdefault(video, []).append(np.array([r, f], dtype=np.int64))
    for i in range(len(rows)):
        if i not in paired_rows:
            by_video.setdefault(f"video|{rows['video_id'].iat[i]}", []).append(np.array([i], dtype=np.int64))
    return [by_video[v] for v in sorted(by_video)]


def keep_groups(frame: pd.DataFrame, fraction: float | None, seed: int = 0) -> pd.DataFrame:
    """Rows of a seeded subset of each source's groups (people), for learning curves.

    Keeps round(fraction x groups) of every source's groups, at least one; None or 1 keeps everything. The same seed
    keeps the same groups, and a smaller fraction keeps a subset of what a larger one keeps.
    """
    if fraction is None:
        return frame
    if isinstance(fraction, bool) or not 0 < float(fraction) <= 1:
        raise ValueError(f"data.train_groups must be a fraction in (0, 1], got {fraction!r}")
    parts = []
    for _, rows in frame.groupby("source", sort=True):
        groups = np.array(sorted(rows["group"].astype(str).unique()))
        order = np.random.default_rng(seed).permutation(len(groups))
        n = max(1, round(len(groups) * float(fraction)))
        parts.append(rows[rows["group"].astype(str).isin(set(groups[order[:n]]))])
    return pd.concat(parts).sort_index() if parts else frame


def cv_split(frame: pd.DataFrame, folds: int, fold: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, val) rows of fold `fold` of a `folds`-fold cross-validation over groups (people).

    Each dataset's groups are dealt in turn to the folds, in a seeded order: groups of one label first, then the
    other, so each fold holds a share of every dataset and of both labels where the groups allow. One group's rows all
    go to one fold (a pair's original and swap, a person's clips, even across sources), so the held-out fold's people
    are never trained on. The folds partition the groups: over `fold = 0..folds-1` each is validated exactly once.
    """
    if isinstance(folds, bool) or int(folds) < 2:
        raise ValueError(f"data.cv_folds must be an integer >= 2, got {folds!r}")
    if not 0 <= int(fold) < int(folds):
        raise ValueError(f"data.cv_fold must be in [0, {int(folds) - 1}], got {fold!r}")
    groups = frame["group"].astype(str)
    by_group = frame.groupby(groups, sort=True).agg(
        dataset=("dataset", lambda s: str(s.mode().iloc[0])), label=("label", lambda s: str(s.mode().iloc[0]))
    )
    fold_of: dict[str, int] = {}
    for dataset, rows in by_group.groupby("dataset", sort=True):
        rng = np.random.default_rng([int(seed), zlib.crc32(str(dataset).encode())])
        names = np.asarray(rows.index, dtype=object)[rng.permutation(len(rows))]
        ordered = sorted(names, key=lambda g: str(rows.at[g, "label"]))  # stable: seeded order within each label
        offset = int(rng.integers(int(folds)))
        for i, g in enumerate(ordered):
            fold_of[str(g)] = (i + offset) % int(folds)
    held = groups.map(fold_of).to_numpy() == int(fold)
    return frame[~held], frame[held]
