"""Cross-validation: a sweep over data.cv_fold prints the folds' mean ± sd and writes it beside the fold runs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from deepdetect.training.cv import cv_summary, summary_line, summary_path
from tiny_data import make_tiny_manifest


def test_summary_of_folds_mean_sd_and_unfinished(tmp_path: Path) -> None:
    runs = [tmp_path / f"cv_lite2_{k}" for k in range(3)]
    for run, auc in zip(runs[:2], (0.8, 0.9), strict=True):
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({"val/video_auc": auc, "best_epoch": 3}))
    runs[2].mkdir()  # a fold that did not finish
    summary = cv_summary(runs)
    assert summary["n_finished"] == 2 and summary["mean"] == pytest.approx(0.85)
    assert summary["sd"] == pytest.approx(statistics.stdev([0.8, 0.9]))
    assert summary_line(summary) == "val/video_auc over 2 of 3 folds: 0.850 ± 0.071 (0.800, 0.900, not finished)"
    assert summary_path(runs) == tmp_path.resolve() / "cv_lite2_cv_summary.json"


@pytest.mark.slow
def test_a_cv_sweep_prints_and_writes_mean_sd(tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "tiny", n_videos=24)
    cmd = [
        sys.executable, "-m", "deepdetect.cli.train", "-m", "debug=fast", "model=test", "logger=none",
        f"data.manifest={manifest}", "data.cv_folds=2", "data.cv_fold=0,1", "trainer.max_epochs=1",
        f"output_dir={tmp_path}/runs/cv_t_${{data.cv_fold}}",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = tmp_path / "runs" / "cv_t_cv_summary.json"
    summary = json.loads(written.read_text())
    assert summary["n_finished"] == 2 and summary["sd"] is not None
    folds = [json.loads((tmp_path / "runs" / f"cv_t_{k}" / "metrics.json").read_text()) for k in (0, 1)]
    assert summary["mean"] == pytest.approx(statistics.fmean(f["val/video_auc"] for f in folds))
    assert f"cross-validation: val/video_auc over 2 of 2 folds: {summary['mean']:.3f} ± {summary['sd']:.3f}" in (
        proc.stdout
    )
