"""vPDQ-style video hashes: PDQ of frames sampled at a fixed rate, near-identical consecutive frames dropped.

Frames come from the toolkit's own decoder (`deepdetect.media`), streamed one at a time so a long video
never sits in memory; failures are `MediaError`s with the same statuses as predict and extract.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepdetect import media
from deepdetect.hashing.pdq import hamming, hash_rgb, hash_rgb_dihedral
from deepdetect.media import MediaError

logger = logging.getLogger(__name__)

DEFAULT_FPS = 1.0  # vPDQ's usual rate: one hash per second of video
DEFAULT_DEDUP_DISTANCE = 4  # consecutive sampled frames this close (bits) count as one


@dataclass(frozen=True)
class FrameHash:
    """PDQ of one sampled video frame: index in the stream, presentation time (s), hash, quality."""

    frame_index: int
    timestamp: float
    bits: bytes
    quality: int
    variants: tuple[bytes, ...] = ()  # rotations and flips (pdq.DIHEDRAL[1:]) when asked for


@dataclass(frozen=True)
class VideoHash:
    """The kept frame hashes of a video, with what the container says about it."""

    frames: list[FrameHash]
    fps: float
    duration_s: float
    width: int
    height: int
    n_sampled: int  # frames hashed before deduplication


def iter_sampled_frames(
    path: str | os.PathLike[str], fps: float = DEFAULT_FPS, max_pixels: int = media.DEFAULT_MAX_PIXELS
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (frame_index, timestamp_s, RGB frame) every 1/fps seconds of presentation time; raises MediaError."""
    for index, t, rgb, sampled in scan_frames(path, fps, max_pixels):
        if sampled:
            yield index, t, rgb


def scan_frames(
    path: str | os.PathLike[str],
    fps: float = DEFAULT_FPS,
    max_pixels: int = media.DEFAULT_MAX_PIXELS,
    keep: Container[int] = (),
) -> Iterator[tuple[int, float, np.ndarray, bool]]:
    """One decoding pass: (frame_index, timestamp_s, RGB, sampled) for every frame sampled at `fps` (sampled True)
    and every frame whose index (in decoding order) is in `keep`; raises MediaError."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    p = Path(path)
    container = media._open_container(p)
    try:
        stream = media._video_stream(container, p)
        info = media._stream_info(container, stream)
        if info.width * info.height > max_pixels:
            raise MediaError("too_large", f"video frames are {info.width}x{info.height}, over the limit {max_pixels}")
        if info.frame_count <= 0 and media._count_packets(container, stream) <= 0:
            raise MediaError("no_frames", f"video stream has no frames: {p}")
        dec = media._Decoder(container, stream, info, p)
        step, next_t, yielded = 1.0 / fps, 0.0, 0
        for seen, frame in enumerate(dec.frames(None)):
            if frame.pts is not None and dec.time_base:
                t = float((frame.pts - dec.start_pts) * dec.time_base)
            else:
                t = seen / info.fps if info.fps > 0 else float(seen)
            sampled = t + 1e-6 >= next_t
            if sampled or seen in keep:
                rgb = media.frame_rgb(frame)  # display rotation applied, as predict sees it
                yield seen, round(max(t, 0.0), 3), rgb, sampled
            if sampled:
                yielded += 1
                next_t = (np.floor(max(t, 0.0) / step + 1e-6) + 1) * step
        if not yielded:
            if dec.errors:
                raise MediaError("unreadable", f"no frame could be decoded from {p}: {dec.first_error}")
            raise MediaError("no_frames", f"no decodable frames in {p}")
        if dec.errors:
            logger.warning("%s: %d decode errors (first: %s)", p, dec.errors, dec.first_error)
    except MediaError:
        raise
    except MemoryError:
        raise MediaError("too_large", f"out of memory decoding {p}") from None
    except media._av_errors() as exc:
        raise MediaError("unreadable", f"cannot decode {p}: {exc}") from None
    finally:
        container.close()


def dedup(frames: list[FrameHash], max_distance: int = DEFAULT_DEDUP_DISTANCE) -> list[FrameHash]:
    """Drop each frame whose hash is within `max_distance` bits of the last kept frame (-1 keeps all)."""
    kept: list[FrameHash] = []
    for f in frames:
        if kept and max_distance >= 0 and hamming(kept[-1].bits, f.bits) <= max_distance:
            continue
        kept.append(f)
    return kept


def hash_video(
    path: str | os.PathLike[str],
    fps: float = DEFAULT_FPS,
    dedup_distance: int = DEFAULT_DEDUP_DISTANCE,
    max_pixels: int = media.DEFAULT_MAX_PIXELS,
    on_frame: Callable[[int, float, np.ndarray], None] | None = None,
    dihedral: bool = False,
    keep: Container[int] = (),
    on_kept: Callable[[int, np.ndarray], None] | None = None,
) -> VideoHash:
    """PDQ-hash a video's frames sampled at `fps`, deduplicated; `on_frame` also sees each sampled frame.

    With `dihedral`, each frame also carries the hashes of its rotations and flips (for queries: mirrored copies).
    `on_kept` receives the frames whose decoding-order index is in `keep`, from the same decoding pass (so a
    caller that needs other frames of the video too decodes it once).
    """
    info = media.video_info(path)
    sampled: list[FrameHash] = []
    for index, t, rgb, is_sample in scan_frames(path, fps, max_pixels, keep if on_kept is not None else ()):
        if on_kept is not None and index in keep:
            on_kept(index, rgb)
        if not is_sample:
            continue
        if dihedral:
            hashes, quality = hash_rgb_dihedral(rgb)
            sampled.append(FrameHash(index, t, hashes[0], quality, tuple(hashes[1:])))
        else:
            h = hash_rgb(rgb)
            sampled.append(FrameHash(index, t, h.bits, h.quality))
        if on_frame is not None:
            on_frame(index, t, rgb)
    duration = info.duration_s or (sampled[-1].timestamp + 1.0 / fps)
    return VideoHash(dedup(sampled, dedup_distance), info.fps, duration, info.width, info.height, len(sampled))
