"""The finishing step: reload the kept weights, calibrate on validation (a refit: on its cross-validation runs'
out-of-fold scores), write the model with its card, `metrics.json` and `val_scores.csv`.

Everything the model card learns from validation is set here, in `finish()`."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from deepdetect.contract import Calibration, ModelCard
from deepdetect.evaluation.calibration import (
    apply_temperature,
    choose_threshold,
    fit_temperature,
    operating_points,
    temperature_problem,
)
from deepdetect.models.checkpoint import FINAL_NAME, save_detector
from deepdetect.models.tuning import merge_lowrank
from deepdetect.training.distributed import broadcast_object
from deepdetect.training.loop import Progress, validate
from deepdetect.training.settings import CalibrationSettings
from deepdetect.training.setup import TrainRun
from deepdetect.training.validate import validation_metrics
from deepdetect.training.valscores import VAL_SCORES, read_out_of_fold, write_val_scores
from deepdetect.utils.io import atomic_write_text

log = logging.getLogger(__name__)


def calibrate(
    logits: np.ndarray, labels: np.ndarray, settings: CalibrationSettings, extra: dict[str, Any] | None = None
) -> Calibration:
    """Temperature fitted on val logits, the threshold chosen by the rule, and the val rates at that threshold
    (`extra`: further entries stored with them, e.g. where the scores came from)."""
    temperature = fit_temperature(logits, labels)
    failed = temperature_problem(temperature)
    if failed:
        log.warning("calibration failed: %s (recorded in the model card as calibration.failed)", failed)
    probs = apply_temperature(logits, temperature)
    try:
        threshold = choose_threshold(probs, labels, rule=settings.threshold_rule, target_fpr=settings.target_fpr)
    except ValueError as exc:
        log.warning("no threshold chosen on val (%s); using 0.5", exc)
        threshold = 0.5
    flagged = probs >= threshold
    return Calibration.from_dict(
        {
            "temperature": temperature,
            "threshold": threshold,
            "threshold_rule": settings.threshold_rule,
            "target_fpr": settings.target_fpr,
            # Rates at the threshold on val: the reference an evaluation compares unseen sources against.
            "val_fpr": float(flagged[labels == 0].mean()) if (labels == 0).any() else None,
            "val_tpr": float(flagged[labels == 1].mean()) if (labels == 1).any() else None,
            "roc": operating_points(probs, labels),  # the val ROC, thinned: predict --fpr picks from it
            "n_val_real": int((labels == 0).sum()),  # how low an FPR validation can vouch for
            "n_val_fake": int((labels == 1).sum()),
            "failed": failed,
            **(extra or {}),
        }
    )


def calibrate_refit(settings: CalibrationSettings) -> tuple[Calibration, dict[str, float]]:
    """A refit's calibration (no val of its own): fitted on the pooled out-of-fold val scores of the
    cross-validation runs in `settings.from_runs`, with those scores' metrics (`oof/...`); uncalibrated without."""
    if not settings.from_runs:
        log.warning(
            "a refit without calibration.from_runs is uncalibrated (temperature 1, threshold 0.5): pass the "
            "cross-validation runs of its recipe to calibrate it on their out-of-fold scores"
        )
        return Calibration(), {}
    pool = read_out_of_fold(settings.from_runs)
    labels = (pool["label"] == "fake").to_numpy(np.int64)
    logits = pool["logit"].to_numpy(np.float64)
    log.info(
        "calibrating on %d out-of-fold val scores (%d videos) of %d runs", len(pool), pool["video_id"].nunique(),
        len(settings.from_runs),
    )  # fmt: skip
    extra = {"calibrated_on": "out_of_fold", "from_runs": list(settings.from_runs)}
    return calibrate(logits, labels, settings, extra), validation_metrics(pool, labels, logits, prefix="oof")


def finish(run: TrainRun, progress: Progress, card: ModelCard) -> dict[str, Any]:
    """Reload the best weights, calibrate on val, write model.safetensors + its card and metrics.json."""
    out_dir = run.settings.output_dir
    target = run.eval_model
    if run.info.enabled:
        torch.distributed.barrier()
    merge_lowrank(target)  # training is over: the kept weights are plain (best.safetensors holds them merged)
    target.load_state_dict(load_file(str(run.ckpt_dir / "best.safetensors")))
    if run.data.has_val:
        index, logits = validate(run, target)
        labels = run.data.val_ds.labels[index].astype(np.int64)
        calibration = calibrate(logits, labels, run.settings.calibration)
        oof_metrics: dict[str, float] = {}
        if run.info.is_main:  # a cross-validation fold's out-of-fold scores, for calibrating a refit
            write_val_scores(out_dir / VAL_SCORES, run.data.val_df.iloc[index], logits)
    else:
        calibration, oof_metrics = calibrate_refit(run.settings.calibration)
    best_metrics = {**progress.best_metrics, **oof_metrics}
    card = replace(card, calibration=calibration, val_metrics=best_metrics)
    monitor = run.settings.trainer.monitor
    result = {
        **best_metrics,
        "best_epoch": progress.best_epoch,
        "epochs_run": len(progress.history),
        "steps": progress.step,
        "monitor": monitor,
        "best": progress.best,
        "calibration": calibration.to_dict(),
        "history": progress.history,
    }
    if run.info.is_main:
        save_detector(target, out_dir / FINAL_NAME, card.to_sidecar())
        atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2, default=float))
        if progress.best is None:  # a refit (no validation) or trainer.keep=last without a monitored value
            kept = f"kept epoch {progress.best_epoch}, no {monitor} to select on"
        else:
            kept = f"best {monitor}={progress.best:.4f} at epoch {progress.best_epoch}"
        log.info("wrote %s and metrics.json (%s)", out_dir / FINAL_NAME, kept)
    return broadcast_object(result, run.info)
