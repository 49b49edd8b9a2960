"""The crop manifest: one row per face crop, the contract between extraction and everything after it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from deepdetect.utils.csvcells import frame_csv, read_frame_csv
from deepdetect.utils.io import atomic_write_text

LABELS = ("real", "fake", "unknown")
SPLITS = ("train", "val", "test", "")

# Column order of manifest.csv. Paths in `crop_path` are relative to the manifest's folder.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "crop_path",
    "source_path",
    "label",
    "dataset",
    "source",
    "method",
    "compression",
    "video_id",
    "frame_index",
    "track_id",
    "x1",
    "y1",
    "x2",
    "y2",
    "det_score",
    "landmarks",
    "split",
    "group",
    "landmarks68",
)

FAILURE_COLUMNS: tuple[str, ...] = ("source_path", "status", "reason", "label", "dataset", "split")

# Columns that can hold a file name's text: written with a `<column>_b64` companion holding the exact bytes of a
# name that is not UTF-8 (utils/csvcells.py), so two names never read back as one.
MANIFEST_EXACT: tuple[str, ...] = ("source_path", "video_id", "group")
FAILURE_EXACT: tuple[str, ...] = ("source_path",)


@dataclass
class CropRecord:
    """One face crop. `landmarks` holds MTCNN's 5 (x, y) points in crop pixel coordinates; `landmarks68` dlib's 68
    dense points (iBUG 300-W order) in crop pixels when extraction computed them (else empty)."""

    crop_path: str
    source_path: str
    label: str = "unknown"
    dataset: str = ""
    source: str = ""
    method: str = ""
    compression: str = ""
    video_id: str = ""
    frame_index: int = 0
    track_id: int = 0
    x1: float = 0.0
    y1: float = 0.0
    x2: float = 0.0
    y2: float = 0.0
    det_score: float = 0.0
    landmarks: list[float] = field(default_factory=list)
    split: str = ""
    group: str = ""
    landmarks68: list[float] = field(default_factory=list)

    def to_row(self) -> dict[str, object]:
        """Flatten to a CSV row (landmarks as space-separated numbers)."""
        row = asdict(self)
        row["landmarks"] = " ".join(f"{v:.2f}" for v in self.landmarks)
        row["landmarks68"] = " ".join(f"{v:.1f}" for v in self.landmarks68)
        return row


@dataclass
class FailureRecord:
    """A source that produced no crop, and why (`status` is a short code such as `no_face`)."""

    source_path: str
    status: str
    reason: str = ""
    label: str = "unknown"
    dataset: str = ""
    split: str = ""


_DTYPES: dict[str, str] = {
    "crop_path": "string",
    "source_path": "string",
    "label": "string",
    "dataset": "string",
    "source": "string",
    "method": "string",
    "compression": "string",
    "video_id": "string",
    "frame_index": "int64",
    "track_id": "int64",
    "x1": "float64",
    "y1": "float64",
    "x2": "float64",
    "y2": "float64",
    "det_score": "float64",
    "landmarks": "string",
    "split": "string",
    "group": "string",
    "landmarks68": "string",
}


STRINGS = pd.StringDtype("python")


class ManifestError(ValueError):
    """Raised when a manifest file is missing columns or holds invalid values."""


def parse_landmarks(text: str | float | None) -> list[float]:
    """Parse the landmarks cell back into 10 floats (empty list when absent)."""
    if text is None or (isinstance(text, float) and pd.isna(text)) or str(text).strip() == "":
        return []
    values = [float(v) for v in str(text).split()]
    if len(values) != 10:
        raise ManifestError(f"landmarks must hold 10 numbers, got {len(values)}")
    return values


def parse_landmarks68(text: str | float | None) -> list[float]:
    """Parse the landmarks68 cell back into 136 floats (empty list when absent)."""
    if text is None or (isinstance(text, float) and pd.isna(text)) or str(text).strip() == "":
        return []
    values = [float(v) for v in str(text).split()]
    if len(values) != 136:
        raise ManifestError(f"landmarks68 must hold 136 numbers, got {len(values)}")
    return values


def records_to_frame(records: Iterable[CropRecord]) -> pd.DataFrame:
    """Build a manifest DataFrame with the canonical columns and dtypes."""
    rows = [r.to_row() for r in records]
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS), dtype=object)  # no Arrow strings (see below)
    return normalize_manifest(frame)


def normalize_manifest(frame: pd.DataFrame) -> pd.DataFrame:
    """Check columns and values, fill optional columns, and cast to canonical dtypes."""
    missing = [c for c in ("crop_path", "label") if c not in frame.columns]
    if missing:
        raise ManifestError(f"manifest is missing required columns: {missing}")
    frame = frame.copy()
    text_cols = ("landmarks", "landmarks68")
    defaults = {f.name: f.default for f in fields(CropRecord) if f.name != "crop_path" and f.name not in text_cols}
    for col in MANIFEST_COLUMNS:
        if col not in frame.columns:
            frame[col] = "" if col in text_cols else defaults.get(col, "")
    frame = frame[list(MANIFEST_COLUMNS)]
    string_cols = [c for c, t in _DTYPES.items() if t == "string"]
    frame[string_cols] = frame[string_cols].fillna("")
    # Python-backed strings: with pyarrow installed pandas would store them as Arrow UTF-8, which cannot hold a
    # file name that is not UTF-8 (kept as surrogate escapes) and fails on it.
    frame = frame.astype({c: (STRINGS if t == "string" else t) for c, t in _DTYPES.items()})
    bad_labels = sorted(set(frame["label"]) - set(LABELS))
    if bad_labels:
        raise ManifestError(f"unknown labels {bad_labels}; expected one of {LABELS}")
    bad_splits = sorted(set(frame["split"]) - set(SPLITS))
    if bad_splits:
        raise ManifestError(f"unknown splits {bad_splits}; expected one of {SPLITS[:-1]} or empty")
    # Frames from one source with no explicit video id still form one "video" for aggregation.
    empty_vid = frame["video_id"] == ""
    frame.loc[empty_vid, "video_id"] = frame.loc[empty_vid, "source_path"]
    return frame.reset_index(drop=True)


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a manifest.csv; adds `abs_crop_path` resolved against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    try:  # undoes write_manifest's quoting; exact bytes of names that are not UTF-8 come back
        raw = read_frame_csv(path, [c for c, t in _DTYPES.items() if t == "string"], MANIFEST_EXACT)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"cannot parse manifest {path}: {exc}") from exc
    for col in ("frame_index", "track_id"):
        if col in raw.columns:
            raw[col] = pd.to_numeric(raw[col].replace("", "0"), errors="raise")
    for col in ("x1", "y1", "x2", "y2", "det_score"):
        if col in raw.columns:
            raw[col] = pd.to_numeric(raw[col].replace("", "0"), errors="raise")
    frame = normalize_manifest(raw)
    root = path.parent
    frame["abs_crop_path"] = [str((root / p).resolve()) if not os.path.isabs(p) else p for p in frame["crop_path"]]
    return frame


def write_manifest(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a manifest atomically with the canonical column order, text cells spreadsheet-safe.

    A text cell starting with `= + - @ '`, a tab or a CR gets a leading `'` and every text cell is quoted (see
    `deepdetect.utils.csvcells`); `read_manifest` undoes both, so names round-trip exactly, a lone CR included.
    Names that are not UTF-8 are written with `\\xNN` escapes and their exact bytes in `source_path_b64`
    (`video_id_b64`, `group_b64`).
    """
    frame = normalize_manifest(frame.drop(columns=["abs_crop_path"], errors="ignore"))
    text_cols = [c for c, t in _DTYPES.items() if t == "string"]
    atomic_write_text(path, frame_csv(frame, text_cols, MANIFEST_EXACT))


def write_rows(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Rows read by `read_manifest(s)` as a manifest of their own at `path` (folders made), their crop paths made
    absolute so the new file finds the crops from any folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = frame.assign(crop_path=frame["abs_crop_path"].astype(str)).drop(columns=["abs_crop_path"])
    write_manifest(rows.reset_index(drop=True), path)
    return path


def write_failures(records: Sequence[FailureRecord] | pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write failures.csv atomically, text cells spreadsheet-safe (as in `write_manifest`)."""
    if isinstance(records, pd.DataFrame):
        frame = records.reindex(columns=list(FAILURE_COLUMNS)).fillna("")
    else:
        frame = pd.DataFrame([asdict(r) for r in records], columns=list(FAILURE_COLUMNS), dtype=object)
    atomic_write_text(path, frame_csv(frame, FAILURE_COLUMNS, FAILURE_EXACT))


def read_failures(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a failures.csv back as written (quoting undone, exact names back), all columns as strings."""
    return read_frame_csv(path, FAILURE_COLUMNS, FAILURE_EXACT)


def select_split(frame: pd.DataFrame, split: str | Sequence[str]) -> pd.DataFrame:
    """Rows of the given split(s), for the labelled classes only."""
    splits = [split] if isinstance(split, str) else list(split)
    return frame[frame["split"].isin(splits)].reset_index(drop=True)


def binary_labels(frame: pd.DataFrame) -> pd.Series:
    """Map label strings to 1 (fake) / 0 (real); raises on `unknown`."""
    if (frame["label"] == "unknown").any():
        raise ManifestError("rows labelled 'unknown' cannot be used for training or evaluation")
    return (frame["label"] == "fake").astype("int64")


def manifest_paths(value: object) -> list[Path]:
    """One manifest path, or a list of them (a Hydra ListConfig too), as a list of Paths."""
    if isinstance(value, str | os.PathLike):
        return [Path(value)]
    if isinstance(value, Iterable):
        return [Path(str(v)) for v in value]
    raise ManifestError(f"expected a manifest path or a list of paths, got {value!r}")


def write_reals(manifest: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """The real rows of `manifest` as a manifest of their own at `path` (crop paths made absolute); returns the path.

    For an expert that should learn a collection's real faces only: its fakes would teach the collection instead.
    The extraction's `extract.json` beside `manifest` (the face-crop contract training reads) is copied beside it."""
    frame = read_manifests([str(manifest)])
    out = write_rows(frame[frame["label"] == "real"], path)
    side = Path(manifest).parent / "extract.json"
    if side.is_file():
        shutil.copyfile(side, out.parent / "extract.json")
    return out


def read_manifests(value: object) -> pd.DataFrame:
    """Read one manifest or several, concatenated; each row's crop path is resolved against its own manifest."""
    paths = manifest_paths(value)
    if not paths:
        raise ManifestError("no manifest given")
    frames = [read_manifest(p) for p in paths]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def drop_source(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Every row except those of `source` (leave-one-source-out training); refuses a source that is not there."""
    mask = frame["source"] == source
    if not mask.any():
        raise ManifestError(f"source {source!r} not in the manifest; sources: {sorted(set(frame['source']))}")
    return frame[~mask].reset_index(drop=True)
