"""Issue 12 item 5: every decoded frame is held to the pixel limit (not only the header's size), and huge-but-
allowed frames are detected on a downscaled copy with boxes mapped back to full resolution."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deepdetect.faces.detect as detect_mod
from deepdetect.faces.detect import FaceDetector
from deepdetect.faces.media import MediaError, read_video_frames
from face_images import lfw_face


def make_growing_mjpeg(path: Path, big: int, n_small: int = 3, n_big: int = 3) -> Path:
    """An MKV whose header (and first frames) say 64x64 while later MJPEG frames are big x big."""
    import av

    def jpeg(side: int) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (120, 90, 60)).save(buf, "JPEG", quality=50)
        return buf.getvalue()

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuvj420p"
        for i, side in enumerate([64] * n_small + [big] * n_big):
            packet = av.Packet(jpeg(side))
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.time_base = Fraction(1, 10)
            container.mux(packet)
    return path


def test_later_frames_over_the_limit_are_too_large(tmp_path: Path) -> None:
    path = make_growing_mjpeg(tmp_path / "grow.mkv", big=1000)
    frames = read_video_frames(path, frames_per_video=None)  # control: within the default limit all decode
    assert sorted({f.shape[:2] for _, f in frames}) == [(64, 64), (1000, 1000)]
    with pytest.raises(MediaError) as info:
        read_video_frames(path, frames_per_video=None, max_pixels=500_000)
    assert info.value.status == "too_large"


def test_huge_frames_are_detected_downscaled_with_boxes_in_full_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    face = np.asarray(Image.fromarray(lfw_face(3)).resize((800, 800), Image.Resampling.BICUBIC))
    detector = FaceDetector(device="cpu")
    full = detector.detect([face])[0]
    monkeypatch.setattr(detect_mod, "DETECT_MAX_SIDE", 400)
    small = detector.detect([face])[0]
    assert len(full) >= 1 and len(small) >= 1
    best_full, best_small = full.boxes[np.argmax(full.scores)], small.boxes[np.argmax(small.scores)]
    assert np.abs(best_full - best_small).max() < 40  # the same face, in full-resolution pixels
    assert 150 < best_small[0] < 300 and 500 < best_small[2] < 650
