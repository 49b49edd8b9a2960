"""Dataset layouts: turn a dataset folder into a list of labelled `Source`s (a registry by name)."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from deepdetect.media import iter_media_files

log = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Source:
    """One input file (image or video) with its labels; `rel` is its path relative to the layout root."""

    path: Path
    rel: str
    label: str = "unknown"
    dataset: str = ""
    source: str = ""
    method: str = ""
    compression: str = ""
    video_id: str = ""
    split: str = ""
    group: str = ""


class LayoutError(ValueError):
    """Raised when a dataset folder does not match the requested layout."""


LayoutFn = Callable[[Path, str], list[Source]]
_LAYOUTS: dict[str, LayoutFn] = {}


def register_layout(name: str) -> Callable[[LayoutFn], LayoutFn]:
    """Decorator registering a layout function `(root, dataset) -> list[Source]` under `name`."""

    def deco(fn: LayoutFn) -> LayoutFn:
        _LAYOUTS[name] = fn
        return fn

    return deco


def list_layouts() -> list[str]:
    """Names of the registered layouts."""
    return sorted(_LAYOUTS)


def load_sources(
    layout: str, root: str | Path, dataset: str | None = None, group_pattern: str | Sequence[str] | None = None
) -> list[Source]:
    """Sources of the dataset at `root` read with the named layout, sorted by relative path; `group_pattern`
    merges groups by file stem (see :func:`regroup`)."""
    if layout not in _LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}; choose one of {list_layouts()}")
    root = Path(root).expanduser()
    if not root.exists():
        raise LayoutError(f"input not found: {root}")
    name = dataset or (root.stem if root.is_file() else _resolved(root).name)
    sources = regroup(_LAYOUTS[layout](root, name), group_pattern)
    return sorted(sources, key=lambda s: s.rel)


def _media_files(folder: Path) -> list[Path]:
    """Media files under `folder` (recursive, by extension, hidden files skipped), sorted."""
    return iter_media_files(folder, recursive=True)


def _resolved(path: Path) -> Path:
    """`path.resolve()`, or the plain absolute path when it cannot be resolved (a symlink loop): that file then
    fails on its own (`unreadable`) instead of aborting the whole listing."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


@register_layout("single")
def single_layout(root: Path, dataset: str) -> list[Source]:
    """One file, or the media files directly inside one folder; label unknown."""
    if root.is_file():
        return [Source(path=_resolved(root), rel=root.name, dataset=dataset, source=dataset)]
    files = iter_media_files(root, recursive=False)
    return [Source(path=_resolved(p), rel=_rel(p, root), dataset=dataset, source=dataset) for p in files]


_LABEL_DIR = re.compile(r"^(?:(?P<pre>[^/]+?)[-_])?(?P<label>real|fake)(?:[-_](?P<post>[^/]+))?$", re.IGNORECASE)


@register_layout("folder")
def folder_layout(root: Path, dataset: str) -> list[Source]:
    """`real/` and `fake/` folders at any depth (also `fake-dfd/`, `frames_real/`: a label with a `-`/`_` affix);
    a `train|val|test` folder above them sets the split.

    The folder under the label folder (else an affixed label folder's own name) is the source tag. A file's group
    is its path with the label folder taken out, so `real/X.mp4` and `fake/X.mp4` (an original and its swap)
    share one group and never straddle splits; `group_pattern` (see :func:`regroup`) merges more.
    """
    if root.is_file():
        raise LayoutError("layout 'folder' needs a directory holding real/ and fake/ folders")
    out: list[Source] = []
    for path in _media_files(root):
        orig_parts = path.relative_to(root).parts[:-1]
        matches = [(i, _LABEL_DIR.match(p)) for i, p in enumerate(orig_parts)]
        label_pos = [(i, m) for i, m in matches if m is not None]
        if not label_pos:
            continue
        pos, match = label_pos[-1]
        label = match.group("label").lower()
        lowered = [p.lower() for p in orig_parts[:pos]]
        split = next((SPLIT_NAMES[p] for p in lowered if p in SPLIT_NAMES), "")
        if len(orig_parts) > pos + 1:
            tag = orig_parts[pos + 1]
        elif match.group("pre") or match.group("post"):
            tag = orig_parts[pos]
        else:
            tag = dataset
        pair_key = "/".join((*orig_parts[:pos], *orig_parts[pos + 1 :], path.stem))
        out.append(
            Source(
                path=_resolved(path),
                rel=_rel(path, root),
                label=label,
                dataset=dataset,
                source=tag,
                method=tag if label == "fake" and tag != dataset else "",
                video_id=_rel(path, root),
                split=split,
                group=f"{dataset}:{pair_key}",
            )
        )
    if not out:
        raise LayoutError(f"no media files under a real/ or fake/ folder in {root}")
    return out


def regroup(sources: Sequence[Source], patterns: str | Sequence[str] | None) -> list[Source]:
    """Merge groups by regular expressions on the file stem: files whose stems give the same match share a group.

    The named group `group`, else the first capture group, else the whole match is the key (e.g. `^(.+)_\\d+$`
    puts `Name_0` and `Name_3` in group `Name`). Groups only ever merge (transitively), so pairs a layout already
    joined stay joined. The first pattern that matches a stem is used; stems no pattern matches keep their group.
    """
    if not patterns:
        return list(sources)
    compiled = [re.compile(p) for p in ([patterns] if isinstance(patterns, str) else list(patterns))]
    uf = _UnionFind()
    for s in sources:
        own = s.group or f"{s.dataset}:{s.video_id or s.rel}"
        uf.find(own)
        for rx in compiled:
            m = rx.search(s.path.stem)
            if m is None:
                continue
            key = m.group("group") if "group" in rx.groupindex else m.group(1) if rx.groups else m.group(0)
            uf.union(own, f"{s.dataset}:~{key}")
            break
    return [replace(s, group=uf.find(s.group or f"{s.dataset}:{s.video_id or s.rel}")) for s in sources]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


_PAIR = re.compile(r"^(\d+)_(\d+)$")
_DFD_REAL = re.compile(r"^(\d+)__(.+)$")  # actors: <actor>__<scene>
_DFD_FAKE = re.compile(r"^(\d+)_(\d+)__(.+)__([^_]+)$")  # DeepFakeDetection: <target>_<source>__<scene>__<hash>
FFPP_SKIPPED = ("masks", "models")  # what FF++'s download script ships beside the videos: never inputs


def _read_ffpp_splits(root: Path) -> tuple[dict[str, str], list[list[str]]]:
    """Map original video id -> split, and the id pairs, from FF++ `splits/{train,val,test}.json` pair lists."""
    out: dict[str, str] = {}
    pairs: list[list[str]] = []
    for split in ("train", "val", "test"):
        f = root / "splits" / f"{split}.json"
        if not f.is_file():
            continue
        try:
            listed = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise LayoutError(f"cannot parse {f}: {exc}") from exc
        for pair in listed:
            ids = [str(v) for v in pair]
            pairs.append(ids)
            for vid in ids:
                out[vid] = split
    return out, pairs


def ffpp_identity_keys(stem: str) -> list[str]:
    """The people an FF++ file shows, as group keys: `000` -> [000]; `000_003` -> [000, 003]; DeepFakeDetection
    `01__scene` -> [actor01]; `01_02__scene__hash` -> [actor01, actor02] (target and source actor)."""
    if m := _DFD_FAKE.match(stem):
        return [f"actor{m.group(1)}", f"actor{m.group(2)}"]
    if m := _DFD_REAL.match(stem):
        return [f"actor{m.group(1)}"]
    if m := _PAIR.match(stem):
        return [m.group(1), m.group(2)]
    return [stem]


@register_layout("ffpp")
def ffpp_layout(root: Path, dataset: str) -> list[Source]:
    """FaceForensics++: original_sequences/{youtube,actors}/<comp>/videos and
    manipulated_sequences/<Method>/<comp>/videos (incl. DeepFakeDetection); `masks/` and `models/` are skipped.

    Groups join everyone a file shows: a fake `000_003` joins 000 and 003 (and the split lists' pairs); a
    DeepFakeDetection fake `01_02__...` joins actors 01 and 02, so an actor's real and fake videos share a group.
    """
    orig_dir, manip_dir = root / "original_sequences", root / "manipulated_sequences"
    if not orig_dir.is_dir() and not manip_dir.is_dir():
        raise LayoutError(f"{root} has neither original_sequences/ nor manipulated_sequences/")
    official, pairs = _read_ffpp_splits(root)
    uf = _UnionFind()
    for ids in pairs:
        for vid in ids:
            uf.union(ids[0], vid)
    raw: list[tuple[Path, str, str, str, str]] = []  # path, label, method, compression, video id
    skipped: dict[str, int] = {}
    for label, base in (("real", orig_dir), ("fake", manip_dir)):
        if not base.is_dir():
            continue
        for path in _media_files(base):
            rel = path.relative_to(base).parts
            if len(rel) < 3:
                continue
            method, comp = rel[0], rel[1]
            if comp in FFPP_SKIPPED:
                skipped[comp] = skipped.get(comp, 0) + 1
                continue
            raw.append((path, label, method if label == "fake" else "", comp, path.stem))
            keys = ffpp_identity_keys(path.stem)
            for key in keys:
                uf.union(keys[0], key)
    for what, n in sorted(skipped.items()):
        log.info("FF++: skipped %d files under manipulated_sequences/*/%s/ (not manipulated videos)", n, what)
    out: list[Source] = []
    for path, label, method, comp, vid in raw:
        keys = ffpp_identity_keys(vid)
        target = keys[0]
        split = official.get(target, "")
        if len(keys) == 2 and official.get(keys[1], split) != split:
            log.warning("FF++ pair %s spans splits in the official lists", vid)
        source_tag = path.relative_to(root).parts[1]  # youtube/actors or the method
        out.append(
            Source(
                path=_resolved(path),
                rel=_rel(path, root),
                label=label,
                dataset=dataset,
                source=source_tag,
                method=method,
                compression=comp,
                video_id=vid,
                split=split,
                group=f"{dataset}:{uf.find(target)}",
            )
        )
    return out


_CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")
_CELEB_REAL = re.compile(r"^(id\d+)_(\d+)$")


def _read_celebdf_test_list(path: Path) -> set[str]:
    """Relative paths listed in Celeb-DF's `List_of_testing_videos.txt` (`<1 real|0 fake> <folder>/<file>` lines)."""
    listed: set[str] = set()
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        bits = line.split()
        if not bits:
            continue
        if len(bits) != 2 or bits[0] not in ("0", "1"):
            raise LayoutError(f"{path}:{n}: expected '<0|1> <folder>/<file>', got {line.strip()!r}")
        listed.add(bits[1].replace("\\", "/"))
    return listed


@register_layout("celebdf")
def celebdf_layout(root: Path, dataset: str) -> list[Source]:
    """Celeb-DF v2: Celeb-real, YouTube-real, Celeb-synthesis; `List_of_testing_videos.txt` marks the test set.

    A fake `id0_id16_0003` is made from the real clip `id0_0003`: a clip and its fakes form a family. Families with a
    listed video go to test whole (a listed fake's original joins it); the other videos group by the clip's identity
    (`id0`) so train and val never share a celebrity. The official list holds videos of nearly every celebrity, so
    train shares identities with test, as in the official protocol (see data/README.md).
    """
    folders = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}
    if not any((root / f).is_dir() for f in folders):
        raise LayoutError(f"{root} has none of {sorted(folders)}")
    listing = root / "List_of_testing_videos.txt"
    listed = _read_celebdf_test_list(listing) if listing.is_file() else set()
    rows: list[tuple[Path, str, str, str, str, str]] = []  # path, rel, folder, label, identity, family
    for folder, label in folders.items():
        if not (root / folder).is_dir():
            continue
        for path in _media_files(root / folder):
            stem = path.stem
            fake_m, real_m = _CELEB_FAKE.match(stem), _CELEB_REAL.match(stem)
            if folder == "Celeb-synthesis" and fake_m:
                identity, family = fake_m.group(1), f"{fake_m.group(1)}_{fake_m.group(3)}"
            elif folder == "Celeb-real" and real_m:
                identity, family = real_m.group(1), stem
            else:  # YouTube-real (no identity known) or an unexpected name: the file is its own family
                identity = family = f"{folder}/{stem}"
            rows.append((path, _rel(path, root), folder, label, identity, family))
    test_families = {family for _, rel, _, _, _, family in rows if rel in listed}
    pulled = sum(1 for _, rel, _, _, _, family in rows if family in test_families and rel not in listed)
    if listed:
        found = sum(1 for r in rows if r[1] in listed)
        log.info(
            "Celeb-DF: %d of %d listed test videos found; %d unlisted videos share a clip with a test video and "
            "join test",
            found,
            len(listed),
            pulled,
        )
    out: list[Source] = []
    for path, rel, folder, label, identity, family in rows:
        in_test = family in test_families
        out.append(
            Source(
                path=_resolved(path),
                rel=rel,
                label=label,
                dataset=dataset,
                source=folder,
                method="celeb-synthesis" if label == "fake" else "",
                video_id=path.stem,
                split="test" if rel in listed else "",
                group=f"{dataset}:{'test:' + family if in_test else identity}",
            )
        )
    return out


@register_layout("dfdc")
def dfdc_layout(root: Path, dataset: str) -> list[Source]:
    """DFDC: folders with `metadata.json` {file: {label: REAL|FAKE, original, split}}; fakes group with originals."""
    metas = sorted(root.rglob("metadata.json"))
    if not metas:
        raise LayoutError(f"no metadata.json under {root}")
    out: list[Source] = []
    missing = 0
    for meta_path in metas:
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise LayoutError(f"cannot parse {meta_path}: {exc}") from exc
        if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
            raise LayoutError(f"{meta_path}: expected {{file: {{label, original, split}}}}")
        folder = meta_path.parent
        for name, info in sorted(meta.items()):
            path = folder / name
            if not path.is_file():
                missing += 1
                continue
            label = str(info.get("label", "")).lower()
            if label not in ("real", "fake"):
                label = "unknown"
            original = Path(str(info.get("original") or name)).stem
            group_id = original if label == "fake" else path.stem
            split = SPLIT_NAMES.get(str(info.get("split", "")).lower(), "")
            out.append(
                Source(
                    path=_resolved(path),
                    rel=_rel(path, root),
                    label=label,
                    dataset=dataset,
                    source=folder.name,
                    method="dfdc" if label == "fake" else "",
                    video_id=path.stem,
                    split=split,
                    group=f"{dataset}:{group_id}",
                )
            )
    listed = {s.path for s in out}
    unlisted = sum(1 for p in _media_files(root) if _resolved(p) not in listed)
    if missing or unlisted:
        log.info(
            "DFDC: %d files listed in metadata.json are missing; %d media files unlisted (skipped)", missing, unlisted
        )
    # The public training parts all say split "train": a split with no alternative carries no information.
    if len({s.split for s in out}) == 1:
        out = [replace(s, split="") for s in out]
    return out


PAIRS_COLUMNS = ("family", "source_repo", "file", "label", "group")


def _pairs_csv(root: Path) -> Path:
    path = root if root.is_file() else root / "pairs.csv"
    if not path.is_file():
        raise LayoutError(f"layout 'pairs' needs a pairs.csv (in {root})")
    return path


@register_layout("pairs")
def pairs_layout(root: Path, dataset: str) -> list[Source]:
    """A `pairs.csv` listing (columns family, source_repo, file, label, group; optional pair_of, commit, ...): one
    row per file, `file` relative to the CSV's folder.

    Each file's manipulation family becomes its `source` (so `data.holdout_source=<family>` and the per-source
    tables work per family), its repository's name its `method`, and the CSV's `group` its group: a group ties a
    real clip to every fake made from it, across families, so it never straddles splits. Rows whose file is
    missing are skipped with a count; a file outside the CSV's folder is an error.
    """
    path = _pairs_csv(root)
    base = path.parent.resolve()
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LayoutError(f"cannot read {path}: {exc}") from exc
    if not rows:
        raise LayoutError(f"{path} lists no files")
    missing_cols = [c for c in PAIRS_COLUMNS if c not in rows[0]]
    if missing_cols:
        raise LayoutError(f"{path} is missing columns {missing_cols} (needs {list(PAIRS_COLUMNS)})")
    out: list[Source] = []
    absent = 0
    for n, row in enumerate(rows, 2):
        label = (row["label"] or "").strip().lower()
        if label not in ("real", "fake"):
            raise LayoutError(f"{path}:{n}: label must be real or fake, got {row['label']!r}")
        rel = (row["file"] or "").strip()
        file = (base / rel).resolve()
        if not rel or not file.is_relative_to(base):
            raise LayoutError(f"{path}:{n}: file {rel!r} is not inside {base}")
        if not file.is_file():
            absent += 1
            continue
        family = (row["family"] or "").strip() or dataset
        repo = (row["source_repo"] or "").strip()
        out.append(
            Source(
                path=file,
                rel=Path(rel).as_posix(),
                label=label,
                dataset=dataset,
                source=family,
                method=repo.rsplit("/", 1)[-1].lower(),
                video_id=Path(rel).as_posix(),
                group=f"{dataset}:{(row['group'] or '').strip() or Path(rel).as_posix()}",
            )
        )
    if absent:
        log.warning("%s: %d listed files are missing (skipped)", path, absent)
    if not out:
        raise LayoutError(f"none of the files listed in {path} exist")
    return out


def count_by(sources: Iterable[Source], key: str) -> dict[str, int]:
    """Count sources by a field (for logging)."""
    counts: dict[str, int] = {}
    for s in sources:
        value = str(getattr(s, key))
        counts[value] = counts.get(value, 0) + 1
    return counts
