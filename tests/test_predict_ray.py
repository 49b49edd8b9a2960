"""deepdetect-predict --engine ray: the same stages on Ray Data (local mode) give the local engine's records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from deepdetect.export.pipeline import export
from deepdetect.inference.predict import run_predict
from deepdetect.inference.settings import PredictSettings, SettingsError
from media_corpus import make_bad_corpus, make_video
from test_export import export_cfg, make_tiny_checkpoint

pytest.importorskip("ray.data")

VARIES = {"run_id", "scanned_at", "seconds"}  # differ between any two runs


def _records(path: Path) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


@pytest.mark.slow
def test_ray_engine_gives_the_local_records(tmp_path: Path) -> None:
    from skimage.data import astronaut

    model = tmp_path / "ex" / "model.onnx"
    export(export_cfg(make_tiny_checkpoint(tmp_path / "run"), tmp_path / "ex"))
    media = tmp_path / "media"
    media.mkdir()
    img = astronaut()
    Image.fromarray(img).save(media / "astronaut.jpg")
    make_video(media / "clip.mp4", [img[:256, 64:320]] * 6, fps=5)
    corpus = make_bad_corpus(tmp_path / "bad")  # unreadable, unsupported, no frames, ... and faceless files
    listing = tmp_path / "list.txt"
    paths = [media / "astronaut.jpg", media / "clip.mp4", *(p for p, _ in corpus.values()), tmp_path / "gone.jpg"]
    listing.write_text("\n".join(map(str, paths)) + "\n", encoding="utf-8")

    local, ray = tmp_path / "local.jsonl", tmp_path / "out" / "ray.jsonl"
    ray.parent.mkdir()
    base = {"frames": 4, "progress": False, "workers": 1}
    run_predict([listing], model, local, PredictSettings(**base))
    summary = run_predict([listing], model, ray, PredictSettings(**base, engine="ray", ray_address="local"))
    want, got = _records(local), _records(ray)
    assert list(got) == list(want) and len(got) == len(paths)  # every input, in input order
    assert sum(summary.statuses.values()) == len(paths)
    for path, w in want.items():
        g = got[path]
        assert g["status"] == w["status"], path
        for key in set(w) - VARIES - {"score", "score_interval", "faces"}:
            assert g[key] == w[key], (path, key)
        if w["score"] is not None:
            assert abs(g["score"] - w["score"]) <= 1e-6
            assert [f["score"] for f in g["faces"]] == pytest.approx([f["score"] for f in w["faces"]], abs=1e-6)
    assert {r["status"] for r in want.values()} >= {"ok", "no_face", "not_found", "unreadable"}
    assert [p.name for p in ray.parent.iterdir() if p.name.startswith("shards-")] == []  # merged, then removed


def test_ray_engine_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="unknown engine"):
        PredictSettings(engine="spark")
    with pytest.raises(SettingsError, match="--explain"):
        PredictSettings(engine="ray", explain_dir="x")


def test_shards_cut_short_keep_their_whole_records(tmp_path: Path) -> None:
    from deepdetect.inference.engine_ray import read_shards

    row = {"order": 0, "record": json.dumps({"path": "a", "score": 0.25})}
    (tmp_path / "1.json").write_text(json.dumps(row) + "\n" + json.dumps({**row, "order": 2}) + "\n")
    (tmp_path / "2.json").write_text(json.dumps({**row, "order": 1})[:-9])  # its writer died mid-line
    assert read_shards(tmp_path) == {0: {"path": "a", "score": 0.25}, 2: {"path": "a", "score": 0.25}}
