"""scripts/gpu_figures.py: where there is no CUDA device it says so, writes nothing and exits 0; the dry run on
the CPU writes the three JSON files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_figures.py"


def _run(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a machine that has one
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path: Path) -> None:
    done = _run("--out", str(tmp_path / "results"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no GPU:") and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_dry_run_on_cpu_writes_the_three_files(tmp_path: Path) -> None:
    done = _run("--out", str(tmp_path), "--dry-run-on-cpu", timeout=1800)
    assert done.returncode == 0, done.stderr
    topics = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("gpu_*.json")}
    assert sorted(topics) == ["gpu_ort.json", "gpu_predict.json", "gpu_train.json"]
    assert topics["gpu_train.json"]["figures"]["raw_step_images_per_s"] > 0
    assert topics["gpu_ort.json"]["figures"]["ort_seconds_per_batch"] > 0
    assert topics["gpu_predict.json"]["machine"]["device"] == "cpu"
