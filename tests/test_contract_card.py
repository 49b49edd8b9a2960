"""The model card: one typed contract read from sidecars (old and new) and ONNX metadata, written back unchanged."""

from __future__ import annotations

import pytest

from deepdetect.contract import ContractValueError, FaceCrop, ModelCard, OperatingPoint
from deepdetect.contract.card import UNCALIBRATED_RULE

# A sidecar as the first release wrote it (deepdetect-model/1, before face selection and init_weights existed).
V1_SIDECAR = {
    "format": "deepdetect-model/1",
    "model": {"name": "test_efficientnet", "head": "linear", "drop_rate": 0.0, "img_size": 64},
    "preprocess": {
        "input_size": [64, 64],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bicubic",
        "layout": "NCHW",
        "color": "RGB",
        "scale": "divide by 255, then (x - mean) / std",
        "resolution": None,
    },
    "face_crop": {"detector": "mtcnn", "margin": 0.3, "size": 96},
    "output": {"type": "logit", "positive_class": "fake"},
    "training_data": {"manifest": "crops/manifest.csv", "sbi": "off"},
    "code_version": {"deepdetect": "0.1.0"},
    "calibration": {
        "temperature": 1.7,
        "threshold": 0.42,
        "threshold_rule": "fpr",
        "target_fpr": 0.05,
        "val_fpr": 0.05,
        "val_tpr": 0.8,
    },
    "val_metrics": {"video_auc": 0.9},
}


def test_v1_sidecar_loads_with_defaults_for_new_fields() -> None:
    card = ModelCard.from_sidecar(V1_SIDECAR, "abc123")
    assert (card.name, card.version) == ("test_efficientnet", "abc123")
    assert card.preprocess.input_size == (64, 64) and card.preprocess.interpolation == "bicubic"
    assert (card.temperature, card.threshold, card.calibration.calibrated) == (1.7, 0.42, True)
    cal = card.calibration
    assert (cal.target_fpr, cal.val_fpr, cal.val_tpr, cal.extra) == (0.05, 0.05, 0.8, {})
    assert cal.roc == () and cal.point_at_fpr(0.01) is None  # written before operating points were stored
    assert (card.crop_size, card.margin) == (96, 0.3)
    assert (card.min_face, card.min_score, card.frames_per_video) == (0.0, 0.9, 32)  # not recorded: defaults
    assert card.init_weights is None


def test_sidecar_round_trip_and_onnx_round_trip() -> None:
    card = ModelCard.from_sidecar(V1_SIDECAR, "v")
    again = ModelCard.from_sidecar(card.to_sidecar(), "v")
    assert again == card
    onnx_meta = card.to_onnx_metadata(opset=18)
    assert onnx_meta["format"] == "deepdetect-onnx/1" and onnx_meta["input"]["shape"] == ["N", 3, 64, 64]
    assert onnx_meta["calibration"]["val_tpr"] == 0.8 and onnx_meta["face_crop"] == V1_SIDECAR["face_crop"]
    assert ModelCard.from_onnx_metadata(onnx_meta) == card


def test_missing_sections_take_documented_defaults() -> None:
    meta = {k: V1_SIDECAR[k] for k in ("model", "preprocess")}
    card = ModelCard.from_sidecar(meta)
    assert card.calibration.threshold_rule == UNCALIBRATED_RULE and not card.calibration.calibrated
    assert (card.temperature, card.threshold) == (1.0, 0.5)
    assert card.face_crop == FaceCrop(size=64, note="assumed: missing from the checkpoint")
    assert "calibration" not in card.to_sidecar()  # an uncalibrated card never pretends to be calibrated


def test_face_selection_fields_and_copy() -> None:
    meta = {**V1_SIDECAR, "face_crop": {**V1_SIDECAR["face_crop"], "min_face": 40.0, "frames_per_video": 64}}
    card = ModelCard.from_sidecar(meta)
    assert (card.min_face, card.frames_per_video) == (40.0, 64)
    assert card.with_face_crop(min_face=10).min_face == 10 and card.min_face == 40.0


@pytest.mark.parametrize(
    ("section", "key", "value"), [("calibration", "threshold", "abc"), ("face_crop", "margin", -5)]
)
def test_bad_values_are_refused(section: str, key: str, value: object) -> None:
    meta = {**V1_SIDECAR, section: {**V1_SIDECAR[section], key: value}}  # type: ignore[dict-item]
    with pytest.raises(ContractValueError, match=f"{section}.{key}"):
        ModelCard.from_sidecar(meta)


ROC = [[0.9, 0.0, 0.2], [0.6, 0.004, 0.5], [0.45, 0.01, 0.7], [0.3, 0.05, 0.9], [0.1, 0.5, 1.0]]


def test_operating_points_round_trip_sidecar_and_onnx_and_pick_by_fpr() -> None:
    meta = {**V1_SIDECAR, "calibration": {**V1_SIDECAR["calibration"], "roc": ROC}}  # type: ignore[dict-item]
    card = ModelCard.from_sidecar(meta, "v")
    assert card.calibration.roc[2] == OperatingPoint(threshold=0.45, fpr=0.01, tpr=0.7)
    assert card.calibration.to_dict()["roc"] == ROC
    assert ModelCard.from_sidecar(card.to_sidecar(), "v") == card
    assert ModelCard.from_onnx_metadata(card.to_onnx_metadata(opset=18)) == card
    cal = card.calibration
    assert cal.point_at_fpr(0.01) == OperatingPoint(0.45, 0.01, 0.7)  # largest TPR with FPR <= 0.01
    assert cal.point_at_fpr(0.009) == OperatingPoint(0.6, 0.004, 0.5)
    assert cal.point_at_fpr(0.0) == OperatingPoint(0.9, 0.0, 0.2)
    assert cal.point_at_fpr(1.0) == OperatingPoint(0.1, 0.5, 1.0)
    whole = card.to_dict()
    assert (whole["name"], whole["version"], whole["calibration"]["calibrated"]) == ("test_efficientnet", "v", True)


@pytest.mark.parametrize("roc", [[[0.5, 1.5, 0.2]], [[0.5, 0.1]], "abc", [[0.5, float("nan"), 0.2]]])
def test_bad_operating_points_are_refused(roc: object) -> None:
    meta = {**V1_SIDECAR, "calibration": {**V1_SIDECAR["calibration"], "roc": roc}}  # type: ignore[dict-item]
    with pytest.raises(ContractValueError, match=r"calibration\.roc"):
        ModelCard.from_sidecar(meta)
