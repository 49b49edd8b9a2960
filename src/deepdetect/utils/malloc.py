"""glibc malloc settings for PyTorch on the CPU: keep freed memory in the process instead of handing it back.

PyTorch's CPU kernels allocate and free tensors larger than glibc's mmap threshold (which adapts up to 32 MB) on
every step. Each such tensor is then a fresh `mmap` whose pages fault in again on first touch and are unmapped when
it is freed. Training EfficientNet-Lite0 at 224 px, batch 32, on 2 cores: 1.2 million minor page faults and 3 s of
system time per step, 4.1-5.0 s per step in all; with both thresholds raised, 0 faults and 2.1 s per step
(docs/performance.md). Raising them keeps freed blocks in the heap for the next step: the process holds on to the
memory of its largest step, which batch jobs (train, evaluate, extract, the studies) need again anyway.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 2**31 - 1  # mallopt takes an int: the largest it accepts
OPT_OUT = "DEEPDETECT_MALLOC_TUNING"
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (and the workers it forks); True when set.

    Nothing is changed off glibc, with `DEEPDETECT_MALLOC_TUNING=0`, or when the user set glibc's own malloc
    variables (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, `GLIBC_TUNABLES`): theirs win.
    """
    if os.environ.get(OPT_OUT, "1").strip() == "0" or any(k in os.environ for k in USER_SETTINGS):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES) == 1 and mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES) == 1)
