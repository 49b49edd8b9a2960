"""Thumbnails for the report: the file (for a video, the frame of its highest-scoring face) with each face's box
and score drawn on it, as a JPEG data URI; and embedded copies of explanation images.

Nothing here raises for a bad file: a missing or undecodable file gives a `Thumb` with no image and the reason.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepdetect.media import DEFAULT_MAX_PIXELS, load_image, media_kind, read_video_frames_at, reject_special_file
from deepdetect.utils.paths import path_from_b64

MAX_SIDE = 240
EXPLANATION_SIDE = 320
JPEG_QUALITY = 80
FAKE_COLOUR = (220, 30, 30)
REAL_COLOUR = (30, 170, 60)


@dataclass(frozen=True)
class Thumb:
    """An embedded image (data URI, size) or, when there is none, the reason (`note`)."""

    uri: str | None
    width: int = 0
    height: int = 0
    note: str | None = None
    caption: str | None = None


def locate(path: Path, base: Path | None) -> Path:
    """`path` as given; a relative one that is not there is looked for under `base` (the records' folder)."""
    if path.is_absolute() or base is None or path.exists():
        return path
    return base / path if (base / path).exists() else path


def record_path(rec: dict[str, Any], base: Path | None = None) -> Path | None:
    """The file a record is about: `abs_path`, else its exact bytes (non-UTF-8 names), else `path`.

    Relative paths are as predict was given them (relative to where it ran); `base` is tried when they do not
    resolve from here.
    """
    if isinstance(rec.get("abs_path"), str) and rec["abs_path"]:
        return Path(rec["abs_path"])
    b64 = rec.get("path_bytes_b64")
    if isinstance(b64, str) and b64:
        try:
            return locate(Path(path_from_b64(b64)), base)
        except ValueError:
            pass
    if isinstance(rec.get("path"), str) and rec["path"]:
        return locate(Path(rec["path"]), base)
    return None


def _jpeg_uri(img: Any) -> str:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _best_frame(faces: list[dict[str, Any]]) -> int | None:
    scored = [f for f in faces if f.get("score") is not None and f.get("frame_index") is not None]
    if not scored:
        indexed = [f for f in faces if f.get("frame_index") is not None]
        return int(indexed[0]["frame_index"]) if indexed else None
    return int(max(scored, key=lambda f: f["score"])["frame_index"])


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _shrink(img: Any, max_side: int) -> tuple[Any, float]:
    """A PIL image resized so its longer side is at most `max_side`, and the factor applied."""
    from PIL import Image

    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img, scale


def draw_faces(
    frame: np.ndarray, faces: list[dict[str, Any]], threshold: float | None, max_side: int, box_scale: float = 1.0
) -> Any:
    """`frame` shrunk to `max_side` (a PIL image), each face's box (red: score >= threshold) and score drawn.

    Boxes are in the pixels predict saw; `box_scale` maps them onto `frame` when it is a reduced decode.
    """
    from PIL import Image, ImageDraw

    img, scale = _shrink(Image.fromarray(frame), max_side)
    scale *= box_scale
    draw = ImageDraw.Draw(img)
    font = _font(12)
    for face in faces:
        box = face.get("box")
        if not box:
            continue
        x1, y1, x2, y2 = (v * scale for v in box)
        score = face.get("score")
        fake = score is not None and threshold is not None and score >= threshold
        colour = FAKE_COLOUR if fake else REAL_COLOUR
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        if score is not None:
            text = f"{score:.2f}"
            tx, ty = x1, (y1 - 14 if y1 >= 14 else min(img.height - 14.0, y2 + 1))
            left, top, right, bottom = draw.textbbox((tx, ty), text, font=font)
            draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=colour)
            draw.text((tx, ty), text, fill=(255, 255, 255), font=font)
    return img


def load_reduced(path: Path, max_side: int) -> tuple[np.ndarray, float]:
    """An image as predict decoded it (EXIF orientation applied), a JPEG decoded at 1/2-1/8 scale when that still
    leaves `max_side` pixels (JPEG draft mode: large photos decode many times faster); and the scale from
    predict's pixel coordinates to the returned array. Other formats go through `media.load_image` (scale 1)."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if img.format != "JPEG" or img.width * img.height > DEFAULT_MAX_PIXELS:
            return load_image(path), 1.0  # its checks and messages (pixel limit, corrupt files) apply
        full_width = img.width
        img.draft("RGB", (max_side, max_side))
        scale = img.width / full_width
        oriented = ImageOps.exif_transpose(img) or img
        return np.ascontiguousarray(np.asarray(oriented.convert("RGB"), dtype=np.uint8)), scale


def thumbnail(rec: dict[str, Any], max_side: int = MAX_SIDE, base: Path | None = None) -> Thumb:
    """The record's file with its faces drawn (video: the frame of the best face), or a Thumb saying why not."""
    path = record_path(rec, base)
    if path is None:
        return Thumb(None, note="no path in the record")
    faces = [f for f in rec.get("faces") or [] if isinstance(f, dict)]
    threshold = rec.get("threshold")
    try:
        reject_special_file(path)
        if not path.exists():
            return Thumb(None, note="file not found")
        kind = rec.get("kind") or media_kind(path)
        caption, box_scale = None, 1.0
        if kind == "video":
            index = _best_frame(faces)
            frames = read_video_frames_at(path, [index if index is not None else 0])
            if not frames:
                return Thumb(None, note="frame not decodable")
            index, frame = frames[0]
            faces = [f for f in faces if f.get("frame_index") == index]
            caption = f"frame {index}" + (f" ({faces[0]['time_s']:.2f} s)" if faces and faces[0].get("time_s") else "")
        else:
            frame, box_scale = load_reduced(path, max_side)
        img = draw_faces(frame, faces, threshold, max_side, box_scale)
        return Thumb(_jpeg_uri(img), img.width, img.height, caption=caption)
    except Exception as exc:  # any file, any failure: a placeholder, never an exception
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return Thumb(None, note=f"no preview: {message}"[:200])


def embed_image(path: str | os.PathLike[str] | None, max_side: int = EXPLANATION_SIDE) -> Thumb:
    """An image file (e.g. an explanation PNG) re-encoded as a bounded data URI; a Thumb with a note if unusable."""
    if not path:
        return Thumb(None, note="no image")
    try:
        img = load_image(path)
    except Exception as exc:
        return Thumb(None, note=f"explanation not readable: {getattr(exc, 'message', exc)}"[:200])
    from PIL import Image

    pil, _ = _shrink(Image.fromarray(img), max_side)
    return Thumb(_jpeg_uri(pil), pil.width, pil.height)
