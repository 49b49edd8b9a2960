"""Datasets, transforms and sampling: eval preprocessing equals inference, sampling is video-aware and balanced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from deepdetect.contract import Preprocess
from deepdetect.contract.preprocess import prepare_batch
from deepdetect.data.dataset import CropDataset, read_crop
from deepdetect.data.manifest import read_manifest, select_split
from deepdetect.data.sampling import EpochSampler, balance_weights, keep_groups
from deepdetect.data.transforms import build_transforms
from tiny_data import make_tiny_manifest

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "augment"
PRE = Preprocess(input_size=(48, 48), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation="bicubic")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_manifest(tmp_path_factory.mktemp("tiny"), n_videos=16, frames_per_video=3)


def test_eval_transform_matches_prepare_batch(manifest: Path) -> None:
    frame = read_manifest(manifest)
    _, eval_tf = build_transforms(None, PRE)
    crops = [read_crop(p) for p in frame["abs_crop_path"][:4]]
    ours = np.stack([eval_tf(c).numpy() for c in crops])
    np.testing.assert_array_equal(ours, prepare_batch(crops, PRE))


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml")))
def test_augment_configs_are_seeded(name: str) -> None:
    train_tf, _ = build_transforms(OmegaConf.load(CONFIGS / f"{name}.yaml"), PRE)
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    a, b = train_tf(img, seed=7), train_tf(img, seed=7)
    assert a.shape == (3, 48, 48)
    assert a.dtype.is_floating_point
    assert bool((a == b).all())


def test_frames_per_video_and_determinism(manifest: Path) -> None:
    train = select_split(read_manifest(manifest), "train")
    sampler = EpochSampler(train, frames_per_video=1, balance="none", seed=3)
    sampler.set_epoch(0)
    first = list(sampler)
    assert len(first) == len(sampler) == train["video_id"].nunique()
    assert train.iloc[first]["video_id"].is_unique
    again = EpochSampler(train, frames_per_video=1, balance="none", seed=3)
    again.set_epoch(0)
    assert list(again) == first
    sampler.set_epoch(1)
    assert list(sampler) != first or len(first) < 2


def test_balance_weights_equalise_groups(manifest: Path) -> None:
    train = select_split(read_manifest(manifest), "train").iloc[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12]]
    w = balance_weights(train, "class")
    sums = {lab: w[(train["label"] == lab).to_numpy()].sum() for lab in ("real", "fake")}
    assert sums["real"] == pytest.approx(sums["fake"])
    w = balance_weights(train, "source")
    keys = train["source"] + train["label"]
    assert np.allclose([w[(keys == k).to_numpy()].sum() for k in keys.unique()], 1 / keys.nunique())
    with pytest.raises(ValueError, match="balance"):
        balance_weights(train, "bogus")


def test_ddp_shards_cover_the_epoch(manifest: Path) -> None:
    train = select_split(read_manifest(manifest), "train")
    shards = [list(EpochSampler(train, None, "none", seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(len(train)))


def test_sbi_only_dataset_labels(manifest: Path) -> None:
    frame = read_manifest(manifest)
    reals = select_split(frame, "train")
    reals = reals[reals["label"] == "real"]
    train_tf, _ = build_transforms(None, PRE)
    ds = CropDataset(reals, train_tf, sbi_mode="only", sbi_prob=0.5, seed=0)
    labels = [float(ds[i][1]) for i in range(len(ds))]
    assert set(labels) <= {0.0, 1.0} and 0 < sum(labels) < len(labels)
    assert float(CropDataset(reals, train_tf, sbi_mode="off")[0][1]) == 0.0


def test_cv_split_partitions_whole_groups_and_spreads_datasets_and_labels() -> None:
    import pandas as pd

    from deepdetect.data.sampling import cv_split

    rows = []
    for p in range(9):  # 9 people with an original/swap pair each: both halves share the person's group
        rows += [("dfl", f"dfl:p{p}", label, f"{label}/p{p}.mp4") for label in ("real", "fake")]
    for g in range(6):  # 3 real and 3 fake groups in another dataset
        rows += [("ffpp", f"ff:g{g}", "real" if g < 3 else "fake", f"ff/{g}_{k}.mp4") for k in range(2)]
    frame = pd.DataFrame(rows, columns=["dataset", "group", "label", "video_id"]).assign(source=lambda f: f.dataset)
    seen: list[str] = []
    for fold in range(3):
        train, val = cv_split(frame, 3, fold, seed=5)
        assert len(train) + len(val) == len(frame)
        assert not set(train["group"]) & set(val["group"])  # a person is never on both sides
        assert (val.groupby("group")["label"].nunique().loc[lambda s: s.index.str.startswith("dfl")] == 2).all()
        assert val.groupby("dataset")["group"].nunique().to_dict() == {"dfl": 3, "ffpp": 2}
        assert set(val[val.dataset == "ffpp"]["label"]) == {"real", "fake"}
        seen += sorted(set(val["group"]))
    assert sorted(seen) == sorted(set(frame["group"]))  # every group validated exactly once
    assert cv_split(frame, 3, 1, seed=5)[1].equals(cv_split(frame, 3, 1, seed=5)[1])
    assert not cv_split(frame, 3, 1, seed=5)[1].equals(cv_split(frame, 3, 1, seed=6)[1])
    for folds, fold in ((1, 0), (3, 3), (3, -1)):
        with pytest.raises(ValueError, match="cv_fold"):
            cv_split(frame, folds, fold)


def test_keep_groups_nests_per_source_and_refuses_bad_fractions() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "source": ["a"] * 20 + ["b"] * 4,
            "group": [f"a{i // 2}" for i in range(20)] + ["b0", "b0", "b1", "b1"],
        }
    )
    half = keep_groups(frame, 0.5, seed=1)
    fifth = keep_groups(frame, 0.2, seed=1)
    assert half.groupby("source")["group"].nunique().to_dict() == {"a": 5, "b": 1}
    assert fifth.groupby("source")["group"].nunique().to_dict() == {"a": 2, "b": 1}
    assert set(fifth["group"]) <= set(half["group"])  # learning-curve points are nested
    assert len(keep_groups(frame, None)) == len(keep_groups(frame, 1.0)) == len(frame)
    assert (half.groupby("group").size() == 2).all()  # whole groups, never part of one
    for bad in (0, 1.5, -0.1, True):
        with pytest.raises(ValueError, match="train_groups"):
            keep_groups(frame, bad)


def test_training_with_cv_folds_validates_on_held_out_train_and_val_groups(tmp_path: Path) -> None:
    from deepdetect.training.settings import DataSettings
    from deepdetect.training.setup import load_frames
    from tiny_data import make_tiny_manifest

    manifest = make_tiny_manifest(tmp_path, n_videos=24)
    plain_train, plain_val, _ = load_frames(DataSettings(manifest=str(manifest)), seed=0)
    pool = set(plain_train["group"]) | set(plain_val["group"])
    held: list[str] = []
    for fold in range(2):
        train, val, _ = load_frames(DataSettings(manifest=str(manifest), cv_folds=2, cv_fold=fold), seed=0)
        assert not set(train["group"]) & set(val["group"])
        assert set(train["group"]) | set(val["group"]) == pool  # test rows stay out
        held += list(set(val["group"]))
    assert sorted(held) == sorted(pool)


def test_paired_sampler_draws_an_original_frame_and_its_swap_side_by_side() -> None:
    import pandas as pd

    from deepdetect.data.sampling import EpochSampler, pair_units

    rows = []
    for name in ("A_0.mp4", "B_0.mp4"):
        for label in ("real", "fake"):
            rows += [(f"/d/{label}/{name}", label, f"{label}/{name}", f, f"g{name[0]}") for f in range(4)]
    rows += [("/d/ff/solo.mp4", "real", "ff/solo.mp4", f, "gsolo") for f in range(3)]  # no partner
    frame = pd.DataFrame(rows, columns=["source_path", "label", "video_id", "frame_index", "group"])
    frame["source"] = "s"
    units = pair_units(frame)
    assert sorted(len(u) for u in units) == [3, 4, 4] and all(len(x) == 2 for u in units if len(u) == 4 for x in u)
    for balance in ("none", "class"):
        sampler = EpochSampler(frame, frames_per_video=2, balance=balance, seed=3, paired=True)
        stream = sampler.epoch_indices()
        assert len(stream) == len(sampler) == 2 * 2 + 2 * 2 + 2
        i = 0
        while i < len(stream):  # every real of a pair is followed by the fake made from the same frame
            row = frame.iloc[stream[i]]
            if row["group"] != "gsolo" and i + 1 < len(stream):  # (a weighted draw may cut the last pair)
                nxt = frame.iloc[stream[i + 1]]
                assert (row["label"], nxt["label"]) == ("real", "fake")
                assert (row["frame_index"], row["video_id"][5:]) == (nxt["frame_index"], nxt["video_id"][5:])
                i += 2
            else:
                i += 1
    shards = [list(EpochSampler(frame, 2, "none", seed=3, rank=r, world_size=2, paired=True)) for r in (0, 1)]
    assert shards[0] + shards[1] == list(EpochSampler(frame, 2, "none", seed=3, paired=True).epoch_indices())


def test_write_reals_keeps_the_reals_and_the_face_crop_record(tmp_path: Path) -> None:
    import json

    from deepdetect.data.manifest import write_reals

    src = make_tiny_manifest(tmp_path / "src")
    (src.parent / "extract.json").write_text(json.dumps({"face_crop": {"size": 48, "margin": 0.3}}))
    out = write_reals(src, tmp_path / "reals" / "manifest.csv")
    frame, reals = read_manifest(src), read_manifest(out)
    assert set(reals["label"]) == {"real"} and len(reals) == int((frame["label"] == "real").sum()) > 0
    assert all(Path(p).is_file() for p in reals["abs_crop_path"])  # crop paths still found from the new folder
    assert json.loads((out.parent / "extract.json").read_text())["face_crop"]["size"] == 48
