"""Issue 12 item 7: every contract value is checked on load, by one function, on the ONNX and the checkpoint path:
a bad value is a one-line error and exit 2 before any file is scored."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from PIL import Image

from deepdetect.cli.predict import main as predict_main
from deepdetect.contract.checks import ContractValueError, check_contract_values
from deepdetect.inference.predictor import ModelLoadError, Predictor
from test_export import make_tiny_checkpoint
from test_untrusted_models import _onnx

BAD = [
    ("face_crop", "size", 40000, "face_crop.size"),
    ("face_crop", "size", "64", "face_crop.size"),
    ("face_crop", "margin", -5, "face_crop.margin"),
    ("face_crop", "min_face", -1, "face_crop.min_face"),
    ("face_crop", "min_face", "40", "face_crop.min_face"),
    ("face_crop", "min_score", 1.5, "face_crop.min_score"),
    ("face_crop", "keep", "everyone", "face_crop.keep"),
    ("face_crop", "frames_per_video", 0, "face_crop.frames_per_video"),
    ("preprocess", "resolution", 30000, "preprocess.resolution"),
    ("preprocess", "input_size", "96", "preprocess.input_size"),
    ("preprocess", "input_size", [4, 4], "preprocess.input_size"),
    ("preprocess", "mean", "abc", "preprocess.mean"),
    ("preprocess", "std", [0.5, 0.0, 0.5], "preprocess.std"),
    ("preprocess", "std", [0.5, float("nan"), 0.5], "preprocess.std"),
    ("calibration", "temperature", -1, "calibration.temperature"),
    ("calibration", "temperature", float("inf"), "calibration.temperature"),
    ("calibration", "threshold", "abc", "calibration.threshold"),
    ("calibration", "threshold", 1.5, "calibration.threshold"),
    ("calibration", None, [1, 2], "calibration must be a mapping"),
]


def _set(contract: dict[str, Any], section: str, key: str | None, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(contract)
    if key is None:
        out[section] = value
    else:
        out[section][key] = value
    return out


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    return path


def test_valid_contract_with_face_selection_fields_passes() -> None:
    check_contract_values(
        {
            "preprocess": {"input_size": [64, 64], "mean": [0.5] * 3, "std": [0.5] * 3, "resolution": None},
            "face_crop": {"size": 64, "margin": 0.3, "min_face": 40.0, "keep": "all", "frames_per_video": None},
            "calibration": {"temperature": 1.2, "threshold": 0.4, "threshold_rule": "eer"},
        }
    )


@pytest.fixture(scope="module")
def sidecar_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "run").parent


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD)
def test_checkpoint_sidecar_values_are_checked(
    sidecar_run: Path, tmp_path: Path, section: str, key: str | None, value: Any, message: str, capsys
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").symlink_to(sidecar_run / "model.safetensors")
    meta = json.loads((sidecar_run / "model.json").read_text())
    (run / "model.json").write_text(json.dumps(_set(meta, section, key, value)))
    with pytest.raises(ModelLoadError, match=message):
        Predictor.from_path(run)
    out = tmp_path / "o.jsonl"
    code = predict_main([str(_image(tmp_path)), "--model", str(run), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before any file was scored


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD)
def test_onnx_contract_values_are_checked(
    tmp_path: Path, section: str, key: str | None, value: Any, message: str, capsys
) -> None:
    path = _onnx(tmp_path / "m.onnx", ["N", 3, 64, 64])
    model = onnx.load(str(path))
    contract = json.loads(next(p.value for p in model.metadata_props if p.key == "deepdetect"))
    if key is None and section == "calibration":
        pytest.skip("the ONNX path already requires every section to be a mapping")
    entry = next(p for p in model.metadata_props if p.key == "deepdetect")
    entry.value = json.dumps(_set(contract, section, key, value))  # as a hostile file would carry it
    onnx.save(model, str(path))
    with pytest.raises(ModelLoadError, match=message):
        Predictor.from_path(path)
    code = predict_main([str(_image(tmp_path)), "--model", str(path), "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and message in err


def test_one_function_serves_both_paths() -> None:
    with pytest.raises(ContractValueError, match=r"calibration\.temperature"):
        check_contract_values(
            {"preprocess": {"input_size": [64, 64], "mean": [0] * 3, "std": [1] * 3}, "calibration": {"temperature": 0}}
        )
