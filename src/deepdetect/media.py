"""Robust decoding of images and videos into RGB uint8 arrays, with clear per-file error statuses.

Images go through Pillow (EXIF orientation honoured, every mode converted to RGB, pixel limit enforced before any
pixel is decoded). Videos go through PyAV and decode only what is needed: sparse targets are reached by seeking to the
keyframe before each one, dense targets by one sequential pass (see `SEEK_MIN_GAP`, chosen with
`bench/bench_decode.py`). Every failure is a `MediaError` whose `.status` is one of `STATUSES`.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.utils.io import file_type_name, open_regular

logger = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
STATUSES = ("unreadable", "unsupported", "no_video_stream", "no_frames", "too_large", "not_found", "skipped")

DEFAULT_MAX_PIXELS = 64_000_000
# Targets closer than this many frames to the decoder's position are reached by decoding forward, not by seeking;
# when the mean gap between targets is at most this, the clip is decoded in one sequential pass. Measured with
# bench/bench_decode.py (640x360 H.264, keyframe every 50): seeking and one pass cost the same at gaps 4-31 frames,
# seeking wins from gap 62 (1.7x) and 250 (5x); a seek only pays once it can skip about a keyframe interval.
SEEK_MIN_GAP = 48
# Corrupt packets tolerated in one video before giving up on the rest of it.
MAX_DECODE_ERRORS = 50
# Most frames decoded from one video (an explicit count, every k-th frame or "all"): a header may claim 2^31 frames.
MAX_FRAMES_PER_VIDEO = 10_000
# Largest `.txt` path list read (a list is text; anything bigger is a mistake or an attack).
MAX_LIST_BYTES = 64 * 1024 * 1024

PathLike = str | os.PathLike[str]


class MediaError(Exception):
    """A file that cannot be used; `.status` is one of `STATUSES`, `str(exc)` is a human message."""

    def __init__(self, status: str, message: str):
        if status not in STATUSES:
            raise ValueError(f"unknown media status {status!r}; expected one of {STATUSES}")
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.message))


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream (frame_count may be an estimate)."""

    frame_count: int
    fps: float
    width: int
    height: int
    duration_s: float


def media_kind(path: PathLike) -> str:
    """'image' or 'video' from the file extension; raises MediaError('unsupported') otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTS:
        return "image"
    if suffix in VIDEO_EXTS:
        return "video"
    raise MediaError("unsupported", f"unsupported file type {suffix or '(no extension)'!r}: {path}")


def reject_special_file(path: PathLike) -> None:
    """Raise MediaError('unreadable') when `path` exists but is not a regular file (FIFO, device, socket, folder).

    Call it before anything opens `path`: opening a FIFO blocks, reading a device never ends.
    """
    try:
        st = os.stat(path)
    except OSError:
        return  # missing, dangling or a symlink loop: the caller's own checks give the status
    if not stat.S_ISREG(st.st_mode):
        raise MediaError("unreadable", f"not a regular file ({file_type_name(st.st_mode)}): {path}")


def _check_file(path: Path) -> None:
    """Raise MediaError unless `path` is an existing, non-empty regular file we may read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        kind = "dangling symlink" if path.is_symlink() else "file not found"
        raise MediaError("not_found", f"{kind}: {path}") from None
    except PermissionError as exc:
        raise MediaError("unreadable", f"permission denied: {path} ({exc.strerror})") from None
    except OSError as exc:
        raise MediaError("unreadable", f"cannot stat {path}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise MediaError("unreadable", f"not a regular file ({file_type_name(st.st_mode)}): {path}")
    if st.st_size == 0:
        raise MediaError("unreadable", f"empty file: {path}")
    if not os.access(path, os.R_OK):
        raise MediaError("unreadable", f"permission denied: {path}")


# ---------------------------------------------------------------------------------------------------------- images


def _to_rgb_array(img: Any) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to an HxWx3 uint8 RGB array (alpha composited on white)."""
    from PIL import Image

    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        elif mode != "F" and arr.size and (mode.startswith("I;16") or np.nanmax(arr) > 255):
            arr = np.clip(arr, 0, 65535) / 257.0  # 16-bit range -> 8-bit range
        grey = np.nan_to_num(np.clip(np.rint(arr), 0, 255)).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def load_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to an HxWx3 uint8 RGB array, honouring EXIF orientation; raises MediaError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    _check_file(p)
    try:
        with Image.open(p) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise MediaError(
                    "too_large", f"image is {width}x{height} = {width * height} pixels, over the limit {max_pixels}"
                )
            if width <= 0 or height <= 0:
                raise MediaError("unreadable", f"image has no pixels ({width}x{height}): {p}")
            # the first frame (an animation) or page (a TIFF) only, as opened: asking for the frame count would walk
            # every page, and a TIFF of 200,000 tiny pages takes minutes and gigabytes to count
            img.load()  # decode now so truncation and corruption surface here
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception as exc:  # a malformed EXIF block must not lose the picture
                logger.warning("ignoring unreadable EXIF orientation in %s: %s", p, exc)
                oriented = img
            return _to_rgb_array(oriented if oriented is not None else img)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError("too_large", f"decompression bomb refused: {exc}") from None
    except UnidentifiedImageError:
        raise MediaError("unreadable", f"not a recognised image (corrupt or wrong extension): {p}") from None
    except PermissionError as exc:
        raise MediaError("unreadable", f"permission denied: {p} ({exc.strerror})") from None
    except MemoryError:
        raise MediaError("too_large", f"out of memory decoding {p}") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, ZeroDivisionError) as exc:
        raise MediaError("unreadable", f"corrupt or truncated image {p}: {exc}") from None


# ---------------------------------------------------------------------------------------------------------- videos


FRAME_SAMPLINGS = ("even", "consecutive")


def sample_frame_indices(
    frame_count: int, frames_per_video: int | None = 32, every_k: int | None = None, sampling: str = "even"
) -> list[int]:
    """Frame indices to decode: every k-th frame (at most `frames_per_video`), else that many evenly spaced; never
    more than MAX_FRAMES_PER_VIDEO (MediaError 'too_large' when "every k-th" or "all" would ask for more).

    `sampling="consecutive"`: `frames_per_video` consecutive frames (every `every_k`-th one when set) from the middle
    of the video, a real sequence for temporal features; the whole video when it is shorter."""
    if frame_count <= 0:
        return []
    if frames_per_video is not None and not 1 <= frames_per_video <= MAX_FRAMES_PER_VIDEO:
        raise ValueError(f"frames_per_video must be in 1..{MAX_FRAMES_PER_VIDEO} or None, got {frames_per_video}")
    if sampling not in FRAME_SAMPLINGS:
        raise ValueError(f"frame sampling must be one of {FRAME_SAMPLINGS}, got {sampling!r}")
    if sampling == "consecutive" and frames_per_video is not None:
        step = every_k or 1
        if step < 1:
            raise ValueError(f"every_k must be >= 1, got {every_k}")
        span = step * (frames_per_video - 1) + 1
        start = max(0, (frame_count - span) // 2)
        return list(range(start, min(frame_count, start + span), step))
    if every_k is not None:
        if every_k < 1:
            raise ValueError(f"every_k must be >= 1, got {every_k}")
        wanted = -(-frame_count // every_k)
        if frames_per_video is None and wanted > MAX_FRAMES_PER_VIDEO:
            raise MediaError("too_large", f"every {every_k}th of {frame_count} frames is over {MAX_FRAMES_PER_VIDEO}")
        return list(range(0, min(frame_count, every_k * (frames_per_video or wanted)), every_k))
    if frames_per_video is None or frames_per_video >= frame_count:
        if frame_count > MAX_FRAMES_PER_VIDEO:
            raise MediaError("too_large", f"all {frame_count} frames asked for: over {MAX_FRAMES_PER_VIDEO} per video")
        return list(range(frame_count))
    # centre of each of n equal segments: evenly spaced, strictly increasing because frame_count > n
    return [int((2 * i + 1) * frame_count // (2 * frames_per_video)) for i in range(frames_per_video)]


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.FFmpegError, OSError, ValueError, EOFError)


def _open_container(p: Path) -> Any:
    import av

    _check_file(p)
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except PermissionError as exc:
        raise MediaError("unreadable", f"permission denied: {p} ({exc.strerror})") from None
    except _av_errors() as exc:
        raise MediaError("unreadable", f"not a readable media container {p}: {exc}") from None


AUDIO_CHECK_FRAMES = 256  # audio frames decoded to tell a real audio-only file from bytes that probe as audio


def _decodes_audio(container: Any) -> bool:
    """Whether the container's first audio stream decodes cleanly (its first `AUDIO_CHECK_FRAMES` frames, or to
    its end): a real audio file, not random bytes that merely probe as one (those fail within a few frames)."""
    if not container.streams.audio:
        return False
    n = 0
    try:
        for _ in container.decode(audio=0):
            n += 1
            if n >= AUDIO_CHECK_FRAMES:
                break
    except _av_errors():
        return False
    return n > 0


def _video_stream(container: Any, p: Path) -> Any:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        if _decodes_audio(container):
            raise MediaError("no_video_stream", f"no video stream in {p} (streams: {', '.join(kinds)})")
        # random bytes sometimes probe as a subtitle or audio stream: nothing decodable is unreadable
        raise MediaError("unreadable", f"no decodable video or image in {p} (the probe found: {', '.join(kinds)})")
    return container.streams.video[0]


def _stream_info(container: Any, stream: Any) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration_s = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration_s = container.duration / 1_000_000  # AV_TIME_BASE
    frame_count = int(stream.frames or 0)
    if frame_count <= 0 and fps > 0 and duration_s > 0:
        frame_count = round(duration_s * fps)
    width = int(stream.codec_context.width or 0)
    height = int(stream.codec_context.height or 0)
    return VideoInfo(frame_count=frame_count, fps=fps, width=width, height=height, duration_s=duration_s)


def video_info(path: PathLike) -> VideoInfo:
    """Frame count (metadata, else duration*fps), fps, size and duration of a video; raises MediaError."""
    p = Path(path)
    container = _open_container(p)
    try:
        return _stream_info(container, _video_stream(container, p))
    finally:
        container.close()


def _count_packets(container: Any, stream: Any) -> int:
    """Count the video packets by demuxing only (no decoding): the frame count when metadata has none."""
    count = 0
    try:
        container.seek(0)
        for packet in container.demux(stream):
            if packet.size:
                count += 1
    except _av_errors() as exc:
        logger.debug("demux stopped after %d packets: %s", count, exc)
    return count


class _Decoder:
    """Frames of one video stream in presentation order, with seeking and error accounting."""

    def __init__(self, container: Any, stream: Any, info: VideoInfo, path: Path, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.container, self.stream, self.info, self.path = container, stream, info, path
        self.max_pixels = int(max_pixels)
        stream.thread_type = "AUTO"  # frame + slice threads: ~3x faster on 1080p H.264 (bench_decode.py)
        # The header's size says nothing about later frames (MJPEG/MKV frames each carry their own): FFmpeg's own
        # limit makes the decoder refuse, before allocating, any frame over max_pixels (it reports EINVAL).
        stream.codec_context.options = {"max_pixels": str(self.max_pixels)}
        self.refused = 0
        self.time_base: Fraction | None = stream.time_base
        self.start_pts = stream.start_time if stream.start_time is not None else 0
        self.errors = 0
        self.first_error: str | None = None
        self.hit_eof = False

    def frames(self, seek_index: int | None) -> Iterator[Any]:
        """Decoded frames, from the start or from the keyframe at or before `seek_index`."""
        self.hit_eof = False
        target = 0 if seek_index is None else self.index_to_pts(seek_index)
        logger.debug("%s: seek to frame %s (pts %d)", self.path.name, seek_index or 0, target)
        try:
            # seek before the target by half a frame so rounding never lands after it
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        except _av_errors() as exc:
            self._error(exc)
            if seek_index is not None:
                return
        try:
            packets = self.container.demux(self.stream)
            for packet in packets:
                try:
                    decoded = packet.decode()
                except _av_errors() as exc:
                    self._error(exc)
                    if getattr(exc, "errno", None) == errno.EINVAL:
                        self.refused += 1
                        if self.refused > MAX_DECODE_ERRORS:
                            return
                    if self.errors > MAX_DECODE_ERRORS:
                        return
                    continue
                for frame in decoded:
                    self.check_size(frame)
                    yield frame
        except _av_errors() as exc:  # demuxing a truncated or corrupt file
            self._error(exc)
            return
        self.hit_eof = True

    def check_size(self, frame: Any) -> None:
        """Every decoded frame, not only the header, is held to the pixel limit."""
        if int(frame.width) * int(frame.height) > self.max_pixels:
            raise MediaError(
                "too_large",
                f"a frame of {self.path} is {frame.width}x{frame.height}, over the pixel limit {self.max_pixels}",
            )

    def index_to_pts(self, index: int) -> int:
        if not self.time_base or self.info.fps <= 0:
            return 0
        seconds = (index - 0.5) / self.info.fps
        return max(int(self.start_pts), int(self.start_pts + math.floor(seconds / self.time_base)))

    def pts_to_index(self, frame: Any) -> int | None:
        if frame.pts is None or not self.time_base or self.info.fps <= 0:
            return None
        return round(float((frame.pts - self.start_pts) * self.time_base) * self.info.fps)

    def _error(self, exc: BaseException) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = str(exc)
        logger.debug("decode error in %s: %s", self.path, exc)


def display_quarter_turns(frame: Any) -> int:
    """Counter-clockwise quarter turns (0-3) that show a decoded frame upright: its display matrix's rotation
    (phones store portrait video sideways with a 90° matrix), rounded to a quarter turn; 0 when there is none."""
    try:
        angle = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):  # no display matrix, or one PyAV cannot read
        return 0
    return round(angle / 90.0) % 4 if math.isfinite(angle) else 0


def display_matrix(frame: Any) -> tuple[int, ...] | None:
    """A decoded frame's display matrix as FFmpeg stores it (9 int32: a b u c d v x y w, a-d in 16.16 fixed point),
    or None when it has none (or PyAV cannot hand it over)."""
    try:
        item = frame.side_data.get("DISPLAYMATRIX")
        raw = bytes(item) if item is not None else b""
    except Exception:  # an older PyAV without this API, or side data it cannot read: as if there were none
        return None
    return struct.unpack("=9i", raw[:36]) if len(raw) >= 36 else None


def display_axes(frame: Any) -> tuple[bool, int, int] | None:
    """How a frame's display matrix maps stored pixels onto the screen when it is one of the eight quarter-turn
    rotations and mirrors: (transpose first, then row step, column step: -1 flips that axis); (False, 1, 1) with no
    matrix; None for any other matrix (an angle between quarter turns, a shear).

    FFmpeg maps a stored point (x, y) to (a*x + c*y, b*x + d*y) on screen (libavutil/display.h), y pointing down:
    a 90° counter-clockwise turn is (a, b, c, d) = (0, -1, 1, 0), a horizontal mirror (-1, 0, 0, 1)."""
    matrix = display_matrix(frame)
    if matrix is None:
        return (False, 1, 1)
    a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]
    tol = 0.01 * max(abs(a), abs(b), abs(c), abs(d), 1)
    sa, sb, sc, sd = (0 if abs(v) <= tol else 1 if v > 0 else -1 for v in (a, b, c, d))
    if sb == sc == 0 and sa and sd:
        return (False, sd, sa)  # x' = ±x, y' = ±y
    if sa == sd == 0 and sb and sc:
        return (True, sb, sc)  # x' = ±y, y' = ±x: the transposed picture, flipped as the signs say
    return None


def frame_rgb(frame: Any) -> np.ndarray:
    """A decoded video frame as HxWx3 uint8 RGB, the way players show it: its display matrix applied (quarter-turn
    rotations and mirrors exactly; any other angle as the nearest quarter turn)."""
    array = frame.to_ndarray(format="rgb24")
    axes = display_axes(frame)
    if axes is None:
        turns = display_quarter_turns(frame)
        return np.ascontiguousarray(np.rot90(array, turns) if turns else array)
    transpose, rows, cols = axes
    if transpose:
        array = array.transpose(1, 0, 2)
    return np.ascontiguousarray(array[::rows, ::cols]) if (transpose or rows < 0 or cols < 0) else array


def _decode_sequential(dec: _Decoder, targets: list[int]) -> tuple[list[tuple[int, np.ndarray]], int]:
    """One pass from the start, counting frames; returns the wanted frames and the number of frames seen."""
    wanted, last = set(targets), targets[-1]
    out: list[tuple[int, np.ndarray]] = []
    seen = 0
    for frame in dec.frames(None):
        if seen in wanted:
            out.append((seen, frame_rgb(frame)))
        seen += 1
        if seen > last:
            break
    return out, seen


def _decode_seeking(
    dec: _Decoder, targets: list[int], min_gap: int = SEEK_MIN_GAP
) -> list[tuple[int, np.ndarray]] | None:
    """Seek to each target more than `min_gap` frames ahead (else decode forward); None if timestamps are unusable."""
    out: list[tuple[int, np.ndarray]] = []
    pos = -1  # index of the last decoded frame
    it: Iterator[Any] | None = None
    useful_seeks = True
    for target in targets:
        if target <= pos:
            continue  # already passed (a frame was missing or timestamps were coarse)
        if it is None or (useful_seeks and target - pos > min_gap):
            it = dec.frames(target if target > min_gap else None)
            landed: int | None = None
        else:
            landed = pos
        got = None
        for frame in it:
            idx = dec.pts_to_index(frame)
            if idx is None:
                return None
            if landed is None:
                landed = idx
                if pos >= 0 and idx <= pos:
                    useful_seeks = False  # keyframes are sparser than targets: keep decoding forward instead
            pos = idx
            if idx >= target:
                got = (idx, frame_rgb(frame))
                break
        if got is None:
            break  # end of stream (or unreadable rest)
        out.append(got)
    return out


@contextmanager
def _video_decoding(p: Path, max_pixels: int) -> Iterator[tuple[Any, Any, VideoInfo]]:
    """Open `p`'s video stream (container, stream, info), refuse frames over `max_pixels`, map decoder failures to
    MediaError, and close the container whatever happens."""
    container = _open_container(p)
    try:
        stream = _video_stream(container, p)
        info = _stream_info(container, stream)
        if info.width * info.height > max_pixels:
            raise MediaError(
                "too_large", f"video frames are {info.width}x{info.height}, over the pixel limit {max_pixels}"
            )
        yield container, stream, info
    except MediaError:
        raise
    except MemoryError:
        raise MediaError("too_large", f"out of memory decoding {p}") from None
    except _av_errors() as exc:
        raise MediaError("unreadable", f"cannot decode {p}: {exc}") from None
    finally:
        container.close()


def read_video_frames(
    path: PathLike,
    frames_per_video: int | None = 32,
    every_k: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sampling: str = "even",
    clip_fps: float | None = None,
) -> list[tuple[int, np.ndarray]]:
    """Decode the sampled frames of a video as (frame_index, HxWx3 uint8 RGB) pairs; raises MediaError."""
    return read_video(path, frames_per_video, every_k, max_pixels, sampling, clip_fps)[0]


def clip_step(fps: float, clip_fps: float | None) -> int | None:
    """The frame step that brings a `fps` video near `clip_fps` (50 fps at 25: every 2nd frame); None when off."""
    if not clip_fps or fps <= 0:
        return None
    return max(1, round(fps / clip_fps))


def read_video(
    path: PathLike,
    frames_per_video: int | None = 32,
    every_k: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sampling: str = "even",
    clip_fps: float | None = None,
) -> tuple[list[tuple[int, np.ndarray]], VideoInfo]:
    """`read_video_frames`, plus the stream's `VideoInfo` (fps for timestamps) from the same open container.

    `sampling="consecutive"` with `clip_fps`: consecutive frames stepped to about that rate, so clips of 50 fps
    and 25 fps videos span the same time (`every_k`, when set, wins)."""
    p = Path(path)
    with _video_decoding(p, max_pixels) as (container, stream, info):
        frame_count = info.frame_count or _count_packets(container, stream)
        if frame_count <= 0:
            raise MediaError("no_frames", f"video stream has no frames: {p}")
        dec = _Decoder(container, stream, info, p, max_pixels)
        if sampling == "consecutive" and every_k is None:
            every_k = clip_step(info.fps, clip_fps)
        frames = _read_frames(dec, frame_count, frames_per_video, every_k, sampling)
        if dec.refused:
            raise MediaError(
                "too_large",
                f"the decoder refused {dec.refused} frame(s) of {p}: over the pixel limit {max_pixels} "
                f"or of invalid size ({dec.first_error})",
            )
        if not frames:
            if dec.errors:
                raise MediaError("unreadable", f"no frame could be decoded from {p}: {dec.first_error}")
            raise MediaError("no_frames", f"no decodable frames in {p}")
        if dec.errors:
            logger.warning(
                "%s: %d decode errors (first: %s); kept %d frames", p, dec.errors, dec.first_error, len(frames)
            )
        return frames, info


def read_video_frames_at(
    path: PathLike, indices: Iterable[int], max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[tuple[int, np.ndarray]]:
    """Decode the frames at `indices` (e.g. the frame a record's best face came from) as (index, RGB) pairs.

    Indices past the end are skipped; raises MediaError when the file cannot be decoded at all.
    """
    p = Path(path)
    targets = sorted({int(i) for i in indices if int(i) >= 0})
    with _video_decoding(p, max_pixels) as (container, stream, info):
        if not targets:
            return []
        dec = _Decoder(container, stream, info, p, max_pixels)
        if info.fps > 0 and targets[0] > SEEK_MIN_GAP:
            seeked = _decode_seeking(dec, targets)
            if seeked is not None and [i for i, _ in seeked] == targets:
                return seeked
        frames, _ = _decode_sequential(dec, targets)
        if not frames and dec.errors:
            raise MediaError("unreadable", f"no frame could be decoded from {p}: {dec.first_error}")
        return frames


def _read_frames(
    dec: _Decoder, frame_count: int, frames_per_video: int | None, every_k: int | None, sampling: str = "even"
) -> list[tuple[int, np.ndarray]]:
    targets = sample_frame_indices(frame_count, frames_per_video, every_k, sampling)
    mean_gap = frame_count / len(targets)
    far_start = sampling == "consecutive" and targets[0] > SEEK_MIN_GAP  # seek to the clip, then decode forward
    if (far_start or ((every_k is None or every_k > SEEK_MIN_GAP) and mean_gap > SEEK_MIN_GAP)) and dec.info.fps > 0:
        seeked = _decode_seeking(dec, targets)
        if seeked is not None and len(seeked) == len(targets):
            return seeked
        logger.debug(
            "%s: seeking gave %s of %d frames; decoding sequentially", dec.path, seeked and len(seeked), len(targets)
        )
    frames, seen = _decode_sequential(dec, targets)
    if len(frames) < len(targets) and dec.hit_eof and 0 < seen < frame_count:
        # the metadata over-counted (or the file is truncated): resample over the frames that really exist
        logger.debug("%s: %d frames decodable, metadata said %d; resampling", dec.path, seen, frame_count)
        retargets = sample_frame_indices(seen, frames_per_video, every_k, sampling)
        if retargets != [i for i, _ in frames]:
            frames, _ = _decode_sequential(dec, retargets)
    return frames


# ---------------------------------------------------------------------------------------------------------- files


def is_media_name(path: PathLike) -> bool:
    """Whether the file name has an image or video extension (what a folder scan looks for)."""
    return Path(path).suffix.lower() in IMAGE_EXTS | VIDEO_EXTS


def _walk_media(root: Path, recursive: bool, others: bool = False) -> list[Path]:
    def wanted(name: str) -> bool:
        return not name.startswith(".") and (others or is_media_name(name))

    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [Path(dirpath) / f for f in filenames if wanted(f)]
    else:
        found = [c for c in root.iterdir() if wanted(c.name) and not c.is_dir()]
    return sorted(found, key=lambda q: q.relative_to(root).as_posix())


# Magic numbers of common binary formats: a path list that starts with one is refused whole.
_BINARY_MAGIC = (
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"BZh",
    b"\xfd7zXZ",
    b"7z\xbc\xaf",
    b"\x89PNG",
    b"\xff\xd8\xff",
)


def _not_text(data: bytes) -> str | None:
    """Why `data` is not a text path list (a NUL byte, a binary format, mostly control or undecodable bytes)."""
    if data.startswith(_BINARY_MAGIC):
        return "a compressed or binary file"
    nul = data.find(b"\x00")
    if nul >= 0:
        return f"a NUL byte at offset {nul}"
    text = data.decode("utf-8", "surrogateescape")
    odd = sum(1 for c in text if (ord(c) < 32 and c not in "\t\n\r\f\v") or 0xDC80 <= ord(c) <= 0xDCFF)
    if text and odd > max(4, len(text) // 10):
        return f"{odd} of {len(text)} characters are control characters or invalid UTF-8"
    return None


def _list_entry(line: str, list_file: Path) -> Path:
    """A list line as a path: `~` expanded when it names a home (else kept literally, to be reported not found);
    relative entries are relative to the list's folder."""
    entry = Path(line)
    if line.startswith("~"):
        with suppress(RuntimeError):  # ~nosuchuser: no such home, kept literally
            entry = entry.expanduser()
    return entry if entry.is_absolute() else list_file.parent / entry


def read_path_list(list_file: Path) -> list[Path]:
    """The paths a `.txt` path list names, one per line (split on newlines only, so U+2028, U+0085 or a form feed
    stays inside a name; blank lines and `#` comments skipped). Entries may be absolute or outside the list's folder
    (a list says what its author chose to read, like the command line). A list that is not text (NUL bytes, a
    compressed file, random bytes) or over MAX_LIST_BYTES raises MediaError('unreadable')."""
    try:
        with open_regular(list_file) as fh:
            data = fh.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise MediaError("unreadable", f"cannot read path list {list_file}: {exc}") from None
    if len(data) > MAX_LIST_BYTES:
        raise MediaError("unreadable", f"path list {list_file} is larger than {MAX_LIST_BYTES} bytes")
    why = _not_text(data)
    if why:
        raise MediaError("unreadable", f"{list_file} is not a text path list ({why})")
    entries: list[Path] = []
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        line = line.strip(" \t\r")
        if line and not line.startswith("#"):
            entries.append(_list_entry(line, list_file))
    return entries


def named_inputs(paths: Iterable[PathLike]) -> list[PathLike]:
    """The given paths and every media file they expand to (what an output must not overwrite); never raises."""
    out: list[PathLike] = list(paths)
    for item in list(out):
        try:
            out.extend(iter_media_files([item]))
        except (MediaError, OSError):
            continue
    return out


def iter_media_files(paths: PathLike | Iterable[PathLike], recursive: bool = True, others: bool = False) -> list[Path]:
    """Expand files, folders and `.txt` path lists into a sorted, de-duplicated list of media files.

    Folders contribute files with a known image/video extension (hidden ones skipped; `others=True`: every
    non-hidden file, so the caller can account for each, see `is_media_name`); files named explicitly are kept
    whatever their extension, so that the caller reports a per-file status. A missing top-level path raises
    MediaError('not_found'); missing entries of a list file are kept (they fail later with 'not_found').
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[Path] = []
    seen: set[Path] = set()

    def add(q: Path) -> None:
        if q not in seen:
            seen.add(q)
            out.append(q)

    for item in items:
        p = Path(item)
        if str(item).startswith("~"):
            with suppress(RuntimeError):
                p = p.expanduser()
        # os.path's tests answer False for names that cannot exist (too long, NUL) instead of raising
        if os.path.isdir(p):
            for q in _walk_media(p, recursive, others):
                add(q)
        elif p.suffix.lower() == ".txt" and os.path.isfile(p):
            for entry in read_path_list(p):
                if os.path.isdir(entry):
                    for q in _walk_media(entry, recursive, others):
                        add(q)
                else:
                    add(entry)
        elif os.path.lexists(p):
            add(p)
        else:
            raise MediaError("not_found", f"input path not found: {p}")
    return out


def write_video(
    path: PathLike,
    frames: Iterable[np.ndarray],
    fps: int = 10,
    codec: str | None = None,
    gop_size: int | None = None,
    codec_options: dict[str, str] | None = None,
    faststart: bool = False,
) -> Path:
    """Encode HxWx3 uint8 RGB frames to a video file with PyAV (codec default: libx264 if available, else mpeg4)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError("write_video needs at least one frame")
    codec = codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        if codec == "mpeg4":
            stream.codec_context.options = {"qscale": "2"}
            stream.codec_context.qmax = 4
        if codec_options:
            stream.codec_context.options = dict(codec_options)
        for array in (first, *iterator):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
