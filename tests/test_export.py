"""ONNX export: parity with PyTorch, the metadata contract round-trip, dynamic batch, bad signatures, INT8."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from omegaconf import OmegaConf
from PIL import Image

from deepdetect.contract.onnx import OnnxContractError, read_onnx_metadata, validate_signature
from deepdetect.data.manifest import CropRecord, records_to_frame, write_manifest
from deepdetect.export.pipeline import ExportUsageError, export
from deepdetect.inference.runtime import ort_session
from deepdetect.models.checkpoint import save_detector
from deepdetect.models.detector import create_detector, resolve_preprocess


def make_tiny_checkpoint(run_dir: Path, name: str = "test_efficientnet", manifest: Path | None = None) -> Path:
    """A random-init tiny detector saved like a training run, with the full sidecar."""
    model = create_detector(name, img_size=64).eval()
    pre = resolve_preprocess(model, 64)
    meta = {
        "model": {"name": name, "head": "linear", "img_size": 64},
        "preprocess": pre.to_dict(),
        "face_crop": {"detector": "mtcnn", "margin": 0.3, "size": 64},
        "output": {"type": "logit", "positive_class": "fake"},
        "calibration": {"temperature": 1.5, "threshold": 0.4, "threshold_rule": "eer on val"},
        "val_metrics": {"auc": 0.5},
        "training_data": {"manifest": str(manifest) if manifest else None, "n_train": 4},
        "config": {},
        "code_version": "test",
    }
    return save_detector(model, run_dir / "model.safetensors", meta)


def make_calibrated_checkpoint(run_dir: Path, **calibration: object) -> Path:
    """`make_tiny_checkpoint` whose stored calibration says `calibration` (as training writes it), FPR-thresholded."""
    ckpt = make_tiny_checkpoint(run_dir)
    sidecar = ckpt.parent / "model.json"
    meta = json.loads(sidecar.read_text())
    meta["calibration"] = {"temperature": 1.0, "threshold": 0.4, "threshold_rule": "fpr", **calibration}
    sidecar.write_text(json.dumps(meta))
    return ckpt


def make_crop_manifest(root: Path, n: int = 8) -> Path:
    """Real-looking crops (astronaut patches) labelled alternately fake/real, with their manifest."""
    from skimage.data import astronaut

    img = astronaut()
    records = []
    for i in range(n):
        crop = img[20 + 10 * i : 220 + 10 * i, 150 + 5 * i : 350 + 5 * i]
        rel = f"crops/{i}.png"
        (root / "crops").mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(root / rel)
        records.append(CropRecord(crop_path=rel, source_path=f"src{i}.jpg", label="fake" if i % 2 else "real"))
    path = root / "manifest.csv"
    write_manifest(records_to_frame(records), path)
    return path


def export_cfg(checkpoint: Path, out: Path, **extra: object) -> object:
    """The export config as the CLI composes it (defaults from configs/export.yaml)."""
    base = {
        "checkpoint": str(checkpoint),
        "output_dir": str(out),
        "opset": 18,
        "dynamic_batch": True,
        "model_version": None,
        "parity": {"manifest": None, "n": 6, "atol": 1e-4},
        "quantize": {"int8": False, "fp16": False, "calibration_n": 8},
    }
    return OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(extra))


def test_export_parity_on_manifest_crops_and_metadata(tmp_path: Path) -> None:
    manifest = make_crop_manifest(tmp_path / "data")
    ckpt = make_tiny_checkpoint(tmp_path / "run", manifest=manifest)
    report = export(export_cfg(ckpt.parent, tmp_path / "ex"))
    saved = json.loads((tmp_path / "ex" / "export.json").read_text())
    assert saved["parity"]["passed"] and saved["parity"]["max_abs_diff_prob"] <= 1e-4
    assert saved["parity"]["inputs"] == f"manifest:{manifest}"
    assert saved["parity"]["n_inputs"] == 6
    assert report["model"]["version"] == saved["model"]["version"]

    model = onnx.load(str(tmp_path / "ex" / "model.onnx"))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 18
    contract = read_onnx_metadata(tmp_path / "ex" / "model.onnx")
    assert contract["preprocess"]["input_size"] == [64, 64]
    assert contract["input"]["layout"] == "NCHW" and contract["input"]["color"] == "RGB"
    assert contract["face_crop"] == {"detector": "mtcnn", "margin": 0.3, "size": 64}
    assert contract["calibration"]["temperature"] == 1.5 and contract["calibration"]["threshold"] == 0.4
    assert contract["output"]["type"] == "logit" and contract["output"]["positive_class"] == "fake"
    assert contract["model"]["name"] == "test_efficientnet"
    assert contract["val_metrics"] == {"auc": 0.5} and contract["training_data"]["n_train"] == 4
    flat = {p.key: p.value for p in model.metadata_props}
    assert flat["input_size"] == "64,64" and flat["threshold"] == "0.4"


@pytest.mark.parametrize("name", ["test_efficientnet", "test_vit"])
def test_export_dynamic_batch_synthetic(tmp_path: Path, name: str) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "run", name=name)
    report = export(export_cfg(ckpt, tmp_path / "ex", model_version="v7"))
    assert report["parity"]["inputs"] == "synthetic" and report["parity"]["passed"]
    assert report["model"]["version"] == "v7"
    session = ort_session(tmp_path / "ex" / "model.onnx")
    for n in (1, 3):
        out = session.run(None, {"input": np.zeros((n, 3, 64, 64), np.float32)})[0]
        assert out.shape == (n,)


def test_export_int8_and_fp16_variants(tmp_path: Path) -> None:
    manifest = make_crop_manifest(tmp_path / "data")
    ckpt = make_tiny_checkpoint(tmp_path / "run", manifest=manifest)
    cfg = export_cfg(ckpt, tmp_path / "ex", quantize={"int8": True, "fp16": True, "calibration_n": 8})
    report = export(cfg)
    int8 = report["variants"]["int8"]
    assert Path(int8["path"]).is_file() and int8["speedup"] > 0
    assert int8["auc_change"] is not None and int8["calibration"]["inputs"].startswith("manifest:")
    assert read_onnx_metadata(int8["path"])["model"]["name"] == "test_efficientnet"
    fp16 = report["variants"]["fp16"]
    assert "skipped" in fp16 or fp16["max_abs_diff_prob_vs_fp32"] < 0.05


def test_missing_checkpoint_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ExportUsageError):
        cfg = export_cfg(tmp_path, tmp_path / "ex")
        cfg.checkpoint = None
        export(cfg)


def test_cli_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepdetect.cli.export import main

    ckpt = make_tiny_checkpoint(tmp_path / "run")
    monkeypatch.setattr("sys.argv", ["deepdetect-export", f"checkpoint={ckpt}", f"output_dir={tmp_path / 'ex'}"])
    main()
    assert (tmp_path / "ex" / "model.onnx").is_file() and (tmp_path / "ex" / "export.json").is_file()
    monkeypatch.setattr("sys.argv", ["deepdetect-export", f"checkpoint={tmp_path / 'nope'}", f"output_dir={tmp_path}"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2


def _graph(input_type: int, shape: list[object]) -> onnx.ModelProto:
    from onnx import helper

    x = helper.make_tensor_value_info("input", input_type, shape)
    y = helper.make_tensor_value_info("logit", input_type, shape)
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["logit"])], "g", [x], [y])
    return helper.make_model(graph)


@pytest.mark.parametrize(
    ("elem", "shape", "needle"),
    [
        (onnx.TensorProto.UINT8, ["N", 3, 64, 64], "float32"),
        (onnx.TensorProto.FLOAT, ["N", 64, 64, 3], "[N,3,H,W]"),
        (onnx.TensorProto.FLOAT, ["N", 3], "[N,3,H,W]"),
    ],
)
def test_wrong_signature_is_a_clear_error(tmp_path: Path, elem: int, shape: list[object], needle: str) -> None:
    path = tmp_path / "bad.onnx"
    onnx.save(_graph(elem, shape), str(path))
    with pytest.raises(OnnxContractError, match=needle.replace("[", r"\[")):
        read_onnx_metadata(path)


def test_not_an_onnx_file_and_no_contract(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(OnnxContractError, match="not a readable ONNX"):
        read_onnx_metadata(junk)
    plain = tmp_path / "plain.onnx"
    onnx.save(_graph(onnx.TensorProto.FLOAT, ["N", 3, 8, 8]), str(plain))
    assert validate_signature(plain) == (8, 8)
    with pytest.raises(OnnxContractError, match="no 'deepdetect' metadata"):
        read_onnx_metadata(plain)


def test_check_crops_from_several_manifests_of_one_split(tmp_path: Path) -> None:
    from deepdetect.data.manifest import read_manifest
    from deepdetect.export.parity import load_check_crops, video_auc_or_none

    paths = []
    for name in ("a", "b"):
        path = make_crop_manifest(tmp_path / name)
        frame = read_manifest(path)
        frame["split"] = ["test" if i < 4 else "train" for i in range(len(frame))]
        frame["dataset"] = name
        write_manifest(frame, path)
        paths.append(path)
    crops = load_check_crops([str(p) for p in paths], 100, (64, 64), split="test")
    assert len(crops.crops) == 8 and sorted(crops.labels.tolist()) == [0] * 4 + [1] * 4
    assert crops.source.endswith(" split=test") and str(paths[1]) in crops.source
    assert crops.videos is not None and {v.split(":")[0] for v in crops.videos} == {"a", "b"}
    with pytest.raises(ValueError, match="no 'val' rows"):
        load_check_crops([str(p) for p in paths], 100, (64, 64), split="val")
    # Video AUC averages each video's crops: two videos per class, perfectly ranked after averaging.
    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([3.0, -1.0, 0.0, 0.2, 2.0, -2.0])
    assert video_auc_or_none(labels, scores, ["v1", "v1", "v2", "v2", "v3", "v4"]) == 1.0
    assert video_auc_or_none(labels, scores, None) is None
