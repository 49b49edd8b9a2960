"""What a file says about where it came from: container, codec, encoder/software tags, dates, EXIF, C2PA.

`probe_provenance(path)` never raises: a missing or unreadable file gives `{"error": ...}`. Every value is the
file's own claim (trivial to forge or strip); the report shows them as leads, not proof.

Content credentials (C2PA) are detected by structure, not verified: a JUMBF box labelled `c2pa` in a JPEG APP11
segment, a `caBX` chunk in a PNG, a C2PA `uuid` box or a `jumb` box at the top level of an ISO-BMFF file (MP4,
MOV, HEIF), and for other formats a byte scan of the first `SCAN_BYTES` for a JUMBF `c2pa` label. Presence says a
manifest is embedded; whether its signature is valid needs a C2PA validator.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from deepdetect.media import IMAGE_EXTS, VIDEO_EXTS, reject_special_file
from deepdetect.utils.io import open_regular

SCAN_BYTES = 8 * 1024 * 1024
C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the C2PA manifest-store uuid box (ISO-BMFF)
MAX_BOXES = 10_000  # boxes/chunks/segments walked before giving up (a hostile file cannot loop us)
MAX_TAG_CHARS = 200

# EXIF tags that matter for provenance (TIFF IFD0 and the Exif sub-IFD)
_EXIF_IFD0 = {0x010F: "exif_make", 0x0110: "exif_model", 0x0131: "exif_software", 0x0132: "exif_datetime"}
_EXIF_SUB = {0x9003: "exif_datetime_original"}
_EXIF_SUB_IFD = 0x8769
# container/stream metadata keys worth showing (lower-cased; FFmpeg's names)
_VIDEO_TAGS = {
    "encoder": "encoder",
    "creation_time": "creation_time",
    "com.apple.quicktime.software": "software",
    "software": "software",
    "com.apple.quicktime.make": "make",
    "com.apple.quicktime.model": "model",
    "com.apple.quicktime.creationdate": "creation_time",
    "major_brand": "major_brand",
    "handler_name": "handler",
    "comment": "comment",
}
# PNG text chunks that name a tool, including what image generators write
_PNG_TAGS = {
    "software": "software",
    "creation time": "creation_time",
    "parameters": "generator_parameters",
    "prompt": "generator_prompt",
    "workflow": "generator_workflow",
    "comment": "comment",
}


def _text(value: Any) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.replace("\x00", "").strip()
    return text[:MAX_TAG_CHARS] + ("…" if len(text) > MAX_TAG_CHARS else "")


# ------------------------------------------------------------------------------------------------------ C2PA scan


def _c2pa_jpeg(fh: BinaryIO) -> bool:
    fh.seek(2)
    for _ in range(MAX_BOXES):
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return False
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
            continue  # markers without a length
        if marker[1] in (0xDA, 0xD9):  # start of scan / end of image: no more metadata segments
            return False
        size_bytes = fh.read(2)
        if len(size_bytes) < 2:
            return False
        size = struct.unpack(">H", size_bytes)[0]
        if size < 2:
            return False
        if marker[1] == 0xEB:  # APP11: JPEG XT / JUMBF
            body = fh.read(size - 2)
            if b"jumb" in body and b"c2pa" in body:
                return True
        else:
            fh.seek(size - 2, os.SEEK_CUR)
    return False


def _c2pa_png(fh: BinaryIO) -> bool:
    fh.seek(8)
    for _ in range(MAX_BOXES):
        head = fh.read(8)
        if len(head) < 8:
            return False
        length, kind = struct.unpack(">I4s", head)
        if kind == b"caBX":
            return True
        if kind == b"IEND":
            return False
        fh.seek(length + 4, os.SEEK_CUR)  # data + CRC
    return False


def _c2pa_bmff(fh: BinaryIO, file_size: int) -> bool:
    pos = 0
    for _ in range(MAX_BOXES):
        if pos + 8 > file_size:
            return False
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return False
        size, kind = struct.unpack(">I4s", head)
        header = 8
        if size == 1:
            large = fh.read(8)
            if len(large) < 8:
                return False
            size, header = struct.unpack(">Q", large)[0], 16
        elif size == 0:
            size = file_size - pos
        if kind == b"jumb":
            return True
        if kind == b"uuid" and fh.read(16) == C2PA_UUID:
            return True
        if size < header:
            return False
        pos += size
    return False


def _c2pa_bytes(fh: BinaryIO) -> bool:
    fh.seek(0)
    data = fh.read(SCAN_BYTES)
    at = data.find(b"jumb")
    return at >= 0 and b"c2pa" in data[at : at + 4096]


def detect_c2pa(fh: BinaryIO, file_size: int) -> tuple[bool, str]:
    """Whether a C2PA manifest is embedded, and how that was looked for (format-specific walk or byte scan)."""
    fh.seek(0)
    magic = fh.read(12)
    if magic.startswith(b"\xff\xd8"):
        return _c2pa_jpeg(fh), "JPEG APP11 segments"
    if magic.startswith(b"\x89PNG\r\n\x1a\n"):
        return _c2pa_png(fh), "PNG chunks"
    if magic[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"uuid"):
        return _c2pa_bmff(fh, file_size), "ISO-BMFF top-level boxes"
    return _c2pa_bytes(fh), f"byte scan of the first {SCAN_BYTES // 2**20} MiB"


# ------------------------------------------------------------------------------------------------------ media tags


def _image_tags(path: Path) -> dict[str, Any]:
    from PIL import Image

    out: dict[str, Any] = {}
    with Image.open(path) as img:
        out["format"] = img.format
        out["width"], out["height"] = img.size
        out["mode"] = img.mode
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            out["frames"] = frames
        exif = img.getexif()
        for tag, name in _EXIF_IFD0.items():
            if exif.get(tag):
                out[name] = _text(exif[tag])
        sub = exif.get_ifd(_EXIF_SUB_IFD)
        for tag, name in _EXIF_SUB.items():
            if sub.get(tag):
                out[name] = _text(sub[tag])
        for key, value in (img.info or {}).items():
            png_tag = _PNG_TAGS.get(str(key).lower())
            if png_tag and isinstance(value, str | bytes) and png_tag not in out:
                out[png_tag] = _text(value)
        if img.info.get("xmp") or "XML:com.adobe.xmp" in img.info:
            out["xmp"] = True
    return out


def _video_tags(path: Path) -> dict[str, Any]:
    import av

    out: dict[str, Any] = {}
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        out["format"] = container.format.name
        if container.duration is not None:
            out["duration_s"] = round(container.duration / 1_000_000, 3)
        tags = {str(k).lower(): v for k, v in (container.metadata or {}).items()}
        streams = list(container.streams.video)
        if streams:
            stream = streams[0]
            ctx = stream.codec_context
            out["codec"] = ctx.name
            out["width"], out["height"] = int(ctx.width or 0), int(ctx.height or 0)
            rate = stream.average_rate or stream.guessed_rate
            if rate:
                out["fps"] = round(float(rate), 3)
            if stream.duration is not None and stream.time_base is not None:
                out["duration_s"] = round(float(stream.duration * stream.time_base), 3)
            for k, v in (stream.metadata or {}).items():
                tags.setdefault(f"stream:{str(k).lower()}", v)
        else:
            out["codec"] = None
        audio = list(container.streams.audio)
        out["audio"] = audio[0].codec_context.name if audio else None
        for key, value in tags.items():
            name = _VIDEO_TAGS.get(key.removeprefix("stream:"))
            if name and value and name not in out:
                out[name] = _text(value)
    return out


def probe_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Resolution, duration, fps, container, codec, encoder/software tags, dates, EXIF and C2PA presence.

    Never raises: a file that cannot be read gives `{"error": "..."}` (with what could be read before it).
    """
    p = Path(path)
    out: dict[str, Any] = {}
    try:
        reject_special_file(p)
        with open_regular(p) as fh:
            size = os.fstat(fh.fileno()).st_size
            out["size_bytes"] = size
            out["c2pa"], out["c2pa_checked"] = detect_c2pa(fh, size)
    except FileNotFoundError:
        return {"error": f"file not found: {p.name}"}
    except Exception as exc:  # hostile or exotic files: report, never raise
        return {**out, "error": f"cannot read: {type(exc).__name__}: {exc}"}
    suffix = p.suffix.lower()
    try:
        if suffix in IMAGE_EXTS:
            out.update(_image_tags(p))
        elif suffix in VIDEO_EXTS:
            out.update(_video_tags(p))
    except Exception as exc:
        out["error"] = f"cannot parse metadata: {type(exc).__name__}: {exc}"
    return out
