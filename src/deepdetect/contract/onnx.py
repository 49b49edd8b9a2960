"""The contract an exported ONNX file carries: build it from a checkpoint sidecar, write, read and validate it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import onnx

from deepdetect.contract import ContractValueError, ModelCard, check_contract_values
from deepdetect.contract.card import ONNX_FORMAT

log = logging.getLogger(__name__)

CONTRACT_FORMAT = ONNX_FORMAT
METADATA_KEY = "deepdetect"
INPUT_NAME = "input"
OUTPUT_NAME = "logit"
EXPERTS_NAME = "experts"  # a fused model's second output: each expert's contribution to the logit [N, E]


class OnnxContractError(ValueError):
    """Raised when an ONNX file lacks the deepdetect contract or has the wrong input/output signature."""


def build_contract(meta: dict[str, Any], model_version: str, opset: int | None = None) -> dict[str, Any]:
    """The `deepdetect` metadata entry for an exported model, from a checkpoint sidecar (via the model card)."""
    if not meta.get("face_crop"):
        log.warning("sidecar has no face_crop entry; recording mtcnn with margin 0.3 and the input size")
    try:
        card = ModelCard.from_sidecar(meta, model_version)
    except ContractValueError as exc:
        raise OnnxContractError(str(exc)) from None
    return card.to_onnx_metadata(opset, INPUT_NAME, OUTPUT_NAME)


def flat_props(contract: dict[str, Any]) -> dict[str, str]:
    """A few flat string keys beside the JSON entry, for tools that only show key/value pairs."""
    pre, cal = contract["preprocess"], contract["calibration"]
    return {
        "model_name": str(contract["model"]["name"]),
        "model_version": str(contract["model"]["version"]),
        "input_size": ",".join(str(v) for v in pre["input_size"]),
        "layout": str(pre["layout"]),
        "color": str(pre["color"]),
        "mean": ",".join(f"{v:.6g}" for v in pre["mean"]),
        "std": ",".join(f"{v:.6g}" for v in pre["std"]),
        "output": "logit of P(fake); prob = sigmoid(logit / temperature)",
        "temperature": f"{float(cal['temperature']):.6g}",
        "threshold": f"{float(cal['threshold']):.6g}",
    }


def write_contract(model: onnx.ModelProto, contract: dict[str, Any]) -> None:
    """Store the contract in `model.metadata_props` (JSON under `deepdetect` plus flat keys), replacing old ones."""
    props = {METADATA_KEY: json.dumps(contract, default=str), **flat_props(contract)}
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = "deepdetect face-crop deepfake detector; see the 'deepdetect' metadata entry"


def _load(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = Path(model_or_path)
    if not path.is_file():
        raise OnnxContractError(f"ONNX file not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise OnnxContractError(f"{path} is not a readable ONNX model: {exc}") from exc


def validate_signature(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> tuple[int, int]:
    """Check one float32 input [N,3,H,W] and one [N] output (a fused model: a second output `experts`); returns
    (H, W) or raises OnnxContractError."""
    model = _load(model_or_path)
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1:
        raise OnnxContractError(f"expected one input [N,3,H,W] float32, found {len(inputs)} inputs")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type)
        raise OnnxContractError(f"input {inputs[0].name!r} must be float32 [N,3,H,W], got {dtype}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if len(dims) != 4 or dims[1] != 3 or dims[2] is None or dims[3] is None:
        shown = [d if d is not None else "?" for d in dims]
        raise OnnxContractError(f"input {inputs[0].name!r} must be [N,3,H,W] with fixed H and W, got {shown}")
    outputs = [o.name for o in model.graph.output]
    if not (len(outputs) == 1 or (len(outputs) == 2 and outputs[1] == EXPERTS_NAME)):
        raise OnnxContractError(f"expected one output (logit [N]) and optionally {EXPERTS_NAME!r}, found {outputs}")
    return int(dims[2]), int(dims[3])


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The deepdetect contract stored in an ONNX file, after checking its signature and contents."""
    model = _load(path)
    hw = validate_signature(model)
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise OnnxContractError(f"{path} has no {METADATA_KEY!r} metadata entry: not exported by deepdetect-export")
    try:
        contract: dict[str, Any] = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise OnnxContractError(f"{path}: the {METADATA_KEY!r} metadata entry is not valid JSON") from exc
    validate_contract(contract, hw)
    fused = len(model.graph.output) == 2
    if fused != bool(contract.get("fusion")):
        what = "has an experts output but no fusion section" if fused else "has a fusion section but no experts output"
        raise OnnxContractError(f"{path}: the graph {what}")
    return contract


def validate_contract(contract: dict[str, Any], input_hw: tuple[int, int] | None = None) -> None:
    """Raise OnnxContractError when required contract fields are missing or disagree with the graph."""
    for key in ("preprocess", "face_crop", "output", "calibration", "model"):
        if not isinstance(contract.get(key), dict):
            raise OnnxContractError(f"contract lacks a {key!r} section")
    pre = contract["preprocess"]
    for key in ("input_size", "mean", "std"):
        if key not in pre:
            raise OnnxContractError(f"contract preprocess lacks {key!r}")
    try:
        check_contract_values(contract)  # types and ranges, shared with the checkpoint path
    except ContractValueError as exc:
        raise OnnxContractError(str(exc)) from None
    if input_hw is not None and tuple(int(v) for v in pre["input_size"]) != tuple(input_hw):
        raise OnnxContractError(f"contract input_size {pre['input_size']} disagrees with the graph's {list(input_hw)}")
