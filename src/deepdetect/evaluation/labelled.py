"""Measure predict's records against known labels: how a model does on a labelled collection, as it is shipped.

`deepdetect-evaluate` measures a trained run on extracted crops. This reads the records `deepdetect-predict` wrote
(any model: a checkpoint, an ONNX export, a fused reference), so predict's own face detection, frame sampling,
aggregation and stored threshold are part of what is measured: a reviewer's or an analyst's view of the model.

Labels come from a CSV (a `file` or `path` column, `label` real|fake, optional `group` and `family`; the families
folder's `pairs.csv` reads as it is) and from folders whose every file is real, or fake (`family` = the folder's
name). A record is matched to its label by its resolved absolute path. The figures, per family and overall:
AUC of the family's fakes against its own reals and against every real, with percentile intervals that resample
whole groups (a file with no group is its own), and the share of fakes detected and of reals flagged at the
records' threshold. A file predict could not score (no face, an error) counts as not detected (a fake) or not
flagged (a real), and is left out of the AUCs: the counts say how many.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepdetect.evaluation import metrics as M

LABELS = ("real", "fake")
PATH_COLUMNS = ("file", "path")
MAX_LABEL_ROWS = 10_000_000


class LabelError(ValueError):
    """A labels file or folder that cannot be used: one line for the command line."""


@dataclass(frozen=True)
class Labelled:
    """One labelled file: its resolved path, label, group (for the intervals) and family (a row of the table)."""

    path: str
    label: str
    group: str
    family: str


def _resolved(path: str | os.PathLike[str]) -> str:
    return str(Path(path).expanduser().resolve())


def labels_from_csv(csv_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> list[Labelled]:
    """The labelled files of a CSV; paths in it are relative to `root` (default: the CSV's folder).

    Raises LabelError for a missing file or column, or a label other than real/fake (with its line number).
    """
    path = Path(csv_path)
    base = Path(root) if root is not None else path.parent
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            path_col = next((c for c in PATH_COLUMNS if c in columns), None)
            if path_col is None or "label" not in columns:
                raise LabelError(f"{path}: needs a label column and one of {list(PATH_COLUMNS)}; it has {columns}")
            out = []
            for line, row in enumerate(reader, start=2):
                if line > MAX_LABEL_ROWS:
                    raise LabelError(f"{path}: more than {MAX_LABEL_ROWS} rows")
                label = (row.get("label") or "").strip().lower()
                if label not in LABELS:
                    raise LabelError(f"{path}, line {line}: label must be real or fake, got {row.get('label')!r}")
                rel = (row.get(path_col) or "").strip()
                if not rel:
                    raise LabelError(f"{path}, line {line}: empty {path_col}")
                file = _resolved(base / rel)
                out.append(
                    Labelled(
                        file, label, (row.get("group") or "").strip() or file, (row.get("family") or "").strip() or "-"
                    )
                )
    except OSError as exc:
        raise LabelError(f"cannot read labels {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path}: not a readable CSV ({exc})") from None
    return out


@dataclass(frozen=True)
class FolderLabel:
    """Every file under `folder` carries `label`; its family is the folder's name."""

    folder: str
    label: str

    @cached_property
    def root(self) -> str:
        """The folder, resolved once."""
        return _resolved(self.folder)

    def match(self, path: str) -> Labelled | None:
        """This folder's label for `path` (resolved), or None when the path is not under it."""
        root = self.root
        if path != root and not path.startswith(root.rstrip(os.sep) + os.sep):
            return None
        return Labelled(path, self.label, path, Path(root).name or root)


def label_records(
    records: Iterable[dict[str, Any]],
    labels: Sequence[Labelled],
    folders: Sequence[FolderLabel] = (),
    exclude_groups: Iterable[str] = (),
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per labelled record (`path`, `label`, `group`, `family`, `kind` (image | video, as predict read the
    file), `status`, `score`, `threshold`, `flagged`, `driven_by`) and the counts of what did not join: records
    without a label, repeated records of one file (the first is kept), records left out because their group is in
    `exclude_groups`, and labelled files without a record. A CSV label wins over a folder's."""
    by_path = {lab.path: lab for lab in labels}
    excluded_groups = set(exclude_groups)
    rows, seen = [], set()
    unlabelled = repeated = excluded = 0
    for rec in records:
        raw = rec.get("abs_path") or rec.get("path")
        if not isinstance(raw, str) or not raw:
            unlabelled += 1
            continue
        path = _resolved(raw)
        lab = by_path.get(path) or next((m for f in folders if (m := f.match(path)) is not None), None)
        if lab is None:
            unlabelled += 1
            continue
        if path in seen:
            repeated += 1
            continue
        seen.add(path)
        if lab.group in excluded_groups:
            excluded += 1
            continue
        score, threshold = _number(rec.get("score")), _number(rec.get("threshold"))
        scored = rec.get("status") == "ok" and score is not None
        rows.append(
            {
                "path": path,
                "label": lab.label,
                "group": lab.group,
                "family": lab.family,
                "kind": str(rec.get("kind") or "unknown"),
                "status": str(rec.get("status") or "unknown"),
                "score": score if scored else np.nan,
                "threshold": threshold,
                "flagged": bool(scored and threshold is not None and score >= threshold),  # type: ignore[operator]
                "driven_by": rec.get("driven_by"),
            }
        )
    columns = ["path", "label", "group", "family", "kind", "status", "score", "threshold", "flagged", "driven_by"]
    frame = pd.DataFrame(rows, columns=columns)
    missing = sum(1 for lab in labels if lab.path not in seen)
    counts = {"unlabelled_records": unlabelled, "repeated_records": repeated, "excluded_records": excluded}
    return frame, {**counts, "labelled_without_record": missing}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        return None
    return float(value)


def _auc_with_ci(part: pd.DataFrame, boot_n: int, seed: int) -> tuple[float | None, list[float | None]]:
    scored = part.dropna(subset=["score"])
    y = (scored["label"] == "fake").to_numpy(np.int64)
    return M.auc_with_ci(y, scored["score"].to_numpy(), scored["group"].to_numpy(), boot_n, seed)


def _share(flags: pd.Series) -> float | None:
    return float(flags.mean()) if len(flags) else None


def family_figures(
    frame: pd.DataFrame, family: str, boot_n: int = 1000, seed: int = 0, against_all: bool = True
) -> dict[str, Any]:
    """One family's row: its fakes against its own reals (AUC, interval) and, with `against_all`, against every
    real of `frame`."""
    part = frame[frame["family"] == family]
    fakes, reals = part[part["label"] == "fake"], part[part["label"] == "real"]
    auc, ci = _auc_with_ci(part, boot_n, seed)
    drivers = fakes.loc[fakes["flagged"], "driven_by"].dropna().astype(str).value_counts()
    row: dict[str, Any] = {
        "family": family,
        "n_fake": len(fakes),
        "n_real": len(reals),
        "n_not_scored": int(part["score"].isna().sum()),
        "auc": auc,
        "auc_ci95": ci,
    }
    if against_all:
        all_reals = frame[frame["label"] == "real"]
        auc_all, ci_all = (
            _auc_with_ci(pd.concat([fakes, all_reals]), boot_n, seed) if len(fakes) else (None, [None, None])
        )
        row |= {"auc_vs_all_reals": auc_all, "auc_vs_all_reals_ci95": ci_all}
    return row | {
        "detected": _share(fakes["flagged"]),
        "flagged_reals": _share(reals["flagged"]),
        "detected_driven_by": {str(k): int(v) for k, v in drivers.items()},
    }


def measure(frame: pd.DataFrame, boot_n: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The whole set's figures (`overall`), one row per family (`families`) and, when the set mixes stills and
    videos, the whole set of each kind (`media`: a model can rank stills and fail on videos, or score every still
    above every video), as `family_figures` computes them."""
    thresholds = sorted({float(t) for t in frame["threshold"].dropna()})
    statuses = frame.groupby(["label", "status"]).size()
    families = [family_figures(frame, f, boot_n, seed) for f in sorted(frame["family"].unique())]
    overall = family_figures(frame.assign(family="all"), "all", boot_n, seed, against_all=False)  # all = own
    kinds = sorted(frame["kind"].unique())
    media = [
        family_figures(frame[frame["kind"] == k].assign(family=f"all {k}s"), f"all {k}s", boot_n, seed, False)
        for k in (kinds if len(kinds) > 1 else [])
    ]
    return {
        "overall": overall,
        "media": media,
        "families": families,
        "thresholds": thresholds,
        "statuses": {f"{label}/{status}": int(n) for (label, status), n in statuses.items()},
        "bootstrap_n": boot_n,
    }


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _ci(ci: Sequence[float | None]) -> str:
    return "" if ci[0] is None or ci[1] is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"


def markdown_table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table: one row per family, the whole set, then the whole set of each media kind."""
    lines = [
        "| family | fake / real files | not scored | AUC vs own reals [95% CI] | AUC vs all reals | detected "
        "| reals flagged |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in [*result["families"], result["overall"], *result.get("media", [])]:
        lines.append(
            f"| {row['family']} | {row['n_fake']} / {row['n_real']} | {row['n_not_scored']} "
            f"| {_fmt(row['auc'])}{_ci(row['auc_ci95'])} | {_fmt(row.get('auc_vs_all_reals'))} "
            f"| {_fmt(row['detected'])} | {_fmt(row['flagged_reals'])} |"
        )
    return "\n".join(lines)


def plot_scores(frame: pd.DataFrame, result: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """A PNG with one strip per family: each scored file's score (fakes red crosses, reals blue dots, jittered up or
    down), the threshold as a dashed line, and each family's AUC; returns the path."""
    from matplotlib.figure import Figure

    families = [row["family"] for row in result["families"]]
    fig = Figure(figsize=(8, 0.55 * len(families) + 1.4), dpi=110)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for i, fam in enumerate(families):
        part = frame[(frame["family"] == fam) & frame["score"].notna()]
        for label, marker, color in (("real", "o", "tab:blue"), ("fake", "x", "tab:red")):
            scores = part.loc[part["label"] == label, "score"].to_numpy()
            ax.scatter(scores, i + rng.uniform(-0.25, 0.25, len(scores)), s=14, alpha=0.7, marker=marker, color=color)
    for t in result["thresholds"]:
        ax.axvline(t, color="black", linestyle="--", linewidth=1)
    rows = {row["family"]: row for row in result["families"]}
    ax.set_yticks(range(len(families)), [f"{f}  (AUC {_fmt(rows[f]['auc'])})" for f in families])
    ax.set_ylim(-0.6, len(families) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("score (P(fake)); dashed: the threshold; red x: fake, blue o: real")
    overall = result["overall"]
    ax.set_title(f"all: AUC {_fmt(overall['auc'])}, detected {_fmt(overall['detected'])}, "
                 f"reals flagged {_fmt(overall['flagged_reals'])}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    return out
