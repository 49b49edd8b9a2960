"""Leak-free split assignment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from deepdetect.data.layouts import Source, load_sources
from deepdetect.data.splits import SplitLeakError, assign_splits, check_no_leak
from test_layouts import make_ffpp


def src(rel: str, label: str = "real", group: str = "", split: str = "", dataset: str = "d") -> Source:
    return Source(path=Path("/x") / rel, rel=rel, label=label, dataset=dataset, video_id=rel, group=group, split=split)


def as_frame(sources: list[Source]) -> pd.DataFrame:
    return pd.DataFrame({"group": [s.group for s in sources], "split": [s.split for s in sources],
                         "video_id": [s.video_id for s in sources]})  # fmt: skip


def test_groups_stay_together_and_fractions() -> None:
    sources = [src(f"v{g}_{k}", "fake" if k else "real", group=f"id{g}") for g in range(100) for k in range(3)]
    out = assign_splits(sources, val_fraction=0.2, test_fraction=0.1, seed=1)
    check_no_leak(as_frame(out))
    per_group = {s.group: s.split for s in out}
    counts = pd.Series(per_group).value_counts()
    assert counts["test"] == 10 and counts["val"] == 20 and counts["train"] == 70
    assert assign_splits(sources, 0.2, 0.1, seed=1) == out  # deterministic
    assert assign_splits(sources[::-1], 0.2, 0.1, seed=1) == out[::-1]  # order-independent
    assert assign_splits(sources, 0.2, 0.1, seed=2) != out


def test_explicit_splits_kept_and_followed() -> None:
    sources = [
        src("a", group="g1", split="test"),
        src("a_fake", "fake", group="g1"),  # follows its group's explicit split
        *(src(f"r{i}", group=f"h{i}") for i in range(20)),
    ]
    out = {s.rel: s for s in assign_splits(sources, val_fraction=0.1, test_fraction=0.3)}
    assert out["a"].split == "test" and out["a_fake"].split == "test"
    # an explicit test split exists in the dataset: nothing else is drawn into test
    assert {out[f"r{i}"].split for i in range(20)} == {"train", "val"}


def test_ungrouped_sources_group_by_video_and_unknown_untouched() -> None:
    out = assign_splits([src("x.jpg"), src("u.jpg", "unknown")], 0.0, 0.0)
    assert out[0].group == "d:x.jpg" and out[0].split == "train"
    assert out[1].split == ""
    with pytest.raises(ValueError):
        assign_splits([], 0.6, 0.5)


def test_ffpp_fakes_follow_originals(tmp_path: Path) -> None:
    make_ffpp(tmp_path / "ffpp", with_splits=False)
    sources = assign_splits(load_sources("ffpp", tmp_path / "ffpp"), 0.0, 0.5, seed=0)
    check_no_leak(as_frame(sources))
    by_vid: dict[str, set[str]] = {}
    for s in sources:
        for vid in s.video_id.split("_"):
            by_vid.setdefault(vid, set()).add(s.split)
    assert all(len(v) == 1 for v in by_vid.values())
    assert {s.split for s in sources} == {"train", "test"}


def test_check_no_leak_raises() -> None:
    frame = pd.DataFrame({"group": ["g", "g", "h"], "split": ["train", "test", "val"], "video_id": ["a", "b", "c"]})
    with pytest.raises(SplitLeakError, match="'g'"):
        check_no_leak(frame)
    frame = pd.DataFrame({"group": ["", ""], "split": ["train", "test"], "video_id": ["a", "a"]})
    with pytest.raises(SplitLeakError, match="video_id"):
        check_no_leak(frame)
    check_no_leak(pd.DataFrame({"group": ["g", "g"], "split": ["train", ""], "video_id": ["a", "a"]}))
