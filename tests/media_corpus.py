"""Generators of test media: index-coded videos and the bad-input corpus (issue 7), all written into a tmp dir."""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepdetect.media import write_video

logger = logging.getLogger(__name__)

CODE_STEP = 16  # colour step per index digit: survives lossy coding errors up to +-7 levels


def index_frame(index: int, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """An HxWx3 uint8 RGB frame whose flat colour encodes `index` (0..255): R = low digit, G = high digit."""
    if not 0 <= index < 256:
        raise ValueError(f"index {index} not in 0..255")
    frame = np.empty((size[0], size[1], 3), dtype=np.uint8)
    frame[..., 0] = (index % 16) * CODE_STEP + CODE_STEP // 2
    frame[..., 1] = (index // 16) * CODE_STEP + CODE_STEP // 2
    frame[..., 2] = 128
    return frame


def frame_index_of(frame: np.ndarray) -> int:
    """Read back the index encoded by `index_frame` from a decoded frame (uses the central region)."""
    h, w = frame.shape[:2]
    centre = frame[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).astype(np.float64).mean(axis=0)
    low = int(np.clip(centre[0] // CODE_STEP, 0, 15))
    high = int(np.clip(centre[1] // CODE_STEP, 0, 15))
    return high * 16 + low


def make_video(
    path: Path | str,
    frames: int | Sequence[np.ndarray],
    fps: int = 10,
    codec: str = "mpeg4",
    gop_size: int | None = None,
    size: tuple[int, int] = (64, 64),
    faststart: bool = False,
    codec_options: dict[str, str] | None = None,
) -> Path:
    """Write a video with PyAV: `frames` RGB arrays, or that many index-coded frames (see `index_frame`)."""
    arrays = [index_frame(i, size) for i in range(frames)] if isinstance(frames, int) else list(frames)
    if not arrays:
        raise ValueError("make_video needs at least one frame (use make_zero_frame_video for none)")
    return write_video(
        path, arrays, fps=fps, codec=codec, gop_size=gop_size, codec_options=codec_options, faststart=faststart
    )


def make_zero_frame_video(path: Path | str) -> Path:
    """A container (AVI) declaring a 64x64 video stream with no packets at all."""
    import av

    path = Path(path)
    container = av.open(str(path), mode="w", format="avi")
    stream: Any = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def make_audio_only(path: Path | str, seconds: float = 0.5) -> Path:
    """A Matroska file holding one FLAC audio stream and no video stream."""
    import av

    path = Path(path)
    rate, chunk = 16000, 1600
    with av.open(str(path), mode="w", format="matroska") as container:
        stream: Any = container.add_stream("flac", rate=rate, layout="mono")
        t = np.arange(int(rate * seconds))
        samples = (3000 * np.sin(2 * np.pi * 440 * t / rate)).astype(np.int16)
        for start in range(0, len(samples), chunk):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + chunk], format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_png_bomb(path: Path | str, side: int = 20000) -> Path:
    """A valid 1-bit `side`x`side` PNG of one colour: a few KB on disk, `side`² pixels once decoded."""
    path = Path(path)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def gradient_image(width: int = 48, height: int = 32) -> np.ndarray:
    """An HxWx3 uint8 image with distinct corners, so orientation can be checked."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 60)], -1).astype(
        np.uint8
    )


def _jpeg_bytes(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kwargs)
    return buf.getvalue()


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _exif_jpeg(path: Path, orientation: int) -> None:
    img = Image.fromarray(gradient_image(48, 32))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.write_bytes(_jpeg_bytes(img, exif=exif.tobytes()))


def make_unreadable(path: Path) -> str | None:
    """Write a file with mode 000; returns a skip reason when it stays readable (e.g. running as root)."""
    path.write_bytes(_jpeg_bytes(Image.fromarray(gradient_image())))
    path.chmod(0)
    if os.access(path, os.R_OK):
        return "chmod 000 files are still readable here (running as root?), so 'unreadable' cannot be produced"
    return None


def make_bad_corpus(directory: Path | str) -> dict[str, tuple[Path, str]]:
    """Write the bad-input corpus into `directory`; returns {name: (path, expected status or 'ok')}.

    Expected statuses are those of `deepdetect.media` (`media_kind` then `load_image` /
    `read_video_frames`). The chmod-000 case is left out when it cannot be made unreadable (see `make_unreadable`).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    corpus: dict[str, tuple[Path, str]] = {}

    def put(name: str, filename: str, data: bytes, expected: str) -> Path:
        p = d / filename
        p.write_bytes(data)
        corpus[name] = (p, expected)
        return p

    good_jpeg = _jpeg_bytes(Image.fromarray(gradient_image(64, 64)))
    good_png = _png_bytes(Image.fromarray(gradient_image(64, 64)))
    put("good_jpeg", "good.jpg", good_jpeg, "ok")
    corpus["good_mp4"] = (make_video(d / "good.mp4", 20), "ok")

    put("empty_file", "empty.jpg", b"", "unreadable")
    put("truncated_jpeg", "truncated.jpg", good_jpeg[: len(good_jpeg) // 2], "unreadable")
    put("truncated_png", "truncated.png", good_png[: len(good_png) // 2], "unreadable")
    # moov atom first (faststart), then cut: the first frames still decode, so the video is usable ("ok")
    full = make_video(d / "_full_faststart.mp4", 20, faststart=True).read_bytes()
    (d / "_full_faststart.mp4").unlink()
    put("truncated_mp4", "truncated.mp4", full[: int(len(full) * 0.6)], "ok")
    # moov atom last (the default), then cut: no index, nothing to decode
    full = make_video(d / "_full.mp4", 20).read_bytes()
    (d / "_full.mp4").unlink()
    put("truncated_mp4_no_index", "truncated_noindex.mp4", full[: len(full) // 2], "unreadable")
    put("text_as_mp4", "notes.mp4", b"This is a text file, not a video.\n" * 20, "unreadable")
    put("text_as_jpeg", "notes.jpg", b"This is a text file, not an image.\n" * 20, "unreadable")
    put("unsupported_ext", "document.pdf", b"%PDF-1.4\n%%EOF\n", "unsupported")
    # bytes that ffmpeg probes as a subtitle-only (or audio) stream, nothing decodable: unreadable, not no_video_stream
    put("subtitle_as_mp4", "subtitles.mp4", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n", "unreadable")
    for seed, probe in ((289, "subtitle"), (1053, "audio")):  # found by probing seeds 0..3000 with PyAV
        noise = np.random.default_rng(seed).integers(0, 256, 2048, dtype=np.uint8).tobytes()
        put(f"random_probes_as_{probe}", f"random_{probe}.mp4", noise, "unreadable")

    put("tiny_1x1", "tiny_1x1.png", _png_bytes(Image.new("RGB", (1, 1), (200, 10, 10))), "ok")
    ramp16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    put("png_16bit", "grey16.png", _png_bytes(Image.fromarray(ramp16)), "ok")
    put("greyscale", "grey.jpg", _jpeg_bytes(Image.fromarray(gradient_image()[..., 0])), "ok")
    rgba = np.dstack([gradient_image(), np.full((32, 48), 128, np.uint8)])
    rgba[:, :8, 3] = 0  # a fully transparent band
    put("rgba_png", "rgba.png", _png_bytes(Image.fromarray(rgba)), "ok")
    put("cmyk_jpeg", "cmyk.jpg", _jpeg_bytes(Image.fromarray(gradient_image()).convert("CMYK")), "ok")
    put("palette_png", "palette.png", _png_bytes(Image.fromarray(gradient_image()).convert("P")), "ok")
    put("bilevel_png", "bilevel.png", _png_bytes(Image.fromarray(gradient_image()).convert("1")), "ok")
    for orientation in (6, 8):
        _exif_jpeg(d / f"exif_rot{orientation}.jpg", orientation)
        corpus[f"exif_rot{orientation}"] = (d / f"exif_rot{orientation}.jpg", "ok")
    gif_frames = [Image.fromarray(index_frame(i * 40, (32, 32))).convert("P") for i in range(4)]
    gif_frames[0].save(d / "animated.gif", save_all=True, append_images=gif_frames[1:], duration=100, loop=0)
    corpus["animated_gif"] = (d / "animated.gif", "ok")
    corpus["decompression_bomb"] = (make_png_bomb(d / "bomb.png"), "too_large")

    corpus["audio_only"] = (make_audio_only(d / "audio_only.mkv"), "no_video_stream")
    corpus["zero_frame_video"] = (make_zero_frame_video(d / "zero_frames.avi"), "no_frames")

    put("name_with_spaces", "a photo with spaces.jpg", good_jpeg, "ok")
    put("unicode_name", "visage_été_顔.jpg", good_jpeg, "ok")
    corpus["unicode_video"] = (make_video(d / "vidéo clip 動画.mp4", 5), "ok")

    unreadable = d / "unreadable.jpg"
    reason = make_unreadable(unreadable)
    if reason is None:
        corpus["unreadable_file"] = (unreadable, "unreadable")
    else:
        logger.info("corpus: skipping unreadable_file: %s", reason)
        unreadable.chmod(0o644)
        unreadable.unlink()
    link = d / "dangling.jpg"
    link.symlink_to(d / "does_not_exist.jpg")
    corpus["dangling_symlink"] = (link, "not_found")
    corpus["missing_file"] = (d / "missing.mp4", "not_found")
    return corpus
