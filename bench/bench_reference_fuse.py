"""Benchmark: the reference's fuse stage reading each expert's evaluation scores.csv vs scoring the same crops again.

Needs a finished `deepdetect-reference` output folder with two or more experts (`make reference` writes
`outputs/reference`; another one with `DEEPDETECT_REFERENCE_OUT`): its trained experts and face crops are used as
they are, every `every`-th crop of each video (quick: 1 in 8; full: all). Side by side, one after the other, on the
same rows: each expert's evaluations as the reference runs them (test split of the train sources, unseen sources
whole; no robustness passes or Grad-CAM, so the scoring is what is timed), then `fuse_experts` with those scores
(what the reference does now) and without them (scoring every crop again, as it did before). Reports the seconds of
each and the largest difference between the two fused metrics files. Skipped without such a folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]


def _reference_dir() -> Path:
    return Path(os.environ.get("DEEPDETECT_REFERENCE_OUT") or REPO / "outputs" / "reference")


def _subsample(manifest: Path, out: Path, every: int) -> Path:
    """Every `every`-th crop of each video of `manifest`, as a manifest of the same crop files under `out`."""
    from deepdetect.data.manifest import read_manifest, write_manifest

    frame = read_manifest(manifest)
    keep = frame.groupby("video_id", sort=False).cumcount() % every == 0
    frame = frame[keep].assign(crop_path=frame.loc[keep, "abs_crop_path"])
    write_manifest(frame, out / "manifest.csv")
    return out / "manifest.csv"


def _max_difference(a: Any, b: Any) -> float:
    """The largest absolute difference between the numbers of two JSON documents of the same shape."""
    if isinstance(a, dict):
        return max([_max_difference(a[k], b[k]) for k in a] or [0.0])
    if isinstance(a, list):
        return max([_max_difference(x, y) for x, y in zip(a, b, strict=True)] or [0.0])
    if isinstance(a, int | float) and isinstance(b, int | float) and a == a and b == b:
        return abs(float(a) - float(b))
    return 0.0


def run(out_dir: Path, quick: bool) -> dict[str, Any]:
    """Seconds of the evaluations and of the fuse stage with and without the saved scores."""
    from deepdetect.evaluation.evaluate import evaluate
    from deepdetect.evaluation.stacking import crop_rows
    from deepdetect.reference import fuse_experts
    from deepdetect.utils.config import compose_stage

    ref = _reference_dir()
    config = ref / ".hydra" / "config.yaml"
    if not config.is_file() or not (ref / "experts").is_dir():
        return {"skipped": f"no finished reference with experts at {ref} (make reference, DEEPDETECT_REFERENCE_OUT)"}
    cfg = OmegaConf.load(config)
    every = 8 if quick else 1
    evaluate_overrides = ["bootstrap.n=50", "robustness=[]", "report.gradcam=0"]
    OmegaConf.update(cfg, "evaluate", evaluate_overrides, merge=False)
    runs = {name: ref / "experts" / name for name in cfg.experts if (ref / "experts" / name / "model.json").is_file()}
    figures: dict[str, Any] = {"reference": ref.name, "every": every, "experts": list(runs)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifests = {
            name: _subsample(ref / "crops" / name / "manifest.csv", work / "crops" / name, every)
            for name in cfg.sources
        }
        trained = [str(manifests[n]) for n in cfg.sources if cfg.sources[n].role == "train"]
        unseen = [str(manifests[n]) for n in cfg.sources if cfg.sources[n].role == "unseen"]
        evals = {"test": (trained, "test"), "unseen_real": (unseen, "all")}
        saved: dict[str, dict[str, Path]] = {key: {} for key in evals}
        start = time.perf_counter()
        for name, run_dir in runs.items():
            for key, (items, split) in evals.items():
                ev_dir = work / f"evaluate_{name}_{key}"
                where = [f"checkpoint={run_dir}", f"data.manifest=[{','.join(items)}]", f"data.split={split}"]
                evaluate(compose_stage("evaluate", [*where, f"output_dir={ev_dir}", *evaluate_overrides]))
                saved[key][name] = ev_dir / "scores.csv"
        figures["evaluate_s"] = round(time.perf_counter() - start, 1)
        for label, files in (("fuse_saved_scores_s", saved), ("fuse_rescoring_s", None)):
            start = time.perf_counter()
            fuse_experts(cfg, [], runs, trained, evals, work / label, files)
            figures[label] = round(time.perf_counter() - start, 1)
        diffs = [
            _max_difference(
                json.loads((work / "fuse_saved_scores_s" / f"metrics_{key}.json").read_text()),
                json.loads((work / "fuse_rescoring_s" / f"metrics_{key}.json").read_text()),
            )
            for key in evals
        ]
        figures["max_abs_metric_difference"] = max(diffs)
        figures["n_crops_per_expert"] = {
            key: len(crop_rows([Path(m) for m in items], split)) for key, (items, split) in evals.items()
        }
    return figures
