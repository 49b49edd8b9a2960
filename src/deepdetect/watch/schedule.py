"""When URLs are checked: due times, backoff for unreachable hosts, per-host concurrency and rate limits, and
the passes of `check --due` and `run --every 15m`.

State lives in the store only. A pass takes the due URLs, claims a window of them at a time (`in_flight_since`),
checks them on worker threads and records each as it finishes (one transaction each), so a killed run has lost
nothing recorded and the next run re-fetches at most the window that was in flight (`Store.release_claims`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from deepdetect.watch.check import Checker, Target
from deepdetect.watch.store import CheckRecord, Store, later, utc_iso

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_BACKOFF_S = 86400.0
BLOCKED_RECHECK_S = 86400.0
HOST_BACKOFF_AFTER = 3  # consecutive unreachable checks of a host before all its URLs wait


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `15m`, `2h`, `1d`; ValueError for anything else or zero."""
    m = _DURATION.match(text.lower())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 15m, 2h, 1d)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def backoff_seconds(every: float, failures: int, cap: float = MAX_BACKOFF_S) -> float:
    """Wait before retrying after `failures` consecutive failures: every x 2^(failures-1), at most `cap`."""
    return min(cap, every * 2 ** max(0, min(failures - 1, 30)))


def next_due(status: str, now: str, every: float, failures: int) -> str:
    """When a URL is due again after a check with this status (`failures` counts this one if it failed)."""
    if status == "unreachable":
        return later(now, backoff_seconds(every, failures))
    if status == "blocked":
        return later(now, max(every, BLOCKED_RECHECK_S))
    return later(now, every)


class HostGate:
    """Per host: at most `per_host` requests at once and at most `rate` request starts per second (0: no limit)."""

    def __init__(self, per_host: int = 4, rate: float = 5.0) -> None:
        if per_host < 1 or rate < 0:
            raise ValueError("per-host concurrency must be >= 1 and the rate >= 0")
        self.per_host, self.rate = per_host, rate
        self._lock = threading.Lock()
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._next: dict[str, float] = {}

    @contextlib.contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one of the host's slots, starting no sooner than its rate allows."""
        with self._lock:
            sem = self._sems.setdefault(host, threading.BoundedSemaphore(self.per_host))
        with sem:
            if self.rate > 0:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, self._next.get(host, now))
                    self._next[host] = start + 1.0 / self.rate
                if start > now:
                    time.sleep(start - now)
            yield


@dataclass(frozen=True)
class PassSettings:
    """One pass: which URLs, how many threads, how often they come due again."""

    due_only: bool = True
    case: str | None = None
    workers: int = 8
    every_s: float = 900.0
    limit: int | None = None


def run_pass(
    store: Store,
    checker: Checker,
    settings: PassSettings,
    stop: threading.Event | None = None,
    on_record: Callable[[CheckRecord], None] | None = None,
) -> Counter[str]:
    """Check the URLs due (or all), recording each as it finishes; returns the count per status."""
    counts: Counter[str] = Counter()
    rows = store.due_urls(utc_iso(), settings.due_only, settings.case, settings.limit)
    window = max(1, settings.workers * 2)
    pending: dict[Future[CheckRecord], dict] = {}
    todo = iter(rows)
    with ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="watch") as pool:

        def refill() -> None:
            batch: list[dict] = []
            while len(pending) + len(batch) < window and not (stop and stop.is_set()):
                row = next(todo, None)
                if row is None:
                    break
                batch.append(row)
            if not batch:
                return
            store.claim([r["id"] for r in batch], utc_iso())
            for row in batch:
                target = Target(
                    row["id"], row["url"], row["host"], row["case_name"],
                    tuple(store.baseline_media(row["baseline_check_id"])),
                )  # fmt: skip
                pending[pool.submit(checker.check, target)] = row

        refill()
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                row = pending.pop(fut)
                rec = fut.result()  # Checker.check never raises
                _finish(store, rec, row, settings.every_s)
                counts[rec.status] += 1
                if on_record is not None:
                    on_record(rec)
            refill()
    return counts


def _finish(store: Store, rec: CheckRecord, row: dict, every: float) -> None:
    failures = int(row.get("failures") or 0) + 1 if rec.status == "unreachable" else 0
    rec.next_due = next_due(rec.status, rec.finished_at, every, failures)
    if rec.status == "unreachable":
        host_failures = store.host_failures(row["host"]) + 1
        if host_failures >= HOST_BACKOFF_AFTER:
            rec.host_backoff_until = later(
                rec.finished_at, backoff_seconds(every, host_failures - HOST_BACKOFF_AFTER + 1)
            )
    store.record_check(rec)


def run_loop(
    store: Store,
    checker: Checker,
    settings: PassSettings,
    stop: threading.Event,
    on_pass: Callable[[Counter[str]], None] | None = None,
) -> int:
    """Pass after pass every `settings.every_s` until `stop` is set; returns the number of passes run."""
    released = store.release_claims()
    if released:
        log.info("%d URLs were in flight when the last run stopped: due again", released)
    passes = 0
    while not stop.is_set():
        started = time.monotonic()
        counts = run_pass(store, checker, settings, stop)
        passes += 1
        if on_pass is not None:
            on_pass(counts)
        stop.wait(max(0.0, settings.every_s - (time.monotonic() - started)))
    return passes
