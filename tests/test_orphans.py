"""Issue 12 item 10: worker processes die with their parent, even when the parent is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from face_images import lfw_face, save

POOL = textwrap.dedent(
    """
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from deepdetect.utils.procs import die_with_parent

    def pid(_):
        time.sleep(0.5)
        return os.getpid()

    if __name__ == "__main__":
        with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            print(" ".join(str(p) for p in sorted(set(pool.map(pid, range(4))))), flush=True)
            time.sleep(300)
    """
)

EXTRACT = textwrap.dedent(
    """
    import sys
    from deepdetect.faces.extract import extract
    extract({"input": sys.argv[1], "output_dir": sys.argv[2], "num_workers": 2, "size": 64,
             "frames_per_video": 2})
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.timeout(120)
def test_pool_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    script = tmp_path / "pool.py"  # a file, so that spawned workers can import its task function
    script.write_text(POOL)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert _wait_gone(workers, 10) == []
    finally:
        proc.kill()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.timeout(300)
def test_extraction_workers_die_with_a_killed_driver(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for i in range(40):
        save(lfw_face(i), root / "real" / f"r{i}.png")
    proc = subprocess.Popen([sys.executable, "-c", EXTRACT, str(root), str(tmp_path / "out")])
    try:
        deadline = time.monotonic() + 200
        workers: list[int] = []
        while time.monotonic() < deadline and not list((tmp_path / "out" / "parts").glob("*.json")):
            time.sleep(0.2)
        workers = [p for p in _children(proc.pid) if _alive(p)]
        assert len(workers) >= 2, workers  # the two workers (plus the spawn resource tracker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert _wait_gone(workers, 10) == []
    finally:
        proc.kill()
