"""The temporal expert's trained head: a small 1D convolution over how a clip's frame embeddings change.

Where the statistics head (`models/temporal.py`) summarises a clip in 14 hand-made numbers, this head reads the
sequence itself. Its input at each step t is the change of the face and lower-face embeddings from frame t-1 to t,
each projected onto the `k` main directions of change of the training real clips (a PCA fitted on them), plus the
size of each change. Two temporal convolutions (kernel 3) and a mean- and max-pool over time give one logit. It
can learn which directions of change, and which patterns of them over a few frames, mark a self-blended mouth: what
summary statistics throw away. The whole head is a few thousand numbers, stored as an `.npz` of plain arrays
(read with `allow_pickle=False`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepdetect.contract.preprocess import sigmoid

EPS = 1e-6
Streams = tuple[np.ndarray, np.ndarray]  # one clip's (face, lower-face) L2-normalised embeddings, each (T, D)


def _changes(streams: Streams) -> tuple[np.ndarray, np.ndarray]:
    face, lower = (np.asarray(s, dtype=np.float64) for s in streams)
    if len(face) < 3 or len(face) != len(lower):
        raise ValueError(f"a clip needs at least 3 frames in both streams, got {len(face)} and {len(lower)}")
    return np.diff(face, axis=0), np.diff(lower, axis=0)


def change_basis(clips: Sequence[Streams], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` main directions (D, k) of frame-to-frame change of the face and of the lower face over `clips`."""
    changes = [_changes(c) for c in clips]
    bases = []
    for part in range(2):
        diffs = np.concatenate([c[part] for c in changes])
        _, _, vt = np.linalg.svd(diffs - diffs.mean(axis=0), full_matrices=False)
        basis = vt[:k].T
        if basis.shape[1] < k:  # fewer changes than directions asked for: pad with zeros (those channels stay 0)
            basis = np.pad(basis, ((0, 0), (0, k - basis.shape[1])))
        bases.append(basis)
    return bases[0], bases[1]


def sequence(streams: Streams, basis_face: np.ndarray, basis_lower: np.ndarray) -> np.ndarray:
    """A clip's input sequence (C, T-1): its projected face and lower-face changes and their sizes."""
    face, lower = _changes(streams)
    sizes = np.log(np.stack([np.linalg.norm(face, axis=1), np.linalg.norm(lower, axis=1)], axis=1) + EPS)
    return np.concatenate([face @ basis_face, lower @ basis_lower, sizes], axis=1).T.astype(np.float32)


class ConvNet(torch.nn.Module):
    """Conv1d(C, W, 3) -> GELU -> dropout -> Conv1d(W, W, 3) -> GELU -> [mean, max] over time -> Linear(2W, 1)."""

    def __init__(self, channels: int, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv1d(channels, width, 3, padding=1)
        self.conv2 = torch.nn.Conv1d(width, width, 3, padding=1)
        self.drop = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.nn.functional.gelu(self.conv1(x)))
        h = torch.nn.functional.gelu(self.conv2(h))
        return self.out(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)).squeeze(1)


@dataclass(frozen=True, eq=False)
class SequenceHead:
    """The projection, channel standardisation and convolution weights of the trained head, with its temperature
    and threshold (calibrated on validation clips)."""

    basis_face: np.ndarray
    basis_lower: np.ndarray
    mean: np.ndarray  # (C,) per-channel standardisation of the input sequences
    scale: np.ndarray
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # ConvNet's state dict
    width: int = 16
    temperature: float = 1.0
    threshold: float = 0.5

    def _net(self) -> ConvNet:
        net = ConvNet(len(self.mean), self.width)
        net.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in self.weights.items()})
        return net.eval()

    def standardised(self, seq: np.ndarray) -> torch.Tensor:
        """One input sequence (C, T-1) standardised per channel, as a batch of one (1, C, T-1)."""
        mean, scale = self.mean[:, None].astype(np.float32), self.scale[:, None].astype(np.float32)
        return torch.from_numpy((seq - mean) / scale)[None]

    def inputs(self, clips: Sequence[Streams]) -> list[torch.Tensor]:
        """Each clip's standardised input sequence (1, C, T-1)."""
        return [self.standardised(sequence(c, self.basis_face, self.basis_lower)) for c in clips]

    @torch.inference_mode()
    def logits(self, clips: Sequence[Streams]) -> np.ndarray:
        """Uncalibrated logits, one per clip (clips may differ in length)."""
        net = self._net()
        return np.array([float(net(x)[0]) for x in self.inputs(clips)], dtype=np.float64)

    def probs(self, clips: Sequence[Streams]) -> np.ndarray:
        """Calibrated P(fake) per clip: sigmoid(logit / temperature)."""
        return np.asarray(sigmoid(self.logits(clips) / self.temperature), dtype=np.float64)

    def save(self, path: Path) -> None:
        """Every array and number as one `.npz` (no pickled objects)."""
        arrays: dict[str, Any] = {f"w.{k}": v for k, v in self.weights.items()}
        arrays.update(basis_face=self.basis_face, basis_lower=self.basis_lower, mean=self.mean, scale=self.scale)
        arrays["scalars"] = np.array([self.width, self.temperature, self.threshold], dtype=np.float64)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> SequenceHead:
        """The head `save` wrote; ValueError when the file is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                scalars = data["scalars"]
                head = cls(
                    basis_face=data["basis_face"],
                    basis_lower=data["basis_lower"],
                    mean=data["mean"],
                    scale=data["scale"],
                    weights={k[2:]: data[k] for k in data.files if k.startswith("w.")},
                    width=int(scalars[0]),
                    temperature=float(scalars[1]),
                    threshold=float(scalars[2]),
                )
            head._net()  # the weights fit the network
        except (OSError, KeyError, ValueError, RuntimeError, IndexError) as exc:
            raise ValueError(f"not a temporal sequence head: {path}: {exc}") from None
        return head


def fit_sequence_head(
    clips: Sequence[Streams],
    y: np.ndarray,
    k: int = 8,
    width: int = 16,
    epochs: int = 300,
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    seed: int = 0,
) -> SequenceHead:
    """Train the head on `clips` (real 0, self-blend 1): PCA basis from the real clips, full-batch AdamW on a
    class-balanced cross-entropy, `epochs` steps; deterministic for a seed."""
    y = np.asarray(y, dtype=np.int64)
    if len(set(y.tolist())) != 2:
        raise ValueError("the temporal head needs real (0) and fake (1) clips to fit")
    basis_face, basis_lower = change_basis([c for c, label in zip(clips, y, strict=True) if label == 0], k)
    seqs = [sequence(c, basis_face, basis_lower) for c in clips]
    flat = np.concatenate(seqs, axis=1)
    mean, scale = flat.mean(axis=1), np.maximum(flat.std(axis=1), EPS)
    head = SequenceHead(basis_face, basis_lower, mean.astype(np.float64), scale.astype(np.float64), width=width)
    inputs = [head.standardised(s) for s in seqs]  # the sequences the statistics were taken from
    lengths = {x.shape[2] for x in inputs}
    torch.manual_seed(seed)
    net = ConvNet(len(mean), width)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    target = torch.from_numpy(y.astype(np.float32))
    pos_weight = torch.tensor(float((y == 0).sum()) / float((y == 1).sum()))
    batch = torch.cat(inputs) if len(lengths) == 1 else None
    net.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        out = net(batch) if batch is not None else torch.cat([net(x) for x in inputs])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, target, pos_weight=pos_weight)
        loss.backward()
        optimiser.step()
    weights = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return replace(head, weights=weights)
