"""Dataset layouts on tiny generated folder trees (empty placeholder files: layouts never decode)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deepdetect.data.layouts import LayoutError, list_layouts, load_sources
from deepdetect.data.splits import assign_splits, check_no_leak


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


def test_folder_pairs_share_a_group_and_affixed_label_folders(tmp_path: Path) -> None:
    """real/X and fake/X (an original and its swap) are one group; `fake-dfd/`, `frames-fake/M/` are label folders."""
    root = tmp_path / "swaps"
    touch(root, "real/Ann_0.mp4", "fake/Ann_0.mp4", "real/Ann_1.mp4", "fake/Ann_1.mp4", "fake/Bob_0.mp4")
    touch(root, "fake-dfd/01_02__scene__H.mp4", "frames-fake/Deepfakes/x_frame1.jpg", "real_extra/z.jpg")
    s = by_rel(load_sources("folder", root))
    assert s["real/Ann_0.mp4"].group == s["fake/Ann_0.mp4"].group != s["real/Ann_1.mp4"].group
    assert s["real/Ann_0.mp4"].video_id != s["fake/Ann_0.mp4"].video_id
    assert (s["fake-dfd/01_02__scene__H.mp4"].label, s["fake-dfd/01_02__scene__H.mp4"].source) == ("fake", "fake-dfd")
    assert s["frames-fake/Deepfakes/x_frame1.jpg"].method == "Deepfakes"
    assert s["real_extra/z.jpg"].label == "real"


def test_group_pattern_keeps_a_persons_clips_together(tmp_path: Path) -> None:
    root = tmp_path / "swaps"
    names = [f"{n}_{k}.mp4" for n in ("Ann", "Bob", "Cy_Dee", "Ed", "Flo", "Gus") for k in range(3)]
    touch(root, *[f"{lab}/{n}" for n in names for lab in ("real", "fake")], "fake/Solo.mp4")
    sources = load_sources("folder", root, group_pattern=r"^(.+)_\d+$")
    groups = {s.rel: s.group for s in sources}
    assert groups["real/Ann_0.mp4"] == groups["fake/Ann_2.mp4"] == groups["real/Ann_1.mp4"]
    assert groups["real/Cy_Dee_0.mp4"] == groups["fake/Cy_Dee_1.mp4"] != groups["real/Ann_0.mp4"]
    assert len({groups[r] for r in groups}) == 7  # six people + the unmatched file
    split = assign_splits(sources, 0.2, 0.2, seed=3)
    frame = pd.DataFrame([vars(x) for x in split])
    check_no_leak(frame)
    assert frame.groupby("group")["split"].nunique().max() == 1
    # a list of patterns: the first that matches is used; named group `group` wins over position
    both = load_sources("folder", root, group_pattern=[r"^Solo$", r"^(?P<x>.)(?P<group>.)"])
    assert len({s.group for s in both}) == 7  # by 2nd letter: n, o, y, d, l, u; Solo by the first pattern


def test_groups_only_merge(tmp_path: Path) -> None:
    """A pattern never splits what a layout joined (pairs stay together even when their stems differ)."""
    root = tmp_path / "ffpp"
    touch(
        root, "original_sequences/youtube/c23/videos/000.mp4", "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4"
    )
    touch(root, "original_sequences/youtube/c23/videos/003.mp4")
    s = by_rel(load_sources("ffpp", root, group_pattern=r"^(\d+)$"))
    assert len({x.group for x in s.values()}) == 1


@pytest.mark.parametrize(
    ("folder", "pattern"),
    [
        ("faceswap-dfl", r"^(.+)_\d+$"),
        ("ffpp-c23", [r"^(\d+)_\d+__", r"_(\d+)_\d+_frame\d+$"]),
    ],
)
def test_dev_face_swap_folders_split_without_leaks(dev_data: Path, folder: str, pattern: object) -> None:
    root = dev_data / folder
    if not root.is_dir():
        pytest.skip(f"{root} not present in this copy of the development data")
    sources = assign_splits(load_sources("folder", root, group_pattern=pattern), 0.2, 0.25, seed=0)  # type: ignore[arg-type]
    frame = pd.DataFrame([vars(x) for x in sources])
    check_no_leak(frame)
    assert set(frame["label"]) == {"real", "fake"}
    if folder == "faceswap-dfl":
        frame["person"] = frame["path"].map(lambda p: Path(p).stem.rsplit("_", 1)[0])
        assert frame.groupby("person")["split"].nunique().max() == 1  # one celebrity model, one split
        pairs = frame.assign(stem=frame["path"].map(lambda p: Path(p).stem)).groupby("stem")["split"].nunique()
        assert pairs.max() == 1
        assert set(frame["split"]) == {"train", "val", "test"}
