"""Robustness of PDQ matching on the dev data: recall at distance <= 31 per transform, false matches, face crops.

Images: originals from gan-faces/real are indexed; each is transformed (JPEG, resize, crop, letterbox, flip,
rotation, brightness/contrast, text overlay, screenshot) and matched back (dihedral query hashes on). A transform
is recovered when the copy's best match is its own original. Face crops: the same with MTCNN face-crop hashes on
both sides. False matches: gan-faces/fake and gan-faces/test images (disjoint people) against the index.
Videos: ffpp-c23/real and faceswap-dfl/real clips are indexed (1 frame/s); copies are re-encoded at low bitrate,
changed to 15 fps, trimmed to a 5 s excerpt, mirrored, or shrunk into a picture-in-picture; disjoint clips
(ffpp-c23/fake-dfd, dfdc-sample/fake, videos/lp_d*) give the false matches.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from deepdetect.utils.devdata import dev_data_dir

Transform = Callable[[Image.Image], Image.Image]


def _jpeg(q: int) -> Transform:
    def f(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return f


def _resize(s: float) -> Transform:
    return lambda img: img.resize((max(8, round(img.width * s)), max(8, round(img.height * s))), Image.BICUBIC)


def _crop(frac: float) -> Transform:
    def f(img: Image.Image) -> Image.Image:
        dx, dy = round(img.width * frac / 2), round(img.height * frac / 2)
        return img.crop((dx, dy, img.width - dx, img.height - dy))

    return f


def _letterbox(img: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (round(img.height * 16 / 9), img.height), (0, 0, 0))
    canvas.paste(img, ((canvas.width - img.width) // 2, 0))
    return canvas


def _overlay(img: Image.Image) -> Image.Image:
    out = img.copy()
    draw = ImageDraw.Draw(out)
    h = img.height
    draw.rectangle((0, int(h * 0.82), img.width, h), fill=(20, 20, 20))
    draw.text((8, int(h * 0.85)), "@uploader  watch more at example.com", fill=(255, 255, 255))
    draw.rectangle((img.width - 48, 6, img.width - 6, 30), fill=(230, 30, 30))  # a logo
    return out


def _screenshot(img: Image.Image) -> Image.Image:
    small = img.resize((round(img.width * 0.8), round(img.height * 0.8)), Image.BILINEAR)
    canvas = Image.new("RGB", (small.width + 20, small.height + 60), (250, 250, 250))
    ImageDraw.Draw(canvas).rectangle((0, 0, canvas.width, 36), fill=(60, 60, 70))  # app bar
    canvas.paste(small, (10, 42))
    return _jpeg(75)(canvas)


IMAGE_TRANSFORMS: dict[str, Transform] = {
    "jpeg_q30": _jpeg(30),
    "jpeg_q50": _jpeg(50),
    "jpeg_q70": _jpeg(70),
    "resize_0.25": _resize(0.25),
    "resize_0.5": _resize(0.5),
    "resize_2": _resize(2.0),
    "crop_5": _crop(0.05),
    "crop_10": _crop(0.10),
    "crop_20": _crop(0.20),
    "letterbox_16x9": _letterbox,
    "hflip": lambda img: img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "rot90": lambda img: img.transpose(Image.Transpose.ROTATE_90),
    "brightness_+20": lambda img: ImageEnhance.Brightness(img).enhance(1.2),
    "brightness_-20": lambda img: ImageEnhance.Brightness(img).enhance(0.8),
    "contrast_+20": lambda img: ImageEnhance.Contrast(img).enhance(1.2),
    "contrast_-20": lambda img: ImageEnhance.Contrast(img).enhance(0.8),
    "text_overlay": _overlay,
    "screenshot": _screenshot,
}


def _image_record(img: Image.Image, detector: Any, dihedral: bool = True) -> dict[str, Any]:
    from deepdetect.hashing.pdq import hash_rgb_dihedral
    from deepdetect.hashing.records import _face_hashes

    rgb = np.asarray(img.convert("RGB"))
    hashes, quality = hash_rgb_dihedral(rgb)
    rec: dict[str, Any] = {"kind": "image", "status": "ok", "pdq": hashes[0].hex(), "quality": quality}
    if dihedral:
        rec["dihedral"] = [b.hex() for b in hashes[1:]]
    if detector is not None:
        rec["faces"] = _face_hashes(0, rgb, detector)
    return rec


def _recall(matcher: Any, queries: list[tuple[str, dict[str, Any]]]) -> tuple[float, list[int]]:
    hits, distances = 0, []
    for ref, rec in queries:
        matches = [m for m in matcher.match(rec) if m.is_match]
        own = [m for m in matches if m.ref == ref]
        hits += bool(own)
        if own:
            distances.append(own[0].distance)
    return hits / max(len(queries), 1), distances


def images(root: Path, n: int, n_disjoint: int, faces: bool) -> dict[str, Any]:
    from deepdetect.faces.detect import FaceDetector
    from deepdetect.hashing.index import HashIndex, Item
    from deepdetect.hashing.match import Matcher

    detector = FaceDetector() if faces else None
    originals = sorted((root / "gan-faces" / "real").glob("*.jpg"))[:n]
    disjoint = sorted((root / "gan-faces" / "fake").glob("*.jpg"))[: n_disjoint // 2]
    disjoint += sorted((root / "gan-faces" / "test" / "real").glob("*.jpg"))[: n_disjoint - len(disjoint)]
    pics = {p.name: Image.open(p).convert("RGB") for p in originals}
    out: dict[str, Any] = {"originals": len(pics), "disjoint": len(disjoint), "transforms": {}}
    with tempfile.TemporaryDirectory() as tmp, HashIndex(Path(tmp) / "img.db", create=True) as index:
        items = []
        for name, img in pics.items():
            items.append(Item.from_record({**_image_record(img, detector, False), "path": name}, "known", ref=name))
        index.add(items)
        frame_only = Matcher(index)
        for tname, fn in IMAGE_TRANSFORMS.items():
            recs = [(name, _image_record(fn(img), detector)) for name, img in pics.items()]
            recall, dist = _recall(frame_only, [(r, {**rec, "faces": []}) for r, rec in recs])
            row: dict[str, Any] = {
                "recall": round(recall, 3),
                "median_distance": float(np.median(dist)) if dist else None,
            }
            if faces:
                row["recall_with_faces"] = round(_recall(frame_only, recs)[0], 3)
                row["faces_found"] = round(float(np.mean([bool(rec["faces"]) for _, rec in recs])), 3)
            out["transforms"][tname] = row
            print("image", tname, row, flush=True)
        false = 0
        for p in disjoint:
            rec = _image_record(Image.open(p).convert("RGB"), detector)
            false += any(m.is_match for m in frame_only.match(rec))
        out["false_matches"] = false
    return out


# ---------------------------------------------------------------------------------------------------------- video


def _frames(path: Path, fps: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    from deepdetect.faces.media import video_info
    from deepdetect.hashing.video import iter_sampled_frames

    rate = fps or video_info(path).fps or 25.0
    for _, t, rgb in iter_sampled_frames(path, fps=rate):
        yield t, rgb


def _even(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


def _pip(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    bg = np.full((h, w, 3), 40, np.uint8)
    bg[:, : w // 2] = (30, 90, 160)  # a "host" frame around the inset
    small = np.asarray(Image.fromarray(rgb).resize((w * 2 // 5, h * 2 // 5), Image.BILINEAR))
    bg[h // 10 : h // 10 + small.shape[0], w // 2 : w // 2 + small.shape[1]] = small
    return bg


def video_transforms(src: Path, dst: Path, name: str) -> Path:
    from deepdetect.faces.media import video_info, write_video

    info = video_info(src)
    fps = round(info.fps) or 25
    opts = {"preset": "veryfast", "crf": "23"}
    if name == "reencode_low_bitrate":
        return write_video(
            dst, (_even(f) for _, f in _frames(src)), fps=fps, codec_options={"preset": "veryfast", "crf": "38"}
        )
    if name == "fps_15":
        return write_video(dst, (_even(f) for _, f in _frames(src, 15.0)), fps=15, codec_options=opts)
    if name == "trim_5s":
        start = max(0.0, min(1.5, info.duration_s - 5.0))
        frames = (_even(f) for t, f in _frames(src) if start <= t < start + 5.0)
        return write_video(dst, frames, fps=fps, codec_options=opts)
    if name == "hflip":
        return write_video(dst, (_even(f[:, ::-1]) for _, f in _frames(src)), fps=fps, codec_options=opts)
    if name == "picture_in_picture":
        return write_video(dst, (_even(_pip(f)) for _, f in _frames(src)), fps=fps, codec_options=opts)
    raise ValueError(name)


VIDEO_TRANSFORMS = ("reencode_low_bitrate", "fps_15", "trim_5s", "hflip", "picture_in_picture")


def videos(root: Path, n: int) -> dict[str, Any]:
    from deepdetect.hashing.index import HashIndex, Item
    from deepdetect.hashing.match import Matcher
    from deepdetect.hashing.records import hash_file

    originals = sorted((root / "ffpp-c23" / "real").glob("*.mp4"))
    originals += sorted((root / "faceswap-dfl" / "real").glob("*.mp4"))
    originals = originals[:n]
    disjoint = sorted((root / "ffpp-c23" / "fake-dfd").glob("*.mp4")) + sorted(
        (root / "dfdc-sample" / "fake").glob("*.mp4")
    )
    disjoint += sorted((root / "videos").glob("lp_d*.mp4"))
    out: dict[str, Any] = {"originals": len(originals), "disjoint": len(disjoint), "transforms": {}}
    with tempfile.TemporaryDirectory() as tmp, HashIndex(Path(tmp) / "vid.db", create=True) as index:
        index.add([Item.from_record(hash_file(p), "known", ref=p.name) for p in originals])
        matcher = Matcher(index)
        for tname in VIDEO_TRANSFORMS:
            queries, shares = [], []
            for p in originals:
                copy = video_transforms(p, Path(tmp) / f"{tname}_{p.name}", tname)
                rec = hash_file(copy, dihedral=True)
                queries.append((p.name, rec))
                own = [m for m in matcher.match(rec) if m.ref == p.name]
                shares.append((own[0].query_share, own[0].indexed_share) if own else (0.0, 0.0))
                copy.unlink()
            recall, dist = _recall(matcher, queries)
            row = {
                "recall": round(recall, 3),
                "median_distance": float(np.median(dist)) if dist else None,
                "mean_query_share": round(float(np.mean([s[0] for s in shares])), 3),
                "mean_indexed_share": round(float(np.mean([s[1] for s in shares])), 3),
            }
            out["transforms"][tname] = row
            print("video", tname, row, flush=True)
        out["false_matches"] = sum(any(m.is_match for m in matcher.match(hash_file(p))) for p in disjoint)
        fakes = sorted((root / "faceswap-dfl" / "fake").glob("*.mp4"))
        swapped = [p for p in fakes if any(o.name == p.name for o in originals)]
        out["face_swapped_copies"] = {
            "n": len(swapped),
            "matched_their_real_source": sum(
                any(m.is_match and m.ref == p.name for m in matcher.match(hash_file(p))) for p in swapped
            ),
        }
    return out


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    root = dev_data_dir()
    if root is None:
        return {"skipped": "development data not found (../shared/data or $DEEPDETECT_DEV_DATA)"}
    start = time.perf_counter()
    result = {
        "threshold": 31,
        "decision": "image: best match is its own original at distance <= 31 (dihedral query hashes); video: vPDQ "
        "rule, >= 80% of the copy's frames (quality >= 50) match the original's",
        "images": images(root, 20 if quick else 100, 20 if quick else 200, faces=True),
        "videos": videos(root, 4 if quick else 15),
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result
