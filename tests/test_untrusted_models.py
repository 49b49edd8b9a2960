"""Untrusted model files: pickles that would run code are refused (and run nothing); bad ONNX gets a clear error."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from deepdetect.cli.predict import main as predict_main
from deepdetect.contract.onnx import build_contract, write_contract
from deepdetect.inference.predictor import ModelLoadError, OnnxBackend, Predictor
from deepdetect.models.checkpoint import UnsafeCheckpointError, load_detector, safe_torch_load
from deepdetect.models.detector import ModelBuildError, create_detector
from deepdetect.training.state import load_training_state
from test_export import make_tiny_checkpoint


class Payload:
    """Unpickling this object runs `open(marker, 'w').write(...)`: a stand-in for any code an attacker wants."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


@pytest.fixture
def evil(tmp_path: Path) -> dict[str, Path]:
    """Malicious files: a torch zip checkpoint and a raw pickle, each carrying the payload; plus its marker path."""
    marker = tmp_path / "PWNED"
    torch_file = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": Payload(marker)}, torch_file)
    raw = tmp_path / "evil.pth"
    raw.write_bytes(pickle.dumps({"w": Payload(marker)}, protocol=2))
    assert not marker.exists()
    return {"marker": marker, "pt": torch_file, "pth": raw}


def _assert_refused(exc: BaseException, marker: Path) -> None:
    assert not marker.exists(), "the payload ran"
    assert "refusing to load" in str(exc) or "expected a run folder or a .safetensors file" in str(exc), str(exc)


@pytest.mark.parametrize("kind", ["pt", "pth"])
def test_safe_torch_load_refuses_code(evil: dict[str, Path], kind: str) -> None:
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(evil[kind])
    _assert_refused(info.value, evil["marker"])
    assert "arbitrary code" in str(info.value) or "weights_only" in str(info.value)


def test_sanity_the_payload_does_run_with_a_full_unpickle(evil: dict[str, Path]) -> None:
    pickle.loads(evil["pth"].read_bytes())  # proves the fixture is really dangerous
    assert evil["marker"].read_text() == "code ran"


@pytest.mark.parametrize("kind", ["pt", "pth"])
def test_create_detector_weights_refuses_code(evil: dict[str, Path], kind: str) -> None:
    with pytest.raises((UnsafeCheckpointError, ModelBuildError)) as info:
        create_detector("test_efficientnet", weights=evil[kind], img_size=64)
    _assert_refused(info.value, evil["marker"])


def test_load_detector_and_training_state_refuse_code(evil: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelBuildError) as info:
        load_detector(evil["pt"])
    _assert_refused(info.value, evil["marker"])
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(evil["pt"], run / "checkpoints" / "last.pt")
    with pytest.raises(UnsafeCheckpointError) as info2:
        load_training_state(run / "checkpoints" / "last.pt")  # what trainer.resume=auto reads
    _assert_refused(info2.value, evil["marker"])


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("kind", ["pt", "pth"])
def test_predict_cli_refuses_pickle_model(evil: dict[str, Path], tmp_path: Path, kind: str, capsys) -> None:
    with pytest.raises(ModelLoadError):
        Predictor.from_path(evil[kind])
    code = predict_main([str(_image(tmp_path)), "--model", str(evil[kind]), "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "deepdetect-predict: error:" in err and "Traceback" not in err
    assert not evil["marker"].exists() and not (tmp_path / "o.jsonl").exists()


def test_predict_cli_refuses_pickle_disguised_as_safetensors(evil: dict[str, Path], tmp_path: Path, capsys) -> None:
    """A pickle renamed `.safetensors` next to a valid sidecar: the safetensors parser rejects it; no code runs."""
    good = make_tiny_checkpoint(tmp_path / "good")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(evil["pt"], run / "model.safetensors")
    shutil.copy(good.with_suffix(".json"), run / "model.json")
    code = predict_main([str(_image(tmp_path)), "--model", str(run), "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "deepdetect-predict: error:" in err and "Traceback" not in err
    assert not evil["marker"].exists()


# ------------------------------------------------------------------------------------------------------------ ONNX


def _contract() -> dict[str, object]:
    meta = {
        "model": {"name": "test_efficientnet"},
        "preprocess": {"input_size": [64, 64], "mean": [0.5] * 3, "std": [0.5] * 3},
        "face_crop": {"detector": "mtcnn", "margin": 0.3, "size": 64},
    }
    return build_contract(meta, "v0")


def _onnx(
    path: Path, shape: list[object], dtype: int = TensorProto.FLOAT, n_inputs: int = 1, ir_version: int = 8
) -> Path:
    """A tiny graph (ReduceMean of the input) with the deepdetect contract but the given input signature."""
    inputs = [helper.make_tensor_value_info(f"x{i}", dtype, shape) for i in range(n_inputs)]
    node = helper.make_node("ReduceMean", ["x0"], ["logit"], keepdims=0)
    out = helper.make_tensor_value_info("logit", dtype, None)
    graph = helper.make_graph([node], "bad", inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=ir_version)
    write_contract(model, _contract())
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("shape", "dtype", "n_inputs", "message"),
    [
        (["N", 1, 8], TensorProto.FLOAT, 1, r"must be \[N,3,H,W\]"),
        (["N", 3, "H", "W"], TensorProto.FLOAT, 1, "fixed H and W"),
        (["N", 3, 64, 64], TensorProto.INT64, 1, "must be float32"),
        (["N", 3, 64, 64], TensorProto.FLOAT, 2, "expected one input"),
    ],
)
def test_onnx_wrong_signature_is_a_clear_error(
    tmp_path: Path, shape: list[object], dtype: int, n_inputs: int, message: str, capsys
) -> None:
    path = _onnx(tmp_path / "bad.onnx", shape, dtype, n_inputs)
    with pytest.raises(ModelLoadError, match=message):
        Predictor.from_path(path)
    code = predict_main([str(_image(tmp_path)), "--model", str(path), "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "deepdetect-predict: error:" in err and message.replace("\\", "") in err


def test_onnx_with_valid_signature_but_missing_contract_is_refused(tmp_path: Path) -> None:
    path = _onnx(tmp_path / "ok.onnx", ["N", 3, 64, 64])
    assert isinstance(Predictor.from_path(path), OnnxBackend)  # control: the same graph with the contract loads
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    with pytest.raises(ModelLoadError, match="no 'deepdetect' metadata"):
        Predictor.from_path(path)
    contract = _contract()
    contract["preprocess"]["input_size"] = [32, 32]  # type: ignore[index]
    model = onnx.load(str(path))
    write_contract(model, contract)
    onnx.save(model, str(path))
    with pytest.raises(ModelLoadError, match="disagrees with the graph"):
        Predictor.from_path(path)
    assert json.loads(next(p.value for p in onnx.load(str(path)).metadata_props if p.key == "deepdetect"))


def test_onnx_that_onnxruntime_cannot_load_is_a_clear_error(tmp_path: Path, capsys) -> None:
    """A file with a valid contract and signature that onnxruntime rejects (IR version from the future)."""
    path = _onnx(tmp_path / "future.onnx", ["N", 3, 64, 64], ir_version=99)
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load"):
        Predictor.from_path(path)
    code = predict_main([str(_image(tmp_path)), "--model", str(path), "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "onnxruntime cannot load" in err
