"""Values of the wrong type on the command line (`trainer.max_epochs=ten`) caught at the config edge.

The shipped YAML files are the schema: a key whose default is an integer, a number or a boolean must stay one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

_EXPECTED = {bool: "true or false", int: "an integer", float: "a number"}


class ConfigTypeError(ValueError):
    """A config value whose type contradicts the shipped default (one line, for the user)."""


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def _fits(default: Any, value: Any) -> bool:
    if value is None or (isinstance(value, str) and value.startswith("${")):
        return True  # null switches a feature off; interpolations resolve later
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def type_errors(cfg: DictConfig, defaults: DictConfig) -> list[str]:
    """`key=value (expected ..., default ...)` for every leaf of `cfg` whose type contradicts `defaults`.

    Only leaves present in both are compared; defaults that are null, strings or interpolations set no type.
    """
    raw_cfg = OmegaConf.to_container(cfg, resolve=False)
    raw_default = OmegaConf.to_container(defaults, resolve=False)
    values = dict(_leaves(raw_cfg))
    out: list[str] = []
    for key, default in _leaves(raw_default):
        if key.startswith("hydra.") or key not in values or type(default) not in _EXPECTED:
            continue
        if not _fits(default, values[key]):
            out.append(f"{key}={values[key]} (expected {_EXPECTED[type(default)]}, default {default})")
    return out


def check_value_types(cfg: DictConfig, config_name: str, choices: Mapping[str, Any]) -> None:
    """Raise `ConfigTypeError` when a value in `cfg` contradicts the type of the same key in `config_name` composed
    with the same group `choices` (e.g. `trainer: cpu`) but none of the value overrides."""
    from deepdetect.utils.config import compose_stage

    groups = [f"{g}={c}" for g, c in choices.items() if c is not None and not str(g).startswith("hydra")]
    errors = type_errors(cfg, compose_stage(config_name, groups))
    if errors:
        raise ConfigTypeError("bad config value: " + "; ".join(errors))
