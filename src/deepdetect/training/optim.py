"""Step-based learning-rate schedules, built late from `_partial_` configs once the step count is known."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler


def _warmup_steps(warmup: float, total_steps: int) -> int:
    """`warmup` < 1 is a fraction of the run, otherwise a step count."""
    return round(warmup * total_steps) if 0 < warmup < 1 else int(warmup)


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup: float = 0.05, min_lr_ratio: float = 0.01
) -> LRScheduler:
    """Linear warm-up from 0 to the base LR, then cosine decay to `min_lr_ratio` x base LR at `total_steps`."""
    warm = _warmup_steps(warmup, total_steps)
    total = max(1, int(total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def constant(optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """No schedule: the base LR throughout (`total_steps` is accepted for a uniform call)."""
    del total_steps
    return LambdaLR(optimizer, lambda step: 1.0)
