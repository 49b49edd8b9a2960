"""Shared glue for the Hydra entry points: where the configs live and how a task becomes a `main`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from deepdetect.utils.config import config_dir

log = logging.getLogger(__name__)


def hydra_main(config_name: str, task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """Wrap `task(cfg)` as a Hydra app reading `configs/<config_name>.yaml`; returns the app's `main`."""

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)
    def _main(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        from deepdetect.utils.config_types import ConfigTypeError, check_value_types
        from deepdetect.utils.targets import ForbiddenTargetError, check_targets

        try:
            check_targets(cfg)  # the config edge: nothing is instantiated or written before this
            check_value_types(cfg, config_name, HydraConfig.get().runtime.choices)
        except (ForbiddenTargetError, ConfigTypeError) as exc:
            log.error("%s", exc)
            raise SystemExit(2) from None
        return task(cfg)

    return _main
