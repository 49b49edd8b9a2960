"""`deepdetect-evaluate`: Hydra entry point for deepdetect.evaluation.evaluate.evaluate."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from deepdetect.cli._hydra import hydra_main
from deepdetect.utils.terminal import shown

log = logging.getLogger(__name__)


def evaluate_task(cfg: DictConfig) -> float | None:
    """Run the evaluation; user mistakes exit 2 with a message, not a traceback. Returns the first frame AUC."""
    from deepdetect.data.manifest import ManifestError
    from deepdetect.evaluation.evaluate import evaluate
    from deepdetect.models.detector import ModelBuildError

    try:
        metrics: dict[str, Any] = evaluate(cfg)
    except (ModelBuildError, ManifestError, ValueError) as exc:
        log.error("%s", shown(exc))
        raise SystemExit(2) from exc
    for row in metrics["summary"]:
        print(
            f"{shown(row['run'])} on {shown(row['manifest'])}: frame AUC {row['frame_auc']}, "
            f"video AUC {row['video_auc']}, "
            f"worst real-source FPR {row['worst_source_fpr']}, source warnings {row['n_source_warnings']}"
        )
    auc = metrics["summary"][0]["frame_auc"]
    return float(auc) if auc is not None else None


main = hydra_main("evaluate", evaluate_task)
