"""Value checks for a model contract (checkpoint sidecar or ONNX metadata): types and ranges of every field a
consumer acts on, so a hostile or broken contract fails on load with one line instead of misbehaving later."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SIDE_RANGE = (8, 2048)  # pixels: input_size, resolution, face_crop.size
MARGIN_RANGE = (0.0, 2.0)  # fraction of the face box's longer side
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos")
KEEP_RULES = ("largest", "all")
MAX_ROC_POINTS = 10_000  # a stored validation curve is thinned to ~200 points; more is a broken or hostile file
NAME_MAX_CHARS = 200  # model name and version: copied into every record a run writes
TEXT_MAX_CHARS = 2_000  # other free text a consumer shows (calibration.failed, face_crop.note, ...)
MAX_EXPERTS = 16  # a fused model's experts (each a whole network inside the one graph)
MAX_NAME = 64  # characters of an expert's name (shown in records and the report)


class ContractValueError(ValueError):
    """Raised when a contract field has the wrong type or is out of range."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fail(field: str, rule: str, value: Any) -> ContractValueError:
    return ContractValueError(f"model contract: {field} must be {rule}, got {_show(value)}")


def _side(field: str, value: Any) -> None:
    lo, hi = SIDE_RANGE
    if not (_is_int(value) and lo <= value <= hi):
        raise _fail(field, f"an integer in [{lo}, {hi}]", value)


def _section(contract: Mapping[str, Any], key: str, required: bool) -> Mapping[str, Any]:
    section = contract.get(key)
    if section is None and not required:
        return {}
    if not isinstance(section, Mapping):
        raise _fail(key, "a mapping", section)
    return section


def check_preprocess(pre: Mapping[str, Any]) -> None:
    """input_size (2 ints), mean and std (3 finite floats, std > 0), resolution, interpolation."""
    size = pre.get("input_size")
    if not (isinstance(size, list | tuple) and len(size) == 2):
        raise _fail("preprocess.input_size", "[height, width]", size)
    for v in size:
        _side("preprocess.input_size", v)
    for key in ("mean", "std"):
        values = pre.get(key)
        if not (isinstance(values, list | tuple) and len(values) == 3 and all(_is_number(v) for v in values)):
            raise _fail(f"preprocess.{key}", "3 finite numbers", values)
    if not all(v > 0 for v in pre["std"]):
        raise _fail("preprocess.std", "positive", pre["std"])
    if pre.get("resolution") is not None:
        _side("preprocess.resolution", pre["resolution"])
    interp = pre.get("interpolation", "bilinear")
    if interp not in INTERPOLATIONS:
        raise _fail("preprocess.interpolation", f"one of {INTERPOLATIONS}", interp)


def check_face_crop(crop: Mapping[str, Any]) -> None:
    """size, margin and, when present, the face-selection fields (min_face, min_score, keep, frames_per_video)."""
    if crop.get("size") is not None:
        _side("face_crop.size", crop["size"])
    margin = crop.get("margin", 0.3)
    lo, hi = MARGIN_RANGE
    if not (_is_number(margin) and lo <= margin <= hi):
        raise _fail("face_crop.margin", f"a number in [{lo}, {hi}]", margin)
    for key in ("min_face", "detector_min_face_size"):
        if crop.get(key) is not None and not (_is_number(crop[key]) and 0 <= crop[key] <= SIDE_RANGE[1]):
            raise _fail(f"face_crop.{key}", f"a number in [0, {SIDE_RANGE[1]}] px", crop[key])
    if crop.get("min_score") is not None and not (_is_number(crop["min_score"]) and 0 <= crop["min_score"] <= 1):
        raise _fail("face_crop.min_score", "a number in [0, 1]", crop["min_score"])
    if "keep" in crop and crop["keep"] not in KEEP_RULES:
        raise _fail("face_crop.keep", f"one of {KEEP_RULES}", crop["keep"])
    fpv = crop.get("frames_per_video")
    if fpv is not None and not (_is_int(fpv) and fpv >= 1):
        raise _fail("face_crop.frames_per_video", "an integer >= 1 or null", fpv)


def check_calibration(cal: Mapping[str, Any]) -> None:
    """temperature finite and > 0; threshold, target/val rates and every ROC point in [0, 1]; the val counts
    integers >= 0; `failed` a string (null: default)."""
    temp = cal.get("temperature")
    if temp is not None and not (_is_number(temp) and temp > 0):
        raise _fail("calibration.temperature", "a finite number > 0", temp)
    thr = cal.get("threshold")
    if thr is not None and not (_is_number(thr) and 0.0 <= thr <= 1.0):
        raise _fail("calibration.threshold", "a number in [0, 1]", thr)
    for key in ("target_fpr", "val_fpr", "val_tpr"):
        value = cal.get(key)
        if value is not None and not (_is_number(value) and 0.0 <= value <= 1.0):
            raise _fail(f"calibration.{key}", "a number in [0, 1]", value)
    for key in ("n_val_real", "n_val_fake"):
        value = cal.get(key)
        if value is not None and not (_is_int(value) and value >= 0):
            raise _fail(f"calibration.{key}", "an integer >= 0", value)
    roc = cal.get("roc")
    if roc is not None:
        if not (isinstance(roc, list | tuple) and len(roc) <= MAX_ROC_POINTS):
            raise _fail("calibration.roc", f"a list of at most {MAX_ROC_POINTS} [threshold, fpr, tpr] points", roc)
        for point in roc:
            if not (
                isinstance(point, list | tuple)
                and len(point) == 3
                and all(_is_number(v) and 0.0 <= v <= 1.0 for v in point)
            ):
                raise _fail("calibration.roc", "[threshold, fpr, tpr] points of numbers in [0, 1]", point)


def _text(field: str, value: Any, max_chars: int) -> None:
    if value is not None and not (isinstance(value, str) and len(value) <= max_chars and value.isprintable()):
        raise _fail(field, f"printable text of at most {max_chars} characters", value)


def check_strings(contract: Mapping[str, Any]) -> None:
    """Free strings a consumer copies or shows: bounded in length, printable (no control character, no escape
    sequence): the model's name and version (in both layouts), the face crop's detector and note, the calibration's
    rule and failure."""
    model = _section(contract, "model", required=False)
    _text("model.name", model.get("name"), NAME_MAX_CHARS)
    _text("model.version", model.get("version"), NAME_MAX_CHARS)
    _text("model_version", contract.get("model_version"), NAME_MAX_CHARS)
    crop = _section(contract, "face_crop", required=False)
    for key in ("detector", "note"):
        _text(f"face_crop.{key}", crop.get(key), TEXT_MAX_CHARS)
    cal = _section(contract, "calibration", required=False)
    for key in ("threshold_rule", "failed"):
        _text(f"calibration.{key}", cal.get(key), TEXT_MAX_CHARS)


def _name(field: str, value: Any) -> None:
    if not (isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isascii() and value.isprintable()):
        raise _fail(field, f"printable ASCII text of 1 to {MAX_NAME} characters", value)


def check_fusion(fusion: Mapping[str, Any]) -> None:
    """A fused model's stacker: a finite `bias` and 1 to MAX_EXPERTS experts, each with a unique printable `name`,
    a finite `weight` and a `temperature` > 0 (the fused logit = bias + sum of weight * expert logit / temperature)."""
    if not _is_number(fusion.get("bias")):
        raise _fail("fusion.bias", "a finite number", fusion.get("bias"))
    experts = fusion.get("experts")
    if not (isinstance(experts, list | tuple) and 1 <= len(experts) <= MAX_EXPERTS):
        raise _fail("fusion.experts", f"a list of 1 to {MAX_EXPERTS} experts", experts)
    names = set()
    for expert in experts:
        if not isinstance(expert, Mapping):
            raise _fail("fusion.experts[]", "a mapping", expert)
        _name("fusion.experts[].name", expert.get("name"))
        if expert["name"] in names:
            raise _fail("fusion.experts[].name", "unique", expert["name"])
        names.add(expert["name"])
        if not _is_number(expert.get("weight")):
            raise _fail("fusion.experts[].weight", "a finite number", expert.get("weight"))
        temp: Any = expert.get("temperature")
        if not (_is_number(temp) and temp > 0):
            raise _fail("fusion.experts[].temperature", "a finite number > 0", temp)
        for key in ("model", "version"):
            value = expert.get(key)
            if value is not None and not (isinstance(value, str) and len(value) <= 200):
                raise _fail(f"fusion.experts[].{key}", "text of at most 200 characters", value)


def check_contract_values(contract: Mapping[str, Any]) -> None:
    """Check a contract's preprocess, face_crop, calibration and (fused models) fusion sections and its free
    strings; raises ContractValueError.

    Used by both loading paths: ONNX metadata (`contract.onnx.validate_contract`) and checkpoint sidecars
    (`inference.predictor.TorchBackend`). face_crop and calibration may be absent (defaults apply).
    """
    if not isinstance(contract, Mapping):
        raise _fail("contract", "a mapping", contract)
    check_preprocess(_section(contract, "preprocess", required=True))
    check_face_crop(_section(contract, "face_crop", required=False))
    check_calibration(_section(contract, "calibration", required=False))
    if contract.get("fusion") is not None:
        check_fusion(_section(contract, "fusion", required=True))
    check_strings(contract)
