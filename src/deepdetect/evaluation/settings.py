"""Typed evaluation settings: `EvalSettings.from_config(cfg)` reads the Hydra config once, at the edge; the
evaluation library takes these (each default written here, once) instead of the config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from deepdetect.data.manifest import ManifestError
from deepdetect.utils.config import resolved_config


@dataclass(frozen=True)
class MetricSettings:
    """How scored frames become metrics: video aggregation, bootstrap resampling, the fallback reference FPR."""

    aggregate: str = "mean"
    k: int = 3
    bootstrap_n: int = 1000
    bootstrap_seed: int = 0
    target_fpr: float = 0.05

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MetricSettings:
        """`aggregate.*`, `bootstrap.*` and `target_fpr`."""
        agg, boot = cfg.get("aggregate") or {}, cfg.get("bootstrap") or {}
        return cls(
            aggregate=str(agg.get("method", cls.aggregate)),
            k=int(agg.get("k", cls.k)),
            bootstrap_n=int(boot.get("n", cls.bootstrap_n)),
            bootstrap_seed=int(boot.get("seed", cls.bootstrap_seed)),
            target_fpr=float(cfg.get("target_fpr", cls.target_fpr)),
        )


@dataclass(frozen=True)
class EvalSettings:
    """What `evaluate()` scores, how, and where it writes; `config` is the run config as recorded in metrics.json."""

    output_dir: Path
    checkpoints: tuple[str, ...]
    manifests: tuple[str | tuple[str, ...], ...]  # a tuple entry: several manifests evaluated as one set
    metrics: MetricSettings = field(default_factory=MetricSettings)
    split: str = "test"
    device: str = "cpu"
    batch_size: int = 64
    robustness: tuple[str, ...] = ()
    holdout_source: str | None = None
    sbi_fakes: bool = False
    seed: int = 0
    report: bool = True
    gradcam: int = 4
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any]) -> EvalSettings:
        """Read and check the evaluation config (a model and a manifest are required)."""
        report = cfg.get("report") or {}
        manifests = _manifest_list(cfg)  # checked first: a missing manifest is reported before a missing model
        return cls(
            output_dir=Path(str(cfg["output_dir"])),
            checkpoints=_checkpoint_list(cfg),
            manifests=manifests,
            metrics=MetricSettings.from_config(cfg),
            split=str((cfg.get("data") or {}).get("split", cls.split)),
            device=str(cfg.get("device", cls.device)),
            batch_size=int(cfg.get("batch_size", cls.batch_size)),
            robustness=tuple(str(r) for r in (cfg.get("robustness") or [])),
            holdout_source=str(cfg["holdout_source"]) if cfg.get("holdout_source") else None,
            sbi_fakes=bool(cfg.get("sbi_fakes", False)),
            seed=int(cfg.get("seed", cls.seed)),
            report=bool(report.get("enabled", True)),
            gradcam=int(report.get("gradcam", cls.gradcam)),
            config=_recorded(cfg),
        )


def _manifest_list(cfg: Mapping[str, Any]) -> tuple[str | tuple[str, ...], ...]:
    """data.manifest plus any `manifests: [...]` (cross-dataset)."""
    items: list[str | tuple[str, ...]] = [str(m) for m in (cfg.get("manifests") or [])]
    single = (cfg.get("data") or {}).get("manifest")
    if isinstance(single, ListConfig | list | tuple):  # several manifests evaluated as one combined set
        items.insert(0, tuple(str(m) for m in single))
    elif single and str(single) not in items:
        items.insert(0, str(single))
    if not items:
        raise ManifestError("no manifest given: pass data.manifest=PATH (or manifests=[A,B])")
    return tuple(items)


def _checkpoint_list(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """checkpoint plus any `checkpoints: [...]` (comparison)."""
    items = [str(c) for c in (cfg.get("checkpoints") or [])]
    if cfg.get("checkpoint") and str(cfg["checkpoint"]) not in items:
        items.insert(0, str(cfg["checkpoint"]))
    if not items:
        raise ValueError("no model given: pass checkpoint=RUN_DIR_OR_SAFETENSORS (or checkpoints=[A,B])")
    return tuple(items)


def _recorded(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as metrics.json records it: interpolations resolved as this run saw them, Hydra's node dropped."""
    if isinstance(cfg, DictConfig):
        return resolved_config(cfg)
    return {str(k): v for k, v in dict(cfg).items() if k != "hydra"}
