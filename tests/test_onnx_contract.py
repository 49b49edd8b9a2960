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
    assert len(blocks) == 2
    code = blocks[0]
    for block in blocks:
        assert "deepdetect" not in re.findall(r"^(?:from|import) (\S+)", block, flags=re.M)

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


def test_contract_crops_from_your_own_boxes_match_deepdetects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second example: a consumer with its own face boxes (no MTCNN) crops and scores as predict does."""
    from skimage.data import astronaut

    from deepdetect.faces.crop import crop_face

    first, second = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    ckpt = make_tiny_checkpoint(tmp_path / "run")
    export(export_cfg(ckpt, tmp_path))
    frame = astronaut()
    Image.fromarray(frame[40:240, 140:340]).save(tmp_path / "face.png")
    Image.fromarray(frame).save(tmp_path / "frame.png")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(first + second, str(DOC), "exec"), scope)
    assert capsys.readouterr().out.strip().endswith(("fake", "real"))

    predictor = Predictor.from_path(tmp_path / "model.onnx")
    card = predictor.contract
    box = (180.0, 75.0, 290.0, 210.0)
    ours, _ = crop_face(frame, box, None, card.margin, card.crop_size)
    theirs = scope["model_crop"](frame, box)  # type: ignore[operator]
    assert theirs.shape == ours.shape
    assert np.abs(theirs.astype(np.float32) - ours.astype(np.float32)).mean() < 2.0  # same framing, same size
    expected = predictor.calibrate(predictor.score_crops([ours]))
    assert abs(float(scope["probs"][0]) - float(expected[0])) < 0.01  # type: ignore[index]
    scope["rules"]["min_face"] = 40  # type: ignore[index]
    assert scope["model_crop"](frame, (10.0, 10.0, 49.0, 90.0)) is None  # type: ignore[operator]  # 39 px: skipped
    assert scope["model_crop"](frame, (10.0, 10.0, 50.0, 90.0)) is not None  # type: ignore[operator]
