"""The argparse commands' shared error handling (cli/_argparse): bad input is one escaped line and exit 2, a write
that fails mid-run (disk full) is one line and exit 1 with the records before it kept (utils/jsonlines)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.cli._argparse import CommandError, run_command
from deepdetect.utils.jsonlines import JsonLinesWriter, OutputWriteError

HOSTILE = "x\x1b[31mred\u202e"  # an ANSI colour and a bidi override in a file name


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "\x1b" not in err and "\u202e" not in err, "names reach the terminal escaped"
    return lines[0]


def test_run_command_maps_errors_to_one_line_and_a_status(capsys: pytest.CaptureFixture[str]) -> None:
    def fails(exc: Exception) -> int:
        raise exc

    assert run_command("tool", lambda: 0) == 0
    assert run_command("tool", lambda: fails(CommandError(f"bad {HOSTILE}"))) == 2
    assert _one_line(capsys.readouterr().err).startswith("tool: error: bad x\\x1b[31mred\\u202e")
    assert run_command("tool", lambda: fails(KeyError("k")), (KeyError,)) == 2
    assert "tool: error: 'k'" in _one_line(capsys.readouterr().err)
    full = OutputWriteError("o.jsonl", OSError(errno.ENOSPC, "No space left on device"), kept=3)
    assert run_command("tool", lambda: fails(full)) == 1
    assert "disk full while writing o.jsonl" in _one_line(capsys.readouterr().err)
    with pytest.raises(ZeroDivisionError):  # anything else is a bug, and shows as one
        run_command("tool", lambda: fails(ZeroDivisionError()), (KeyError,))


@pytest.mark.parametrize(
    ("module", "argv", "expected"),
    [
        ("index", ["remove", "{tmp}/k.db"], "deepdetect-index remove: error: give --ref and/or --label"),
        ("sbi_preview", ["{tmp}/m.csv", "-n", "99"], "deepdetect-sbi-preview: error: -n must be between 1 and 64"),
        ("report_triage", ["{tmp}/" + HOSTILE + ".jsonl"], "deepdetect-report: error: records file not found"),
        ("watch", ["report", "--store", "{tmp}/no/such/dir/s.db", "--format", "csv", "-o", "{tmp}/r.csv"], "error:"),
        ("hash", ["{tmp}/a.png", "--output", "{tmp}/a.png"], "deepdetect-hash: error: --output"),
    ],
)
def test_each_command_reports_bad_input_in_one_line(
    module: str, argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    main = importlib.import_module(f"deepdetect.cli.{module}").main
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert expected in _one_line(capsys.readouterr().err)


def _images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"i{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _full_after(monkeypatch: pytest.MonkeyPatch, n_records: int) -> None:
    """The disk fills up after `n_records` JSON lines: the next write raises ENOSPC, as a full file system does."""
    real_write, seen = os.write, []

    def write(fd: int, data: bytes) -> int:
        if data.startswith(b'{"'):
            seen.append(data)
            if len(seen) > n_records:
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR))  # nothing of it lands
                real_write(fd, data[:5])  # ... or a few bytes of it did
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_writer_cuts_a_failed_record_and_keeps_the_ones_before(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "o.jsonl"
    _full_after(monkeypatch, 2)
    with JsonLinesWriter(out) as writer, pytest.raises(OutputWriteError, match=r"disk full.*2 records before it kept"):
        for i in range(4):
            writer.write({"path": f"f{i}", "name": HOSTILE})
    monkeypatch.undo()
    assert [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").split("\n")[:-1]] == ["f0", "f1"]
    assert out.read_bytes().endswith(b"\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full (a device whose writes fail with ENOSPC)")
def test_hash_to_a_really_full_device_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    from deepdetect.cli.hash import main

    _images(tmp_path / "in", 1)
    assert main([str(tmp_path / "in"), "--output", "/dev/full"]) == 1
    assert "deepdetect-hash: error: disk full while writing /dev/full" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["hash", "match"])
def test_disk_full_mid_run_keeps_what_was_written(command: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from deepdetect.cli.hash import main as hash_main
    from deepdetect.cli.index import main as index_main

    images = _images(tmp_path / "in", 3)
    db = tmp_path / "k.db"
    if command == "match":
        assert index_main(["add", str(db), str(images[0]), "--label", "ncii"]) == 0
    out = tmp_path / "o.jsonl"
    capsys.readouterr()
    _full_after(monkeypatch, 1)
    if command == "hash":
        status = hash_main([*map(str, images), "--output", str(out)])
    else:
        status = index_main(["match", str(db), *map(str, images), "--output", str(out)])
    monkeypatch.undo()
    assert status == 1
    line = _one_line(capsys.readouterr().err)
    assert "error: disk full while writing" in line and "1 records before it kept" in line
    (kept,) = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert kept["path"] == str(images[0]) and kept["status"] == "ok"
    assert out.read_bytes().endswith(b"\n")
