"""data/extract_sources: the one loop that extracts each named source of a whole-pipeline run (reference, lofo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepdetect.data.extract_sources import extract_sources
from deepdetect.data.manifest import read_manifest
from face_images import lfw_face, save

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_each_source_gets_its_folder_name_and_overrides(tmp_path: Path) -> None:
    photos, swaps = tmp_path / "in" / "photos", tmp_path / "in" / "swaps"
    for i in range(2):
        save(lfw_face(30 + i), photos / f"p{i}.png")
        save(lfw_face(40 + i), swaps / "real" / f"r{i}.png")
        save(lfw_face(50 + i), swaps / "fake" / f"f{i}.png")
    out = tmp_path / "run"
    sources = {
        "snaps": (photos, ["layout=single", "label=real", "size=48"]),
        "swaps": (swaps, ["size=64"]),
    }
    manifests = extract_sources(sources, out, ["torch_threads=1", "num_workers=0"])
    assert manifests == {name: out / "crops" / name / "manifest.csv" for name in ("snaps", "swaps")}
    snaps, swapped = read_manifest(manifests["snaps"]), read_manifest(manifests["swaps"])
    assert len(snaps) == 2 and set(snaps["label"]) == {"real"}
    assert set(swapped["label"]) == {"real", "fake"} and len(swapped) == 4
    sizes = {n: json.loads((out / "crops" / n / "extract.json").read_text())["face_crop"]["size"] for n in manifests}
    assert sizes == {"snaps": 48, "swaps": 64}
    assert set(snaps["dataset"]) == {"snaps"} and set(swapped["dataset"]) == {"swaps"}
