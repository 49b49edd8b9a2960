"""The one device resolver: a device name from a config or command line -> the torch device to run on."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device name that cannot be used here (unknown, or CUDA asked for with none visible)."""


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """`auto` (CUDA when visible, else CPU), `cpu`, `cuda`, `cuda:N`, or another name torch knows -> a device.

    A bare `cuda` takes `local_rank` as its index when given (the process's own GPU under DDP). Raises
    `DeviceError` for an unknown name and for CUDA asked for when no CUDA device is visible, instead of failing
    later inside torch.
    """
    name = str(name).strip()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}; expected cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} needs CUDA but no CUDA device is visible; use cpu (or auto)")
        if device.index is None and local_rank is not None:
            device = torch.device("cuda", local_rank)
    return device
