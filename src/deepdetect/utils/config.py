"""Compose a stage's Hydra config from code (the demo and leave-one-source-out chain stages this way)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def config_dir() -> str:
    """Absolute path of the packaged `configs/` folder."""
    return str((Path(__file__).resolve().parents[1] / "configs").resolve())


def compose_stage(name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose `configs/<name>.yaml` with overrides, inside or outside a running Hydra app."""
    from deepdetect.utils.targets import check_targets

    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name=name, overrides=list(overrides))
    else:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name=name, overrides=list(overrides))
    check_targets(cfg)  # stages composed in code pass the same `_target_` allow-list as the command line
    return cfg


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain containers with interpolations resolved (`${oc.env:...}`, `${now:...}` as this run saw
    them), without Hydra's own node; a top-level entry that cannot be resolved here is kept as written."""
    out: dict[str, Any] = {}
    for key in cfg:
        if key == "hydra":
            continue
        try:
            node = cfg[key]
            out[str(key)] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        except OmegaConfBaseException:
            raw = OmegaConf.to_container(cfg, resolve=False)
            out[str(key)] = raw[key] if isinstance(raw, dict) else None
    return out
