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


def split_frame(sources: list, seed: int = 0) -> pd.DataFrame:
    """Leak-free splits of `sources` as a manifest-like frame, checked by `check_no_leak`."""
    frame = pd.DataFrame([vars(x) for x in assign_splits(sources, 0.25, 0.25, seed=seed)])
    check_no_leak(frame)
    return frame


def test_ffpp_real_tree_masks_and_deepfakedetection(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The tree FF++'s download script writes: youtube + actors originals, five methods, DFD, masks beside videos."""
    root = tmp_path / "FaceForensics++"
    yt = ("000", "003", "071", "054", "100", "200")
    touch(root, *(f"original_sequences/youtube/c23/videos/{v}.mp4" for v in yt))
    scenes = {"01": "exit_phone_room", "02": "kitchen_pan", "03": "podium_speech_happy", "04": "talking_angry_couch"}
    touch(root, *(f"original_sequences/actors/c23/videos/{a}__{sc}.mp4" for a, sc in scenes.items()))
    for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"):
        touch(root, *(f"manipulated_sequences/{method}/c23/videos/{p}.mp4" for p in ("000_003", "003_000", "100_200")))
        if method != "FaceShifter":  # FF++ ships no FaceShifter masks
            touch(root, *(f"manipulated_sequences/{method}/masks/videos/{p}.mp4" for p in ("000_003", "003_000")))
    dfd = ("01_02__exit_phone_room__YVGY8LOK", "02_01__kitchen_pan__A1B2C3D4", "03_04__podium_speech_happy__ZK95PQDE")
    touch(root, *(f"manipulated_sequences/DeepFakeDetection/c23/videos/{v}.mp4" for v in dfd))
    touch(root, *(f"manipulated_sequences/DeepFakeDetection/masks/videos/{v}.mp4" for v in dfd))
    (root / "splits").mkdir()
    (root / "splits" / "train.json").write_text(json.dumps([["000", "003"]]))
    (root / "splits" / "test.json").write_text(json.dumps([["071", "054"], ["100", "200"]]))

    with caplog.at_level("INFO", logger="deepdetect.data.layouts"):
        sources = load_sources("ffpp", root)
    s = by_rel(sources)
    assert not any("/masks/" in rel for rel in s)
    assert {x.compression for x in sources} == {"c23"}
    assert "skipped 11 files under manipulated_sequences/*/masks/" in caplog.text  # 4 methods x 2 + 3 DFD
    assert len(sources) == 6 + 4 + 5 * 3 + 3
    assert {x.method for x in sources if x.label == "fake"} == {
        "Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection",
    }  # fmt: skip
    actor1 = s["original_sequences/actors/c23/videos/01__exit_phone_room.mp4"]
    assert (actor1.label, actor1.source, actor1.method, actor1.split) == ("real", "actors", "", "")
    fake12 = s["manipulated_sequences/DeepFakeDetection/c23/videos/01_02__exit_phone_room__YVGY8LOK.mp4"]
    assert (fake12.label, fake12.method, fake12.source, fake12.video_id) == (
        "fake", "DeepFakeDetection", "DeepFakeDetection", "01_02__exit_phone_room__YVGY8LOK",
    )  # fmt: skip
    actor2 = s["original_sequences/actors/c23/videos/02__kitchen_pan.mp4"]
    # a DFD fake joins its target's and its source's groups: actors 01 and 02 are one group, 03 and 04 another
    assert (
        actor1.group
        == fake12.group
        == actor2.group
        != s["original_sequences/actors/c23/videos/03__podium_speech_happy.mp4"].group
    )
    assert s["original_sequences/actors/c23/videos/04__talking_angry_couch.mp4"].group == (
        s["manipulated_sequences/DeepFakeDetection/c23/videos/03_04__podium_speech_happy__ZK95PQDE.mp4"].group
    )
    assert s["manipulated_sequences/FaceShifter/c23/videos/100_200.mp4"].split == "test"
    for seed in range(5):  # no actor's real and fake videos in two splits, whatever the draw
        frame = split_frame(sources, seed)
        dfd_part = frame[frame["source"].isin(["actors", "DeepFakeDetection"])]
        actors = dfd_part["video_id"].str.extract(r"^(\d+)_")[0]
        by_actor = dfd_part.assign(actor=actors).groupby("actor")["split"].nunique()
        assert by_actor.max() == 1
        pairs = frame[frame["source"] != "actors"].groupby("group")["split"].nunique()
        assert pairs.max() == 1


def make_celebdf(root: Path) -> None:
    """Celeb-DF v2 in miniature: 6 celebrities x 2 clips, fakes swapping in other celebrities, YouTube-real, and a
    testing list like the official one (a real clip with its fakes, plus a fake whose original is not listed)."""
    ids = [f"id{i}" for i in range(6)]
    touch(root, *(f"Celeb-real/{i}_{k:04d}.mp4" for i in ids for k in range(2)))
    swaps = [(t, s) for n, t in enumerate(ids) for s in (ids[(n + 1) % 6], ids[(n + 2) % 6])]
    touch(root, *(f"Celeb-synthesis/{t}_{s}_{k:04d}.mp4" for t, s in swaps for k in range(2)))
    touch(root, *(f"YouTube-real/{k:05d}.mp4" for k in range(6)))
    listed = [
        "1 YouTube-real/00000.mp4", "1 YouTube-real/00001.mp4", "1 Celeb-real/id0_0001.mp4",
        "0 Celeb-synthesis/id0_id1_0001.mp4", "0 Celeb-synthesis/id0_id2_0001.mp4",
        "0 Celeb-synthesis/id3_id5_0000.mp4",
    ]  # fmt: skip
    (root / "List_of_testing_videos.txt").write_text("\n".join(listed) + "\n")


def test_celebdf_real_tree_official_test_and_identity_groups(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "Celeb-DF-v2"
    make_celebdf(root)
    with caplog.at_level("INFO", logger="deepdetect.data.layouts"):
        sources = load_sources("celebdf", root)
    s = by_rel(sources)
    assert len(sources) == 12 + 24 + 6
    assert "6 of 6 listed test videos found; 2 unlisted videos share a clip with a test video" in caplog.text
    assert {(x.source, x.label, x.method) for x in sources} == {
        ("Celeb-real", "real", ""), ("YouTube-real", "real", ""), ("Celeb-synthesis", "fake", "celeb-synthesis"),
    }  # fmt: skip
    assert s["Celeb-synthesis/id0_id1_0001.mp4"].split == "test" and s["Celeb-real/id0_0000.mp4"].split == ""
    for seed in range(5):
        frame = split_frame(sources, seed).set_index("rel")
        test = set(frame.index[frame["split"] == "test"])
        # the listed videos, plus the unlisted original (and its other fake) of a listed fake: no shared frames
        assert test == {line.split()[1] for line in (root / "List_of_testing_videos.txt").read_text().splitlines()} | {
            "Celeb-real/id3_0000.mp4", "Celeb-synthesis/id3_id4_0000.mp4",
        }  # fmt: skip
        rest = frame[frame["split"] != "test"]
        assert set(rest["split"]) == {"train", "val"}
        celeb = rest[rest["source"] != "YouTube-real"]
        identity = celeb.index.str.extract(r"/(id\d+)_", expand=False)
        assert celeb.assign(identity=identity).groupby("identity")["split"].nunique().max() == 1  # train ∩ val = ∅


def test_celebdf_bad_test_list_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "Celeb-DF-v2"
    touch(root, "Celeb-real/id0_0000.mp4")
    (root / "List_of_testing_videos.txt").write_text("Celeb-real/id0_0000.mp4\n")
    with pytest.raises(LayoutError, match=r"List_of_testing_videos.txt:1: expected"):
        load_sources("celebdf", root)


def test_dfdc_real_tree_parts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Kaggle's DFDC download: dfdc_train_part_<n>/ folders, each with its metadata.json; fakes name their original."""
    root = tmp_path / "dfdc_train"
    meta = {
        "dfdc_train_part_0": {
            "aaa.mp4": {"label": "REAL", "split": "train"},
            "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
            "ccc.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
            "gone.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
        },
        "dfdc_train_part_1": {
            "ddd.mp4": {"label": "REAL", "split": "train"},
            "eee.mp4": {"label": "FAKE", "split": "train", "original": "ddd.mp4"},
            "fff.mp4": {"label": "REAL", "split": "train"},
        },
    }
    for part, entries in meta.items():
        touch(root, *(f"{part}/{name}" for name in entries if name != "gone.mp4"))
        (root / part / "metadata.json").write_text(json.dumps(entries))
    touch(root, "dfdc_train_part_1/stray.mp4")
    with caplog.at_level("INFO", logger="deepdetect.data.layouts"):
        sources = load_sources("dfdc", root)
    assert "1 files listed in metadata.json are missing; 1 media files unlisted" in caplog.text
    s = by_rel(sources)
    assert len(s) == 6
    assert {(x.label, x.method) for x in sources} == {("real", ""), ("fake", "dfdc")}
    assert s["dfdc_train_part_0/ccc.mp4"].source == "dfdc_train_part_0"
    groups = {x.rel.split("/")[1]: x.group for x in sources}
    assert groups["aaa.mp4"] == groups["bbb.mp4"] == groups["ccc.mp4"] != groups["ddd.mp4"] == groups["eee.mp4"]
    assert len(set(groups.values())) == 3
    for seed in range(3):
        frame = split_frame(sources, seed)
        assert frame.groupby("group")["split"].nunique().max() == 1
    (root / "dfdc_train_part_1" / "metadata.json").write_text(json.dumps(["ddd.mp4"]))
    with pytest.raises(LayoutError, match="expected"):
        load_sources("dfdc", root)
