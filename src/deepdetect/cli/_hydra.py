"""Shared glue for the Hydra entry points: where the configs live and how a task becomes a `main`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def config_dir() -> str:
    """Absolute path of the packaged `configs/` folder."""
    return str((Path(__file__).resolve().parents[1] / "configs").resolve())


def hydra_main(config_name: str, task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """Wrap `task(cfg)` as a Hydra app reading `configs/<config_name>.yaml`; returns the app's `main`."""

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)
    def _main(cfg: DictConfig) -> Any:
        from deepdetect.utils.targets import ForbiddenTargetError, check_targets

        try:
            check_targets(cfg)  # the config edge: nothing is instantiated before this
        except ForbiddenTargetError as exc:
            log.error("%s", exc)
            raise SystemExit(2) from None
        return task(cfg)

    return _main
