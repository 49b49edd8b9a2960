"""What a config may make the program build or do: Hydra instantiates whatever a `_target_` names and acts on its own
`hydra` section (callbacks, logging handlers, launcher, environment), so both are checked where a config enters the
program, against explicit lists: the exact callables each config group may name, and the shape of the `hydra`
section the toolkit ships (see docs/threat-model.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

# The exact callables each config group may name as its `_target_` (every other group names none). Optimizers are
# finished with `params=`, schedulers with `optimizer=` and `total_steps=` (training/setup.py).
GROUP_TARGETS: dict[str, tuple[str, ...]] = {
    "optimizer": (
        "torch.optim.Adam",
        "torch.optim.AdamW",
        "torch.optim.NAdam",
        "torch.optim.RAdam",
        "torch.optim.RMSprop",
        "torch.optim.SGD",
    ),
    "scheduler": (
        "deepdetect.training.optim.constant",
        "deepdetect.training.optim.warmup_cosine",
        "torch.optim.lr_scheduler.OneCycleLR",
    ),
}
# Hydra's own keys a group that names a callable may carry (`_args_`, `_recursive_`, `_convert_` are refused).
INSTANTIATE_KEYS = ("_target_", "_partial_")

# The `hydra` section: Hydra builds its launcher and sweeper from `_target_`, callbacks from `callbacks.*._target_`,
# and logging handlers, formatters and filters through `logging.config.dictConfig` (`class`, `()`, `ext://`).
HYDRA_PLUGINS = {
    "launcher": "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "sweeper": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
}
# The Hydra callbacks the shipped configs name, exactly (name -> target, no arguments): nothing else is built.
HYDRA_CALLBACKS = {"cv_summary": "deepdetect.training.cv.CvSummary"}
HYDRA_DIRS = {"run.dir": "${output_dir}", "sweep.dir": "${output_dir}/multirun", "sweep.subdir": "${hydra.job.num}"}
LOG_HANDLER_CLASSES = ("logging.StreamHandler", "logging.FileHandler", "logging.NullHandler")
LOG_STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
# The log files Hydra's own logging options write: the job's log in its output folder, and hydra_debug's.
LOG_FILES = ("${hydra.runtime.output_dir}/${hydra.job.name}.log", "hydra-${hydra.job.name}.log")
_LOG_KEYS = {
    "": {"version", "formatters", "handlers", "root", "loggers", "disable_existing_loggers", "incremental"},
    "formatters": {"format", "datefmt", "style", "validate"},
    "handlers": {"class", "formatter", "level", "stream", "filename", "mode", "encoding", "delay"},
    "loggers": {"level", "handlers", "propagate"},
}
_JOB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


class ForbiddenTargetError(ValueError):
    """Raised when a config names a callable, or sets a `hydra` option, outside what the toolkit allows."""


def _walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                yield here, value
            yield from _walk(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}[{i}]")


def _allowed_text() -> str:
    return "; ".join(f"{group}: {', '.join(names)}" for group, names in GROUP_TARGETS.items())


def target_allowed(where: str, target: object) -> bool:
    """Whether `where` (a dotted key ending in `_target_`) may name `target`: only `<group>._target_` of a group in
    GROUP_TARGETS, with one of that group's exact names."""
    group, _, rest = where.partition(".")
    return rest == "_target_" and isinstance(target, str) and target in GROUP_TARGETS.get(group, ())


def _refusal(where: str, target: object) -> str:
    group = where.partition(".")[0]
    names = GROUP_TARGETS.get(group)
    if names and where == f"{group}._target_":
        why = f"config group '{group}' may name only {', '.join(names)}"
    elif names:
        why = f"only {group}._target_ may name a callable in config group '{group}' ({', '.join(names)})"
    else:
        why = f"config group '{group}' may name no callable (allowed: {_allowed_text()})"
    return f"refusing {where}={target!r}: {why} (configs must not run other code)"


def _plain(cfg: Any, resolve: bool) -> Any:
    if isinstance(cfg, Mapping) and not isinstance(cfg, DictConfig):
        return {k: _plain(v, resolve) for k, v in cfg.items()}
    if not isinstance(cfg, DictConfig | ListConfig):
        return cfg
    if resolve:
        try:
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        except Exception:  # an interpolation that cannot resolve yet: check the raw text
            pass
    return OmegaConf.to_container(cfg, resolve=False)


def check_targets(cfg: DictConfig | ListConfig | Mapping[str, Any]) -> None:
    """Raise ForbiddenTargetError for the first `_target_` (outside the `hydra` section) that is not one of its
    group's allowed names, or a Hydra instantiation key other than `_target_`/`_partial_` in such a group."""
    plain = _plain(cfg, resolve=True)
    if not isinstance(plain, dict):
        plain = {"": plain}
    plain = {k: v for k, v in plain.items() if k != "hydra"}
    for where, target in _walk(plain, ""):
        if not target_allowed(where, target):
            raise ForbiddenTargetError(_refusal(where, target))
    for group in GROUP_TARGETS:
        node = plain.get(group)
        if isinstance(node, dict):
            extra = [str(k) for k in node if str(k).startswith("_") and k not in INSTANTIATE_KEYS]
            if extra:
                raise ForbiddenTargetError(
                    f"refusing {group}.{extra[0]}: config group '{group}' may carry only {', '.join(INSTANTIATE_KEYS)}"
                )


def _get(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _refuse_hydra(where: str, value: object, why: str) -> ForbiddenTargetError:
    return ForbiddenTargetError(f"refusing hydra.{where}={value!r}: {why} (configs must not run other code)")


def _check_logging(node: Any, where: str) -> None:
    if node is None:
        return
    if not isinstance(node, dict):
        raise _refuse_hydra(where, node, "a logging config must be a mapping")
    for key in node:
        if key not in _LOG_KEYS[""]:
            raise _refuse_hydra(f"{where}.{key}", node[key], f"allowed keys: {', '.join(sorted(_LOG_KEYS['']))}")
    for section in ("formatters", "handlers", "loggers"):
        entries = node.get(section) or {}
        if not isinstance(entries, dict):
            raise _refuse_hydra(f"{where}.{section}", entries, "must be a mapping")
        for name, entry in entries.items():
            here = f"{where}.{section}.{name}"
            if not isinstance(entry, dict):
                raise _refuse_hydra(here, entry, "must be a mapping")
            allowed = _LOG_KEYS[section]
            for key, value in entry.items():
                if key not in allowed:
                    raise _refuse_hydra(f"{here}.{key}", value, f"allowed keys: {', '.join(sorted(allowed))}")
            if section == "handlers":
                _check_handler(entry, here)
    root = node.get("root")
    if root is not None and (not isinstance(root, dict) or set(root) - _LOG_KEYS["loggers"]):
        raise _refuse_hydra(f"{where}.root", root, f"allowed keys: {', '.join(sorted(_LOG_KEYS['loggers']))}")


def _check_handler(entry: dict[str, Any], where: str) -> None:
    cls = entry.get("class")
    if cls is not None and cls not in LOG_HANDLER_CLASSES:  # without a class, logging builds nothing
        raise _refuse_hydra(f"{where}.class", cls, f"a log handler may be only {', '.join(LOG_HANDLER_CLASSES)}")
    if "stream" in entry and entry["stream"] not in LOG_STREAMS:
        raise _refuse_hydra(f"{where}.stream", entry["stream"], f"a log stream may be only {', '.join(LOG_STREAMS)}")
    if cls == "logging.FileHandler" and entry.get("filename") not in LOG_FILES:
        raise _refuse_hydra(f"{where}.filename", entry.get("filename"), f"a log file may be only {LOG_FILES[0]}")


def check_hydra_section(hydra: Mapping[str, Any] | None) -> None:
    """Raise ForbiddenTargetError when the (unresolved) `hydra` section would make Hydra build or write anything
    beyond what the shipped configs do: callbacks, other launchers/sweepers, log handlers other than the console and
    the run's own log file, environment variables, config search paths, or output folders apart from `output_dir`."""
    if not hydra:
        return
    if not isinstance(hydra, Mapping):
        raise _refuse_hydra("", hydra, "the hydra section must be a mapping")
    hydra = dict(hydra)
    for name, entry in dict(hydra.get("callbacks") or {}).items():
        if not (isinstance(entry, Mapping) and dict(entry) == {"_target_": HYDRA_CALLBACKS.get(str(name))}):
            allowed = ", ".join(f"{k}: {v}" for k, v in HYDRA_CALLBACKS.items())
            raise _refuse_hydra(
                f"callbacks.{name}", entry, f"the only Hydra callbacks allowed are the shipped ({allowed})"
            )
    for key, target in HYDRA_PLUGINS.items():
        node = hydra.get(key)
        found = node.get("_target_") if isinstance(node, dict) else node
        if node is not None and found != target:
            raise _refuse_hydra(f"{key}._target_", found, f"the {key} must be Hydra's basic one ({target})")
    env = _get(hydra, "job.env_set") or {}
    changed = {k: v for k, v in env.items() if os.environ.get(str(k)) != v} if isinstance(env, dict) else env
    if changed:  # `env_copy` copies variables already set here: allowed
        raise _refuse_hydra("job.env_set", changed, "a config may not set environment variables")
    if hydra.get("searchpath"):
        raise _refuse_hydra("searchpath", hydra["searchpath"], "use --config-dir for configs kept elsewhere")
    name = _get(hydra, "job.name")
    if name is not None and not (isinstance(name, str) and _JOB_NAME.fullmatch(name)):
        raise _refuse_hydra("job.name", name, "a job name is letters, digits, '_', '.', '-' (it names the log file)")
    subdir = hydra.get("output_subdir")
    if subdir is not None and (
        not isinstance(subdir, str) or subdir.startswith(("/", "\\", "~")) or ".." in re.split(r"[/\\]", subdir)
    ):
        raise _refuse_hydra("output_subdir", subdir, "must be a folder inside the run's output_dir")
    for dotted, expected in HYDRA_DIRS.items():
        value = _get(hydra, dotted)
        if value is not None and value != expected:
            raise _refuse_hydra(dotted, value, f"must stay {expected} (set output_dir instead)")
    for key in ("job_logging", "hydra_logging"):
        _check_logging(hydra.get(key), key)


def check_config(cfg: DictConfig | Mapping[str, Any]) -> None:
    """Both checks on a composed config: every `_target_` (check_targets) and the `hydra` section, unresolved."""
    check_targets(cfg)
    hydra = _plain(cfg.get("hydra"), resolve=False)
    if hydra is not None:
        check_hydra_section(hydra)


def instantiate_group(group: str, node: DictConfig | Mapping[str, Any]) -> Any:
    """Hydra-instantiate config group `group` (e.g. the optimizer's `_partial_` factory) after checking it names one
    of that group's allowed callables; the only place the toolkit instantiates from a config."""
    from hydra.utils import instantiate

    check_targets({group: node})
    plain = _plain(node, resolve=True)
    target = plain.get("_target_") if isinstance(plain, dict) else None
    if not target_allowed(f"{group}._target_", target):
        raise ForbiddenTargetError(_refusal(f"{group}._target_", target))
    return instantiate(node)
