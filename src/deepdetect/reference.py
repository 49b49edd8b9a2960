"""The face-swap reference detector on the development data: extract -> train -> evaluate -> export.

Each source of `configs/reference.yaml` is extracted with the same detector, margin and crop size (its own
group pattern keeps people and original/swap pairs in one split). `train` sources are combined for training
(their train/val splits) and scored on their test split; `unseen` sources are never trained on and are scored
whole, so their false-positive rate says how the stored threshold holds on real content from elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger(__name__)

ROLES = ("train", "unseen")


class ReferenceError(ValueError):
    """Raised when the development data or a configured source is missing."""


@dataclass
class ReferenceResult:
    """Where each stage wrote its outputs, and the headline figures."""

    manifests: dict[str, Path]
    run_dir: Path
    reports: dict[str, Path]
    onnx_model: Path
    headline: dict[str, Any] = field(default_factory=dict)


def source_paths(cfg: DictConfig) -> dict[str, Path]:
    """Each configured source's input folder under `data_root`; raises ReferenceError for missing ones."""
    from deepdetect.utils.devdata import source_folders

    return source_folders(cfg.get("data_root"), cfg.sources.items(), ROLES, ReferenceError)


def run_reference(cfg: DictConfig) -> ReferenceResult:
    """Run the reference recipe under `cfg.output_dir`; every stage is the library function its CLI calls."""
    from deepdetect.data.extract_sources import extract_sources
    from deepdetect.evaluation.evaluate import evaluate
    from deepdetect.export.pipeline import export
    from deepdetect.training.train import train
    from deepdetect.utils.config import compose_stage

    stages = list(cfg.get("stage_overrides") or [])  # debug=fast: every stage gets the fast overlay too

    out = Path(str(cfg.output_dir)).resolve()
    inputs = source_paths(cfg)
    manifests = extract_sources(
        {name: (path, [*cfg.extract, *cfg.sources[name].extract]) for name, path in inputs.items()}, out, stages
    )
    trained = [str(manifests[n]) for n in inputs if cfg.sources[n].role == "train"]
    unseen = [str(manifests[n]) for n in inputs if cfg.sources[n].role == "unseen"]

    run_dir = out / "train"
    log.info("[train] %s", run_dir)
    train(
        compose_stage("train", [f"data.manifest=[{','.join(trained)}]", f"output_dir={run_dir}", *cfg.train, *stages])
    )

    reports: dict[str, Path] = {}
    headline: dict[str, Any] = {}
    evals = {"test": (trained, "test")}
    if unseen:
        evals["unseen_real"] = (unseen, "all")
    for key, (items, split) in evals.items():
        ev_dir = out / f"evaluate_{key}"
        log.info("[evaluate %s] %s", key, ev_dir)
        metrics = evaluate(
            compose_stage(
                "evaluate",
                [
                    f"checkpoint={run_dir}",
                    f"data.manifest=[{','.join(items)}]",
                    f"data.split={split}",
                    f"output_dir={ev_dir}",
                    *cfg.evaluate,
                    *stages,
                ],
            )
        )
        reports[key] = ev_dir / "report.html"
        headline[key] = _headline(metrics)

    export_dir = out / "export"
    log.info("[export] %s", export_dir)
    export(compose_stage("export", [f"checkpoint={run_dir}", f"output_dir={export_dir}", *cfg.export, *stages]))
    return ReferenceResult(manifests, run_dir, reports, export_dir / "model.onnx", headline)


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """Video AUC and the per-source rates at the stored threshold from evaluate()'s result."""
    try:
        result = metrics["results"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    video = result.get("video") or {}
    return {
        "video_auc": video.get("auc"),
        "video_auc_ci95": (video.get("ci95") or {}).get("auc"),
        "video_fpr_at_threshold": video.get("fpr_at_threshold"),
        "video_tpr_at_threshold": video.get("tpr_at_threshold"),
        "n_videos": video.get("n"),
    }
