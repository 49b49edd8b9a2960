"""The model card: preprocessing, face-crop contract, calibration and provenance of a trained detector.

Training writes it into the checkpoint sidecar (`model.json`); export writes it into the ONNX metadata; evaluate,
export, predict and the report read it only through :class:`ModelCard`, so every field has one default and one
parser. Sidecars written before a field existed still load (the defaults below apply).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from deepdetect.contract.checks import check_contract_values

SIDECAR_FORMAT = "deepdetect-model/1"
ONNX_FORMAT = "deepdetect-onnx/1"
UNCALIBRATED_RULE = "default 0.5 (uncalibrated)"
EXPERTS_OUTPUT_DOC = {
    "name": "experts",
    "shape": ["N", "E"],
    "meaning": "column e = weight_e * logit_e / temperature_e of expert e (fusion.experts order); "
    "logit = fusion.bias + the row's sum",
}


@dataclass(frozen=True)
class Preprocess:
    """What a consumer must do to an RGB face crop before the model sees it."""

    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    layout: str = "NCHW"
    color: str = "RGB"
    scale: str = "divide by 255, then (x - mean) / std"
    # Crop-level resolution normalisation: every crop is first resampled to resolution x resolution (area
    # averaging when shrinking), then to input_size, so all sources reach the model at one effective resolution.
    resolution: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON sidecars and ONNX metadata."""
        out = asdict(self)
        out["input_size"] = list(self.input_size)
        out["mean"] = list(self.mean)
        out["std"] = list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocess:
        """Inverse of :meth:`to_dict`."""
        return cls(
            input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            interpolation=str(data.get("interpolation", "bilinear")),
            layout=str(data.get("layout", "NCHW")),
            color=str(data.get("color", "RGB")),
            resolution=int(data["resolution"]) if data.get("resolution") else None,
        )


@dataclass(frozen=True)
class FaceCrop:
    """How training crops were cut (detector, margin, size) and which faces were kept (the selection rules)."""

    detector: str = "mtcnn"
    margin: float = 0.3
    size: int | None = None
    keep: str | None = None
    min_face: float | None = None
    min_score: float | None = None
    detector_min_face_size: int | None = None
    frames_per_video: int | None = None
    every_k: int | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The recorded fields (unrecorded ones are left out, as older sidecars have them)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaceCrop:
        """Known keys of a `face_crop` section; unknown ones are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})


@dataclass(frozen=True)
class OperatingPoint:
    """One point of the validation ROC: call a face "fake" when P(fake) >= threshold; its val FPR and TPR there."""

    threshold: float
    fpr: float
    tpr: float

    def to_list(self) -> list[float]:
        """Compact form stored in sidecars and ONNX metadata: [threshold, fpr, tpr]."""
        return [self.threshold, self.fpr, self.tpr]

    @classmethod
    def from_list(cls, values: Sequence[Any]) -> OperatingPoint:
        """Inverse of :meth:`to_list`."""
        return cls(threshold=float(values[0]), fpr=float(values[1]), tpr=float(values[2]))


@dataclass(frozen=True)
class Calibration:
    """prob = sigmoid(logit / temperature); `threshold` on that probability; validation rates at it and the
    validation ROC (`roc`, thinned operating points) when training stored them; other stored keys in `extra`."""

    temperature: float = 1.0
    threshold: float = 0.5
    threshold_rule: str = UNCALIBRATED_RULE
    target_fpr: float | None = None
    val_fpr: float | None = None
    val_tpr: float | None = None
    roc: tuple[OperatingPoint, ...] = ()
    n_val_real: int | None = None  # real / fake validation crops the calibration was fitted on
    n_val_fake: int | None = None
    failed: str | None = None  # why calibration failed (e.g. a temperature fitted at its bound), else None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        """Whether training stored a calibration (else T = 1 and threshold 0.5 apply)."""
        return self.threshold_rule != UNCALIBRATED_RULE

    def point_at_fpr(self, max_fpr: float) -> OperatingPoint | None:
        """The stored point with the largest val TPR whose val FPR <= `max_fpr` (highest threshold on ties);
        None when no curve is stored or no point qualifies."""
        ok = [p for p in self.roc if p.fpr <= max_fpr]
        return max(ok, key=lambda p: (p.tpr, p.threshold)) if ok else None

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: temperature, threshold, threshold_rule, the val rates, `roc` ([[thr, fpr, tpr], ...]) and the
        extras; unrecorded rates and an empty curve are left out, as older sidecars have them."""
        out: dict[str, Any] = {
            "temperature": self.temperature,
            "threshold": self.threshold,
            "threshold_rule": self.threshold_rule,
            "target_fpr": self.target_fpr,
            "val_fpr": self.val_fpr,
            "val_tpr": self.val_tpr,
            "roc": [p.to_list() for p in self.roc] or None,
            "n_val_real": self.n_val_real,
            "n_val_fake": self.n_val_fake,
            "failed": self.failed,
            **self.extra,
        }
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Calibration:
        """A stored calibration block; missing (or null) entries take the uncalibrated defaults."""
        data = {k: v for k, v in (data or {}).items() if v is not None}
        known = {f.name for f in fields(cls)} - {"extra"}

        def opt(key: str) -> float | None:
            return float(data[key]) if key in data else None

        return cls(
            temperature=float(data.get("temperature", 1.0)),
            threshold=float(data.get("threshold", 0.5)),
            threshold_rule=str(data.get("threshold_rule", UNCALIBRATED_RULE)),
            target_fpr=opt("target_fpr"),
            val_fpr=opt("val_fpr"),
            val_tpr=opt("val_tpr"),
            roc=tuple(OperatingPoint.from_list(p) for p in data.get("roc", ())),
            n_val_real=int(data["n_val_real"]) if "n_val_real" in data else None,
            n_val_fake=int(data["n_val_fake"]) if "n_val_fake" in data else None,
            failed=str(data["failed"]) if "failed" in data else None,
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class ModelCard:
    """Everything a consumer needs to use a trained detector correctly, and where it came from."""

    name: str
    version: str
    spec: dict[str, Any]
    preprocess: Preprocess
    face_crop: FaceCrop
    calibration: Calibration = field(default_factory=Calibration)
    output: dict[str, Any] = field(default_factory=lambda: {"type": "logit", "positive_class": "fake"})
    training_data: dict[str, Any] | None = None
    val_metrics: dict[str, Any] | None = None
    code_version: dict[str, Any] | None = None
    init_weights: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = None  # which weights trained (models.tuning): mode, settings, parameter counts
    config: dict[str, Any] | None = None  # the resolved training config (sidecar only; not in ONNX metadata)
    # A fused model (export.fused): {"bias", "experts": [{"name", "weight", "temperature", "model", "version"}]};
    # its graph has a second output, each expert's contribution weight * logit / temperature.
    fusion: dict[str, Any] | None = None

    # -- what consumers act on -------------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Calibration temperature: prob = sigmoid(logit / temperature)."""
        return self.calibration.temperature

    @property
    def threshold(self) -> float:
        """Operating threshold on the calibrated probability."""
        return self.calibration.threshold

    @property
    def crop_size(self) -> int:
        """Side of the square face crop the model was trained on."""
        return int(self.face_crop.size or self.preprocess.input_size[0])

    @property
    def margin(self) -> float:
        """Face-crop margin (fraction of the box's longer side)."""
        return float(self.face_crop.margin)

    @property
    def min_face(self) -> float:
        """Smallest face (box side, px) training saw; smaller faces are never scored (0 when not recorded)."""
        return float(self.face_crop.min_face or 0.0)

    @property
    def min_score(self) -> float:
        """Detection score a face needed to be kept at extraction (0.9 when not recorded)."""
        return 0.9 if self.face_crop.min_score is None else float(self.face_crop.min_score)

    @property
    def frames_per_video(self) -> int:
        """Frames per video the training crops were sampled with (32 when not recorded or 'all')."""
        return int(self.face_crop.frames_per_video or 32)

    @property
    def experts(self) -> tuple[str, ...]:
        """The expert names of a fused model, in the order of its `experts` output; () for a single model."""
        return tuple(str(e["name"]) for e in (self.fusion or {}).get("experts", ()))

    def with_face_crop(self, **changes: Any) -> ModelCard:
        """A copy with some face-crop fields changed."""
        return replace(self, face_crop=replace(self.face_crop, **changes))

    # -- reading ---------------------------------------------------------------------------------------------
    @classmethod
    def from_sidecar(cls, meta: Mapping[str, Any], version: str | None = None) -> ModelCard:
        """The card in a checkpoint sidecar (`model.json`, any schema so far); values checked on load.

        Raises `ContractValueError` for a field of the wrong type or out of range.
        """
        check_contract_values(meta)
        spec = dict(meta["model"])
        pre = Preprocess.from_dict(meta["preprocess"])
        crop = dict(meta.get("face_crop") or {})
        if not crop:
            crop = {"size": pre.input_size[0], "note": "assumed: missing from the checkpoint"}
        return cls(
            name=str(spec.get("name")),
            version=str(version or meta.get("model_version") or "unversioned"),
            spec=spec,
            preprocess=pre,
            face_crop=FaceCrop.from_dict(crop),
            calibration=Calibration.from_dict(meta.get("calibration")),
            output={"type": "logit", "positive_class": "fake", **dict(meta.get("output") or {})},
            training_data=meta.get("training_data"),
            val_metrics=meta.get("val_metrics"),
            code_version=meta.get("code_version"),
            init_weights=meta.get("init_weights"),
            tuning=meta.get("tuning"),
            config=meta.get("config"),
            fusion=meta.get("fusion"),
        )

    @classmethod
    def from_onnx_metadata(cls, contract: Mapping[str, Any]) -> ModelCard:
        """The card in an ONNX file's `deepdetect` metadata entry (see :meth:`to_onnx_metadata`)."""
        check_contract_values(contract)
        model = dict(contract.get("model") or {})
        output = {k: v for k, v in (contract.get("output") or {}).items() if k in ("type", "positive_class")}
        return cls(
            name=str(model.get("name")),
            version=str(model.get("version")),
            spec=dict(model.get("spec") or {"name": model.get("name")}),
            preprocess=Preprocess.from_dict(contract["preprocess"]),
            face_crop=FaceCrop.from_dict(contract.get("face_crop") or {}),
            calibration=Calibration.from_dict(contract.get("calibration")),
            output={"type": "logit", "positive_class": "fake", **output},
            training_data=contract.get("training_data"),
            val_metrics=contract.get("val_metrics"),
            code_version=contract.get("code_version"),
            init_weights=contract.get("init_weights"),
            tuning=contract.get("tuning"),
            fusion=contract.get("fusion"),
        )

    # -- writing ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The whole card as one plain dict (name, version, the sidecar entries, the calibration always)."""
        return {
            "name": self.name,
            "version": self.version,
            **self.to_sidecar(),
            "calibration": {"calibrated": self.calibration.calibrated, **self.calibration.to_dict()},
        }

    def to_sidecar(self) -> dict[str, Any]:
        """The sidecar entries (what `models.checkpoint.save_detector` writes beside the weights)."""
        out: dict[str, Any] = {
            "model": self.spec,
            "preprocess": self.preprocess.to_dict(),
            "face_crop": self.face_crop.to_dict(),
            "output": self.output,
            "init_weights": self.init_weights,
            "tuning": self.tuning,
            "calibration": self.calibration.to_dict() if self.calibration.calibrated else None,
            "training_data": self.training_data,
            "val_metrics": self.val_metrics,
            "code_version": self.code_version,
            "config": self.config,
            "fusion": self.fusion,
        }
        return {k: v for k, v in out.items() if v is not None}

    def to_onnx_metadata(self, opset: int | None = None, input_name: str = "input", output_name: str = "logit") -> dict:
        """The `deepdetect` metadata entry of an exported ONNX model (docs/onnx-contract.md)."""
        h, w = self.preprocess.input_size
        pre = self.preprocess.to_dict()
        return {
            "format": ONNX_FORMAT,
            "model": {"name": self.name, "version": self.version, "spec": self.spec},
            "input": {
                "name": input_name,
                "dtype": "float32",
                "shape": ["N", 3, h, w],
                "layout": pre["layout"],
                "color": pre["color"],
            },
            "preprocess": pre,
            "face_crop": self.face_crop.to_dict(),
            "output": {
                "name": output_name,
                "shape": ["N"],
                "type": "logit",
                "positive_class": "fake",
                "probability": "sigmoid(logit / temperature)",
                **self.output,
            },
            "calibration": self.calibration.to_dict(),
            "training_data": self.training_data,
            "val_metrics": self.val_metrics,
            "code_version": self.code_version,
            "init_weights": self.init_weights,
            "tuning": self.tuning,
            "opset": opset,
            **({"fusion": {**self.fusion, "output": EXPERTS_OUTPUT_DOC}} if self.fusion else {}),
        }
