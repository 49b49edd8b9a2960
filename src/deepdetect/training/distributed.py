"""DDP helpers: process-group setup from torchrun's environment, rank queries, gathering Python objects."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the only rank that logs and writes files)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def init_distributed(strategy: str, accelerator: str) -> DistInfo:
    """Join the process group described by torchrun's env vars (nccl on CUDA, gloo on CPU) when `strategy=ddp`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if strategy != "ddp" or world <= 1:
        if strategy == "ddp":
            log.warning("trainer.strategy=ddp but WORLD_SIZE<=1: running a single process (launch with torchrun)")
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if accelerator == "cuda" else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world)


def cleanup_distributed(info: DistInfo) -> None:
    """Leave the process group if we joined one."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj`, in rank order (just `[obj]` without DDP)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
