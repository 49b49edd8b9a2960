"""The contract an exported ONNX file carries: build it from a checkpoint sidecar, write, read and validate it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepdetect.contract import ContractValueError, ModelCard, check_contract_values
from deepdetect.contract.card import ONNX_FORMAT

if TYPE_CHECKING:  # onnx (and its ml_dtypes, ~0.8 s) is imported only to build or load a proto, never by predict
    import onnx
    import onnxruntime as ort

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
    import onnx

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = Path(model_or_path)
    if not path.is_file():
        raise OnnxContractError(f"ONNX file not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise OnnxContractError(f"{path} is not a readable ONNX model: {exc}") from exc


def check_signature(
    inputs: Sequence[tuple[str, str, Sequence[int | str | None]]], outputs: Sequence[str]
) -> tuple[int, int]:
    """Check the graph's inputs (name, element type as ONNX spells it, e.g. "float", dims: int, or a name / None
    when not fixed) and output names: one float32 input [N,3,H,W] and one [N] output (a fused model: a second output
    `experts`); returns (H, W) or raises OnnxContractError."""
    if len(inputs) != 1:
        raise OnnxContractError(f"expected one input [N,3,H,W] float32, found {len(inputs)} inputs")
    name, elem, shape = inputs[0]
    if elem != "float":
        raise OnnxContractError(f"input {name!r} must be float32 [N,3,H,W], got {elem}")
    dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if len(dims) != 4 or dims[1] != 3 or dims[2] is None or dims[3] is None:
        shown = [d if d is not None else "?" for d in dims]
        raise OnnxContractError(f"input {name!r} must be [N,3,H,W] with fixed H and W, got {shown}")
    if not (len(outputs) == 1 or (len(outputs) == 2 and outputs[1] == EXPERTS_NAME)):
        found = list(outputs)
        raise OnnxContractError(f"expected one output (logit [N]) and optionally {EXPERTS_NAME!r}, found {found}")
    return int(dims[2]), int(dims[3])


def validate_signature(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> tuple[int, int]:
    """`check_signature` on an ONNX model or file: (H, W) or OnnxContractError."""
    import onnx

    model = _load(model_or_path)
    weights = {t.name for t in model.graph.initializer}
    inputs = []
    for i in model.graph.input:
        if i.name in weights:
            continue
        tensor = i.type.tensor_type
        elem = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        inputs.append((i.name, elem, dims))
    return check_signature(inputs, [o.name for o in model.graph.output])


def session_signature(session: ort.InferenceSession) -> tuple[int, int]:
    """`check_signature` on a loaded onnxruntime session (what predict reads, without importing onnx)."""
    inputs = [
        (i.name, str(i.type).removeprefix("tensor(").removesuffix(")"), list(i.shape)) for i in session.get_inputs()
    ]
    return check_signature(inputs, [o.name for o in session.get_outputs()])


def contract_from_props(
    props: Mapping[str, str], hw: tuple[int, int], n_outputs: int, path: str | os.PathLike[str]
) -> dict[str, Any]:
    """The deepdetect contract in a model's metadata props, checked against its graph's input size and outputs."""
    if METADATA_KEY not in props:
        raise OnnxContractError(f"{path} has no {METADATA_KEY!r} metadata entry: not exported by deepdetect-export")
    try:
        contract: dict[str, Any] = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise OnnxContractError(f"{path}: the {METADATA_KEY!r} metadata entry is not valid JSON") from exc
    validate_contract(contract, hw)
    fused = n_outputs == 2
    if fused != bool(contract.get("fusion")):
        what = "has an experts output but no fusion section" if fused else "has a fusion section but no experts output"
        raise OnnxContractError(f"{path}: the graph {what}")
    return contract


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The deepdetect contract stored in an ONNX file, after checking its signature and contents."""
    model = _load(path)
    hw = validate_signature(model)
    props = {p.key: p.value for p in model.metadata_props}
    return contract_from_props(props, hw, len(model.graph.output), path)


def read_session_contract(session: ort.InferenceSession, path: str | os.PathLike[str]) -> dict[str, Any]:
    """`read_onnx_metadata` from the onnxruntime session that loaded the file (same checks, no onnx import)."""
    hw = session_signature(session)
    props = session.get_modelmeta().custom_metadata_map
    return contract_from_props(props, hw, len(session.get_outputs()), path)


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
