"""INT8 path: graph preparation keeps the model's outputs and dynamic batch, and every convolution runs as int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from deepdetect.export.onnx_export import export_onnx
from deepdetect.export.quantize import (
    Int8Settings,
    freeze_static_shapes,
    int8_coverage,
    prepare_for_int8,
    quantize_int8,
    runtime_op_counts,
    time_sessions,
)
from deepdetect.inference.runtime import ort_session
from deepdetect.models.detector import create_detector

SIZE = 64


def _export(tmp_path: Path, **kwargs: object) -> Path:
    """timm's tiny test_efficientnet (SiLU + squeeze-excite), optionally with TF "same" padding like *_lite0."""
    path = tmp_path / "fp32.onnx"
    export_onnx(create_detector("test_efficientnet", **kwargs).eval(), path, (SIZE, SIZE))
    return path


def _inputs(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("pad_type", ["", "same"])
def test_prepare_keeps_outputs_and_dynamic_batch(tmp_path: Path, pad_type: str) -> None:
    src = _export(tmp_path, pad_type=pad_type)
    dst = tmp_path / "prepared.onnx"
    stats = prepare_for_int8(src, dst)
    assert stats["reduce_mean_to_global_pool"] == 2  # test_efficientnet's two SE blocks
    assert "ReduceMean" not in _ops(dst)
    if pad_type == "same":
        assert stats["frozen_shape_tensors"] > 0
        assert not {"Shape", "Ceil", "Gather"} & _ops(dst)  # the dynamic-padding arithmetic is gone
    ref, new = ort_session(src), ort_session(dst)
    for n in (1, 3, 5):  # batch sizes never seen while freezing (1, 2) still work
        x = _inputs(n)
        a, b = ref.run(None, {"input": x})[0], new.run(None, {"input": x})[0]
        assert b.shape == (n,)
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_freeze_leaves_batch_dependent_tensors(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    # y = Reshape(x, [Shape(x)[0], -1]): the target shape depends on the batch and must stay computed.
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 48])
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["input", "target"], ["y"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [0]),
        helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    assert freeze_static_shapes(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"]


def test_quantize_int8_runs_every_conv_as_int8(tmp_path: Path) -> None:
    src = _export(tmp_path)
    calib = _inputs(8)
    fast = quantize_int8(src, tmp_path / "int8.onnx", calib)
    plain = quantize_int8(src, tmp_path / "plain.onnx", calib, Int8Settings(prepare=False))
    cov, cov_plain = int8_coverage(runtime_op_counts(fast)), int8_coverage(runtime_op_counts(plain))
    assert cov["int8_conv"] == 17 and cov["float_conv"] == 0
    assert cov["dequantize_linear"] <= 1  # one at the output, none inside the network
    assert cov_plain["dequantize_linear"] > cov["dequantize_linear"]  # what preparation removes
    x = _inputs(4)
    ref = ort_session(src).run(None, {"input": x})[0]
    out = ort_session(fast).run(None, {"input": x})[0]
    assert out.shape == (4,) and np.all(np.isfinite(out))
    assert np.max(np.abs(ref - out)) < 0.05
    times = time_sessions({"fp32": ort_session(src), "int8": ort_session(fast)}, x, repeats=2)
    assert [len(v) for v in times.values()] == [2, 2]


def test_int8_settings_from_config() -> None:
    assert Int8Settings.from_config(None) == Int8Settings()
    assert Int8Settings.from_config({"format": "qoperator", "per_channel": None}).format == "qoperator"
    with pytest.raises(ValueError, match="unknown int8 settings"):
        Int8Settings.from_config({"formt": "qdq"})
    with pytest.raises(ValueError, match="format"):
        Int8Settings(format="qint")
