"""Torch detector -> ONNX graph (input `input` [N,3,H,W] float32, output `logit` [N]), checked, plus ORT helpers."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import onnx
import torch

from deepdetect.contract.onnx import INPUT_NAME, OUTPUT_NAME

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
