"""onnxruntime's own warnings stay off the analyst's terminal unless predict runs with -v."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deepdetect.inference.runtime import ort_session, ort_verbosity


def _model_ort_warns_about(path: Path) -> Path:
    """An identity model with an unused initializer: onnxruntime warns "Removing initializer" when it loads it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    unused = numpy_helper.from_array(np.ones(4, np.float32), "unused")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y], initializer=[unused])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_ort_warnings_only_when_verbose(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = _model_ort_warns_about(tmp_path / "m.onnx")
    try:
        ort_verbosity(False)
        ort_session(path)
        assert "Removing initializer" not in capfd.readouterr().err
        ort_verbosity(True)
        ort_session(path)
        assert "Removing initializer" in capfd.readouterr().err  # the same session, -v: the warning shows
    finally:
        ort_verbosity(False)
