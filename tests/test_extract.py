"""End-to-end extraction on generated face images and videos: manifest, failures, resume, tracks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.data.manifest import read_manifest
from deepdetect.data.splits import check_no_leak
from deepdetect.faces.extract import ExtractSettings, extract
from face_images import blank, face_video_frames, lfw_face, save
from media_corpus import make_video


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    for i in range(4):
        save(lfw_face(i), root / "real" / f"r{i}.png")
        save(lfw_face(10 + i), root / "fake" / "gan" / f"f{i}.jpg")
    save(blank(), root / "real" / "empty.png")  # no face
    (root / "fake" / "gan" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    save(lfw_face(20), root / "test" / "real" / "t0.png")
    make_video(root / "fake" / "clip.mp4", face_video_frames(3, n=12), fps=10)
    return root


def run(cfg_factory, root: Path, out: Path, *extra: str):
    cfg = cfg_factory("extract", [f"input={root}", f"output_dir={out}", "torch_threads=1", *extra])
    return extract(cfg)


def test_extract_folder_tree(cfg_factory, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run(cfg_factory, tree, out)
    assert res.n_sources == 12 and res.n_processed == 12
    m = read_manifest(out / "manifest.csv")
    fails = {Path(p).name: s for p, s in zip(*_failures(out), strict=True)}
    assert fails == {"empty.png": "no_face", "corrupt.jpg": "unreadable"}
    assert res.n_failures == 2 and res.n_crops == len(m)
    images = m[m["source_path"].str.endswith((".png", ".jpg"))]
    assert len(images) == 9 and images["source_path"].nunique() == 9  # keep=largest: one crop per image
    row = m[m["source_path"].str.endswith("f0.jpg")].iloc[0]
    assert (row["label"], row["dataset"], row["source"], row["method"]) == ("fake", "faces", "gan", "gan")
    assert row["crop_path"].startswith("crops/faces/fake/") and row["crop_path"].endswith("_f000000_t00.png")
    assert 30 < row["x1"] < row["x2"] < 170 and row["det_score"] >= 0.9
    assert m.loc[m["source_path"].str.endswith("t0.png"), "split"].item() == "test"
    assert set(m["split"]) <= {"train", "val", "test"}
    check_no_leak(m)
    for p in m["abs_crop_path"]:
        with Image.open(p) as im:
            assert im.size == (64, 64)  # debug=fast: size 64
    lm = np.array([float(v) for v in row["landmarks"].split()]).reshape(5, 2)
    assert np.all((lm > 0) & (lm < 64)) and lm[0, 0] < lm[1, 0]
    # the video: sampled frames (debug=fast: 4), one track
    vid = m[m["source_path"].str.endswith("clip.mp4")].sort_values("frame_index")
    assert len(vid) == 4 and list(vid["frame_index"]) == sorted(set(vid["frame_index"]))
    assert set(vid["track_id"]) == {0} and vid["video_id"].nunique() == 1
    assert vid["crop_path"].str.contains("_t00").all()


def test_single_layout_with_label_and_extract_json(cfg_factory, tmp_path: Path) -> None:
    flat = tmp_path / "photos"
    for i in range(3):
        save(lfw_face(30 + i), flat / f"p{i}.png")
    out = tmp_path / "out"
    run(cfg_factory, flat, out, "layout=single", "label=real", "margin=0.25")
    m = read_manifest(out / "manifest.csv")
    assert len(m) == 3 and set(m["label"]) == {"real"} and set(m["source"]) == {"photos"}
    info = json.loads((out / "extract.json").read_text())
    face = info["face_crop"]
    assert {k: face[k] for k in ("detector", "margin", "size", "keep")} == {
        "detector": "mtcnn",
        "margin": 0.25,
        "size": 64,
        "keep": "largest",
    }
    # the face-selection contract predict reproduces
    assert (face["min_face"], face["min_score"], face["frames_per_video"]) == (40.0, 0.9, 4)
    with pytest.raises(ValueError, match="real or fake"):
        run(cfg_factory, flat, tmp_path / "bad", "layout=single", "label=maybe")


def _failures(out: Path) -> tuple[list[str], list[str]]:
    import pandas as pd

    f = pd.read_csv(out / "failures.csv", dtype=str, keep_default_na=False)
    return list(f["source_path"]), list(f["status"])


def test_rerun_skips_and_interrupted_run_resumes(cfg_factory, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run(cfg_factory, tree, out)
    manifest_before = (out / "manifest.csv").read_text()
    second = run(cfg_factory, tree, out)
    assert second.n_processed == 0 and second.n_skipped == 12
    assert (out / "manifest.csv").read_text() == manifest_before
    # simulate a run killed mid-way: two sources never finished (no part file; a stray temp crop), no manifest
    parts = sorted((out / "parts").glob("*.json"))
    for part in parts[:2]:
        part.unlink()
    (out / "manifest.csv").unlink()
    (out / "crops" / ".half.png.tmp").write_bytes(b"partial")
    third = run(cfg_factory, tree, out)
    assert third.n_processed == 2 and third.n_skipped == 10
    assert (out / "manifest.csv").read_text() == manifest_before
    assert first.n_crops == third.n_crops
    # a new source added later is picked up on its own
    save(lfw_face(30), tree / "real" / "new.png")
    fourth = run(cfg_factory, tree, out)
    assert fourth.n_processed == 1 and fourth.n_crops == first.n_crops + 1


def test_keep_all_multi_face_and_workers(cfg_factory, tmp_path: Path) -> None:
    root = tmp_path / "multi"
    two = np.concatenate([lfw_face(1), lfw_face(2)], axis=1)  # 200x400, two faces
    save(two, root / "real" / "two.png")
    save(lfw_face(3), root / "fake" / "one.png")
    out = tmp_path / "out"
    res = run(cfg_factory, root, out, "keep=all", "num_workers=1", "image_format=jpg")
    m = read_manifest(out / "manifest.csv")
    assert res.n_crops == 3 and len(m) == 3
    two_rows = m[m["source_path"].str.endswith("two.png")]
    assert sorted(two_rows["track_id"]) == [0, 1] and two_rows["crop_path"].str.endswith(".jpg").all()
    part = json.loads(next((out / "parts").glob("*.json")).read_text())
    assert {"records", "failure", "rel"} <= set(part)


def test_bad_input_is_a_clear_error(cfg_factory, tmp_path: Path) -> None:
    from deepdetect.data.layouts import LayoutError

    with pytest.raises(LayoutError, match="not found"):
        run(cfg_factory, tmp_path / "nope", tmp_path / "out")
    with pytest.raises(LayoutError, match="unknown layout"):
        run(cfg_factory, tmp_path, tmp_path / "out", "layout=bogus")


def test_torchrun_shards_merge_on_rank_zero(cfg_factory, tree: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    r1 = run(cfg_factory, tree, out)
    assert r1.manifest_path is None and r1.n_processed == 6 and not (out / "manifest.csv").exists()
    monkeypatch.setenv("RANK", "0")
    r0 = run(cfg_factory, tree, out, "merge_timeout_s=5")
    assert r0.n_processed == 6 and r0.manifest_path is not None
    m = read_manifest(r0.manifest_path)
    assert m["source_path"].nunique() == 10 and r0.n_failures == 2  # all 12 sources, merged


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tree: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    for i in range(12):
        save(lfw_face(40 + i), tree / "real" / "more" / f"m{i}.png")
    script = Path(__file__).resolve().parents[1] / "scripts" / "extract.py"
    cmd = [sys.executable, str(script), f"input={tree}", f"output_dir={out}", "size=64", "torch_threads=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "parts").glob("*.json"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list((out / "parts").glob("*.json")))
    assert 3 <= n_done < 24 and not (out / "manifest.csv").exists()
    for part in (out / "parts").glob("*.json"):
        json.loads(part.read_text())  # every part file that exists is complete
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    m = read_manifest(out / "manifest.csv")
    assert m["source_path"].nunique() == 22  # 24 sources, 2 failures
    assert m["abs_crop_path"].map(lambda p: Path(p).is_file()).all()


def test_settings_missing_frames_keep_the_default_and_null_means_all() -> None:
    assert ExtractSettings.from_config({}).frames_per_video == 32
    assert ExtractSettings.from_config({"frames_per_video": None}).frames_per_video is None
    assert ExtractSettings.from_config({"frames_per_video": 8}).frames_per_video == 8
