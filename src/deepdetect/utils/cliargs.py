"""Numbers on the command line, checked once where they are parsed: an argparse `type=` that refuses what is not a
finite number in its range (NaN, infinities, negatives where a count is meant), so argparse reports one line and
exits 2 before any work."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(kind: type[int] | type[float], lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """An argparse type: `kind(text)`, finite, within [lo, hi] (either end open when None)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
        if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            where = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            raise argparse.ArgumentTypeError(f"{text} is out of range {where}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def count(lo: int = 0, hi: int | None = None) -> Callable[[str], float]:
    """An integer in [lo, hi]."""
    return number(int, lo, hi)


def fraction() -> Callable[[str], float]:
    """A number in [0, 1]."""
    return number(float, 0.0, 1.0)


# The numbers several commands share (hash, index add/match)
HASH_FPS = number(float, 0.001, 240.0)  # video frames hashed per second
DEDUP_BITS = count(-1, 256)  # consecutive frames within this many bits dropped; -1 keeps every frame
PDQ_DISTANCE = count(0, 256)
