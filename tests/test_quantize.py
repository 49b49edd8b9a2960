"""INT8 path: graph preparation keeps the model's outputs and dynamic batch, and every convolution runs as int8."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from deepdetect.export.onnx_export import export_onnx
from deepdetect.export.quantize import (
    Int8Settings,
    calibrate_ranges,
    fp32_nodes,
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


class _Recording:
    """An ORT session that records the batch size of every run."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.sizes: list[int] = []

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> Any:
        self.sizes.append(len(next(iter(feed.values()))))
        return self.session.run(names, feed)


def test_time_sessions_runs_the_batch_in_chunks(tmp_path: Path) -> None:
    # one ORT run over a whole parity set of 224 px crops held every activation at once: 24 GB and the OOM killer
    session = _Recording(ort_session(_export(tmp_path)))
    times = time_sessions({"fp32": session}, _inputs(10), repeats=2, batch_size=4)
    assert len(times["fp32"]) == 2 and all(t > 0 for t in times["fp32"])
    assert session.sizes == [4, 4, 2] * 3  # warm-up + 2 timed passes, each over all 10 inputs in chunks


def test_keep_fp32_prefix_and_suffix_run_in_float(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _export(tmp_path)
    prepared = tmp_path / "prepared.onnx"
    prepare_for_int8(src, prepared)
    graph = onnx.load(str(prepared))
    names = [n.name for n in graph.graph.node]
    convs = [n.name for n in graph.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    assert fp32_nodes(graph, ["first"]) == names[: names.index(convs[0]) + 1]
    assert fp32_nodes(graph, ["first:3"])[-1] == convs[2]
    assert fp32_nodes(graph, ["last"]) == names[names.index(convs[-1]) :]
    with pytest.raises(ValueError, match="no node named 'nope'"):
        fp32_nodes(graph, ["nope"])
    with pytest.raises(ValueError, match="only 18"):
        fp32_nodes(graph, ["first:99"])
    with pytest.raises(ValueError, match="first:N"):
        Int8Settings(keep_fp32=("first:0",))
    calib, x = _inputs(8), _inputs(2)
    mixed = quantize_int8(src, tmp_path / "mixed.onnx", calib, Int8Settings(keep_fp32=("first:3",)))
    cov = int8_coverage(runtime_op_counts(mixed))
    assert cov["float_conv"] == 3 and cov["int8_conv"] == 14  # of test_efficientnet's 17 convs
    ref = ort_session(src).run(None, {"input": x})[0]
    out = ort_session(mixed).run(None, {"input": x})[0]
    assert out.shape == (2,) and np.max(np.abs(out - ref)) < 0.05
    # A lone float conv between int8 ones is re-quantized by ORT when the session loads: a warning says so.
    lone = quantize_int8(src, tmp_path / "lone.onnx", calib, Int8Settings(keep_fp32=(convs[5],)))
    assert "re-quantized" in caplog.text
    assert int8_coverage(runtime_op_counts(lone))["float_conv"] == 0


def calib_conv_min(path: Path, calib: np.ndarray) -> float:
    """The smallest conv output over the calibration batch (what minmax calibration must find)."""
    return float(ort_session(path).run(None, {"input": calib})[0].min())


def test_entropy_and_percentile_calibration_differ_from_minmax(tmp_path: Path) -> None:
    """ORT's quantize_static alone runs entropy with 128 bins for 128 levels: its one candidate is the full range."""
    import json

    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 6, 6])
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["y"], name="conv")], "g", [x], [y], [weight])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), str(path))
    calib = rng.standard_t(2, size=(16, 3, 8, 8)).astype(np.float32)  # heavy tails: a clipped range pays off
    # The first crop holds the extremes, so the histogram never widens later (ORT then adds bins, hiding the bug).
    calib[0, :, 0, 0], calib[0, :, 0, 1] = 2 * np.abs(calib).max(), -2 * np.abs(calib).max()
    ranges = {}
    for method in ("minmax", "entropy", "percentile"):
        settings = Int8Settings(calibration=method, histogram_bins=512, percentile=99.0)
        cache = json.loads(calibrate_ranges(path, calib, settings, tmp_path / f"{method}.json").read_text())
        ends = [cache["data"]["y"][end] for end in ("lowest", "highest")]  # the conv output's range
        ranges[method] = [float(np.ravel(e["data"] if isinstance(e, dict) else e)[0]) for e in ends]
    low, high = ranges["minmax"]
    assert low == calib_conv_min(path, calib) and high > 0
    for method in ("entropy", "percentile"):  # a narrower range than the extremes
        assert low < ranges[method][0] and ranges[method][1] <= high


def test_int8_settings_from_config() -> None:
    from omegaconf import OmegaConf

    assert Int8Settings.from_config(None) == Int8Settings()
    assert Int8Settings.from_config({"format": "qoperator", "per_channel": None}).format == "qoperator"
    cfg = OmegaConf.create({"keep_fp32": ["first", "/x/Conv"], "calibration": "percentile", "percentile": 99.9})
    settings = Int8Settings.from_config(cfg)
    assert settings.keep_fp32 == ("first", "/x/Conv") and settings.to_dict()["keep_fp32"] == ["first", "/x/Conv"]
    assert Int8Settings.from_config({"keep_fp32": "first"}).keep_fp32 == ("first",)
    with pytest.raises(ValueError, match="percentile"):
        Int8Settings(percentile=20.0)
    with pytest.raises(ValueError, match="unknown int8 settings"):
        Int8Settings.from_config({"formt": "qdq"})
    with pytest.raises(ValueError, match="format"):
        Int8Settings(format="qint")
