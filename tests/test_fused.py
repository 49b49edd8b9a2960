"""Experts fused into one ONNX model: the export, its contract and parity, and predict naming the driving expert."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from deepdetect.contract import ContractValueError, check_contract_values
from deepdetect.contract.onnx import OnnxContractError, read_onnx_metadata
from deepdetect.export.pipeline import ExportUsageError, export
from deepdetect.faces.detect import FaceDetector
from deepdetect.inference.predict import predict_files
from deepdetect.inference.predictor import OnnxBackend, Predictor
from deepdetect.inference.settings import PredictSettings
from deepdetect.triage.summary import certainty
from test_export import export_cfg, make_crop_manifest, make_tiny_checkpoint

WEIGHTS = {"blend": 0.8, "swap": -0.3}
BIAS = 0.25


def write_stacker(path: Path, runs: dict[str, Path], weights: dict[str, float] = WEIGHTS) -> Path:
    """A stacker file as deepdetect-lofo writes it (runs relative to the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "experts": list(weights),
        "weights": weights,
        "bias": BIAS,
        "threshold": 0.6,
        "target_fpr": 0.05,
        "val_video_auc": 0.9,
        "val_videos": {"real": 20, "fake": 30},
        "val_fpr": 0.05,
        "val_tpr": 0.6,
        "roc": [[0.9, 0.0, 0.2], [0.6, 0.05, 0.6], [0.1, 0.5, 1.0]],
        "runs": {name: os.path.relpath(run, path.parent) for name, run in runs.items()},
    }
    path.write_text(json.dumps(data))
    return path


def fusion_cfg(stacker: Path, out: Path) -> object:
    """The export config with `fusion=` instead of a checkpoint."""
    cfg = export_cfg(Path("unused"), out, fusion=str(stacker))
    cfg.checkpoint = None  # type: ignore[attr-defined]
    return cfg


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fused")
    manifest = make_crop_manifest(root / "data")
    runs = {name: make_tiny_checkpoint(root / "runs" / name, manifest=manifest).parent for name in WEIGHTS}
    stacker = write_stacker(root / "scores" / "fusion" / "stacker.json", runs)
    report = export(fusion_cfg(stacker, root / "ex"))
    (root / "report.json").write_text(json.dumps(report, default=str))
    return {"root": root, "onnx": root / "ex" / "model.onnx", "stacker": stacker, **runs}


def test_fused_export_has_both_outputs_a_contract_and_parity(fused: dict[str, Path]) -> None:
    report = json.loads((fused["root"] / "report.json").read_text())
    assert report["parity"]["passed"] and report["parity"]["inputs"].startswith("manifest:")
    assert report["parity"]["max_abs_diff_experts"] <= 1e-4
    proto = onnx.load(str(fused["onnx"]))
    assert [o.name for o in proto.graph.output] == ["logit", "experts"]
    contract = read_onnx_metadata(fused["onnx"])
    assert [e["name"] for e in contract["fusion"]["experts"]] == list(WEIGHTS)
    assert [e["weight"] for e in contract["fusion"]["experts"]] == list(WEIGHTS.values())
    assert contract["calibration"]["temperature"] == 1.0 and contract["calibration"]["threshold"] == 0.6
    assert contract["fusion"]["experts"][0]["temperature"] == 1.5  # the expert's own, from its sidecar


def test_fused_predictor_contributions_sum_to_the_logit(fused: dict[str, Path]) -> None:
    predictor = Predictor.from_path(fused["onnx"])
    assert isinstance(predictor, OnnxBackend) and predictor.experts == tuple(WEIGHTS)
    crops = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((fused["root"] / "data" / "crops").iterdir())]
    logits, parts = predictor.score_crops_with_experts(crops)
    assert parts is not None and parts.shape == (len(crops), 2)
    np.testing.assert_allclose(parts.sum(axis=1) + BIAS, logits, atol=1e-5)
    # each column is that expert's own logit x weight / temperature (the expert alone, scored through PyTorch)
    alone = Predictor.from_path(fused["swap"]).score_crops(crops)
    np.testing.assert_allclose(parts[:, 1], alone * WEIGHTS["swap"] / 1.5, atol=1e-4)


def test_predict_records_name_the_expert_that_drove_the_score(fused: dict[str, Path]) -> None:
    from skimage.data import astronaut

    image = fused["root"] / "astronaut.jpg"
    Image.fromarray(astronaut()).save(image)
    predictor = Predictor.from_path(fused["onnx"])
    rec = next(predict_files([image], predictor, FaceDetector(device="cpu"), PredictSettings(progress=False)))
    assert rec["status"] == "ok" and set(rec["experts"]) == set(WEIGHTS)
    assert rec["driven_by"] == _expected_driver(rec["experts"])
    face = rec["faces"][0]
    fused_logit = sum(face["experts"].values()) + BIAS
    assert face["score"] == pytest.approx(1 / (1 + np.exp(-fused_logit)), abs=1e-3)
    flagged = {**rec, "threshold": 0.0, "label": "fake", "driven_by": "swap"}
    assert certainty(flagged).endswith("; driven by the swap expert")
    assert "driven by" not in certainty({**flagged, "threshold": 1.0, "label": "real"})
    assert "driven by" not in certainty({**flagged, "driven_by": None})


def _expected_driver(experts: dict[str, float]) -> str | None:
    best = max(experts, key=experts.__getitem__)
    return best if experts[best] > 0 else None


def test_driven_by_is_the_largest_positive_share_or_none() -> None:
    from deepdetect.inference.stages.record import record_experts

    faces = [{"score": 0.9}, {"score": 0.8}]
    rec: dict = {}
    record_experts(rec, faces, np.array([[0.5, 2.0], [0.7, -1.0]]), ["blend", "swap"])
    assert rec["experts"] == {"blend": 0.6, "swap": 0.5} and rec["driven_by"] == "blend"
    assert faces[1]["experts"] == {"blend": 0.7, "swap": -1.0}
    record_experts(rec, faces, np.array([[-0.5, -2.0], [-0.1, -1.0]]), ["blend", "swap"])
    assert rec["driven_by"] is None  # nobody argued for fake: the bias made the score
    record_experts(rec, faces, np.array([[-0.5, 4e-5], [-0.1, 2e-5]]), ["blend", "swap"])
    assert rec["experts"]["swap"] == 0.0 and rec["driven_by"] is None  # a share shown as 0.0 drives nothing


def test_experts_with_different_preprocessing_are_refused(tmp_path: Path, fused: dict[str, Path]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes((fused["swap"] / "model.safetensors").read_bytes())
    meta = json.loads((fused["swap"] / "model.json").read_text())
    meta["preprocess"]["mean"] = [0.1, 0.2, 0.3]
    (other / "model.json").write_text(json.dumps(meta))
    stacker = write_stacker(tmp_path / "stacker.json", {"blend": fused["blend"], "swap": other})
    with pytest.raises(ExportUsageError, match="one preprocessing"):
        export(fusion_cfg(stacker, tmp_path / "ex"))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not a stacker file"),
        (json.dumps({"experts": ["a"], "weights": {}}), "not a stacker file"),
        (None, "not found"),
    ],
)
def test_bad_stacker_files_are_one_line_usage_errors(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "stacker.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ExportUsageError, match=needle):
        export(fusion_cfg(path, tmp_path / "ex"))


@pytest.mark.parametrize(
    "fusion",
    [
        {"bias": float("nan"), "experts": [{"name": "a", "weight": 1.0, "temperature": 1.0}]},
        {"bias": 0.0, "experts": []},
        {"bias": 0.0, "experts": [{"name": "\x1b[31m", "weight": 1.0, "temperature": 1.0}]},
        {"bias": 0.0, "experts": [{"name": "a" * 65, "weight": 1.0, "temperature": 1.0}]},
        {"bias": 0.0, "experts": [{"name": "a", "weight": 1.0, "temperature": 0.0}]},
        {"bias": 0.0, "experts": [{"name": "a", "weight": 1.0, "temperature": 1.0}] * 2},
    ],
)
def test_hostile_fusion_sections_are_refused(fusion: dict) -> None:
    contract = {"preprocess": {"input_size": [64, 64], "mean": [0.5] * 3, "std": [0.5] * 3}, "fusion": fusion}
    with pytest.raises(ContractValueError, match="fusion"):
        check_contract_values(contract)


def test_experts_output_without_a_fusion_section_is_refused(tmp_path: Path, fused: dict[str, Path]) -> None:
    proto = onnx.load(str(fused["onnx"]))
    for prop in proto.metadata_props:
        if prop.key == "deepdetect":
            contract = json.loads(prop.value)
            contract.pop("fusion")
            prop.value = json.dumps(contract)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(OnnxContractError, match="no fusion section"):
        read_onnx_metadata(path)


def test_fused_csv_output_carries_the_experts_and_the_driver(tmp_path: Path, fused: dict[str, Path]) -> None:
    import csv

    from skimage.data import astronaut

    from deepdetect.cli.predict import main

    image = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut()).save(image)
    out = tmp_path / "r.csv"
    assert main([str(image), "--model", str(fused["onnx"]), "--output", str(out), "--quiet"]) == 0
    (row,) = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    experts = json.loads(row["experts"])
    assert set(experts) == set(WEIGHTS) and (row["driven_by"] or None) == _expected_driver(experts)


def test_fused_export_folds_the_same_padding_arithmetic(tmp_path: Path) -> None:
    """timm's TF "same" padding exports as Shape/Gather/Ceil arithmetic; folded, ORT fuses the Pad into the Conv
    (1.38x on the two-expert reference). The fused export folds it as a single export does, parity kept."""
    import onnx

    manifest = make_crop_manifest(tmp_path / "data")
    runs = {
        name: make_tiny_checkpoint(tmp_path / "runs" / name, "tf_efficientnet_lite0", manifest=manifest).parent
        for name in WEIGHTS
    }
    stacker = write_stacker(tmp_path / "scores" / "stacker.json", runs)
    ops = {}
    for fold in (False, True):
        cfg = fusion_cfg(stacker, tmp_path / f"ex_{fold}")
        cfg.fold_static_shapes = fold  # type: ignore[attr-defined]
        report = export(cfg)
        assert report["parity"]["passed"]
        ops[fold] = {node.op_type for node in onnx.load(str(tmp_path / f"ex_{fold}" / "model.onnx")).graph.node}
    assert {"Shape", "Ceil"} <= ops[False]  # the arithmetic is there unfolded ...
    assert not {"Shape", "Ceil"} & ops[True]  # ... and gone folded


def test_fused_int8_keeps_each_experts_prefix_and_the_stacker_in_float(tmp_path: Path, fused: dict[str, Path]) -> None:
    """`keep_fp32: [first:N]` is each expert's own float prefix (the experts' nodes interleave in the prepared
    graph), and the stacker's weighted sum never passes through 8 bits."""
    cfg = fusion_cfg(fused["stacker"], tmp_path / "ex")
    cfg.quantize.int8 = True  # type: ignore[attr-defined]
    cfg.quantize.int8_settings = {"keep_fp32": ["first:2"]}  # type: ignore[attr-defined]
    int8 = export(cfg)["variants"]["int8"]
    path = Path(int8["path"])
    assert path == tmp_path / "ex" / "model.int8.onnx" and int8["calibration"]["inputs"].startswith("manifest:")
    assert int8["coverage"]["float_conv"] == 2 * 2  # two float convs in each of the two experts ...
    assert int8["coverage"]["int8_conv"] == 2 * (17 - 2)  # ... and the rest of test_efficientnet's 17 int8
    graph = onnx.load(str(path)).graph
    stacker = {"/Mul", "/ReduceSum", "/Add"}
    produced = {out for node in graph.node if node.name in stacker for out in node.output}
    assert {node.name for node in graph.node} >= stacker
    assert not any(node.op_type == "QuantizeLinear" and set(node.input) & produced for node in graph.node)
    assert read_onnx_metadata(path)["fusion"] == read_onnx_metadata(fused["onnx"])["fusion"]  # the contract too
    crops = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((fused["root"] / "data" / "crops").iterdir())]
    logits, parts = Predictor.from_path(path).score_crops_with_experts(crops)
    assert parts is not None and parts.shape == (len(crops), 2)
    np.testing.assert_allclose(parts.sum(axis=1) + BIAS, logits, atol=1e-5)  # the sum itself is float
    reference, _ = Predictor.from_path(fused["onnx"]).score_crops_with_experts(crops)
    assert 0 < np.max(np.abs(logits - reference)) < 0.5  # int8, close to the fp32 export
