"""Worker processes that die with their parent: a killed driver leaves no orphan holding memory or a GPU."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, poll_s: float) -> None:
    while True:
        time.sleep(poll_s)
        if os.getppid() != parent_pid:  # reparented: the parent is gone
            os._exit(1)


def die_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Call first thing in a child process: it exits as soon as `parent_pid` dies, even by `kill -9`.

    Linux: PR_SET_PDEATHSIG(SIGKILL) via prctl. Everywhere (and as a fallback): a daemon thread polling the parent
    pid every `poll_s` seconds.
    """
    _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, poll_s), name="parent-watchdog", daemon=True).start()


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Inside, SIGTERM stops the program the way Ctrl-C does (KeyboardInterrupt, its message the signal's name);
    outside, the earlier handler is back. Only the main thread can set handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
