"""utils/malloc.py: glibc keeps large freed blocks, so a step that allocates them again faults no pages in."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from deepdetect.utils.malloc import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# 20 steps, each filling and freeing a 64 MB and a 32 MB buffer (above glibc's adaptive mmap threshold, as PyTorch's
# CPU activations are); prints whether the tuning was set and the minor page faults of the steps after the first.
STEPS = """
import resource, sys
import numpy as np
from deepdetect.utils.malloc import keep_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "tune" else False
def step():
    a = np.ones(64 * 2**20, dtype=np.uint8)
    b = np.ones(32 * 2**20, dtype=np.uint8)
    return int(a[::4096].sum() + b[::4096].sum())
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env: str) -> tuple[bool, int]:
    ours = ("MALLOC_", "GLIBC_TUNABLES", "DEEPDETECT_MALLOC")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    tuned, faults = done.stdout.split()
    return tuned == "True", int(faults)


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_large_blocks_are_reused_instead_of_faulted_in_again() -> None:
    tuned, faults_tuned = _faults("tune")
    untuned_flag, faults_default = _faults("default")
    assert tuned and not untuned_flag
    # without the tuning every step maps its buffers afresh and faults them in (about 1k faults a step here, the
    # kernel faulting in more than one page at a time); with it the heap keeps them for the next step
    assert faults_default > 20 * 100
    assert faults_tuned < faults_default / 5


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_user_settings_and_the_opt_out_win() -> None:
    assert _faults("tune", DEEPDETECT_MALLOC_TUNING="0")[0] is False
    assert _faults("tune", MALLOC_MMAP_THRESHOLD_="131072")[0] is False
    assert _faults("tune", GLIBC_TUNABLES="glibc.malloc.trim_threshold=0")[0] is False


def test_off_glibc_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert keep_freed_memory() is False
