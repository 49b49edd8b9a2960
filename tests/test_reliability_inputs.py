"""The bad-input corpus (issue 7) through extraction and predict: a clear status per file, the batch goes on, good
files in the same batch still give crops and scores, nothing hangs, and a decompression bomb allocates nothing big."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from deepdetect.cli.predict import main as predict_main
from deepdetect.data.extract import extract
from deepdetect.data.manifest import read_manifest
from deepdetect.faces.detect import FaceDetector
from deepdetect.inference.predict import STATUSES as PREDICT_STATUSES
from deepdetect.inference.predict import predict_files
from deepdetect.inference.predictor import Predictor
from deepdetect.inference.settings import PredictSettings
from face_images import lfw_face, save
from media_corpus import make_bad_corpus, make_png_bomb
from test_export import make_tiny_checkpoint

NOT_IN_FOLDER_WALK = {"unsupported_ext", "missing_file"}  # a folder scan lists media files that exist only


def _want(expected: str) -> str:
    return "no_face" if expected == "ok" else expected  # decodable corpus files hold no face


@pytest.fixture(scope="module")
def corpus_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[Path, str]]]:
    """`root/fake/` = the bad corpus, `root/real/` = three real faces that must still give crops."""
    root = tmp_path_factory.mktemp("reliab") / "input"
    corpus = make_bad_corpus(root / "fake")
    for i in range(3):
        save(lfw_face(i), root / "real" / f"face {i} é.png")
    return root, corpus


@pytest.mark.timeout(180)
def test_extract_gives_every_bad_file_a_status_and_goes_on(cfg_factory, corpus_tree, tmp_path: Path) -> None:
    root, corpus = corpus_tree
    out = tmp_path / "out"
    result = extract(cfg_factory("extract", [f"input={root}", f"output_dir={out}"]))
    manifest = read_manifest(out / "manifest.csv")
    failures = pd.read_csv(out / "failures.csv", dtype=str, keep_default_na=False)
    by_path = dict(zip(failures["source_path"], failures["status"], strict=True))
    got = {}
    for name, (path, expected) in corpus.items():
        if name in NOT_IN_FOLDER_WALK:
            continue
        status = by_path.get(str(path.resolve()))
        got[name] = status
        assert status == _want(expected), (name, status, failures[failures["source_path"] == str(path.resolve())])
    assert failures["reason"].str.len().gt(0).all()  # every status comes with a human message
    assert "error" not in set(failures["status"]), failures[failures["status"] == "error"].to_dict("records")
    # the good files in the same batch gave their crops
    real = manifest[manifest["label"] == "real"]
    assert sorted(Path(p).name for p in real["source_path"]) == [f"face {i} é.png" for i in range(3)]
    assert all(Path(p).is_file() for p in manifest["abs_crop_path"])
    assert set(manifest["source_path"]).isdisjoint(by_path)
    assert result.n_failures == len(failures) and result.n_crops == len(manifest) == 3
    assert not list(out.rglob("*.tmp"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("model") / "run").parent


@pytest.mark.timeout(180)
def test_predict_gives_every_bad_file_a_status_and_goes_on(corpus_tree, tiny_model: Path, tmp_path: Path) -> None:
    _, corpus = corpus_tree
    face = tmp_path / "face.jpg"
    Image.fromarray(lfw_face(5)).save(face)
    paths = [face, *(p for p, _ in corpus.values())]
    predictor = Predictor.from_path(tiny_model)
    settings = PredictSettings(frames=4, progress=False)
    records = list(predict_files(paths, predictor, FaceDetector(device="cpu"), settings))
    assert len(records) == len(paths)  # one record per input, in order, none lost
    by_path = {r["path"]: r for r in records}
    good = by_path[str(face)]
    assert good["status"] == "ok" and 0.0 <= good["score"] <= 1.0 and good["label"] in ("real", "fake")
    for name, (path, expected) in corpus.items():
        rec = by_path[str(path)]
        assert rec["status"] == _want(expected), (name, rec)
        assert rec["status"] in PREDICT_STATUSES and rec["error"], (name, rec)
        assert rec["score"] is None and rec["label"] is None, (name, rec)

    # the CLI on the same batch: exit 0, one JSON line per file
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in paths) + "\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    code = predict_main([str(listing), "--model", str(tiny_model), "--output", str(out), "--frames", "2", "--quiet"])
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert code == 0 and len(lines) == len(paths)
    assert {r["path"]: r["status"] for r in lines} == {r["path"]: r["status"] for r in records}


@pytest.mark.timeout(120)
def test_predict_exit_1_when_nothing_readable(corpus_tree, tiny_model: Path, tmp_path: Path) -> None:
    _, corpus = corpus_tree
    bad = [str(corpus[n][0]) for n in ("empty_file", "truncated_jpeg", "text_as_mp4", "decompression_bomb")]
    code = predict_main([*bad, "--model", str(tiny_model), "--output", str(tmp_path / "p.csv"), "--quiet"])
    assert code == 1
    rows = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    assert sorted(rows["status"]) == ["too_large", "unreadable", "unreadable", "unreadable"]


BOMB_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from deepdetect.media import MediaError, load_image
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_image(sys.argv[1])
        status = "ok"
    except MediaError as exc:
        status = exc.status
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"status": status, "growth_kb": after - before, "peak_kb": after}))
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("side", [20000, 60000])
def test_decompression_bomb_allocates_no_big_buffer(tmp_path: Path, side: int) -> None:
    """A few-KB PNG declaring side² pixels (400M / 3.6G; decoded RGB would need 1.2 / 10.8 GB) is refused from its
    header: the probe process's peak RSS grows by less than 64 MB."""
    bomb = make_png_bomb(tmp_path / "bomb.png", side=side)
    assert bomb.stat().st_size < 1_000_000
    proc = subprocess.run(
        [sys.executable, "-c", BOMB_PROBE, str(bomb)], capture_output=True, text=True, timeout=100, check=True
    )
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert probe["status"] == "too_large"
    assert probe["growth_kb"] < 64 * 1024, probe
