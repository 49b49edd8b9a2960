"""Dataset layouts on tiny generated folder trees (empty placeholder files: layouts never decode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepdetect.data.layouts import LayoutError, list_layouts, load_sources


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def by_rel(sources: list) -> dict:
    return {s.rel: s for s in sources}


def test_registry_refuses_unknown(tmp_path: Path) -> None:
    assert {"folder", "ffpp", "celebdf", "dfdc", "single"} <= set(list_layouts())
    with pytest.raises(LayoutError, match="unknown layout"):
        load_sources("faceforensics", tmp_path)
    with pytest.raises(LayoutError, match="not found"):
        load_sources("folder", tmp_path / "missing")


def test_folder_layout_any_depth_and_splits(tmp_path: Path) -> None:
    root = tmp_path / "mydata"
    touch(root, "real/a.jpg", "real/sub/b.png", "fake/stylegan/c.jpg", "fake/d.mp4", "notes/e.jpg", "real/x.txt")
    touch(root, "test/real/f.jpg", "test/fake/g.jpg", "val/fake/h.jpg", "part1/real/i.jpg")
    s = by_rel(load_sources("folder", root))
    assert set(s) == {
        "real/a.jpg", "real/sub/b.png", "fake/stylegan/c.jpg", "fake/d.mp4",
        "test/real/f.jpg", "test/fake/g.jpg", "val/fake/h.jpg", "part1/real/i.jpg",
    }  # fmt: skip
    assert s["real/a.jpg"].label == "real" and s["real/a.jpg"].dataset == "mydata"
    assert s["real/a.jpg"].source == "mydata" and s["real/a.jpg"].split == ""
    assert s["real/sub/b.png"].source == "sub"
    assert s["fake/stylegan/c.jpg"].label == "fake" and s["fake/stylegan/c.jpg"].method == "stylegan"
    assert s["test/real/f.jpg"].split == "test" and s["val/fake/h.jpg"].split == "val"
    assert s["fake/d.mp4"].path.is_absolute()
    assert load_sources("folder", root, dataset="named")[0].dataset == "named"
    with pytest.raises(LayoutError, match="real/ or fake/"):
        touch(tmp_path / "flat", "a.jpg")
        load_sources("folder", tmp_path / "flat")


def test_single_layout(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.jpg", "b.mp4", "deep/c.jpg")
    s = load_sources("single", tmp_path / "in")
    assert [x.rel for x in s] == ["a.jpg", "b.mp4"] and all(x.label == "unknown" for x in s)
    (one,) = load_sources("single", tmp_path / "in" / "a.jpg")
    assert one.rel == "a.jpg" and one.dataset == "a"


def make_ffpp(root: Path, with_splits: bool = True) -> None:
    for comp in ("c23", "c40"):
        touch(root, *(f"original_sequences/youtube/{comp}/videos/{v}.mp4" for v in ("000", "003", "071", "054")))
        for method in ("Deepfakes", "FaceSwap"):
            touch(root, *(f"manipulated_sequences/{method}/{comp}/videos/{p}.mp4" for p in ("000_003", "003_000")))
            touch(root, *(f"manipulated_sequences/{method}/{comp}/videos/{p}.mp4" for p in ("071_054", "054_071")))
    if with_splits:
        (root / "splits").mkdir()
        (root / "splits" / "train.json").write_text(json.dumps([["000", "003"]]))
        (root / "splits" / "test.json").write_text(json.dumps([["071", "054"]]))


def test_ffpp_layout(tmp_path: Path) -> None:
    root = tmp_path / "ffpp"
    make_ffpp(root)
    s = by_rel(load_sources("ffpp", root))
    assert len(s) == 2 * (4 + 2 * 4)
    real = s["original_sequences/youtube/c23/videos/071.mp4"]
    assert (real.label, real.method, real.compression, real.video_id, real.split) == ("real", "", "c23", "071", "test")
    fake = s["manipulated_sequences/FaceSwap/c40/videos/000_003.mp4"]
    assert (fake.label, fake.method, fake.compression, fake.video_id) == ("fake", "FaceSwap", "c40", "000_003")
    assert fake.split == "train" and fake.source == "FaceSwap"
    # the pair shares one identity group; originals join their pair's group
    assert fake.group == s["original_sequences/youtube/c23/videos/003.mp4"].group == "ffpp:000"
    assert s["manipulated_sequences/Deepfakes/c23/videos/054_071.mp4"].group == real.group


def test_ffpp_without_split_lists_groups_by_pairs(tmp_path: Path) -> None:
    root = tmp_path / "ffpp"
    make_ffpp(root, with_splits=False)
    s = load_sources("ffpp", root)
    assert all(x.split == "" for x in s)
    assert {x.group for x in s} == {"ffpp:000", "ffpp:054"}
    with pytest.raises(LayoutError):
        load_sources("ffpp", tmp_path)


def test_celebdf_layout(tmp_path: Path) -> None:
    root = tmp_path / "Celeb-DF-v2"
    touch(root, "Celeb-real/id0_0000.mp4", "Celeb-real/id0_0001.mp4", "Celeb-real/id1_0000.mp4")
    touch(root, "YouTube-real/00000.mp4", "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0000.mp4")
    (root / "List_of_testing_videos.txt").write_text("1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id1_id0_0000.mp4\n")
    s = by_rel(load_sources("celebdf", root))
    assert len(s) == 6
    assert s["YouTube-real/00000.mp4"].split == "test" and s["Celeb-real/id0_0000.mp4"].split == ""
    fake = s["Celeb-synthesis/id0_id1_0000.mp4"]
    assert (fake.label, fake.method, fake.group) == ("fake", "celeb-synthesis", "Celeb-DF-v2:id0")
    assert s["Celeb-real/id0_0001.mp4"].group == "Celeb-DF-v2:id0" and s["Celeb-real/id0_0001.mp4"].label == "real"
    assert s["Celeb-synthesis/id1_id0_0000.mp4"].split == "test"


def test_dfdc_layout(tmp_path: Path) -> None:
    root = tmp_path / "dfdc"
    touch(root, "part0/aaa.mp4", "part0/bbb.mp4", "part0/ccc.mp4", "part1/ddd.mp4")
    meta0 = {
        "aaa.mp4": {"label": "REAL", "split": "train", "original": None},
        "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
        "ccc.mp4": {"label": "FAKE", "split": "train", "original": "ddd.mp4"},
        "gone.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
    }
    (root / "part0" / "metadata.json").write_text(json.dumps(meta0))
    (root / "part1" / "metadata.json").write_text(json.dumps({"ddd.mp4": {"label": "REAL", "split": "train"}}))
    s = by_rel(load_sources("dfdc", root))
    assert set(s) == {"part0/aaa.mp4", "part0/bbb.mp4", "part0/ccc.mp4", "part1/ddd.mp4"}
    assert s["part0/bbb.mp4"].group == s["part0/aaa.mp4"].group == "dfdc:aaa"
    assert s["part0/ccc.mp4"].group == s["part1/ddd.mp4"].group  # across folders
    assert s["part0/bbb.mp4"].label == "fake" and s["part1/ddd.mp4"].label == "real"
    assert all(x.split == "" for x in s.values())  # a uniform "train" carries no information
