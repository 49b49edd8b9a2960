"""Issue 12, predict and extract side: special files never hang, odd names are recorded, symlink loops are one
failure, derived names stay short, outputs are locked and spreadsheet-safe. Every input is made inside the test."""

from __future__ import annotations

import base64
import csv
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from deepdetect.cli.predict import main as predict_main
from deepdetect.data.extract import extract
from deepdetect.data.manifest import read_failures, read_manifest
from deepdetect.inference.writers import RecordWriter
from deepdetect.utils.csvcells import neutralise_cell, restore_cell
from face_images import blank, lfw_face
from test_export import make_tiny_checkpoint

EVIL = "=cmd|' -C calc'!A0"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("model") / "run").parent


def _face(path: str | bytes | Path, i: int = 0) -> None:
    Image.fromarray(lfw_face(i)).save(os.fsdecode(path) if isinstance(path, bytes) else path, format="PNG")


def _predict(paths: list[str], model: Path, out: Path, *extra: str) -> int:
    return predict_main([*paths, "--model", str(model), "--output", str(out), "--frames", "2", "--quiet", *extra])


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -------------------------------------------------------------------------------------------- 1. no hangs


@pytest.mark.timeout(120)
def test_predict_gives_fifos_and_devices_a_status_and_goes_on(tiny_model: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "p.jpg")
    (d / "zero.jpg").symlink_to("/dev/zero")
    (d / "random.mp4").symlink_to("/dev/urandom")
    _face(d / "z_face.png")
    fifo_list = tmp_path / "list.txt"
    os.mkfifo(fifo_list)
    listing = tmp_path / "good_list.txt"
    listing.write_text(f"{d / 'p.jpg'}\n{d / 'z_face.png'}\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert _predict([str(d), str(fifo_list), str(listing)], tiny_model, out) == 0
    recs = {Path(str(r["path"])).name: r for r in _jsonl(out)}
    assert recs["p.jpg"]["status"] == "unreadable" and "FIFO" in str(recs["p.jpg"]["error"])
    assert recs["zero.jpg"]["status"] == "unreadable" and "character device" in str(recs["zero.jpg"]["error"])
    assert recs["random.mp4"]["status"] == "unreadable"
    assert recs["list.txt"]["status"] == "unreadable" and "FIFO" in str(recs["list.txt"]["error"])
    assert all(recs[n]["sha256"] is None for n in ("p.jpg", "zero.jpg", "random.mp4", "list.txt"))
    assert recs["z_face.png"]["status"] == "ok"  # files after the FIFO in the folder are still scored


@pytest.mark.timeout(180)
def test_extract_gives_fifos_devices_and_symlink_loops_one_failure_row(cfg_factory, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "fake").mkdir(parents=True)
    (root / "real").mkdir()
    os.mkfifo(root / "fake" / "p.jpg")
    (root / "fake" / "zero.mp4").symlink_to("/dev/zero")
    (root / "fake" / "self.jpg").symlink_to("self.jpg")  # a symlink loop
    _face(root / "real" / "a.png")
    out = tmp_path / "out"
    result = extract(cfg_factory("extract", [f"input={root}", f"output_dir={out}"]))
    failures = read_failures(out / "failures.csv")
    by_name = {
        Path(p).name: (s, r) for p, s, r in zip(failures.source_path, failures.status, failures.reason, strict=True)
    }
    assert by_name["p.jpg"][0] == "unreadable" and "FIFO" in by_name["p.jpg"][1]
    assert by_name["zero"][0] == "unreadable"  # the layout resolves symlinks: the row names /dev/zero
    assert by_name["self.jpg"][0] == "unreadable"
    assert result.n_crops == 1 and len(failures) == 3


# ---------------------------------------------------------------------------------- 2. names that are not UTF-8


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_predict_records_non_utf8_names_exactly(tiny_model: Path, tmp_path: Path, fmt: str) -> None:
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    bad = os.path.join(folder, b"bad\xff.png")
    _face(bad)
    _face(os.path.join(folder, b"z_good.png"), 1)
    out = tmp_path / f"o.{fmt}"
    assert _predict([os.fsdecode(folder)], tiny_model, out) == 0
    if fmt == "jsonl":
        recs = _jsonl(out)
        exact = [r for r in recs if r["path_bytes_b64"]]
        assert len(recs) == 2 and len(exact) == 1 and all(r["status"] == "ok" for r in recs)
        assert os.fsencode(str(exact[0]["path"])) == bad  # the escaped path round-trips to the bytes
    else:
        rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
        exact = [r for r in rows if r["path_bytes_b64"]]
        assert len(rows) == 2 and len(exact) == 1 and all(r["status"] == "ok" for r in rows)
        assert exact[0]["path"].endswith("bad\\xff.png")  # readable text in the spreadsheet
    assert base64.b64decode(str(exact[0]["path_bytes_b64"])) == bad


@pytest.mark.timeout(180)
def test_extract_records_non_utf8_names(cfg_factory, tmp_path: Path) -> None:
    root = os.fsencode(tmp_path / "in")
    for sub in (b"real", b"fake"):
        os.makedirs(os.path.join(root, sub))
    _face(os.path.join(root, b"real", b"bad\xff.png"))
    Image.fromarray(blank()).save(os.fsdecode(os.path.join(root, b"fake", b"empty\xfe.png")))
    out = tmp_path / "out"
    result = extract(cfg_factory("extract", [f"input={os.fsdecode(root)}", f"output_dir={out}"]))
    manifest = read_manifest(out / "manifest.csv")
    failures = read_failures(out / "failures.csv")
    assert result.n_crops == 1 and os.fsencode(manifest["source_path"].iloc[0]).endswith(b"bad\xff.png")  # exact
    assert list(failures["status"]) == ["no_face"]
    assert base64.b64decode(failures["source_path_b64"].iloc[0]) == os.path.join(root, b"fake", b"empty\xfe.png")


# ---------------------------------------------------------------------------------------------- 4. long names


@pytest.mark.timeout(120)
def test_explain_names_are_bounded_for_long_source_names(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / ("x" * 236 + ".png")
    _face(src)
    out, explain = tmp_path / "o.jsonl", tmp_path / "explain"
    assert _predict([str(src)], tiny_model, out, "--explain", str(explain), "--threshold", "0") == 0
    (rec,) = _jsonl(out)
    assert rec["status"] == "ok" and rec["label"] == "fake"
    written = Path(str(rec["explanation"]))
    assert written.is_file() and written.parent == explain and len(written.name) <= 100


# ------------------------------------------------------------------------------------------ 6. locked output


@pytest.mark.timeout(120)
def test_second_predict_on_a_locked_output_refuses_and_destroys_nothing(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _face(tmp_path / "f.png")
    out = tmp_path / "o.jsonl"
    with RecordWriter(out) as first:
        first.write({"path": "kept", "status": "ok"})
        code = _predict([str(tmp_path / "f.png")], tiny_model, out)
        assert code == 2 and "locked" in capsys.readouterr().err
        assert _jsonl(out) == [{"path": "kept", "status": "ok"}]
    assert _predict([str(tmp_path / "f.png")], tiny_model, out, "--overwrite") == 0  # free once the first is done


# ----------------------------------------------------------------------------------------- 8. CSV formulas


@pytest.mark.parametrize("text", [EVIL, "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'quoted", "plain", ""])
def test_cells_round_trip(text: str) -> None:
    safe = neutralise_cell(text)
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r")) and restore_cell(safe) == text


@pytest.mark.timeout(120)
def test_predict_csv_neutralises_formula_paths_jsonl_keeps_them(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _face(tmp_path / f"{EVIL}.png")
    assert _predict([f"{EVIL}.png"], tiny_model, tmp_path / "o.csv") == 0
    assert _predict([f"{EVIL}.png"], tiny_model, tmp_path / "o.jsonl") == 0
    (row,) = list(csv.DictReader((tmp_path / "o.csv").open(encoding="utf-8", newline="")))
    assert row["path"] == f"'{EVIL}.png"
    assert _jsonl(tmp_path / "o.jsonl")[0]["path"] == f"{EVIL}.png"


@pytest.mark.timeout(180)
def test_manifest_neutralises_formulas_and_reads_back_exactly(cfg_factory, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "fake" / "=evil").mkdir(parents=True)
    _face(root / "fake" / "=evil" / f"{EVIL}.png")
    Image.fromarray(blank()).save(root / "fake" / "=evil" / "@blank.png")
    out = tmp_path / "out"
    extract(cfg_factory("extract", [f"input={root}", f"output_dir={out}"]))
    for name in ("manifest.csv", "failures.csv"):
        with (out / name).open(encoding="utf-8", newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert not [c for c in cells if c.startswith(("=", "+", "@"))], name
    manifest = read_manifest(out / "manifest.csv")
    assert list(manifest["source"]) == ["=evil"] and list(manifest["video_id"]) == [f"fake/=evil/{EVIL}.png"]
    assert Path(manifest["source_path"].iloc[0]).name == f"{EVIL}.png"
    assert read_failures(out / "failures.csv")["source_path"].map(lambda p: Path(p).name).tolist() == ["@blank.png"]
    raw = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert raw["source"].iloc[0] == "'=evil"
