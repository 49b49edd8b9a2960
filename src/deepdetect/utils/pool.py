"""An ordered map over a small thread pool that never runs more than a few items ahead of its consumer."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_prefetch(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int) -> Iterator[R]:
    """`fn(item)` for each item, yielded in input order, computed by `workers` threads with at most `ahead` items
    submitted and not yet consumed (bounded memory); `workers` 0 runs `fn` in the calling thread, one at a time.

    `fn` should not raise: an exception is re-raised here, at that item's turn. Closing the iterator early cancels
    the items not yet started.
    """
    if workers <= 0:
        for item in items:
            yield fn(item)
        return
    pending: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch")
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= max(1, ahead):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
