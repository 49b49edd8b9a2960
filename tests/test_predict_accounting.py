"""Every file accounted for and every stop clean: a record for each input (non-media files in folders are
`skipped`), status counts in the summary, and Ctrl-C / SIGTERM ending a run with its records kept, the header
marked `interrupted`, the `--resume` command printed and exit 130."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.cli.predict import main
from test_export import make_tiny_checkpoint

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("acct") / "run").parent


def _face_image(path: Path, seed: int) -> Path:
    """A small picture holding a face (slower to score than a faceless one: a run lasts a few seconds)."""
    from skimage.data import astronaut

    rng = np.random.default_rng(seed)
    face = astronaut()[0:260, 100:360].astype(np.int16) + rng.integers(-8, 8, (260, 260, 3))
    Image.fromarray(np.clip(face, 0, 255).astype(np.uint8)).resize((160, 160)).save(path)
    return path


def _plain_image(path: Path, seed: int) -> Path:
    """A small faceless picture: decodes fast, gives `no_face`."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_file_in_a_folder_gets_a_record_and_is_counted(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    _plain_image(folder / "a.png", 0)
    _plain_image(folder / "sub" / "b.jpg", 1)
    (folder / "notes.txt").write_text("case notes")
    (folder / "sub" / "table.csv").write_text("a,b\n")
    out = tmp_path / "p.jsonl"
    assert main([str(folder), "--model", str(model), "--output", str(out), "--quiet"]) == 0
    recs = {Path(r["path"]).name: r for r in _records(out)}
    assert set(recs) == {"a.png", "b.jpg", "notes.txt", "table.csv"}  # 4 files in, 4 records out
    for name in ("notes.txt", "table.csv"):
        assert recs[name]["status"] == "skipped" and recs[name]["error"] == "not an image or video"
        assert recs[name]["score"] is None and recs[name]["label"] is None
    stdout = capsys.readouterr().out
    assert "4 files" in stdout and "no_face 2, skipped 2" in stdout
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "readme.txt").write_text("x")
    assert main([str(only_text), "--model", str(model), "--output", str(tmp_path / "q.jsonl")]) == 2  # nothing to score
    assert "1 other file" in capsys.readouterr().err


def _start(folder: Path, model: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "deepdetect.cli.predict", str(folder), "--model", str(model), "--output", str(out),
           "--workers", "0", "--quiet", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=folder.parent,
        preexec_fn=_default_sigint,  # as from a terminal, even when the tests run in a background job
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background shell job starts with Ctrl-C ignored


def _wait_for_records(proc: subprocess.Popen[bytes], out: Path, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.is_file() and out.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no records in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_keeps_its_records_and_says_how_to_resume(
    tmp_path: Path, model: Path, sig: signal.Signals
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    names = {f"{i:03d}.png" for i in range(40)}
    for i, name in enumerate(sorted(names)):
        _face_image(folder / name, i)
    out = tmp_path / "p.jsonl"
    proc = _start(folder, model, out, "--batch-size", "4")  # records every 4 files: the signal lands mid-run
    _wait_for_records(proc, out, 3)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    err = stderr.decode()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    header = json.loads((tmp_path / "p.jsonl.run.json").read_text())
    assert header["status"] == "interrupted" and header["finished_at"]
    kept = _records(out)  # every line written is a complete record
    assert 3 <= len(kept) < len(names) and header["counts"]["scored"] == len(kept)
    resume = next(line for line in err.splitlines() if "--resume" in line).strip()
    args = shlex.split(resume)
    assert args[0] == "deepdetect-predict" and "--resume" in args
    done = subprocess.run(
        [sys.executable, "-m", "deepdetect.cli.predict", *args[1:]],
        capture_output=True, env={**os.environ, "PYTHONPATH": SRC}, cwd=folder.parent, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    recs = _records(out)
    assert sorted(Path(r["path"]).name for r in recs) == sorted(names)  # each file once, none lost
    assert json.loads((tmp_path / "p.jsonl.run.json").read_text())["status"] == "finished"
