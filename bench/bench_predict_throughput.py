"""Predict throughput on CPU: detection threads, the contract-tied MTCNN pyramid, and the file pipeline, before vs
after in one process run, plus RSS over a long run of files.

- `detect_threads`: MTCNN on the same frames with 1 torch thread vs torch's default (interleaved repeats).
- `detect_policy`: faces >= the contract's `min_face` (score >= its `min_score`) and detect seconds on the dev photos
  and videos for MTCNN's default pyramid (20 px) vs `pyramid_for_min_face(min_face, slack)` (MTCNN's minimum face
  = slack x min_face, detected on a copy scaled so that size maps to 20 px); the files where any face is lost are
  listed.
- `detect_tracking`: the same, for tracked detection in videos (`faces.track.detect_tracked`): the full detector
  on every k-th of 32 sampled frames and MTCNN's R-Net/O-Net following the faces in between, k = 1 (every frame),
  2, 4, 8; faces kept, detect seconds, the IoU of each tracked face with the full detector's, and the files that
  differ.
- `throughput`: "before" is predict before the batched pipeline (`score_file` per file, MTCNN's default
  pyramid), but at one torch thread, not the old default count (so the gain shown leaves out `detect_threads`');
  "after_every_1" is `predict_files` with the full detector on every frame (one torch thread, 2 workers, a
  video's frames on 2 threads, ORT without spinning, crops batched across files); "after" is `predict_files` with
  today's defaults (tracked detection, every 4th frame); "after_fraction_1" adds `detect_min_face_fraction=1.0`.
  Images (about 512 px, one face), a <= 720p clip alone and in a queue, and the 1080p clip alone, 32 frames per
  video. Models (`BENCH_PREDICT_MODELS=a,b` picks some): efficientnet_b0 at 224 px fp32 (the model of the profile
  figures), tf_efficientnet_lite0 at 128 px INT8 (`quantize.int8=true` with the shipped settings: the format of the
  128 px face-swap recipes) and at 224 px INT8 (the face-swap reference's format, docs/RESULTS.md §1.6).
- `memory`: RSS sampled every `step` files over a long run of image files through `predict_files`
  (`bench_predict_memory.py` runs it over 10,000 files).

Models have random weights (speed only) and the extract defaults' face contract (min_face 40, min_score 0.9).
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from siblings import load

FRAMES = 32
MIN_FACE = 40.0
MIN_SCORE = 0.9
AIMS = {"image_files_per_s": 25.0, "video_720p_s": 1.5, "video_1080p_s": 3.0}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 1e6


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _frames(path: Path, frames: int) -> list[np.ndarray]:
    from deepdetect.media import load_image, media_kind, read_video_frames

    return [load_image(path)] if media_kind(path) == "image" else [f for _, f in read_video_frames(path, frames)]


def _kept(dets: Sequence[Any], min_face: float, min_score: float) -> int:
    from deepdetect.faces.track import select_faces

    return int(sum(len(select_faces(d, "all", min_face, min_score)) for d in dets))


def detect_threads(files: dict[str, Path], frames: int, repeats: int) -> dict[str, Any]:
    """Detect seconds on the same frames at 1 torch thread vs torch's default count, interleaved."""
    import torch

    from deepdetect.faces.detect import FaceDetector, torch_threads

    default = torch.get_num_threads()
    det = FaceDetector(device="cpu")
    out: dict[str, Any] = {"default_threads": default}
    for key, path in files.items():
        fr = _frames(path, frames)
        times: dict[int, list[float]] = {1: [], default: []}
        for _ in range(repeats):
            for n in times:
                with torch_threads(n):
                    start = time.perf_counter()
                    det.detect(fr)
                    times[n].append(time.perf_counter() - start)
        med = {n: float(np.median(v)) for n, v in times.items()}
        out[key] = {
            "median_s": {f"{n}_threads": round(v, 4) for n, v in med.items()},
            "repeats_s": {f"{n}_threads": [round(x, 4) for x in v] for n, v in times.items()},
            "speedup_1_thread": round(med[default] / med[1], 2),
        }
    return out


def detect_policy(
    files: list[Path], frames: int, slacks: Sequence[float], min_face: float = MIN_FACE
) -> dict[str, Any]:
    """Faces >= min_face (score >= MIN_SCORE) and detect seconds per pyramid setting over the dev files (1 thread)."""
    from deepdetect.faces.detect import FaceDetector, pyramid_for_min_face, torch_threads

    settings: dict[str, dict[str, Any]] = {"default_20px": {}}
    for s in slacks:
        size, scale = pyramid_for_min_face(min_face, s)
        settings[f"slack_{s:g}"] = {"min_face_size": size, "downscale": scale}
    detectors = {name: FaceDetector(device="cpu", **kw) for name, kw in settings.items()}
    faces = {name: 0 for name in settings}
    seconds = {name: 0.0 for name in settings}
    per_file: dict[str, dict[str, int]] = {}
    with torch_threads(1):
        for path in files:
            fr = _frames(path, frames)
            counts: dict[str, int] = {}
            for name, det in detectors.items():
                start = time.perf_counter()
                dets = det.detect(fr)
                seconds[name] += time.perf_counter() - start
                counts[name] = _kept(dets, min_face, MIN_SCORE)
                faces[name] += counts[name]
            per_file[f"{path.parent.name}/{path.name}"] = counts  # DFL real/ and fake/ share names
    base = "default_20px"
    changed = {
        name: {f: {"default": c[base], name: c[name]} for f, c in per_file.items() if c[name] != c[base]}
        for name in settings
        if name != base
    }
    return {
        "files": len(files),
        "frames_per_video": frames,
        "min_face": min_face,
        "min_score": MIN_SCORE,
        "settings": settings,
        "faces_ge_min_face": faces,
        "detect_s": {k: round(v, 2) for k, v in seconds.items()},
        "speedup_vs_default": {k: round(seconds[base] / max(v, 1e-9), 2) for k, v in seconds.items()},
        "files_that_differ": changed,
    }


def detect_tracking(files: list[Path], frames: int, everies: Sequence[int]) -> dict[str, Any]:
    """Faces >= MIN_FACE (score >= MIN_SCORE), seconds and IoU with the full detector, per keyframe interval."""
    from deepdetect.faces.detect import FaceDetector
    from deepdetect.faces.track import box_iou, detect_tracked, select_faces

    detector = FaceDetector(device="cpu", frame_workers=1)  # one thread: seconds are CPU cost
    names = [f"every_{k}" for k in everies]
    faces = {n: 0 for n in names}
    seconds = {n: 0.0 for n in names}
    ious: dict[str, list[float]] = {n: [] for n in names}
    per_file: dict[str, dict[str, int]] = {}
    for path in files:
        fr = _frames(path, frames)
        found: dict[str, list[Any]] = {}
        for name, every in zip(names, everies, strict=True):
            start = time.perf_counter()
            dets = detect_tracked(detector, fr, every)
            seconds[name] += time.perf_counter() - start
            found[name] = [d.subset(select_faces(d, "all", MIN_FACE, MIN_SCORE)) for d in dets]
        base = found[names[0]]
        counts = {n: sum(len(d) for d in found[n]) for n in names}
        for n in names:
            faces[n] += counts[n]
            for a, b in zip(base, found[n], strict=True):  # each full-detector face: its best tracked IoU
                if len(a):
                    ious[n].extend(box_iou(a.boxes, b.boxes).max(axis=1).tolist() if len(b) else [0.0] * len(a))
        per_file[f"{path.parent.name}/{path.name}"] = counts
    return {
        "files": len(files),
        "frames_per_video": frames,
        "faces_ge_min_face": faces,
        "detect_s": {k: round(v, 2) for k, v in seconds.items()},
        "speedup_vs_every_1": {k: round(seconds[names[0]] / max(v, 1e-9), 2) for k, v in seconds.items()},
        "iou_with_every_1": {
            n: {
                "median": round(float(np.median(v)), 3) if v else None,
                "p05": round(float(np.percentile(v, 5)), 3) if v else None,
                "share_below_0_5": round(float(np.mean(np.asarray(v) < 0.5)), 4) if v else None,
            }
            for n, v in ious.items()
        },
        "files_that_differ": {
            n: {f: {names[0]: c[names[0]], n: c[n]} for f, c in per_file.items() if c[n] != c[names[0]]}
            for n in names[1:]
        },
    }


def _make_model(scratch: Path, name: str = "efficientnet_b0", size: int = 224, int8: bool = False) -> Path:
    """ONNX export (fp32, or INT8 with the shipped settings) with a deepdetect contract carrying the extract
    defaults' face selection."""
    import onnx
    import torch

    from deepdetect.contract.onnx import build_contract, write_contract
    from deepdetect.export.onnx_export import export_onnx
    from deepdetect.models.detector import create_detector, resolve_preprocess

    torch.manual_seed(0)
    model = create_detector(name).eval()
    meta = {"model": {"name": name}, "preprocess": resolve_preprocess(model, size).to_dict(),
            "face_crop": {"detector": "mtcnn", "margin": 0.3, "size": size, "min_face": MIN_FACE,
                          "min_score": MIN_SCORE, "detector_min_face_size": 20}}  # fmt: skip
    path = scratch / f"{name}.onnx"
    proto = export_onnx(model, path, (size, size))
    write_contract(proto, build_contract(meta, "bench"))
    onnx.save(proto, str(path))
    if not int8:
        return path
    from deepdetect.export.quantize import Int8Settings, quantize_int8

    bench_int8 = load("bench_int8")  # the shipped settings, read from configs/export.yaml
    calib = np.random.default_rng(0).normal(0, 0.5, (32, 3, size, size)).astype(np.float32)
    settings = Int8Settings.from_config(bench_int8.shipped_settings())
    return Path(quantize_int8(path, scratch / f"{name}.int8.onnx", calib, settings))


def _before(paths: list[Path], predictor: Any, frames: int) -> list[dict[str, Any]]:
    """Predict as it was: `score_file` one file at a time, MTCNN's default pyramid; at ONE torch thread, not the
    old default count (that costs minutes per clip on a busy machine; `detect_threads` measures it apart)."""
    from deepdetect.faces.detect import FaceDetector, torch_threads
    from deepdetect.inference.predict import RunInfo, score_file
    from deepdetect.inference.settings import PredictSettings

    settings = PredictSettings(frames=frames, progress=False, detect_every=1)  # the full detector on every frame
    run = RunInfo.start(predictor, settings)
    detector = FaceDetector(device="cpu")
    with torch_threads(1):
        return [score_file(p, predictor, detector, settings, run)[0] for p in paths]


_DETECTORS: dict[tuple[int, float], Any] = {}


def _after(
    paths: list[Path], predictor: Any, frames: int, fraction: float = 0.5, every: int | None = None
) -> list[dict[str, Any]]:
    """Predict as it runs now (`run_predict`'s defaults): `predict_files` with 2 workers, frames on 2 threads, one
    torch thread, crops batched across files, tracked detection; MTCNN searching down to `fraction` x min_face, the
    full detector on every `every`-th frame (None: the default)."""
    from deepdetect.inference.predict import predict_detector, predict_files
    from deepdetect.inference.settings import DETECT_EVERY_DEFAULT, PredictSettings

    settings = PredictSettings(
        frames=frames,
        progress=False,
        workers=2,
        detect_min_face_fraction=fraction,
        detect_every=DETECT_EVERY_DEFAULT if every is None else every,
    )
    key = (id(predictor), fraction)
    if key not in _DETECTORS:
        _DETECTORS[key] = predict_detector(predictor.contract, frame_workers=2, min_face_fraction=fraction)
    return list(predict_files(paths, predictor, _DETECTORS[key], settings))


def _after_every_1(paths: list[Path], predictor: Any, frames: int) -> list[dict[str, Any]]:
    """`_after` with the full detector on every frame (`--detect-every 1`): the batched pipeline without tracking."""
    return _after(paths, predictor, frames, every=1)


def _after_fast(paths: list[Path], predictor: Any, frames: int) -> list[dict[str, Any]]:
    """`_after` with `--detect-min-face-fraction 1.0` (faster detection that can miss faces)."""
    return _after(paths, predictor, frames, 1.0)


def throughput(files: dict[str, Path], predictor: Any, n_images: int, n_videos: int, repeats: int) -> dict[str, Any]:
    """Before vs after, interleaved: images/s over `n_images` image files; one video alone (latency) and
    seconds per video over a queue of `n_videos` copies of it (throughput with the worker pool)."""
    jobs: dict[str, list[Path]] = {"image": [files["image"]] * n_images}
    jobs["video_720p_alone"] = [files["video_720p"]]
    jobs["video_720p_queue"] = [files["video_720p"]] * n_videos
    if "video_1080p" in files:
        jobs["video_1080p_alone"] = [files["video_1080p"]]
    variants = {"before": _before, "after_every_1": _after_every_1, "after": _after, "after_fraction_1": _after_fast}
    for warm in variants.values():  # sessions, MTCNN, thread pools
        warm([files["image"]], predictor, FRAMES)
    out: dict[str, Any] = {}
    for key, paths in jobs.items():
        times: dict[str, list[float]] = {name: [] for name in variants}
        faces: dict[str, int] = {}
        scores: dict[str, list[float | None]] = {}
        for _ in range(repeats):
            for name, fn in variants.items():
                start = time.perf_counter()
                recs = fn(paths, predictor, FRAMES)
                times[name].append(time.perf_counter() - start)
                faces[name] = sum(r["n_faces"] for r in recs)
                scores[name] = [r["score"] for r in recs]
        med = {k: float(np.median(v)) for k, v in times.items()}
        diff = {
            name: [abs(a - b) for a, b in zip(scores["before"], s, strict=True) if a is not None and b is not None]
            for name, s in scores.items()
            if name != "before"
        }
        out[key] = {
            "files": len(paths),
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "repeats_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "seconds_per_file": {k: round(v / len(paths), 4) for k, v in med.items()},
            "files_per_s": {k: round(len(paths) / v, 2) for k, v in med.items()},
            "speedup": {k: round(med["before"] / v, 2) for k, v in med.items()},
            "faces_scored": faces,
            "max_abs_score_change_vs_before": {k: round(max(v), 6) if v else None for k, v in diff.items()},
        }
    return out


def memory_child(model: Path, files: dict[str, Path], n_files: int, step: int) -> dict[str, Any]:
    """RSS every `step` records over `n_files` distinct files (hard links of the image, the <= 720p clip as every
    50th file) read from a path list through `predict_files`, as a queue would be; run in a fresh process."""
    from deepdetect.inference.predict import predict_detector, predict_files
    from deepdetect.inference.predictor import Predictor
    from deepdetect.inference.settings import PredictSettings

    predictor = Predictor.from_path(model)
    rss_loaded = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = {}
        for key in ("image", "video_720p"):
            sources[key] = root / f"source{files[key].suffix}"
            sources[key].write_bytes(files[key].read_bytes())
        paths = []
        for i in range(n_files):
            src = sources["video_720p" if i % 50 == 49 else "image"]
            paths.append(root / f"f{i:06d}{src.suffix}")
            os.link(src, paths[-1])  # a distinct file name per record, no copies of the bytes
        listing = root / "queue.txt"
        listing.write_text("\n".join(map(str, paths)) + "\n")
        settings = PredictSettings(frames=FRAMES, progress=False)
        curve = [(0, round(_rss_mb(), 1))]
        start = time.perf_counter()
        statuses: dict[str, int] = {}
        detector = predict_detector(predictor.contract, frame_workers=2)
        for i, rec in enumerate(predict_files([listing], predictor, detector, settings), 1):
            statuses[rec["status"]] = statuses.get(rec["status"], 0) + 1
            if i % step == 0:
                curve.append((i, round(_rss_mb(), 1)))
        seconds = time.perf_counter() - start
    rss = [r for _, r in curve[1:]]
    half = len(rss) // 2
    return {
        "files": n_files,
        "videos": n_files // 50,
        "seconds": round(seconds, 1),
        "files_per_s": round(n_files / seconds, 2),
        "statuses": statuses,
        "rss_after_model_load_mb": round(rss_loaded, 1),
        "rss_curve_mb": curve,
        "rss_max_first_half_mb": max(rss[:half]) if half else None,
        "rss_max_second_half_mb": max(rss[half:]) if half else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def memory(model: Path, files: dict[str, Path], n_files: int, step: int) -> dict[str, Any]:
    """`memory_child` in a fresh Python process, so its RSS is predict's alone."""
    import subprocess
    import sys

    code = (
        f"import json, sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
        "from siblings import load; b = load('bench_predict_throughput'); "
        f"files = {{k: Path(v) for k, v in {json.dumps({k: str(v) for k, v in files.items()})}.items()}}; "
        f"print(json.dumps(b.memory_child(Path({str(model)!r}), files, {n_files}, {step})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


SECTIONS = ("detect_threads", "detect_policy", "detect_tracking", "throughput", "memory")


def _chosen(variable: str, allowed: Sequence[str]) -> set[str]:
    """The comma-separated names in environment variable `variable` (all of `allowed` when unset or empty)."""
    chosen = {s.strip() for s in os.environ.get(variable, "").split(",") if s.strip()}
    unknown = chosen - set(allowed)
    if unknown:
        raise ValueError(f"unknown {variable} {sorted(unknown)}; expected some of {sorted(allowed)}")
    return chosen or set(allowed)


def _sections() -> set[str]:
    """`BENCH_PREDICT_SECTIONS=a,b` runs only those sections (default: all of `SECTIONS`)."""
    return _chosen("BENCH_PREDICT_SECTIONS", SECTIONS)


MODELS = {
    "b0_224_fp32": ("efficientnet_b0", 224, False),
    "lite0_128_int8": ("tf_efficientnet_lite0", 128, True),
    "lite0_224_int8": ("tf_efficientnet_lite0", 224, True),
}


def _models() -> dict[str, tuple[str, int, bool]]:
    """`BENCH_PREDICT_MODELS=a,b` times only those models (default: all of `MODELS`)."""
    chosen = _chosen("BENCH_PREDICT_MODELS", list(MODELS))
    return {k: v for k, v in MODELS.items() if k in chosen}


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Every measurement above on the dev data (quick: fewer files and no 1080p clip)."""
    from deepdetect.inference.predictor import Predictor
    from deepdetect.utils.devdata import dev_data_dir

    del out_dir
    data = dev_data_dir()
    if data is None:
        return {"skipped": "no dev data (../shared/data or $DEEPDETECT_DEV_DATA)"}
    sections = _sections()
    files = {"image": data / "photos" / "img50.jpg", "video_720p": data / "videos" / "lp_d0.mp4"}
    if not quick:
        files["video_1080p"] = data / "videos" / "fnp_video_1080p.mp4"
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(), "aims": AIMS}
    results["sections"] = sorted(sections)
    small = {k: v for k, v in files.items() if k != "video_1080p"}  # default threads take minutes on 1080p
    if "detect_threads" in sections:
        results["detect_threads"] = detect_threads(small, 8 if quick else FRAMES, 1 if quick else 2)
    dev = sorted((data / "photos").glob("*.jpg")) + sorted((data / "videos").glob("*.mp4"))
    swaps = [p for sub in ("ffpp-c23", "faceswap-dfl", "dfdc-sample") for p in sorted((data / sub).glob("*/*.mp4"))]
    slacks = [1.0, 0.8, 0.67]
    if "detect_policy" in sections:
        results["detect_policy"] = detect_policy(dev[:10] if quick else dev, 8, slacks)
        if not quick:
            results["detect_policy_face_swap_videos"] = detect_policy(swaps, 8, slacks)
            results["detect_policy_1080p_32_frames"] = detect_policy([files["video_1080p"]], FRAMES, slacks)
    if "detect_tracking" in sections:
        vids = swaps + sorted((data / "videos").glob("*.mp4"))
        results["detect_tracking"] = (
            detect_tracking(dev[-3:], 8, (1, 4)) if quick else detect_tracking(vids, FRAMES, (1, 2, 4, 8))
        )
    models = _models()
    with tempfile.TemporaryDirectory() as tmp:
        for key, (name, size, int8) in models.items():
            if "throughput" not in sections and not (key == "b0_224_fp32" and "memory" in sections):
                continue
            model = _make_model(Path(tmp), name, size, int8)
            if "throughput" in sections:
                predictor = Predictor.from_path(model)
                results[f"throughput_{key}"] = {
                    "model": f"{name} {size} px ONNX {'INT8 (shipped settings)' if int8 else 'fp32'} (random init), "
                    "batch 32, min_face 40, min_score 0.9",
                    **throughput(files, predictor, 20 if quick else 100, 2 if quick else 4, 1 if quick else 2),
                }
            if key == "b0_224_fp32" and "memory" in sections:
                results["memory"] = memory(model, files, 200 if quick else 1000, 50)
    results["load_avg_end"] = os.getloadavg()
    return json.loads(json.dumps(results, default=str))
