"""Torch detector -> ONNX graph (input `input` [N,3,H,W] float32, output `logit` [N]), checked."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
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
    output_names: Sequence[str] = (OUTPUT_NAME,),
) -> onnx.ModelProto:
    """Export with the TorchScript exporter (robust for timm CNNs and ViTs), run onnx.checker, return the model.
    `output_names` name the model's outputs in order (a fused model: logit, then experts); each has batch axis 0."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    dummy = torch.zeros(2, 3, *input_size, dtype=torch.float32)
    axes = {name: {0: "N"} for name in (INPUT_NAME, *output_names)} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow in timm models
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=list(output_names),
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    return proto
