"""Shared glue for the Hydra entry points: where the configs live and how a task becomes a `main`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from deepdetect.utils.config import config_dir, vet_command_line
from deepdetect.utils.config_types import ConfigTypeError, check_value_types
from deepdetect.utils.malloc import keep_freed_memory
from deepdetect.utils.targets import ForbiddenTargetError, check_config
from deepdetect.utils.terminal import escape_log_handlers, shown

log = logging.getLogger(__name__)


def hydra_main(config_name: str, task: Callable[[DictConfig], Any]) -> Callable[..., Any]:
    """Wrap `task(cfg)` as a Hydra app reading `configs/<config_name>.yaml`; returns the app's `main`, which checks
    the command line's config (utils.targets) before Hydra acts on any of it."""

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)
    def _main(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        escape_log_handlers()  # Hydra has set up its console and log-file handlers: every logged name is escaped
        try:
            check_config(cfg)  # again on the config Hydra composed: nothing is instantiated before this
            check_value_types(cfg, config_name, HydraConfig.get().runtime.choices)
        except (ForbiddenTargetError, ConfigTypeError) as exc:
            log.error("%s", shown(exc))
            raise SystemExit(2) from None
        keep_freed_memory()  # PyTorch's large CPU tensors: no fresh mmap (and page faults) on every step
        return task(cfg)

    def main(cfg_passthrough: DictConfig | None = None) -> Any:
        if cfg_passthrough is None:
            try:
                vet_command_line(config_name, sys.argv[1:])
            except ForbiddenTargetError as exc:
                sys.stderr.write(f"deepdetect-{config_name}: error: {shown(exc)}\n")
                raise SystemExit(2) from None
        return _main(cfg_passthrough)

    return main
