"""Kill extraction and training mid-run (SIGKILL), rerun them, and check they resume, leave no half-written file,
and end with the same manifest / metrics / weights as an uninterrupted run.

Every run here is a subprocess started the same way (same interpreter, environment and thread count), so the
killed+resumed run and the uninterrupted one differ only by the kill. The subprocesses install the network guard.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from deepdetect.data.manifest import read_manifest
from deepdetect.models.checkpoint import safe_torch_load
from face_images import face_video_frames, lfw_face, save
from media_corpus import make_video
from tiny_data import make_tiny_manifest

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
PRELUDE = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import netguard; netguard.install()\n"

EXTRACT = PRELUDE + (
    "from deepdetect.data.extract import extract\n"
    "extract({'input': sys.argv[1], 'output_dir': sys.argv[2], 'frames_per_video': 6, 'size': 64, 'seed': 0,\n"
    "         'val_fraction': 0.2, 'test_fraction': 0.2, 'device': 'cpu'})\n"
)
TRAIN = PRELUDE + "from deepdetect.cli.train import main\nsys.argv = ['deepdetect-train', *sys.argv[1:]]\nmain()\n"


def _start(code: str, *args: str, cwd: Path) -> subprocess.Popen[bytes]:
    # One thread each: identical numerics in every run, and no OpenMP oversubscription on a busy machine (which
    # made these runs 10x slower on a loaded 2-core box).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _finish(proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 240) -> None:
    """SIGKILL `proc` as soon as `ready()` holds; fails if the process ended first (the test would prove nothing)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"process ended (rc={proc.returncode}) before the kill point: {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("kill point never reached")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _sorted_rows(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in frame.itertuples(index=False))


def _assert_no_trusted_partial_files(out: Path) -> None:
    """Every part file parses; every crop the manifest names exists, decodes and is not a temp file."""
    for part in (out / "parts").glob("*.json"):
        json.loads(part.read_text())
    manifest = read_manifest(out / "manifest.csv")
    for rel, path in zip(manifest["crop_path"], manifest["abs_crop_path"], strict=True):
        assert not rel.endswith(".tmp") and not Path(rel).name.startswith(".")
        with Image.open(path) as im:
            im.load()


@pytest.mark.timeout(600)
def test_extraction_killed_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for i in range(24):
        save(lfw_face(i), root / ("real" if i % 2 else "fake") / f"img{i:02d}.png")
    for v in range(2):
        make_video(root / "fake" / f"clip{v}.mp4", face_video_frames(50 + v, n=12), fps=10)
    (root / "real" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")

    killed = tmp_path / "killed"
    proc = _start(EXTRACT, str(root), str(killed), cwd=tmp_path)
    _kill_when(proc, lambda: len(list((killed / "parts").glob("*.json"))) >= 4)
    done_before = {p.name for p in (killed / "parts").glob("*.json")}
    assert not (killed / "manifest.csv").exists()  # killed before the merge: nothing half-written was published
    for part in (killed / "parts").glob("*.json"):
        json.loads(part.read_text())  # part files are written atomically: each one that exists is complete
    mtimes = {p.name: p.stat().st_mtime_ns for p in (killed / "parts").glob("*.json")}

    _finish(_start(EXTRACT, str(root), str(killed), cwd=tmp_path))  # rerun: resumes
    assert {p.name: p.stat().st_mtime_ns for p in (killed / "parts").glob("*.json") if p.name in done_before} == mtimes
    _assert_no_trusted_partial_files(killed)

    straight = tmp_path / "straight"
    _finish(_start(EXTRACT, str(root), str(straight), cwd=tmp_path))
    a, b = read_manifest(killed / "manifest.csv"), read_manifest(straight / "manifest.csv")
    a, b = a.drop(columns=["abs_crop_path"]), b.drop(columns=["abs_crop_path"])
    assert len(a) >= 20 and _sorted_rows(a) == _sorted_rows(b)
    fa = pd.read_csv(killed / "failures.csv", dtype=str, keep_default_na=False)
    fb = pd.read_csv(straight / "failures.csv", dtype=str, keep_default_na=False)
    assert _sorted_rows(fa) == _sorted_rows(fb) and len(fa) >= 1


@pytest.mark.timeout(600)
def test_training_killed_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "data", n_videos=96, frames_per_video=4, size=64)
    common = ["debug=fast", "model=test", f"data.manifest={manifest}", "trainer.max_epochs=3", "augment=strong"]

    killed = tmp_path / "killed"
    last = killed / "checkpoints" / "last.pt"
    proc = _start(TRAIN, *common, f"output_dir={killed}", cwd=tmp_path)
    _kill_when(proc, last.is_file)
    assert not (killed / "metrics.json").exists() and not (killed / "model.safetensors").exists()
    state = safe_torch_load(last)  # written atomically: complete, and loadable without unpickling code
    assert state["epoch"] in (0, 1)  # epoch counter of the first finished epoch (0- or 1-based)

    _finish(_start(TRAIN, *common, f"output_dir={killed}", "trainer.resume=auto", cwd=tmp_path))
    straight = tmp_path / "straight"
    _finish(_start(TRAIN, *common, f"output_dir={straight}", cwd=tmp_path))

    a = json.loads((killed / "metrics.json").read_text())
    b = json.loads((straight / "metrics.json").read_text())
    assert a == b and a["epochs_run"] == 3
    wa, wb = load_file(str(killed / "model.safetensors")), load_file(str(straight / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)
    assert not [p for p in killed.rglob("*.tmp")], "a temp file was left behind"
