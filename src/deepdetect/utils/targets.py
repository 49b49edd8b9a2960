"""`_target_` allow-list: Hydra instantiates whatever a `_target_` names, so configs (and overrides pasted from
elsewhere) may only name the toolkit's own factories, checked once where a config enters the program."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

ALLOWED_TARGET_PREFIXES = (
    "torch.optim.",  # optimizers, and torch.optim.lr_scheduler.*
    "albumentations.",
    "deepdetect.",
    "timm.",
)


class ForbiddenTargetError(ValueError):
    """Raised when a config names a `_target_` outside the allow-list."""


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


def _resolved_module(target: str) -> str | None:
    """Where the object `target` names is defined, or None when it cannot be located."""
    from hydra._internal.utils import _locate

    if target.startswith("albumentations."):
        from deepdetect.utils.offline import import_albumentations

        import_albumentations()  # imported the offline way before `_locate` imports it
    try:
        obj = _locate(target)
    except Exception:
        return None
    return getattr(obj, "__module__", None) or getattr(obj, "__name__", None)


def target_allowed(target: object) -> bool:
    """Whether a `_target_` value names something under an allowed package, by its path and by where the object it
    resolves to is defined (so `deepdetect.x.torch.load`, a re-exported `torch.load`, is refused)."""
    if not isinstance(target, str) or any(part.startswith("_") for part in target.split(".")):
        return False
    if not target.startswith(ALLOWED_TARGET_PREFIXES):
        return False
    module = _resolved_module(target)
    return module is None or f"{module}.".startswith(ALLOWED_TARGET_PREFIXES)


def check_targets(cfg: DictConfig | ListConfig | dict[str, Any]) -> None:
    """Raise ForbiddenTargetError naming the first `_target_` outside the allow-list (Hydra's own node skipped)."""
    if isinstance(cfg, DictConfig | ListConfig):
        try:
            plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        except Exception:  # an interpolation that cannot resolve yet: check the raw text
            plain = OmegaConf.to_container(cfg, resolve=False)
    else:
        plain = cfg
    if isinstance(plain, dict):
        plain = {k: v for k, v in plain.items() if k != "hydra"}
    for where, target in _walk(plain, ""):
        if not target_allowed(target):
            allowed = ", ".join(p + "*" for p in ALLOWED_TARGET_PREFIXES)
            raise ForbiddenTargetError(
                f"refusing {where}={target!r}: _target_ may only name {allowed} (configs must not run other code)"
            )
