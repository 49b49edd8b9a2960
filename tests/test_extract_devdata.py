"""Extraction on the development data: every photo has a face found, the video gives tracked frames."""

from __future__ import annotations

from pathlib import Path

from deepdetect.data.extract import extract
from deepdetect.data.manifest import read_manifest

# Checked by looking at all 68 photos in ../shared/data/photos: every one shows at least one real face
# (full-resolution MTCNN finds a face >= 40 px with score >= 0.99 in each of them).
N_PHOTOS_WITH_FACE = 68


def test_every_photo_gives_a_face(cfg_factory, dev_data: Path, tmp_path: Path) -> None:
    photos = dev_data / "photos"
    out = tmp_path / "photos"
    cfg = cfg_factory(
        "extract", [f"input={photos}", f"output_dir={out}", "layout=single", "downscale=640", "torch_threads=1"]
    )
    res = extract(cfg)
    m = read_manifest(out / "manifest.csv")
    assert res.n_sources == 68 and res.n_failures == 0
    assert m["source_path"].nunique() == N_PHOTOS_WITH_FACE and len(m) == N_PHOTOS_WITH_FACE  # keep=largest
    assert (m["label"] == "unknown").all() and (m["split"] == "").all() and (m["dataset"] == "photos").all()
    assert (m["det_score"] >= 0.9).all() and ((m["x2"] - m["x1"]) >= 40).all()
    assert m["source_path"].map(lambda p: Path(p).parent == photos.resolve()).all()
    assert m["abs_crop_path"].map(lambda p: Path(p).is_file()).all()


def test_video_frames_are_tracked(cfg_factory, dev_data: Path, tmp_path: Path) -> None:
    video = dev_data / "videos" / "lp_d0.mp4"
    out = tmp_path / "video"
    cfg = cfg_factory(
        "extract", [f"input={video}", f"output_dir={out}", "layout=single", "downscale=480", "torch_threads=1"]
    )
    res = extract(cfg)
    m = read_manifest(out / "manifest.csv")
    assert res.n_failures == 0 and len(m) == 4  # debug=fast: 4 frames, one talking head
    assert m["frame_index"].is_monotonic_increasing and m["frame_index"].nunique() == 4
    assert set(m["track_id"]) == {0} and m["video_id"].nunique() == 1
    assert (m["det_score"] > 0.95).all()
