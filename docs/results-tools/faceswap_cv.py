"""The cross-validation table of docs/RESULTS.md §1: per candidate, each fold's validation video AUC (the best
epoch and the last epoch, read from each epoch's history) from outputs/reference/runs/cv_<candidate>_<fold>/
metrics.json, and, where the folds wrote `val_scores.csv`, the video AUC of their pooled out-of-fold scores (the
kept weights of each fold scoring its own val people, all folds' videos ranked together).

Usage: python docs/results-tools/faceswap_cv.py [RUNS_DIR] [CANDIDATE ...]   (default: main lite2)
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def pooled_video_auc(runs: list[Path]) -> float | None:
    """Video AUC (mean frame probability per video) of the folds' pooled val scores; None unless every fold has them."""
    files = [run / "val_scores.csv" for run in runs]
    if not files or not all(f.is_file() for f in files):
        return None
    pool = pd.concat([pd.read_csv(f) for f in files])
    pool["p"] = 1.0 / (1.0 + np.exp(-pool["logit"]))
    pool["y"] = (pool["label"] == "fake").astype(float)
    videos = pool.groupby("video_id")[["y", "p"]].mean()
    return float(roc_auc_score(videos["y"].round(), videos["p"]))


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/reference/runs")
    names = sys.argv[2:] or ["main", "lite2"]
    print("| candidate | fold | val videos | best-epoch val video AUC (epoch) | last-epoch val video AUC | pooled out-of-fold video AUC |")
    print("|---|---|---|---|---|---|")
    for name in names:
        best, last, done = [], [], []
        runs = sorted(root.glob(f"cv_{name}_[0-9]"))
        for run in runs:
            if not (run / "metrics.json").is_file():
                print(f"| {name} | {run.name.rsplit('_', 1)[1]} | not finished | | | |")
                continue
            hist = json.loads((run / "metrics.json").read_text())["history"]
            aucs = [float(h["val/video_auc"]) for h in hist]
            top = int(np.argmax(aucs))
            best.append(aucs[top])
            last.append(aucs[-1])
            done.append(run)
            print(
                f"| {name} | {run.name.rsplit('_', 1)[1]} | {int(hist[-1]['val/n_videos'])} | "
                f"{best[-1]:.3f} ({top}) | {last[-1]:.3f} | |"
            )
        if best:
            pooled = pooled_video_auc(done) if len(done) == len(runs) else None  # a pool of every fold or none
            cell = f"**{pooled:.3f}**" if pooled is not None else "–"
            print(f"| **{name}: mean** | | | **{statistics.mean(best):.3f}** | **{statistics.mean(last):.3f}** | {cell} |")


if __name__ == "__main__":
    main()
