"""Names in what the Hydra commands log and print reach the terminal (and the job's log file) escaped: ANSI
escapes, control and bidi characters, undecodable bytes (utils/terminal.shown)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.utils.terminal import ShownFilter, escape_log_handlers, shown_lines

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "out\x1b]0;owned\x07\u202eevil"  # a retitling OSC escape, a bell and a bidi override


def test_escape_log_handlers_escapes_every_handler_once() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    logger = logging.getLogger("deepdetect.test_log_escaping")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        escape_log_handlers()
        escape_log_handlers()
        logger.warning("wrote %s (%d crops)", HOSTILE, 3)
        logger.warning("bad format %d", "x")  # a broken call is reported by logging, not raised by the filter
    finally:
        logger.removeHandler(handler)
    assert sum(isinstance(f, ShownFilter) for f in handler.filters) == 1
    first = stream.getvalue().splitlines()[0]
    assert first == "[deepdetect.test_log_escaping] wrote out\\x1b]0;owned\\x07\\u202eevil (3 crops)"


def test_shown_lines_keeps_line_breaks_and_escapes_the_rest() -> None:
    assert shown_lines(f"| a |\n| {HOSTILE} |") == "| a |\n| out\\x1b]0;owned\\x07\\u202eevil |"


@pytest.mark.slow  # a fresh interpreter imports torch and MTCNN: ~8 s of CPU
def test_a_hydra_command_logs_a_hostile_output_dir_escaped(tmp_path: Path) -> None:
    """deepdetect-extract logs and prints its output folder: on the console and in its log file, escaped."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(src / "blank.png")
    out = tmp_path / HOSTILE
    code = "from deepdetect.cli.extract import main; main()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    args = [
        f"input={src}",
        "layout=single",
        "label=real",
        f"output_dir='{out}'",
        "num_workers=0",
        "torch_threads=1",
        "frames_per_video=1",
    ]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-2000:]
    assert "out\\x1b]0;owned\\x07\\u202eevil" in text  # the log line and the printed summary name it, escaped
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    log_text = next(out.glob("*.log")).read_text(encoding="utf-8")
    assert "output in" in log_text and "\x1b" not in log_text and "\u202e" not in log_text
