"""Cross-validation across folds: each fold's monitored metric, their mean ± sd, printed and written once every
fold of a `deepdetect-train -m ... data.cv_fold=0,1,2` sweep has run (a Hydra callback, configured in train.yaml)."""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from deepdetect.utils.io import atomic_write_text
from deepdetect.utils.terminal import shown

log = logging.getLogger(__name__)

SUMMARY_SUFFIX = "cv_summary.json"


def cv_summary(runs: Sequence[Path], monitor: str = "val/video_auc") -> dict[str, Any]:
    """Per fold, its selected epoch's `monitor` (from its metrics.json), and the mean and sample sd over the
    folds that finished; a fold without metrics.json is listed as not finished."""
    folds: list[dict[str, Any]] = []
    for run in runs:
        path = Path(run) / "metrics.json"
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
            value = float(metrics[monitor])
        except (OSError, ValueError, KeyError, TypeError):
            folds.append({"run": str(run), "finished": False})
            continue
        folds.append({"run": str(run), "finished": True, monitor: value, "best_epoch": metrics.get("best_epoch")})
    values = [f[monitor] for f in folds if f["finished"] and math.isfinite(f[monitor])]
    return {
        "monitor": monitor,
        "n_folds": len(folds),
        "n_finished": len(values),
        "mean": statistics.fmean(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "folds": folds,
    }


def summary_line(summary: dict[str, Any]) -> str:
    """One line: `val/video_auc over 3 folds: 0.912 ± 0.031 (0.90, 0.95, 0.88)`."""
    monitor = summary["monitor"]
    values = ", ".join(f"{f[monitor]:.3f}" if f["finished"] else "not finished" for f in summary["folds"])
    if summary["mean"] is None:
        return f"{monitor} over {summary['n_folds']} folds: no fold finished ({values})"
    sd = f" ± {summary['sd']:.3f}" if summary["sd"] is not None else " (one fold: no sd)"
    return f"{monitor} over {summary['n_finished']} of {summary['n_folds']} folds: {summary['mean']:.3f}{sd} ({values})"


def summary_path(runs: Sequence[Path]) -> Path:
    """Where a sweep's summary goes: beside its fold folders, named by their common prefix
    (runs/cv_lite2_0, runs/cv_lite2_1 -> runs/cv_lite2_cv_summary.json)."""
    parent = Path(os.path.commonpath([str(Path(r).resolve()) for r in runs]))
    if any(Path(r).resolve() == parent for r in runs):
        parent = parent.parent
    names = [Path(r).name for r in runs]
    n = 0  # length of the folders' common name prefix
    while all(len(name) > n for name in names) and len({name[n] for name in names}) == 1:
        n += 1
    prefix = names[0][:n].rstrip("_-.")
    return parent / (f"{prefix}_{SUMMARY_SUFFIX}" if prefix else SUMMARY_SUFFIX)


class CvSummary(Callback):
    """Hydra callback: collects the fold runs of a cross-validation sweep and summarises them at its end."""

    def __init__(self) -> None:
        self.runs: list[Path] = []
        self.monitor = "val/video_auc"

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        """Remember this job's run folder when it is a cross-validation fold."""
        if config.get("data", {}).get("cv_folds"):
            self.runs.append(Path(str(config.output_dir)))
            self.monitor = str(config.trainer.get("monitor", self.monitor))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the folds' mean ± sd and write it beside the fold folders."""
        if len(self.runs) < 2:
            return
        summary = cv_summary(self.runs, self.monitor)
        out = summary_path(self.runs)
        atomic_write_text(out, json.dumps(summary, indent=2))
        line = summary_line(summary)
        log.info("cross-validation: %s -> %s", line, out)
        print(f"cross-validation: {shown(line)}\n  written to {shown(out)}", flush=True)
