"""Score face crops with an exported ONNX model or a checkpoint, behind one interface that carries the contract."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepdetect.contract import ContractValueError, ModelCard
from deepdetect.contract.preprocess import prepare_batch, sigmoid
from deepdetect.utils.io import weights_version

log = logging.getLogger(__name__)


class ModelLoadError(ValueError):
    """Raised when a model path is missing, of an unknown kind, or its file breaks the contract."""


def check_device(device: str) -> None:
    """Raise ModelLoadError for a device this machine lacks (`cuda` without CUDA), for either backend."""
    if not (device == "cpu" or device.startswith("cuda")):
        raise ModelLoadError(f"unknown device {device!r}; expected cpu or cuda")
    if device.startswith("cuda"):
        import torch  # the face detector runs on torch whatever the model's backend

        if not torch.cuda.is_available():
            raise ModelLoadError(f"--device {device} asked for, but no CUDA device is available; use --device cpu")


class Predictor:
    """Base: `score_crops(crops) -> logits` in batches; subclasses supply `_logits(batch)` for one NCHW batch."""

    contract: ModelCard
    batch_size: int = 32
    kind: str = "base"

    @classmethod
    def from_path(cls, model_path: str | os.PathLike[str], device: str = "cpu", batch_size: int = 32) -> Predictor:
        """An OnnxBackend for a `.onnx` file, a TorchBackend for a run folder or `.safetensors` file."""
        path = Path(model_path)
        if not path.exists():
            raise ModelLoadError(f"model not found: {path}")
        check_device(device)
        if path.suffix.lower() == ".onnx":
            return OnnxBackend(path, device, batch_size)
        if path.is_dir() and (path / "model.onnx").is_file() and not (path / "model.safetensors").is_file():
            return OnnxBackend(path / "model.onnx", device, batch_size)
        return TorchBackend(path, device, batch_size)

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits for one batch and, for a fused model, each expert's contribution (N, E); else None."""
        return self._logits(batch), None

    @property
    def experts(self) -> tuple[str, ...]:
        """A fused model's expert names (the columns of `score_crops_with_experts`' contributions); () otherwise."""
        return self.contract.experts

    def score_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Logits (N,) of P(fake) for HxWx3 uint8 RGB crops, preprocessed by the shared `prepare_batch`."""
        return self._batched(crops)[0]

    def score_crops_with_experts(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits (N,) and, for a fused model, each expert's contribution to them (N, E; None otherwise)."""
        return self._batched(crops) if self.experts else (self.score_crops(crops), None)

    def _batched(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        logits, parts = [], []
        for i in range(0, len(crops), self.batch_size):
            logit, part = self._outputs(prepare_batch(crops[i : i + self.batch_size], self.contract.preprocess))
            logits.append(np.asarray(logit, dtype=np.float32).reshape(-1))
            if part is not None:
                parts.append(np.asarray(part, dtype=np.float32).reshape(len(logits[-1]), -1))
        if not logits:
            empty = np.zeros((0, len(self.experts)), dtype=np.float32) if self.experts else None
            return np.zeros((0,), dtype=np.float32), empty
        return np.concatenate(logits), (np.concatenate(parts) if parts else None)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated P(fake) = sigmoid(logit / temperature)."""
        return np.asarray(sigmoid(np.asarray(logits, dtype=np.float64) / self.contract.temperature))


class OnnxBackend(Predictor):
    """onnxruntime session; the contract comes from the file's `deepdetect` metadata."""

    kind = "onnx"

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", batch_size: int = 32) -> None:
        from deepdetect.contract.onnx import OnnxContractError, read_session_contract
        from deepdetect.inference.runtime import ort_session

        check_device(device)
        self.path = Path(path)
        self.batch_size = max(1, int(batch_size))
        try:
            self.session = ort_session(path, device=device, spinning=False)  # leave the cores to detection
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types for unloadable graphs
            raise ModelLoadError(f"onnxruntime cannot load {path}: {exc}") from exc
        try:  # the contract from the session's own view of the file: predict never imports onnx (start-up)
            meta = read_session_contract(self.session, path)
        except OnnxContractError as exc:
            raise ModelLoadError(str(exc)) from exc
        if device.startswith("cuda") and "CUDAExecutionProvider" not in self.session.get_providers():
            log.warning("onnxruntime has no CUDA provider here: the model runs on CPU (face detection on %s)", device)
        self.input_name = self.session.get_inputs()[0].name
        self.contract = ModelCard.from_onnx_metadata(meta)

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        return self._outputs(batch)[0]

    def _outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outs = self.session.run(None, {self.input_name: batch})
        logits = np.asarray(outs[0], dtype=np.float32)
        return logits, (np.asarray(outs[1], dtype=np.float32) if self.experts else None)


class TorchBackend(Predictor):
    """A checkpoint loaded with `load_detector` (safetensors + sidecar); also serves Grad-CAM."""

    kind = "torch"

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", batch_size: int = 32) -> None:
        import torch

        from deepdetect.models.checkpoint import load_detector, resolve_model_path

        check_device(device)
        self.path = Path(path)
        try:
            weights = resolve_model_path(path)
            self.model, meta = load_detector(weights, device=device)
        except Exception as exc:  # a bad or hostile file (e.g. SafetensorError, UnsafeCheckpointError): clear error
            raise ModelLoadError(f"cannot load checkpoint {path}: {exc}") from exc
        version = meta.get("model_version")
        if not version:
            version = weights_version(weights)
        try:
            self.contract = ModelCard.from_sidecar(meta, str(version))  # the same value checks as the ONNX path's
        except ContractValueError as exc:
            raise ModelLoadError(f"{weights}: {exc}") from None
        self.device = torch.device(device)
        self.batch_size = max(1, int(batch_size))

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        from deepdetect.models.scoring import score_batches

        return score_batches(self.model, [batch], self.device)  # the loop training and evaluation score with

    def heatmaps(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Grad-CAM maps (N, H, W) in [0, 1] for the crops (evidence for "fake")."""
        import torch

        from deepdetect.models.gradcam import gradcam

        batch = torch.from_numpy(prepare_batch(crops, self.contract.preprocess)).to(self.device)
        return gradcam(self.model, batch)
