"""The model's face-crop contract when it is trained on several crop manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepdetect.training.settings import TrainConfigError
from deepdetect.training.setup import face_crop_record


def _manifest(root: Path, name: str, **face_crop: object) -> Path:
    folder = root / name
    folder.mkdir()
    crop = {"detector": "mtcnn", "margin": 0.3, "size": 128, "keep": "largest", "min_face": 40, "min_score": 0.9}
    (folder / "extract.json").write_text(json.dumps({"face_crop": {**crop, **face_crop}}))
    return folder / "manifest.csv"


def test_one_manifest_is_recorded_as_extracted(tmp_path: Path) -> None:
    card = face_crop_record([_manifest(tmp_path, "a", frames_per_video=64)], {})
    assert (card.margin, card.size, card.min_face, card.frames_per_video, card.note) == (0.3, 128, 40, 64, None)


def test_selection_rules_merge_to_the_most_permissive(tmp_path: Path) -> None:
    a = _manifest(tmp_path, "a", frames_per_video=64)
    b = _manifest(tmp_path, "b", keep="all", min_face=20, min_score=0.95, frames_per_video=64)
    card = face_crop_record([a, b], {})
    assert (card.min_face, card.min_score, card.frames_per_video) == (20, 0.9, 64)  # never smaller than trained on
    assert card.keep is None and card.note == "merged from 2 manifests; they differ in keep"


@pytest.mark.parametrize("field", ["margin", "size"])
def test_manifests_cut_differently_are_refused(tmp_path: Path, field: str) -> None:
    other = {"margin": 0.5, "size": 224}[field]
    a, b = _manifest(tmp_path, "a"), _manifest(tmp_path, "b", **{field: other})
    with pytest.raises(TrainConfigError, match=f"different face-crop {field}"):
        face_crop_record([a, b], {})
