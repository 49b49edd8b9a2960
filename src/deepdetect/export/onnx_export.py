"""Torch detector -> ONNX graph (input `input` [N,3,H,W] float32, output `logit` [N]), checked, plus ORT helpers."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from deepdetect.export.metadata import INPUT_NAME, OUTPUT_NAME

DEFAULT_OPSET = 18


def export_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    input_size: tuple[int, int],
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
) -> onnx.ModelProto:
    """Export with the TorchScript exporter (robust for timm CNNs and ViTs), run onnx.checker, return the model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    dummy = torch.zeros(2, 3, *input_size, dtype=torch.float32)
    axes = {INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow in timm models
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def ort_session(path: str | os.PathLike[str], threads: int | None = None, device: str = "cpu") -> ort.InferenceSession:
    """An onnxruntime session on CPU (or CUDA when asked and available), with a fixed thread count if given."""
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def run_session(session: ort.InferenceSession, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Logits (N,) for a float32 NCHW batch, run in chunks."""
    name = session.get_inputs()[0].name
    outs = [
        np.asarray(session.run(None, {name: batch[i : i + batch_size]})[0], dtype=np.float32).reshape(-1)
        for i in range(0, len(batch), batch_size)
    ]
    return np.concatenate(outs) if outs else np.zeros((0,), dtype=np.float32)
