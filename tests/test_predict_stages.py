"""Predict's stages one at a time, on plain inputs: decode hashes a file once, the score stage aggregates frames,
the record stage keeps the first of the highest-scoring faces as a flagged file's evidence."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deepdetect.inference.stages.decode as decode_stage
from deepdetect.inference.stages.record import flagged_evidence, record_scored, score_faces
from deepdetect.inference.stages.score import file_score
from deepdetect.media import MediaError


def test_decode_reads_an_image_and_hashes_it_only_when_not_given(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.full((40, 30, 3), 7, np.uint8)).save(path)
    hashed: list[str] = []
    real = decode_stage.sha256_file
    monkeypatch.setattr(decode_stage, "sha256_file", lambda p: hashed.append(str(p)) or real(p))
    kind = decode_stage.probe(path)
    media = decode_stage.decode(path, kind, frames=4)
    assert kind == "image" and [i for i, _ in media.frames] == [0] and media.frames[0][1].shape == (40, 30, 3)
    assert media.fps == 0.0 and media.sha256 == real(path) and hashed == [str(path)]
    again = decode_stage.decode(path, kind, frames=4, sha256="known")  # `--resume` has just hashed it
    assert again.sha256 == "known" and hashed == [str(path)]


def test_probe_refuses_a_fifo_before_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(MediaError):
        decode_stage.probe(fifo)


def _faces(scores: list[tuple[int, float]]) -> list[dict]:
    return [{"frame_index": i, "time_s": i / 10, "box": [0.0, 0.0, 1.0, 1.0], "det_score": 1.0} for i, _ in scores]


@pytest.mark.parametrize(("aggregate", "expected"), [("mean", 0.5), ("max", 0.8), ("topk", 0.8)])
def test_file_score_takes_each_frames_best_face_then_aggregates(aggregate: str, expected: float) -> None:
    pairs = [(0, 0.1), (0, 0.2), (3, 0.8), (3, 0.4)]  # frame 0 scores 0.2, frame 3 scores 0.8
    faces = _faces(pairs)
    score_faces(faces, np.array([p for _, p in pairs]))
    result = file_score(faces, aggregate, topk=1, threshold=0.5)
    assert result.score == pytest.approx(expected) and result.interval == pytest.approx((0.2, 0.8))
    assert result.label == ("fake" if expected >= 0.5 else "real")


def test_flagged_evidence_is_the_first_highest_face_of_a_fake() -> None:
    pairs = [(0, 0.9), (2, 0.95), (4, 0.95)]
    faces = _faces(pairs)
    crops = [np.full((4, 4, 3), i, np.uint8) for i in range(3)]
    score_faces(faces, np.array([p for _, p in pairs]))
    rec = {"kind": "video", "score": None, "label": None}
    record_scored(rec, faces, file_score(faces, "mean", 3, threshold=0.5))
    assert rec["status"] == "ok" and rec["n_faces"] == 3 and rec["score"] == pytest.approx(0.933333, abs=1e-6)
    evidence = flagged_evidence(rec, faces, crops)
    assert evidence is not None and evidence.frame_index == 2 and int(evidence.crop[0, 0, 0]) == 1
    assert evidence.file_score == rec["score"] and evidence.time_s == pytest.approx(0.2)
    rec["label"] = "real"
    assert flagged_evidence(rec, faces, crops) is None
