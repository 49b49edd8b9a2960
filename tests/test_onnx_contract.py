"""The example in docs/onnx-contract.md runs, with numpy + onnxruntime only, against a fresh export."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.export.pipeline import export
from deepdetect.inference.predictor import Predictor
from test_export import export_cfg, make_tiny_checkpoint

DOC = Path(__file__).resolve().parents[1] / "docs" / "onnx-contract.md"


def test_contract_example_runs_and_matches_predictor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1
    code = blocks[0]
    assert "deepdetect" not in re.findall(r"^(?:from|import) (\S+)", code, flags=re.M)

    ckpt = make_tiny_checkpoint(tmp_path / "run")
    export(export_cfg(ckpt, tmp_path))
    from skimage.data import astronaut

    crop = astronaut()[40:240, 140:340]
    Image.fromarray(crop).save(tmp_path / "face.png")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), scope)
    prob = np.asarray(scope["prob"])
    assert prob.shape == (1,) and "P(fake)" in capsys.readouterr().out

    predictor = Predictor.from_path(tmp_path / "model.onnx")
    expected = predictor.calibrate(predictor.score_crops([crop]))
    assert abs(float(prob[0]) - float(expected[0])) <= 1e-5
