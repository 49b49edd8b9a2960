"""Issue 12 item 9: an output folder is resumed only by the same run; anything else is refused unless
`overwrite=true` (extraction: fingerprint in extract.json; training: an existing run needs resume or overwrite)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from deepdetect.data.manifest import read_manifest
from deepdetect.faces.extract import StaleOutputError, extract
from deepdetect.training.train import TrainConfigError, train
from face_images import lfw_face, save
from tiny_data import make_tiny_manifest


def _tree(root: Path, n: int, first: int) -> Path:
    for i in range(n):
        save(lfw_face(first + i), root / "real" / f"r{i}.png")
    return root


def _extract(cfg_factory, root: Path, out: Path, *extra: str):
    return extract(cfg_factory("extract", [f"input={root}", f"output_dir={out}", "torch_threads=1", *extra]))


@pytest.mark.timeout(300)
def test_extract_resumes_only_the_same_run(cfg_factory, tmp_path: Path) -> None:
    a, b = _tree(tmp_path / "a", 2, 0), _tree(tmp_path / "b", 3, 10)
    out = tmp_path / "out"
    _extract(cfg_factory, a, out, "size=64")
    assert json.loads((out / "extract.json").read_text())["fingerprint"]
    assert _extract(cfg_factory, a, out, "size=64").n_skipped == 2  # same run: resumed, nothing redone
    with pytest.raises(StaleOutputError, match="differs in input, size") as info:
        _extract(cfg_factory, b, out, "size=128")
    assert "overwrite=true" in str(info.value)
    with pytest.raises(StaleOutputError, match="differs in size"):
        _extract(cfg_factory, a, out, "size=128")
    with pytest.raises(StaleOutputError, match="differs in group_pattern"):  # it decides the splits
        _extract(cfg_factory, a, out, "size=64", "group_pattern='^(r)'")
    result = _extract(cfg_factory, b, out, "size=128", "overwrite=true")
    manifest = read_manifest(out / "manifest.csv")
    assert result.n_skipped == 0 and len(manifest) == 3
    assert all(Path(p).parent.parent == b.resolve() for p in manifest["source_path"])
    assert json.loads((out / "extract.json").read_text())["face_crop"]["size"] == 128
    assert {Path(p).stat().st_size > 0 for p in manifest["abs_crop_path"]} == {True}
    assert len(list((out / "crops").rglob("*.png"))) == 3  # A's 64 px crops are gone


@pytest.mark.timeout(300)
def test_train_refuses_an_existing_run_unless_resume_or_overwrite(cfg_factory, tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "data")
    out = tmp_path / "run"
    common = ["model=test", f"data.manifest={manifest}", f"output_dir={out}", "trainer.max_epochs=1"]
    train(cfg_factory("train", common))
    model_before = (out / "model.safetensors").read_bytes()
    with pytest.raises(TrainConfigError, match="already holds a training run"):
        train(cfg_factory("train", common))
    assert (out / "model.safetensors").read_bytes() == model_before
    train(cfg_factory("train", [*common, "overwrite=true"]))
    with (out / "log.csv").open(newline="") as fh:
        epochs = [row["epoch"] for row in csv.DictReader(fh)]
    assert len(epochs) == len(set(epochs))  # one run's rows, not two runs mixed
