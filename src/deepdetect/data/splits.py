"""Leak-free train/val/test splits: whole groups (identity or original video) go to one split."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from deepdetect.data.layouts import Source

log = logging.getLogger(__name__)

_PRIORITY = ("test", "val", "train")


class SplitLeakError(ValueError):
    """Raised when one group (identity or video) has rows in more than one split."""


def group_key(source: Source) -> str:
    """The group a source belongs to: its `group`, else its video id, else its relative path; in Unicode NFC, so
    two names that are the composed and decomposed spelling of one text (`é` as one or two code points, as macOS
    and Linux file systems may store it) are one group and never straddle splits."""
    key = source.group or f"{source.dataset}:{source.video_id or source.rel}"
    return unicodedata.normalize("NFC", key)


def _hash01(seed: int, key: str) -> str:
    return hashlib.sha1(f"{seed}:{key}".encode("utf-8", "surrogateescape")).hexdigest()


def _n_for(n: int, fraction: float) -> int:
    k = round(n * fraction)
    if fraction > 0 and k == 0 and n >= 3:
        k = 1
    return k


def assign_splits(
    sources: Sequence[Source], val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> list[Source]:
    """Fill `split` and `group`: explicit splits are kept, unsplit members follow their group's explicit split,
    and the remaining groups are shuffled deterministically (by hashing group ids) into test/val/train.

    Within a dataset that already has an explicit test (val) split, no other group is drawn into test (val).
    Sources labelled `unknown` keep an empty split.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"bad fractions: val={val_fraction}, test={test_fraction}")
    keyed = [replace(s, group=group_key(s)) for s in sources]
    explicit: dict[str, Counter[str]] = defaultdict(Counter)
    for s in keyed:
        if s.split:
            explicit[s.group][s.split] += 1
    for g, counts in explicit.items():
        if len(counts) > 1:
            log.warning("group %s has explicit splits %s; unsplit members go to %s", g, dict(counts), _pick(counts))

    by_dataset: dict[str, set[str]] = defaultdict(set)
    dataset_explicit: dict[str, set[str]] = defaultdict(set)
    for s in keyed:
        if s.label == "unknown":
            continue
        if s.group in explicit:
            dataset_explicit[s.dataset].update(explicit[s.group])
        else:
            by_dataset[s.dataset].add(s.group)

    drawn: dict[str, str] = {}
    for dataset, groups in by_dataset.items():
        have = dataset_explicit.get(dataset, set())
        test_f = 0.0 if "test" in have else test_fraction
        val_f = 0.0 if "val" in have else val_fraction
        order = sorted(groups, key=lambda g: _hash01(seed, g))
        n_test, n_val = _n_for(len(order), test_f), _n_for(len(order), val_f)
        for i, g in enumerate(order):
            drawn[g] = "test" if i < n_test else "val" if i < n_test + n_val else "train"

    out: list[Source] = []
    for s in keyed:
        if s.split or s.label == "unknown":
            out.append(s)
        elif s.group in explicit:
            out.append(replace(s, split=_pick(explicit[s.group])))
        else:
            out.append(replace(s, split=drawn[s.group]))
    return out


def _pick(counts: Counter[str]) -> str:
    return next(p for p in _PRIORITY if counts.get(p))


def check_no_leak(manifest: pd.DataFrame) -> None:
    """Raise `SplitLeakError` if any group or video has rows in more than one split (empty splits ignored)."""
    frame = manifest[manifest["split"].astype(str) != ""]
    problems: list[str] = []
    for col in ("group", "video_id"):
        if col not in frame.columns:
            continue
        sub = frame[frame[col].astype(str) != ""]
        n_splits = sub.groupby(col)["split"].nunique()
        for key in n_splits[n_splits > 1].index[:10]:
            splits = sorted(sub.loc[sub[col] == key, "split"].unique())
            problems.append(f"{col} {key!r} in {splits}")
    if problems:
        raise SplitLeakError("split leak: " + "; ".join(problems))
