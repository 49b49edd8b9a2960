"""The temporal expert: consecutive-frame sampling, temporal self-blends, clip features and the head that reads them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdetect.data.clips import Clip, clips_of
from deepdetect.data.extract import ExtractSettings, run_fingerprint
from deepdetect.data.temporal_blend import lower_face_mask, temporal_blend
from deepdetect.media import read_video_frames, sample_frame_indices
from deepdetect.models.detector import build_detector, resolve_preprocess
from deepdetect.models.temporal import (
    FEATURE_NAMES,
    TemporalHead,
    clip_features,
    embed,
    fit_head,
    lower_face_crops,
    lower_preprocess,
)
from face_images import lfw_face
from media_corpus import frame_index_of, make_video
from tiny_data import tiny_landmarks68

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_consecutive_sampling_takes_a_sequence_from_the_middle() -> None:
    assert sample_frame_indices(100, 16, sampling="consecutive") == list(range(42, 58))
    assert sample_frame_indices(100, 4, 2, sampling="consecutive") == [46, 48, 50, 52]
    assert sample_frame_indices(10, 16, sampling="consecutive") == list(range(10)), "a short video: all of it"
    assert sample_frame_indices(100, 4) == [12, 37, 62, 87], "even sampling unchanged"
    with pytest.raises(ValueError, match="frame sampling"):
        sample_frame_indices(100, 4, sampling="random")


@pytest.mark.parametrize(("fps", "clip_fps", "step"), [(10, None, 1), (20, 10, 2)])
def test_consecutive_frames_decode_in_order(tmp_path: Path, fps: int, clip_fps: int | None, step: int) -> None:
    video = make_video(tmp_path / "v.mp4", 120, fps=fps, gop_size=12)
    frames = read_video_frames(video, 6, sampling="consecutive", clip_fps=clip_fps)
    indices = [i for i, _ in frames]
    assert indices == list(range(indices[0], indices[0] + 6 * step, step))
    assert 40 <= indices[0] <= 60, "from the middle of the video"
    assert [frame_index_of(f) for _, f in frames] == indices, "the decoded pictures are those frames"


def test_extract_settings_refuse_a_bad_sampling_and_keep_old_fingerprints() -> None:
    with pytest.raises(ValueError, match="frame_sampling"):
        ExtractSettings.from_config({"frame_sampling": "random"})
    cfg = {"layout": "folder"}
    old = run_fingerprint(cfg, ExtractSettings(), "x")
    assert "frame_sampling" not in old["inputs"]["settings"], "earlier extractions keep their fingerprint"
    clips = run_fingerprint(cfg, ExtractSettings(frame_sampling="consecutive", clip_fps=25), "x")
    assert clips["fingerprint"] != old["fingerprint"]


def _face_clip(n: int = 10, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    faces = [Image.fromarray(lfw_face(3, max(120, 110 + n), (10, 10 + k))).resize((size, size)) for k in range(n)]
    frames = np.stack([np.asarray(f) for f in faces])
    pts = np.asarray(tiny_landmarks68(size, np.random.default_rng(0)), dtype=np.float32).reshape(68, 2)
    return frames, np.repeat(pts[None], n, axis=0)


@pytest.mark.parametrize("kind", ["flicker", "desync"])
def test_temporal_blend_changes_only_the_lower_face_and_each_frame_differently(kind: str) -> None:
    frames, pts = _face_clip()
    fake, got = temporal_blend(frames, pts, np.random.default_rng(1), kind)
    assert got == kind and fake.shape == frames.shape and fake.dtype == np.uint8
    grown = lower_face_mask(frames.shape[1:3], pts[0])  # the blend's mask moves a little and is blurred
    rows = np.nonzero(grown > 0)[0]
    far = np.ones(grown.shape, dtype=bool)  # well away from the lower face: the forehead band stays untouched
    far[max(0, rows.min() - 20) :, :] = False
    changed = np.abs(fake.astype(int) - frames.astype(int)).sum(axis=-1) > 0
    assert changed.any(), "the blend changed something"
    assert not changed[:, far].any(), "nothing changes far from the lower face"
    per_frame = [np.abs(fake[t].astype(int) - frames[t].astype(int)).mean() for t in range(len(frames))]
    assert len({round(v, 3) for v in per_frame}) > 2, "each frame gets its own draw"
    with pytest.raises(ValueError, match="landmark"):
        temporal_blend(frames, pts[:3], np.random.default_rng(0))


def _synthetic_clip(rng: np.random.Generator, flicker: bool, n: int = 12, size: int = 48) -> np.ndarray:
    """A smooth scene drifting slowly; `flicker` adds a lower-half patch whose brightness jumps every frame."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    out = []
    for t in range(n):
        base = 128 + 60 * np.sin(xx / 7.0 + 0.08 * t + phase) * np.cos(yy / 9.0)
        if flicker:
            base[size // 2 + 4 : size - 4, size // 4 : 3 * size // 4] += rng.uniform(-70, 70)
        out.append(np.repeat(np.clip(base, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return np.stack(out)


def test_tiny_head_learns_flicker_and_scores_a_steady_clip_low() -> None:
    import torch

    torch.manual_seed(0)
    model, _ = build_detector("test_efficientnet")
    prep = resolve_preprocess(model, 48)
    lower = lower_preprocess(prep, 32)
    rng = np.random.default_rng(0)

    def features(clip: np.ndarray) -> np.ndarray:
        face = embed(model, list(clip), prep)
        return clip_features(face, embed(model, lower_face_crops(clip, None), lower))

    x = np.stack([features(_synthetic_clip(rng, flicker=bool(i % 2))) for i in range(16)])
    y = np.arange(16) % 2
    assert x.shape == (16, len(FEATURE_NAMES)) and np.isfinite(x).all()
    head = TemporalHead.from_dict(json.loads(json.dumps(fit_head(x, y).to_dict())))  # through its JSON form
    steady = head.probs(features(_synthetic_clip(rng, flicker=False))[None])[0]
    flicker = head.probs(features(_synthetic_clip(rng, flicker=True))[None])[0]
    assert steady < 0.5 < flicker, (steady, flicker)
    with pytest.raises(ValueError, match="real"):
        fit_head(x, np.zeros(16, dtype=int))
    with pytest.raises(ValueError, match="temporal head"):
        TemporalHead.from_dict({"feature_names": ["a"], "mean": [0.0], "scale": [1.0]})


def test_conv_head_learns_flicker_from_the_sequence_and_round_trips(tmp_path: Path) -> None:
    import torch

    from deepdetect.models.temporal_seq import SequenceHead, fit_sequence_head, sequence

    torch.manual_seed(0)
    model, _ = build_detector("test_efficientnet")
    prep = resolve_preprocess(model, 48)
    lower = lower_preprocess(prep, 32)
    rng = np.random.default_rng(0)

    def streams(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return embed(model, list(clip), prep), embed(model, lower_face_crops(clip, None), lower)

    train = [streams(_synthetic_clip(rng, flicker=bool(i % 2))) for i in range(16)]
    head = fit_sequence_head(train, np.arange(16) % 2, k=4, epochs=150)
    assert sequence(train[0], head.basis_face, head.basis_lower).shape == (2 * 4 + 2, 11), "C x (T - 1)"
    test = [streams(_synthetic_clip(rng, flicker=f)) for f in (False, False, True, True)]
    probs = head.probs(test)
    assert max(probs[:2]) < min(probs[2:]), probs
    head.save(tmp_path / "head.npz")
    again = SequenceHead.load(tmp_path / "head.npz")
    np.testing.assert_allclose(again.logits(test), head.logits(test), rtol=0, atol=1e-6)
    assert again.logits([*test[:1], (test[0][0][:5], test[0][1][:5])]).shape == (2,), "clips of other lengths"
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="not a temporal sequence head"):
        SequenceHead.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="real"):
        fit_sequence_head(train, np.zeros(16, dtype=int))


def _write_clip(root: Path, vid: str, label: str, split: str, n: int, seed: int) -> list[dict[str, object]]:
    frames, pts = _face_clip(n)
    shift = seed * 3
    rows = []
    for t in range(n):
        path = root / vid / f"{t:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.roll(frames[t], shift, axis=1)).save(path)
        rows.append(
            {
                "crop_path": str(path),
                "abs_crop_path": str(path),
                "video_id": vid,
                "label": label,
                "source": "src",
                "group": vid,
                "split": split,
                "frame_index": 100 + t,
                "det_score": 0.99,
                "landmarks68": " ".join(f"{v:.2f}" for v in pts[t].reshape(-1)),
            }
        )
    return rows


def test_clips_and_training_on_real_clips_only(tmp_path: Path) -> None:
    import pandas as pd

    from deepdetect.training.temporal import TemporalSettings, load_expert, score_clips, train_temporal

    rows = []
    for i, split in enumerate(["train", "train", "train", "val", "val"]):
        rows += _write_clip(tmp_path / "crops", f"v{i}", "real", split, 8, i)
    rows += _write_clip(tmp_path / "crops", "short", "real", "train", 2, 9)
    clips, skipped = clips_of(pd.DataFrame(rows), min_frames=6)
    assert [c.video_id for c in clips] == ["v0", "v1", "v2", "v3", "v4"] and "short" in skipped
    assert isinstance(clips[0], Clip) and clips[0].landmarks is not None and clips[0].landmarks.shape == (8, 68, 2)
    settings = TemporalSettings.from_config(
        {
            "backbone": "test_efficientnet",
            "pretrained": False,
            "input_size": 64,
            "lower_size": 32,
            "min_frames": 6,
            "blends_per_clip": 4,
        }
    )
    head, info = train_temporal(settings, clips, tmp_path / "run")
    assert info["train_clips"] == {"real": 3, "windows": 3, "blends": 12} and info["val_clips"]["real"] == 2
    assert info["val_fpr"] <= 0.5, "threshold set on validation reals"
    stored, again = load_expert(tmp_path / "run")
    assert stored == settings and again == head
    from deepdetect.training.temporal import ClipFeaturizer

    featurizer = ClipFeaturizer(settings, tmp_path / "run" / "cache")
    scored = score_clips(featurizer, head, clips)
    assert len(scored) == 5 and scored["prob"].between(0, 1).all() and (scored["n_frames"] == 8).all()
    with pytest.raises(ValueError, match="unknown temporal settings"):
        TemporalSettings.from_config({"blends": 3})
    with pytest.raises(ValueError, match="head must be one of"):
        TemporalSettings.from_config({"head": "gru"})

    conv = TemporalSettings.from_config({**asdict(settings), "head": "conv", "pca_k": 2, "epochs": 20})
    conv_head, conv_info = train_temporal(conv, clips, tmp_path / "conv")
    assert conv_info["train_clips"] == info["train_clips"]
    stored, again = load_expert(tmp_path / "conv")
    assert stored == conv and json.loads((tmp_path / "conv" / "temporal.json").read_text())["head"]["kind"] == "conv"
    featurizer = ClipFeaturizer(conv, tmp_path / "conv" / "cache")
    first, second = score_clips(featurizer, conv_head, clips), score_clips(featurizer, again, clips)
    np.testing.assert_allclose(first["logit"], second["logit"], rtol=0, atol=1e-6)
    assert again.threshold == conv_head.threshold and again.temperature == conv_head.temperature


def test_windows_cut_a_clip_into_consecutive_whole_windows() -> None:
    from deepdetect.data.clips import windows

    marks = np.arange(10 * 68 * 2, dtype=np.float32).reshape(10, 68, 2)
    clip = Clip("v", "real", "s", "g", "train", tuple(f"f{i}.png" for i in range(10)), tuple(range(10, 20)), marks)
    cut = windows(clip, 4)
    assert [w.frame_indices for w in cut] == [(10, 11, 12, 13), (14, 15, 16, 17)], "the last two frames dropped"
    assert [w.paths[0] for w in cut] == ["f0.png", "f4.png"] and all(w.video_id == "v" for w in cut)
    assert cut[1].landmarks is not None
    np.testing.assert_array_equal(cut[1].landmarks, marks[4:8])
    assert windows(clip, None) == [clip] and windows(clip, 10) == [clip] and windows(clip, 16) == [clip]


def test_windowed_training_uses_every_window_and_scores_a_video_as_their_mean(tmp_path: Path) -> None:
    import pandas as pd

    from deepdetect.training.temporal import (
        ClipFeaturizer,
        TemporalSettings,
        clip_logit,
        head_logits,
        score_clips,
        train_temporal,
    )

    rows = []
    for i, split in enumerate(["train", "train", "train", "val", "val"]):
        rows += _write_clip(tmp_path / "crops", f"v{i}", "real", split, 12, i)
    clips, _ = clips_of(pd.DataFrame(rows), min_frames=6)
    base = {"backbone": "test_efficientnet", "pretrained": False, "input_size": 64, "lower_size": 32, "min_frames": 6}
    with pytest.raises(ValueError, match="window must be >= min_frames"):
        TemporalSettings.from_config({**base, "window": 4})
    settings = TemporalSettings.from_config({**base, "blends_per_clip": 2, "window": 6})
    head, info = train_temporal(settings, clips, tmp_path / "run")
    assert info["train_clips"] == {"real": 3, "windows": 6, "blends": 12}, "two windows of 6 in each 12-frame clip"
    featurizer = ClipFeaturizer(settings, tmp_path / "run" / "cache")
    first, second = featurizer.windows(clips[0])
    per_window = head_logits(head, [featurizer.inputs(first), featurizer.inputs(second)])
    assert clip_logit(featurizer, head, clips[0]) == pytest.approx(float(per_window.mean()))
    assert per_window[0] != pytest.approx(per_window[1]), "the windows are read apart"
    scored = score_clips(featurizer, head, clips)
    assert scored["logit"].iloc[0] == pytest.approx(float(per_window.mean())) and (scored["n_frames"] == 12).all()


def test_every_temporal_recipe_of_the_study_config_parses(cfg_factory) -> None:
    from omegaconf import OmegaConf

    from deepdetect.training.temporal import TemporalSettings

    recipes = cfg_factory("lofo").recipes
    temporal = {name: r.temporal for name, r in recipes.items() if "temporal" in r}
    heads = {name: TemporalSettings.from_config(OmegaConf.to_container(t)).head for name, t in temporal.items()}
    assert heads["temporal"] == "stats" and heads["temporal_conv"] == "conv", heads
