"""The cross-validation table of docs/RESULTS.md §1: per candidate, each fold's validation video AUC (the best epoch,
which the toolkit selects, and the last epoch) from outputs/reference/runs/cv_<candidate>_<fold>/metrics.json.

Usage: python docs/results-tools/faceswap_cv.py [RUNS_DIR] [CANDIDATE ...]   (default: main lite2)
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/reference/runs")
    names = sys.argv[2:] or ["main", "lite2"]
    print("| candidate | fold | val videos | best-epoch val video AUC (epoch) | last-epoch val video AUC |")
    print("|---|---|---|---|---|")
    for name in names:
        best, last = [], []
        for run in sorted(root.glob(f"cv_{name}_*")):
            if not (run / "metrics.json").is_file():
                print(f"| {name} | {run.name.rsplit('_', 1)[1]} | not finished | | |")
                continue
            metrics = json.loads((run / "metrics.json").read_text())
            hist = metrics["history"]
            best.append(float(metrics["best"]))
            last.append(float(hist[-1]["val/video_auc"]))
            print(
                f"| {name} | {run.name.rsplit('_', 1)[1]} | {int(hist[-1]['val/n_videos'])} | "
                f"{best[-1]:.3f} ({metrics['best_epoch']}) | {last[-1]:.3f} |"
            )
        if best:
            print(f"| **{name}: mean** | | | **{statistics.mean(best):.3f}** | **{statistics.mean(last):.3f}** |")


if __name__ == "__main__":
    main()
