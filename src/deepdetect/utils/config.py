"""Compose a stage's Hydra config from code (the demo and leave-one-source-out chain stages this way)."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig


def compose_stage(name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose `configs/<name>.yaml` with overrides, inside or outside a running Hydra app."""
    from deepdetect.cli._hydra import config_dir
    from deepdetect.utils.targets import check_targets

    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name=name, overrides=list(overrides))
    else:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name=name, overrides=list(overrides))
    check_targets(cfg)  # stages composed in code pass the same `_target_` allow-list as the command line
    return cfg
