"""Face extraction: dataset layout → decode → detect → track → crop → `manifest.csv` + `failures.csv`.

Each finished source leaves a part file `DIR/parts/<id>.json` (written atomically after its crops), so a second run
skips finished sources and a killed run resumes, losing at most the sources in progress. The manifest is merged
from the part files at the end and written atomically.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, fields, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from deepdetect.contract import FaceCrop
from deepdetect.data.layouts import Source, load_sources
from deepdetect.data.manifest import (
    CropRecord,
    FailureRecord,
    records_to_frame,
    write_failures,
    write_manifest,
)
from deepdetect.data.splits import SplitLeakError, assign_splits, check_no_leak
from deepdetect.faces import landmarks as dense
from deepdetect.faces.crop import crop_face, square_box
from deepdetect.faces.detect import FaceDetector
from deepdetect.faces.track import link_tracks, select_faces
from deepdetect.media import (
    FRAME_SAMPLINGS,
    MAX_FRAMES_PER_VIDEO,
    MediaError,
    load_image,
    media_kind,
    read_video_frames,
    reject_special_file,
)
from deepdetect.utils.io import atomic_path, atomic_write_text
from deepdetect.utils.procs import die_with_parent

log = logging.getLogger(__name__)

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


@dataclass(frozen=True)
class ExtractSettings:
    """What extraction does to each source (plain values, so worker processes can receive them)."""

    frames_per_video: int | None = 32
    every_k: int | None = None
    frame_sampling: str = "even"  # even: spread over the video | consecutive: a sequence from its middle
    clip_fps: float | None = None  # consecutive: step frames to about this rate (null: every frame)
    device: str = "cpu"
    batch: bool | str = "auto"
    downscale: float | None = None
    detector_min_face_size: int = 20
    margin: float = 0.3
    size: int = 224
    keep: str = "largest"
    min_face_size: float = 40.0
    min_score: float = 0.9
    image_format: str = "png"
    track_iou: float = 0.3
    track_max_gap: int = 2
    dense_landmarks: bool | str = "auto"  # dlib's 68 points per crop (for SBI): true | false | auto (when installed)

    @property
    def wants_dense_landmarks(self) -> bool:
        """Whether crops get 68-point landmarks: `auto` resolves to whether dlib and its predictor are installed."""
        value = str(self.dense_landmarks).lower()
        return dense.available() if value == "auto" else value == "true"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ExtractSettings:
        """Pick the known keys from a config mapping (missing keys keep their defaults)."""
        values = {f.name: cfg[f.name] for f in fields(cls) if f.name in cfg and cfg[f.name] is not None}
        for key in ("frames_per_video", "every_k", "downscale", "clip_fps"):  # an explicit null means "off"
            if key in cfg and cfg[key] is None:
                values[key] = None
        settings = cls(**values)
        if settings.image_format.lower() not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {sorted(IMAGE_FORMATS)}, got {settings.image_format!r}")
        if settings.frame_sampling not in FRAME_SAMPLINGS:
            raise ValueError(f"frame_sampling must be one of {list(FRAME_SAMPLINGS)}, got {settings.frame_sampling!r}")
        if str(settings.dense_landmarks).lower() not in ("true", "false", "auto"):
            raise ValueError(f"dense_landmarks must be true, false or auto, got {settings.dense_landmarks!r}")
        if settings.dense_landmarks is True or str(settings.dense_landmarks).lower() == "true":
            dense.predictor_path()  # fail before any work when the extra is missing (LandmarksUnavailable)
        settings.check_bounds()
        return settings

    def check_bounds(self) -> None:
        """Raise ValueError for a size-like setting out of its range (a count or size that would exhaust memory)."""
        bounds: dict[str, tuple[float, float]] = {
            "frames_per_video": (1, MAX_FRAMES_PER_VIDEO),
            "every_k": (1, 1_000_000),
            "size": (8, 4096),
            "detector_min_face_size": (1, 4096),
            "min_face_size": (0, 4096),
            "margin": (0.0, 10.0),
            "min_score": (0.0, 1.0),
            "track_iou": (0.0, 1.0),
            "track_max_gap": (0, 10_000),
            "downscale": (1e-6, 65_536),  # > 1: a max side in pixels; (0, 1]: a factor
            "clip_fps": (1e-3, 1000),
        }
        for name, (lo, hi) in bounds.items():
            value = getattr(self, name)
            if value is None and name in ("frames_per_video", "every_k", "downscale", "clip_fps"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")

    def record(self) -> dict[str, Any]:
        """What `extract.json` stores: the face-crop contract consumers must reproduce, and every setting."""
        face_crop = FaceCrop(
            detector="mtcnn",
            margin=self.margin,
            size=self.size,
            # face selection: what a scorer must reproduce so it never feeds the model faces training never saw
            keep=self.keep,
            min_face=self.min_face_size,
            min_score=self.min_score,
            detector_min_face_size=self.detector_min_face_size,
            frames_per_video=self.frames_per_video,
            every_k=self.every_k,
        )
        return {
            "face_crop": face_crop.to_dict(),
            "settings": asdict(self),
        }

    def detector(self) -> FaceDetector:
        """A face detector configured by these settings."""
        return FaceDetector(
            device=self.device,
            min_face_size=self.detector_min_face_size,
            downscale=self.downscale,
            batch=self.batch if isinstance(self.batch, bool) else "auto",
        )


@dataclass
class ExtractResult:
    """Counts of one extraction run and where its outputs are."""

    output_dir: Path
    manifest_path: Path | None
    failures_path: Path | None
    n_sources: int
    n_skipped: int
    n_processed: int
    n_crops: int
    n_failures: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        out = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}


def stable_id(source: Source) -> str:
    """Short deterministic id of a source: a hash of its dataset and relative path."""
    key = f"{source.dataset}/{source.rel}".encode("utf-8", "surrogateescape")  # names need not be UTF-8
    return hashlib.sha1(key).hexdigest()[:16]


def _part_path(out_dir: Path, source: Source) -> Path:
    return out_dir / "parts" / f"{stable_id(source)}.json"


def _safe_name(text: str, max_len: int = 64) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".")
    if len(keep) > max_len:  # bounded, and still distinct: a cut name gets a hash of the whole one
        keep = f"{keep[:max_len]}_{hashlib.sha1(text.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
    return keep or "unnamed"


# Settings that change how fast extraction runs, not what it writes: a resume may change them.
NOT_FINGERPRINTED = ("device", "batch")
# Settings added after extractions were made: fingerprinted only when not at their default, so those still resume.
FINGERPRINTED_WHEN_SET = {"frame_sampling": "even", "clip_fps": None}
# Files and folders an extraction writes in output_dir (the only things `overwrite=true` removes).
OUTPUTS = ("parts", "crops", "manifest.csv", "failures.csv", "extract.json")


def _plain(value: Any) -> Any:
    """A config value as plain str / list of str (OmegaConf lists included)."""
    if value is None or isinstance(value, str):
        return value
    return [str(v) for v in value]


def run_fingerprint(cfg: Mapping[str, Any], settings: ExtractSettings, given: str) -> dict[str, Any]:
    """What an extraction's output depends on (input, layout, labels, splits, crop settings) and its hash."""
    root = Path(given).expanduser()
    try:
        root = root.resolve()
    except (OSError, RuntimeError):
        root = Path(os.path.abspath(root))
    what = {
        "input": os.fsdecode(root).encode("utf-8", "backslashreplace").decode("utf-8"),
        "layout": str(cfg.get("layout", "folder")),
        "dataset": cfg.get("dataset"),
        "label": cfg.get("label"),
        "group_pattern": _plain(cfg.get("group_pattern")),
        "val_fraction": float(cfg.get("val_fraction", 0.1)),
        "test_fraction": float(cfg.get("test_fraction", 0.1)),
        "seed": int(cfg.get("seed", 0)),
        "settings": {
            k: v
            for k, v in asdict(settings).items()
            if k not in NOT_FINGERPRINTED and not (k in FINGERPRINTED_WHEN_SET and v == FINGERPRINTED_WHEN_SET[k])
        },
    }
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"fingerprint": digest, "inputs": what}


class StaleOutputError(ValueError):
    """Raised when output_dir holds an extraction of other input or settings."""


def prepare_output_dir(out_dir: Path, run: dict[str, Any], overwrite: bool, may_write: bool = True) -> None:
    """Resume only into an output_dir whose `extract.json` fingerprint matches; refuse otherwise, unless
    `overwrite`, which removes the earlier extraction's outputs (only those: see `OUTPUTS`)."""
    if not any((out_dir / name).exists() for name in OUTPUTS):
        return
    try:
        old = json.loads((out_dir / "extract.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    if old.get("fingerprint") == run["fingerprint"]:
        return
    if not overwrite:
        before = old.get("inputs") or {}
        changed = sorted(
            {k for k in run["inputs"] if before.get(k) != run["inputs"][k] and k != "settings"}
            | {k for k, v in run["inputs"]["settings"].items() if (before.get("settings") or {}).get(k) != v}
        )
        what = f"differs in {', '.join(changed)}" if before else "has no fingerprint to compare"
        raise StaleOutputError(
            f"{out_dir} holds an earlier extraction that {what}; its crops and manifest would be mixed with this "
            "run's. Use another output_dir, rerun with the same input and settings to resume, or pass "
            "overwrite=true to replace it."
        )
    if may_write:
        log.warning("overwrite=true: removing the earlier extraction in %s", out_dir)
        for name in OUTPUTS:
            target = out_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()


def decode_source(source: Source, settings: ExtractSettings) -> list[tuple[int, np.ndarray]]:
    """Frames of a source as (frame_index, RGB uint8): the image itself, or the sampled video frames."""
    reject_special_file(source.path)  # a FIFO or device (even without a media extension) is never opened
    if media_kind(source.path) == "image":
        return [(0, load_image(source.path))]
    return read_video_frames(
        source.path,
        settings.frames_per_video,
        settings.every_k,
        sampling=settings.frame_sampling,
        clip_fps=settings.clip_fps,
    )


def _save_image(array: np.ndarray, path: Path, fmt: str) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format=IMAGE_FORMATS[fmt], **({"quality": 95} if fmt != "png" else {}))


_LANDMARKER = dense.DenseLandmarker()  # loads dlib's predictor on first use, once per process


def extract_source(
    source: Source, detector: FaceDetector, settings: ExtractSettings, out_dir: Path
) -> tuple[list[CropRecord], FailureRecord | None]:
    """Decode, detect, track and crop one source; writes its crops and returns their records, or a failure."""

    def fail(status: str, reason: str) -> tuple[list[CropRecord], FailureRecord]:
        return [], FailureRecord(str(source.path), status, reason, source.label, source.dataset, source.split)

    try:
        frames = decode_source(source, settings)
    except MediaError as exc:
        return fail(exc.status, str(exc))
    dets = detector.detect([f for _, f in frames])
    kept = [d.subset(select_faces(d, "all", settings.min_face_size, settings.min_score)) for d in dets]
    track_ids = link_tracks(kept, settings.track_iou, settings.track_max_gap)
    fmt = settings.image_format.lower()
    ext = "jpg" if fmt == "jpeg" else fmt
    sid = stable_id(source)
    rel_dir = Path("crops") / _safe_name(source.dataset) / source.label
    records: list[CropRecord] = []
    with_dense = settings.wants_dense_landmarks
    for (frame_index, frame), det, tids in zip(frames, kept, track_ids, strict=True):
        for i in select_faces(det, settings.keep):
            crop, pts = crop_face(frame, det.boxes[i], det.landmarks[i], settings.margin, settings.size)
            pts68: list[float] = []
            if with_dense:
                square = square_box(det.boxes[i], settings.margin, frame.shape[1], frame.shape[0])
                frame_pts = _LANDMARKER(frame, det.boxes[i])
                pts68 = [float(v) for v in dense.to_crop_coords(frame_pts, square, settings.size).reshape(-1)]
            rel = rel_dir / f"{sid}_f{frame_index:06d}_t{int(tids[i]):02d}.{ext}"
            _save_image(crop, out_dir / rel, fmt)
            x1, y1, x2, y2 = (float(v) for v in det.boxes[i])
            records.append(
                CropRecord(
                    crop_path=rel.as_posix(),
                    source_path=str(source.path),
                    label=source.label,
                    dataset=source.dataset,
                    source=source.source,
                    method=source.method,
                    compression=source.compression,
                    video_id=source.video_id,
                    frame_index=int(frame_index),
                    track_id=int(tids[i]),
                    x1=x1,
                    y1=y1,
                    x2=x2,
                    y2=y2,
                    det_score=float(det.scores[i]),
                    landmarks=[float(v) for v in pts.reshape(-1)],
                    split=source.split,
                    group=source.group,
                    landmarks68=pts68,
                )
            )
    if not records:
        n_raw = sum(len(d) for d in dets)
        return fail(
            "no_face",
            f"no face >= {settings.min_face_size}px with score >= {settings.min_score} "
            f"in {len(frames)} frame(s) ({n_raw} weaker detections)",
        )
    return records, None


class DiskFullError(OSError):
    """Raised when extraction cannot write (ENOSPC, EDQUOT): every source finished before stays in its part file."""


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def process_source(source: Source, detector: FaceDetector, settings: ExtractSettings, out_dir: Path) -> tuple[int, int]:
    """Extract one source and record it in its part file; returns (crops, failures). Never raises for bad input;
    raises DiskFullError when the output's disk is full (no file after it could be written either)."""
    try:
        records, failure = extract_source(source, detector, settings, out_dir)
    except Exception as exc:  # one bad file never stops the batch
        if _disk_full(exc):
            raise DiskFullError(f"disk full while writing crops of {source.rel} into {out_dir} ({exc})") from None
        log.exception("unexpected error on %s", source.path)
        records, failure = (
            [],
            FailureRecord(
                str(source.path), "error", f"{type(exc).__name__}: {exc}", source.label, source.dataset, source.split
            ),
        )
    part = {
        "rel": source.rel,
        "records": [asdict(r) for r in records],
        "failure": asdict(failure) if failure else None,
    }
    try:
        atomic_write_text(_part_path(out_dir, source), json.dumps(part))
    except OSError as exc:
        if _disk_full(exc):
            raise DiskFullError(f"disk full while writing {_part_path(out_dir, source)} ({exc})") from None
        raise
    return len(records), int(failure is not None)


# ------------------------------------------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}


def _worker_init(settings: ExtractSettings, out_dir: str, parent_pid: int | None = None) -> None:
    import torch

    if parent_pid is not None:
        die_with_parent(parent_pid)  # a killed driver takes its workers along
    torch.set_num_threads(1)
    _WORKER["settings"] = settings
    _WORKER["out_dir"] = Path(out_dir)
    _WORKER["detector"] = settings.detector()


def _worker_run(source: Source) -> tuple[int, int]:
    return process_source(source, _WORKER["detector"], _WORKER["settings"], _WORKER["out_dir"])


# ------------------------------------------------------------------------------------------------------- the driver


def dist_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))


def run_sources(
    sources: Sequence[Source], settings: ExtractSettings, out_dir: Path, num_workers: int = 0, desc: str = "extract"
) -> tuple[int, int]:
    """Process sources (in-process or with `num_workers` processes) with a progress bar; returns (crops, failures)."""
    crops = failures = 0
    if not sources:
        return 0, 0
    bar = tqdm(total=len(sources), desc=desc, unit="src", dynamic_ncols=True)

    def tick(result: tuple[int, int]) -> None:
        nonlocal crops, failures
        crops += result[0]
        failures += result[1]
        bar.update(1)
        bar.set_postfix(faces=crops, failures=failures)

    try:
        if num_workers <= 0:
            detector = settings.detector()
            for src in sources:
                tick(process_source(src, detector, settings, out_dir))
        else:
            ctx = get_context("spawn")
            with ProcessPoolExecutor(
                num_workers, mp_context=ctx, initializer=_worker_init, initargs=(settings, str(out_dir), os.getpid())
            ) as pool:
                pending: set[Future[tuple[int, int]]] = set()
                queue = list(sources)
                while queue or pending:
                    while queue and len(pending) < 2 * num_workers:
                        pending.add(pool.submit(_worker_run, queue.pop(0)))
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        tick(fut.result())
    finally:
        bar.close()
    return crops, failures


def merge_parts(sources: Sequence[Source], out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Manifest and failures frames from the part files of `sources`; split and group come from the sources."""
    records: list[CropRecord] = []
    failures: list[FailureRecord] = []
    for src in sources:
        path = _part_path(out_dir, src)
        if not path.is_file():
            continue
        part = json.loads(path.read_text())
        for row in part["records"]:
            rec = CropRecord(**row)
            rec.split, rec.group = src.split, src.group
            records.append(rec)
        if part["failure"]:
            fail = FailureRecord(**part["failure"])
            fail.split = src.split
            failures.append(fail)
    manifest = records_to_frame(records)
    fail_frame = pd.DataFrame([asdict(f) for f in failures], dtype=object)  # names that are not UTF-8 stay
    return manifest, fail_frame


def _wait_for_parts(sources: Sequence[Source], out_dir: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [s for s in sources if not _part_path(out_dir, s).is_file()]
        if not missing or time.monotonic() > deadline:
            if missing:
                log.warning("merging without %d sources other ranks did not finish", len(missing))
            return
        time.sleep(2.0)


def _mark_failed(path: Path, info: dict[str, Any], error: str) -> None:
    """Say in `extract.json` that the run failed and why (best effort: on a full disk this write may fail too)."""
    try:
        atomic_write_text(path, json.dumps({**info, "status": "failed", "error": error}, indent=2))
    except OSError as exc:
        log.warning("could not mark the run failed in %s: %s", path, exc)


def label_unknown(sources: Sequence[Source], label: str | None) -> list[Source]:
    """Give `label` to sources whose layout could not tell (e.g. `layout=single` on a folder of real photos)."""
    if label is None:
        return list(sources)
    if label not in ("real", "fake"):
        raise ValueError(f"label must be real or fake, got {label!r}")
    return [replace(s, label=label) if s.label == "unknown" else s for s in sources]


def extract(cfg: Mapping[str, Any]) -> ExtractResult:
    """Run extraction as configured (keys of `configs/extract.yaml`); writes DIR/manifest.csv and DIR/failures.csv."""
    start = time.perf_counter()
    try:
        given = cfg.get("input")
    except Exception:  # OmegaConf's MissingMandatoryValue for `input: ???`
        given = None
    if given in (None, "", "???"):
        raise ValueError("input is required: deepdetect-extract input=PATH output_dir=DIR")
    out_dir = Path(str(cfg["output_dir"])).expanduser().resolve()
    settings = ExtractSettings.from_config(cfg)
    sources = load_sources(
        str(cfg.get("layout", "folder")), str(given), cfg.get("dataset"), _plain(cfg.get("group_pattern"))
    )
    sources = label_unknown(sources, cfg.get("label"))
    sources = assign_splits(
        sources,
        float(cfg.get("val_fraction", 0.1)),
        float(cfg.get("test_fraction", 0.1)),
        int(cfg.get("seed", 0)),
    )
    rank, world = dist_info()
    run = run_fingerprint(cfg, settings, str(given))
    prepare_output_dir(out_dir, run, bool(cfg.get("overwrite", False)), may_write=rank == 0)
    # written (by every rank, atomically, the same text) before any part file: a killed run can be resumed, and
    # only by the same run
    info = {**run, **settings.record()}
    atomic_write_text(out_dir / "extract.json", json.dumps({**info, "status": "running"}, indent=2))
    if world > 1 and settings.device.startswith("cuda") and ":" not in settings.device:
        settings = ExtractSettings(**{**asdict(settings), "device": f"cuda:{os.environ.get('LOCAL_RANK', rank)}"})
    mine = list(sources[rank::world])
    todo = [s for s in mine if not _part_path(out_dir, s).is_file()]
    log.info(
        "%d sources (%d for rank %d/%d), %d already done; output in %s",
        len(sources),
        len(mine),
        rank,
        world,
        len(mine) - len(todo),
        out_dir,
    )
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    threads = cfg.get("torch_threads")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        crops, fails = run_sources(
            todo, settings, out_dir, int(cfg.get("num_workers", 0) or 0), desc=f"extract[{rank}]"
        )
    except DiskFullError as exc:  # the finished sources' part files stay: the same command resumes after them
        _mark_failed(out_dir / "extract.json", info, str(exc))
        raise
    finally:
        torch.set_num_threads(previous_threads)
    manifest_path = failures_path = None
    n_crops, n_failures = crops, fails
    if rank == 0:
        if world > 1:
            _wait_for_parts(sources, out_dir, float(cfg.get("merge_timeout_s", 3600)))
        # Python strings, not pandas 3's Arrow strings (the default once pyarrow is installed): a file name that is
        # not UTF-8 is kept as surrogate escapes, which Arrow cannot hold.
        with warnings.catch_warnings(), pd.option_context("future.infer_string", False):
            warnings.simplefilter("ignore")  # the option is deprecated for pandas 4
            manifest, failures = merge_parts(sources, out_dir)
            try:
                check_no_leak(manifest)
            except SplitLeakError as exc:
                log.warning("%s", exc)
            manifest_path, failures_path = out_dir / "manifest.csv", out_dir / "failures.csv"
            try:  # atomic: a full disk leaves the earlier files (and every part file) as they were
                write_manifest(manifest, manifest_path)
                write_failures(failures, failures_path)
            except OSError as exc:
                if not _disk_full(exc):
                    raise
                _mark_failed(out_dir / "extract.json", info, f"disk full while writing the manifest ({exc})")
                raise DiskFullError(f"disk full while writing {manifest_path.parent} ({exc})") from None
        atomic_write_text(out_dir / "extract.json", json.dumps({**info, "status": "finished"}, indent=2))
        n_crops, n_failures = len(manifest), len(failures)
        log.info("%d crops from %d sources; %d failures -> %s", n_crops, len(sources), n_failures, manifest_path)
    return ExtractResult(
        output_dir=out_dir,
        manifest_path=manifest_path,
        failures_path=failures_path,
        n_sources=len(sources),
        n_skipped=len(mine) - len(todo),
        n_processed=len(todo),
        n_crops=n_crops,
        n_failures=n_failures,
        seconds=time.perf_counter() - start,
    )
