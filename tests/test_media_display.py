"""Video display matrices (media.frame_rgb): the eight quarter-turn rotations and mirrors a container can ask for
are shown as players show them, a horizontally mirrored clip included."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest


def _stored() -> np.ndarray:
    """A 48x96 picture whose orientation shows: a white block in the top-left corner, a grey one top-right."""
    picture = np.zeros((48, 96, 3), np.uint8)
    picture[:24, :24] = 255
    picture[:24, 72:] = 128
    return picture


def _clip(path: Path, degrees: int, hflip: bool, vflip: bool) -> None:
    import av

    stored = _stored()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _can_write_flips() -> bool:
    import av

    try:
        return "hflip" in inspect.signature(av.video.stream.VideoStream.set_display_rotation).parameters
    except (AttributeError, TypeError, ValueError):  # a compiled method without a signature: try it
        return hasattr(av.video.stream.VideoStream, "set_display_matrix")


@pytest.mark.skipif(not _can_write_flips(), reason="this PyAV cannot write a mirrored display matrix")
@pytest.mark.parametrize(
    ("degrees", "hflip", "vflip"),
    [(0, True, False), (0, False, True), (90, True, False), (-90, True, False), (180, True, False), (90, False, False)],
)
def test_mirrored_display_matrix_is_shown_as_players_show_it(
    tmp_path: Path, degrees: int, hflip: bool, vflip: bool
) -> None:
    from deepdetect.hashing.video import scan_frames
    from deepdetect.media import read_video_frames, read_video_frames_at

    clip = tmp_path / "m.mp4"
    _clip(clip, degrees, hflip, vflip)
    expected = np.rot90(_stored(), degrees // 90)  # PyAV's order: turn counter-clockwise, then mirror
    if hflip:
        expected = expected[:, ::-1]
    if vflip:
        expected = expected[::-1]
    frames = [f for _, f in read_video_frames(clip, 2)]
    frames += [f for _, f in read_video_frames_at(clip, [1])]
    frames += [rgb for _, _, rgb, _ in scan_frames(clip, fps=5.0)]
    for frame in frames:
        assert frame.shape == expected.shape
        assert np.abs(frame.astype(np.int16) - expected.astype(np.int16)).mean() < 12  # codec noise only
