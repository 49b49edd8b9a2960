"""Benchmark: peak RSS and seconds to decode + detect hostile or huge inputs, each in a fresh subprocess.

Cases: an MJPEG/MKV whose header says 64x64 but whose later frames are 12000x12000 (refused as
`too_large` at the first big frame, the decoder never allocates it), and a 7999x7999 JPEG just within the pixel
limit, detected on a copy downscaled to `DETECT_MAX_SIDE` (side by side with full-resolution detection).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

PROBE = """
import json, resource, sys, time
import deepdetect.faces.detect as detect_mod
from deepdetect.media import MediaError, load_image, media_kind, read_video_frames
path, max_side = sys.argv[1], int(sys.argv[2])
detect_mod.DETECT_MAX_SIDE = max_side
detector = detect_mod.FaceDetector(device="cpu")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    frames = [(0, load_image(path))] if media_kind(path) == "image" else read_video_frames(path, 8)
    dets = detector.detect([f for _, f in frames])
    status, faces = "decoded", sum(len(d) for d in dets)
except MediaError as exc:
    status, faces = exc.status, 0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"status": status, "faces": faces, "seconds": round(time.perf_counter() - start, 2),
                  "peak_rss_mb": round(peak / 1024), "rss_before_mb": round(base / 1024)}))
"""


def growing_mjpeg(path: Path, big: int) -> Path:
    """Header and first 3 frames 64x64, then 3 frames big x big (MJPEG packets carry their own size)."""
    import av
    from PIL import Image

    def jpeg(side: int) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (120, 90, 60)).save(buf, "JPEG", quality=50)
        return buf.getvalue()

    packets = [jpeg(64)] * 3 + [jpeg(big)] * 3
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuvj420p"
        for i, data in enumerate(packets):
            packet = av.Packet(data)
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 10)
            container.mux(packet)
    return path


def big_face_jpeg(path: Path, side: int) -> Path:
    """A side x side JPEG holding one upscaled face (skimage's astronaut)."""
    from PIL import Image
    from skimage.data import astronaut

    Image.fromarray(astronaut()).resize((side, side), Image.Resampling.BILINEAR).save(path, quality=85)
    return path


def _probe(path: Path, max_side: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(max_side)], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-500:]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Peak RSS (MB) and seconds per case."""
    from deepdetect.faces.detect import DETECT_MAX_SIDE
    from deepdetect.media import DEFAULT_MAX_PIXELS

    big_video, big_image = (9000, 4000) if quick else (12000, 7999)
    figures: dict[str, Any] = {"max_pixels": DEFAULT_MAX_PIXELS, "detect_max_side": DETECT_MAX_SIDE}
    with tempfile.TemporaryDirectory() as tmp:
        video = growing_mjpeg(Path(tmp) / "grow.mkv", big_video)
        image = big_face_jpeg(Path(tmp) / "big.jpg", big_image)
        figures[f"mjpeg_header_64_frames_{big_video}"] = _probe(video, DETECT_MAX_SIDE)
        figures[f"jpeg_{big_image}_detect_downscaled"] = _probe(image, DETECT_MAX_SIDE)
        figures[f"jpeg_{big_image}_detect_full_resolution"] = _probe(image, 1_000_000)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(Path("bench/results"), "--quick" in sys.argv), indent=2))
