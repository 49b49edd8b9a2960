"""Tests for deepdetect.media: the bad-input corpus, image conversion, video frame sampling, file listing."""

from __future__ import annotations

import itertools
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from deepdetect import media
from deepdetect.media import (
    STATUSES,
    MediaError,
    iter_media_files,
    load_image,
    media_kind,
    read_video_frames,
    sample_frame_indices,
    video_info,
)
from media_corpus import (
    frame_index_of,
    gradient_image,
    make_bad_corpus,
    make_png_bomb,
    make_unreadable,
    make_video,
)


def decode_status(path: Path) -> tuple[str, object]:
    """('ok', decoded) or (MediaError.status, message) for any media path."""
    try:
        kind = media_kind(path)
        return "ok", load_image(path) if kind == "image" else read_video_frames(path)
    except MediaError as exc:
        assert exc.status in STATUSES
        assert str(exc)
        return exc.status, str(exc)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return make_bad_corpus(tmp_path_factory.mktemp("corpus"))


def test_corpus_gives_expected_statuses(corpus: dict[str, tuple[Path, str]]) -> None:
    wrong = {}
    for name, (path, expected) in corpus.items():
        status, detail = decode_status(path)
        if status != expected:
            wrong[name] = (expected, status, detail if status != "ok" else "")
        elif status == "ok" and isinstance(detail, np.ndarray):
            assert detail.dtype == np.uint8 and detail.ndim == 3 and detail.shape[2] == 3, name
    assert not wrong, wrong


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.jpg"
    reason = make_unreadable(path)
    if reason is not None:
        pytest.skip(reason)
    with pytest.raises(MediaError) as info:
        load_image(path)
    assert info.value.status == "unreadable"


def test_exif_orientation_is_honoured(corpus: dict[str, tuple[Path, str]]) -> None:
    base = gradient_image(48, 32)
    for name, turns in (("exif_rot6", -1), ("exif_rot8", 1)):  # 6: rotate 90 cw to display, 8: 90 ccw
        img = load_image(corpus[name][0])
        assert img.shape == (48, 32, 3), name
        expected = np.rot90(base, k=turns)
        assert np.abs(img.astype(int) - expected.astype(int)).mean() < 8, name


def test_image_modes_convert_to_rgb(corpus: dict[str, tuple[Path, str]]) -> None:
    grey16 = load_image(corpus["png_16bit"][0])
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    assert grey16.shape == (64, 64, 3)
    assert np.array_equal(grey16[..., 0], grey16[..., 2])
    assert np.abs(grey16[..., 0].astype(int) - np.rint(ramp / 257).astype(int)).max() <= 1  # scaled, not clipped
    assert grey16.max() >= 250 and grey16.min() == 0

    rgba = load_image(corpus["rgba_png"][0])
    assert rgba.shape == (32, 48, 3)
    assert (rgba[:, :8] == 255).all()  # transparent band composited on white

    grey = load_image(corpus["greyscale"][0])
    assert np.array_equal(grey[..., 0], grey[..., 1])
    cmyk = load_image(corpus["cmyk_jpeg"][0])
    assert np.abs(cmyk.astype(int) - gradient_image().astype(int)).mean() < 12
    assert load_image(corpus["tiny_1x1"][0]).tolist() == [[[200, 10, 10]]]
    gif = load_image(corpus["animated_gif"][0])
    assert gif.shape == (32, 32, 3) and frame_index_of(gif) == 0  # first frame


def test_pixel_limit_below_pillow_limit(tmp_path: Path) -> None:
    bomb = make_png_bomb(tmp_path / "mid.png", side=3000)  # 9 MP: Pillow accepts it, our limit must not
    with pytest.raises(MediaError) as info:
        load_image(bomb, max_pixels=4_000_000)
    assert info.value.status == "too_large"
    assert load_image(bomb, max_pixels=10_000_000).shape == (3000, 3000, 3)


def test_media_error_contract() -> None:
    err = MediaError("no_frames", "nothing in it")
    assert err.status == "no_frames" and str(err) == "nothing in it"
    copy = pickle.loads(pickle.dumps(err))  # crosses process pools intact
    assert copy.status == "no_frames" and str(copy) == "nothing in it"
    with pytest.raises(ValueError):
        MediaError("bogus", "x")
    assert media_kind("A.JPG") == "image" and media_kind("b.MkV") == "video"
    with pytest.raises(MediaError, match="unsupported"):
        media_kind("c.txt")


def _check_frames(frames: list[tuple[int, np.ndarray]], expected: list[int]) -> None:
    assert [i for i, _ in frames] == expected
    for index, frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == (64, 64, 3)
        assert frame_index_of(frame) == index


def test_dense_sampling_sequential(tmp_path: Path) -> None:
    path = make_video(tmp_path / "dense.mp4", 20)
    info = video_info(path)
    assert info.frame_count == 20 and info.width == 64 and info.height == 64
    assert info.fps == pytest.approx(10) and info.duration_s == pytest.approx(2.0, abs=0.15)
    _check_frames(read_video_frames(path, frames_per_video=None), list(range(20)))
    _check_frames(read_video_frames(path, frames_per_video=5), sample_frame_indices(20, 5))
    _check_frames(read_video_frames(path, frames_per_video=32), list(range(20)))  # fewer frames than asked
    _check_frames(read_video_frames(path, frames_per_video=None, every_k=3), list(range(0, 20, 3)))


@pytest.mark.parametrize("container", ["mp4", "mkv", "avi"])
def test_sparse_sampling_seeks_to_the_right_frames(
    tmp_path: Path, container: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = make_video(tmp_path / f"long.{container}", 240, fps=25, gop_size=12)
    expected = sample_frame_indices(240, 4)
    assert min(np.diff(expected)) > media.SEEK_MIN_GAP
    with caplog.at_level(logging.DEBUG, logger=media.__name__):
        _check_frames(read_video_frames(path, frames_per_video=4), expected)
    seeks = [r for r in caplog.messages if ": seek to frame " in r]
    assert len(seeks) == 4 and not any("decoding sequentially" in r for r in caplog.messages)  # really seeked
    _check_frames(read_video_frames(path, frames_per_video=None, every_k=60), [0, 60, 120, 180])


def test_sparse_sampling_with_one_keyframe(tmp_path: Path) -> None:
    path = make_video(tmp_path / "onegop.mp4", 120, fps=25, gop_size=1000)
    _check_frames(read_video_frames(path, frames_per_video=4), sample_frame_indices(120, 4))


def test_video_limits(tmp_path: Path) -> None:
    path = make_video(tmp_path / "small.mp4", 3)
    with pytest.raises(MediaError) as info:
        read_video_frames(path, max_pixels=1000)
    assert info.value.status == "too_large"


@settings(max_examples=200, deadline=None)
@given(
    frame_count=st.integers(min_value=0, max_value=5000),
    n=st.one_of(st.none(), st.integers(min_value=1, max_value=300)),
    every_k=st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
)
def test_sample_frame_indices_properties(frame_count: int, n: int | None, every_k: int | None) -> None:
    indices = sample_frame_indices(frame_count, n, every_k)
    assert indices == sorted(set(indices))
    assert all(0 <= i < frame_count for i in indices)
    if every_k is None:
        assert len(indices) == (frame_count if n is None else min(n, frame_count))
    else:
        assert all(b - a == every_k for a, b in itertools.pairwise(indices))
        available = len(range(0, frame_count, every_k))
        assert len(indices) == (available if n is None else min(n, available))


def test_sample_frame_indices_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sample_frame_indices(10, 0)
    with pytest.raises(ValueError):
        sample_frame_indices(10, 3, every_k=0)


def test_iter_media_files(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "b" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for rel in ["z.jpg", "a.MP4", "b/deep/c.png", "b/notes.txt", ".hidden/x.jpg", "b/.y.jpg"]:
        (root / rel).write_bytes(b"x")
    (root / "b" / "notes.txt").write_text("# no entries\n", encoding="utf-8")
    (root / "dangling.jpg").symlink_to(root / "nowhere.jpg")
    found = iter_media_files(root)
    assert [p.relative_to(root).as_posix() for p in found] == ["a.MP4", "b/deep/c.png", "dangling.jpg", "z.jpg"]
    assert [p.name for p in iter_media_files(root, recursive=False)] == ["a.MP4", "dangling.jpg", "z.jpg"]

    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\nin/z.jpg\n\n{root / 'b'}\nin/missing.jpg\nin/z.jpg\n", encoding="utf-8")
    found = iter_media_files([listing, root / "a.MP4"])
    assert found == [root / "z.jpg", root / "b" / "deep" / "c.png", root / "missing.jpg", root / "a.MP4"]
    assert iter_media_files(str(root / "b" / "notes.txt")) == []  # a list file with no media entries
    with pytest.raises(MediaError) as info:
        iter_media_files(tmp_path / "absent")
    assert info.value.status == "not_found"


def test_real_video_seek_matches_sequential(dev_data: Path) -> None:
    path = dev_data / "videos" / "lp_d0.mp4"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    info = video_info(path)
    n = 4
    seeked = read_video_frames(path, frames_per_video=n)
    sequential = media._decode_sequential(
        media._Decoder(*_open(path), path), sample_frame_indices(info.frame_count, n)
    )[0]
    assert [i for i, _ in seeked] == [i for i, _ in sequential] == sample_frame_indices(info.frame_count, n)
    for (_, a), (_, b) in zip(seeked, sequential, strict=True):
        assert np.array_equal(a, b)


def _open(path: Path) -> tuple[object, object, media.VideoInfo]:
    import av

    container = av.open(str(path))
    stream = container.streams.video[0]
    return container, stream, media._stream_info(container, stream)


def test_image_roundtrip_pixels(tmp_path: Path) -> None:
    arr = gradient_image(40, 30)
    Image.fromarray(arr).save(tmp_path / "x.png")
    assert np.array_equal(load_image(tmp_path / "x.png"), arr)
