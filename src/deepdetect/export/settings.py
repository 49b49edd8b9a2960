"""Typed export settings: `ExportSettings.from_config(cfg)` reads the Hydra config once, at the edge; `run_export`
takes these (each default written here, once) instead of the config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from deepdetect.export.onnx_export import DEFAULT_OPSET
from deepdetect.export.quantize import Int8Settings


class ExportError(RuntimeError):
    """Raised when an export cannot be made or fails its parity check."""


class ExportUsageError(ExportError):
    """Raised for a missing or wrong argument (exit status 2 on the command line)."""


def _manifests(value: Any) -> str | list[str] | None:
    """A manifest path or a list of them, as plain Python (the parity/calibration loaders take either)."""
    if value in (None, ""):
        return None
    if isinstance(value, str | Path):
        return str(value)
    return [str(v) for v in value]


@dataclass(frozen=True)
class ParitySettings:
    """Crops ONNX Runtime and PyTorch are compared on, and the allowed probability difference."""

    manifest: str | list[str] | None = None  # None: the training manifest, else synthetic crops
    split: str | None = None
    n: int = 16
    atol: float = 1e-4

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> ParitySettings:
        """`parity.*`."""
        cfg = cfg or {}
        return cls(
            manifest=_manifests(cfg.get("manifest")),
            split=cfg.get("split"),
            n=int(cfg.get("n", cls.n)),
            atol=float(cfg.get("atol", cls.atol)),
        )


@dataclass(frozen=True)
class QuantizeSettings:
    """Optional INT8 (calibrated on real crops) and fp16 variants."""

    int8: bool = False
    int8_settings: Int8Settings = field(default_factory=Int8Settings)
    fp16: bool = False
    calibration_manifest: str | list[str] | None = None  # None: the training manifest, else the parity inputs
    calibration_n: int = 64
    calibration_split: str | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> QuantizeSettings:
        """`quantize.*`."""
        cfg = cfg or {}
        return cls(
            int8=bool(cfg.get("int8", False)),
            int8_settings=Int8Settings.from_config(cfg.get("int8_settings")),
            fp16=bool(cfg.get("fp16", False)),
            calibration_manifest=_manifests(cfg.get("calibration_manifest")),
            calibration_n=int(cfg.get("calibration_n", cls.calibration_n)),
            calibration_split=cfg.get("calibration_split"),
        )


@dataclass(frozen=True)
class ExportSettings:
    """What to export, where, and how it is checked; `config` is the run config as export.json records it."""

    checkpoint: str
    output_dir: Path
    opset: int = DEFAULT_OPSET
    dynamic_batch: bool = True
    fold_static_shapes: bool = True
    model_version: str | None = None  # None: the weights' hash
    parity: ParitySettings = field(default_factory=ParitySettings)
    quantize: QuantizeSettings = field(default_factory=QuantizeSettings)
    config: dict[str, Any] | None = None
    fusion: str | None = None  # a stacker.json: export its experts and stacker as one model (checkpoint unused)

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any]) -> ExportSettings:
        """Read and check the export config (a checkpoint, or a fusion stacker, is required)."""
        if not cfg.get("checkpoint") and not cfg.get("fusion"):
            raise ExportUsageError(
                "checkpoint is required: deepdetect-export checkpoint=RUN_DIR|FILE.safetensors output_dir=EX "
                "(or fusion=STACKER.json for experts fused into one model)"
            )
        if cfg.get("checkpoint") and cfg.get("fusion"):
            raise ExportUsageError("give checkpoint= or fusion=, not both")
        recorded = None
        if isinstance(cfg, DictConfig):
            plain = OmegaConf.to_container(cfg, resolve=False)
            recorded = {str(k): v for k, v in plain.items() if k != "hydra"} if isinstance(plain, dict) else None
        return cls(
            checkpoint=str(cfg.get("checkpoint") or ""),
            output_dir=Path(str(cfg["output_dir"])),
            opset=int(cfg.get("opset") or DEFAULT_OPSET),
            dynamic_batch=bool(cfg.get("dynamic_batch", True)),
            fold_static_shapes=bool(cfg.get("fold_static_shapes", True)),
            model_version=str(cfg["model_version"]) if cfg.get("model_version") else None,
            parity=ParitySettings.from_config(cfg.get("parity")),
            quantize=QuantizeSettings.from_config(cfg.get("quantize")),
            config=recorded,
            fusion=str(cfg["fusion"]) if cfg.get("fusion") else None,
        )

    def int8_calibration(self, trained_on: Any) -> Any:
        """The manifest(s) an INT8 variant is calibrated on: `quantize.calibration_manifest`, else the crops the model
        was trained on (`trained_on`, when known), else the parity inputs; calibrating on the training crops keeps
        them apart from the crops the AUC change is measured on."""
        return self.quantize.calibration_manifest or trained_on or self.parity.manifest
