"""Print the table of every face-swap evaluation (docs/RESULTS.md §1.7) from the runs' metrics.json (reads only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(v: object, ci: object = None) -> str:
    if v is None:
        return "–"
    text = f"{float(v):.3f}"  # type: ignore[arg-type]
    if isinstance(ci, list) and len(ci) == 2 and None not in ci:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def row(run_dir: Path, tag: str) -> str | None:
    path = run_dir / f"eval_{tag}" / "metrics.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    res = doc["results"][0]
    f, v = res["frame"], res["video"]
    return (
        f"| {run_dir.name} | {tag} | {v['n_real']}/{v['n_fake']} | {fmt(v.get('auc'), v.get('ci95', {}).get('auc'))} "
        f"| {fmt(f.get('auc'), f.get('ci95', {}).get('auc'))} | {fmt(v.get('fpr_at_threshold'))} "
        f"| {fmt(v.get('tpr_at_threshold'))} | {doc['aggregation']['method']} |"
    )


def main() -> None:
    """Usage: faceswap_table.py [RUNS_DIR] [RUN ...]   (no RUN: every run folder, sorted by name)."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/reference/runs")
    names = sys.argv[2:]
    runs = [root / n for n in names] if names else sorted(p for p in root.iterdir() if p.is_dir())
    print("| run | evaluated on | videos real/fake | video AUC [95% CI] | frame AUC [95% CI] | video FPR@thr | video TPR@thr | agg |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        name = run.name  # named on the first line printed for the run
        for ev in sorted(run.glob("eval_*")):
            line = row(run, ev.name[5:])
            if line:
                print(line)
                name = ""
        mfile = run / "metrics.json"
        if mfile.is_file():
            m = json.loads(mfile.read_text())
            cal = m.get("calibration") or {}
            # a refit has no val split: its selection line is the cv folds' pooled out-of-fold scores it calibrated on
            key, what = ("val", f"val, kept epoch {m.get('best_epoch')}")
            if "oof/video_auc" in m:
                key, what = "oof", "out-of-fold pool"
            print(f"| {name} | ({what}) | | {fmt(m.get(f'{key}/video_auc'))} | {fmt(m.get(f'{key}/frame_auc'))} "
                  f"| {fmt(cal.get('val_fpr'))} (frame) | {fmt(cal.get('val_tpr'))} (frame) | |")


if __name__ == "__main__":
    main()
