"""Property tests (hypothesis): manifest round trip and validation, leak-free splits, metric invariants."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepdetect.data.layouts import Source
from deepdetect.data.manifest import (
    LABELS,
    MANIFEST_COLUMNS,
    SPLITS,
    CropRecord,
    ManifestError,
    read_manifest,
    records_to_frame,
    write_manifest,
)
from deepdetect.data.splits import assign_splits, check_no_leak
from deepdetect.evaluation.aggregate import AGGREGATIONS, aggregate_scores, aggregate_videos
from deepdetect.evaluation.metrics import brier, ece, roc_auc

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a user's paths and tags may hold: any printable character (commas, quotes, unicode, spaces), no controls.
text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
coord = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def crop_records(draw: st.DrawFn) -> CropRecord:
    return CropRecord(
        crop_path=draw(text.filter(bool)),
        source_path=draw(text),
        label=draw(st.sampled_from(LABELS)),
        dataset=draw(text),
        source=draw(text),
        method=draw(text),
        compression=draw(st.sampled_from(["", "c23", "c40", "raw"])),
        video_id=draw(text),
        frame_index=draw(st.integers(0, 10**7)),
        track_id=draw(st.integers(0, 99)),
        x1=draw(coord),
        y1=draw(coord),
        x2=draw(coord),
        y2=draw(coord),
        det_score=draw(st.floats(0.0, 1.0)),
        landmarks=draw(st.one_of(st.just([]), st.lists(st.floats(0, 512), min_size=10, max_size=10))),
        split=draw(st.sampled_from(SPLITS)),
        group=draw(text),
    )


@SETTINGS
@given(st.lists(crop_records(), max_size=8))
def test_manifest_write_read_round_trip(records: list[CropRecord]) -> None:
    frame = records_to_frame(records)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.csv"
        write_manifest(frame, path)
        back = read_manifest(path)
        assert not list(Path(tmp).glob("*.tmp"))
    assert list(back.columns) == [*MANIFEST_COLUMNS, "abs_crop_path"]
    pd.testing.assert_frame_equal(back.drop(columns=["abs_crop_path"]), frame, check_exact=True)
    for rec, (_, row) in zip(records, back.iterrows(), strict=True):
        assert row["video_id"] == (rec.video_id or rec.source_path)  # empty video id := source path
        got = [float(v) for v in row["landmarks"].split()]
        assert got == pytest.approx(rec.landmarks, abs=0.005 + 1e-9)


@SETTINGS
@given(
    st.lists(crop_records(), min_size=1, max_size=4),
    st.sampled_from(["label", "split"]),
    text.filter(lambda s: s not in LABELS and s not in SPLITS and s == s.strip() and s != ""),
)
def test_read_manifest_rejects_bad_labels_and_splits(records: list[CropRecord], column: str, bad: str) -> None:
    frame = records_to_frame(records)
    frame.loc[len(frame) - 1, column] = bad
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.csv"
        frame.to_csv(path, index=False)
        with pytest.raises(ManifestError, match=f"unknown {column}s"):
            read_manifest(path)


# ---------------------------------------------------------------------------------------------------------- splits


@st.composite
def grouped_sources(draw: st.DrawFn) -> list[Source]:
    """Groups (an identity or an original video) of an original plus fakes made from it; some groups carry an
    explicit split on some of their members (as a dataset's own split files would), never two different ones."""
    n_groups = draw(st.integers(1, 12))
    out: list[Source] = []
    for g in range(n_groups):
        explicit = draw(st.sampled_from(["", "", "train", "val", "test"]))
        n_fakes = draw(st.integers(0, 3))
        dataset = draw(st.sampled_from(["a", "b"]))
        for k in range(n_fakes + 1):
            label = "real" if k == 0 else "fake"
            split = explicit if explicit and (k == 0 or draw(st.booleans())) else ""
            rel = f"{label}/g{g}_{k}.mp4"
            out.append(Source(Path("/d") / rel, rel, label, dataset, video_id=rel, group=f"id{g}", split=split))
    if draw(st.booleans()):
        out.append(Source(Path("/d/u.jpg"), "u.jpg", "unknown", "a", video_id="u.jpg"))
    return draw(st.permutations(out))


@SETTINGS
@given(grouped_sources(), st.floats(0.0, 0.45), st.floats(0.0, 0.45), st.integers(0, 2**31))
def test_split_assignment_properties(sources: list[Source], val: float, test: float, seed: int) -> None:
    out = assign_splits(sources, val, test, seed)
    assert [s.rel for s in out] == [s.rel for s in sources]
    frame = pd.DataFrame({"group": [s.group for s in out], "split": [s.split for s in out],
                          "video_id": [s.video_id for s in out]})  # fmt: skip
    check_no_leak(frame)
    per_group: dict[str, set[str]] = defaultdict(set)
    for before, after in zip(sources, out, strict=True):
        if before.split:
            assert after.split == before.split  # explicit splits are kept
        if after.label == "unknown":
            assert after.split == ""
            continue
        assert after.split in ("train", "val", "test")
        per_group[after.group].add(after.split)
    assert all(len(s) == 1 for s in per_group.values())  # fakes follow their original's split
    originals = {s.group: s.split for s in out if s.label == "real"}
    assert all(s.split == originals[s.group] for s in out if s.label == "fake")
    assert assign_splits(sources, val, test, seed) == out  # deterministic for a seed
    assert sorted(assign_splits(sources[::-1], val, test, seed), key=lambda s: s.rel) == sorted(
        out, key=lambda s: s.rel
    )


# --------------------------------------------------------------------------------------------------------- metrics


@st.composite
def scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Labels with both classes, and scores on a coarse grid (ties included, no float-rounding ties)."""
    n = draw(st.integers(2, 40))
    labels = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    labels[0], labels[1] = 0, 1
    scores = np.array(draw(st.lists(st.integers(0, 50), min_size=n, max_size=n)), dtype=np.float64) / 50.0
    return labels, scores


@SETTINGS
@given(scored(), st.randoms(use_true_random=False))
def test_auc_invariants(data: tuple[np.ndarray, np.ndarray], rnd) -> None:
    y, s = data
    auc = roc_auc(y, s)
    assert 0.0 <= auc <= 1.0
    assert roc_auc(y, -s) == pytest.approx(1.0 - auc, abs=1e-12)
    for transform in (np.exp, lambda x: x**3 + 2 * x - 7, lambda x: np.log1p(x) * 100):
        assert roc_auc(y, transform(s)) == pytest.approx(auc, abs=1e-12)
    order = np.arange(len(y))
    rnd.shuffle(order)
    assert roc_auc(y[order], s[order]) == pytest.approx(auc, abs=1e-12)


@SETTINGS
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), st.sampled_from(AGGREGATIONS), st.integers(1, 5))
def test_video_aggregation_within_frame_range(frames: list[float], method: str, k: int) -> None:
    score = aggregate_scores(np.array(frames), method=method, k=k)
    assert min(frames) - 1e-12 <= score <= max(frames) + 1e-12
    df = pd.DataFrame({"video_id": ["v"] * len(frames), "prob": frames, "label": ["fake"] * len(frames)})
    row = aggregate_videos(df, method=method, k=k).iloc[0]
    assert row["score"] == pytest.approx(score) and row["n_frames"] == len(frames)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0.0, 1.0)), min_size=1, max_size=60), st.integers(1, 20))
def test_ece_and_brier_in_unit_interval(pairs: list[tuple[int, float]], n_bins: int) -> None:
    y = np.array([p[0] for p in pairs])
    probs = np.array([p[1] for p in pairs])
    assert 0.0 <= brier(y, probs) <= 1.0
    assert 0.0 <= ece(y, probs, n_bins=n_bins) <= 1.0 + 1e-12
