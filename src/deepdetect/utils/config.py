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
    from deepdetect.utils.targets import check_config

    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name=name, overrides=list(overrides))
    else:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name=name, overrides=list(overrides))
    check_config(cfg)  # stages composed in code pass the same checks as the command line
    return cfg


def vet_command_line(config_name: str, argv: Sequence[str]) -> None:
    """Compose the config(s) a Hydra command line would run (every job of a `--multirun`) and check them
    (`utils.targets.check_config`) before Hydra builds callbacks, log handlers or launchers from them; raises
    ForbiddenTargetError. A command line Hydra cannot compose is left to Hydra, which fails before acting on it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import create_config_search_path, get_args_parser
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from deepdetect.utils.targets import ForbiddenTargetError, check_config

    args = get_args_parser().parse_args(list(argv))  # a bad flag exits 2 here, as it would in Hydra
    if args.experimental_rerun is not None:
        raise ForbiddenTargetError("refusing --experimental-rerun: it unpickles a file (configs must not run code)")
    if args.config_path is not None:
        raise ForbiddenTargetError("refusing --config-path: use --config-dir for configs kept elsewhere")
    overrides = [str(o) for o in args.overrides]
    for text in overrides:  # the search path is acted on while composing: checked on the text first
        if text.split("=", 1)[0].lstrip("+~").startswith(("hydra.searchpath", "hydra/searchpath")):
            raise ForbiddenTargetError(f"refusing {text!r}: use --config-dir for configs kept elsewhere")
    search_path = create_config_search_path(config_dir())
    if args.config_dir is not None:
        search_path.prepend("command-line", f"file://{Path(args.config_dir).resolve()}", SearchPathQuery("schema"))
    loader = ConfigLoaderImpl(config_search_path=search_path)
    name = args.config_name or config_name
    try:
        master = loader.load_configuration(name, overrides, RunMode.MULTIRUN, validate_sweep_overrides=False)
        multirun = bool(args.multirun) or master.hydra.mode == RunMode.MULTIRUN
        if not multirun:
            check_config(loader.load_configuration(name, overrides, RunMode.RUN))
            return
        master = loader.load_configuration(name, overrides, RunMode.MULTIRUN)
    except ForbiddenTargetError:
        raise
    except Exception:  # Hydra composes the same command line and reports the error itself
        return
    check_config(master)
    params = master.hydra.sweeper.get("params") or {}
    sweep = [f"{k}={v}" for k, v in params.items()] + list(master.hydra.overrides.task)
    hydra_overrides = list(master.hydra.overrides.hydra)
    for batch in BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(sweep), None):
        for job in batch:
            try:
                cfg = loader.load_configuration(name, hydra_overrides + list(job), RunMode.RUN)
            except Exception:  # this job fails the same way in Hydra, before it acts
                continue
            check_config(cfg)


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
