"""`train(cfg)`: fine-tune a detector on the train split, select on the val split, write checkpoints and the model.

`train()` only orchestrates: settings (training.settings) -> run parts (training.setup) -> epochs
(training.loop) -> calibration and the model card (training.finish).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

import deepdetect
from deepdetect.contract import ModelCard
from deepdetect.data.manifest import manifest_paths
from deepdetect.training.distributed import DistInfo, cleanup_distributed, init_distributed
from deepdetect.training.finish import finish
from deepdetect.training.loggers import build_logger
from deepdetect.training.loop import Progress, fit, resume_from
from deepdetect.training.settings import PRECISIONS, TrainConfigError, TrainSettings, plain_config
from deepdetect.training.setup import TrainRun, autocast_for, build_run, face_crop_record, train_device
from deepdetect.training.state import seed_everything
from deepdetect.training.valscores import read_out_of_fold
from deepdetect.utils.io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["PRECISIONS", "TrainConfigError", "autocast_for", "plain_config", "train"]


def data_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts per split/label and per source/label of the rows training used."""
    by_split = frame.groupby(["split", "label"]).size()
    by_source = frame.groupby(["source", "label"]).size()
    return {
        "splits": {s: {lab: int(n) for (s2, lab), n in by_split.items() if s2 == s} for s in by_split.index.levels[0]},
        "sources": {
            s: {lab: int(n) for (s2, lab), n in by_source.items() if s2 == s} for s in by_source.index.levels[0]
        },
        "videos": {s: int(frame.loc[frame["split"] == s, "video_id"].nunique()) for s in frame["split"].unique()},
    }


def code_version() -> dict[str, str]:
    """Package version and, when run from a git checkout, the commit."""
    out = {"deepdetect": deepdetect.__version__}
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        out["git_sha"] = sha
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def base_card(run: TrainRun) -> ModelCard:
    """The model card known before training: model, preprocessing, face crop, data and provenance (calibration and
    validation metrics are added by the loop and the finishing step)."""
    data = run.data
    spec = run.spec
    return ModelCard(
        name=str(spec.get("name")),
        version="unversioned",  # a sidecar's version is its weights' hash, computed by readers
        spec=spec,
        preprocess=run.preprocess,
        face_crop=face_crop_record(manifest_paths(run.settings.data.manifest), run.settings.data.face_crop),
        init_weights=run.init_report.to_dict() if run.init_report else {"source": "random"},
        tuning=run.tuning.to_dict(),
        training_data={
            "manifest": [str(m) for m in manifest_paths(run.settings.data.manifest)]
            if isinstance(run.settings.data.manifest, tuple) and len(run.settings.data.manifest) > 1
            else str(data.manifest),
            "sbi": run.settings.data.sbi.mode,
            **data_summary(pd.concat([data.train_df, data.val_df])),
        },
        config=run.settings.config,
        code_version=code_version(),
    )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train a detector as `cfg` describes; returns the final metrics (also written to `output_dir/metrics.json`)."""
    settings = TrainSettings.from_config(cfg)
    info = init_distributed(settings.trainer.strategy, settings.trainer.accelerator)
    try:
        metrics = run_training(settings, info)
    finally:
        cleanup_distributed(info)
    if settings.data.holdout_source and settings.holdout_eval and info.rank == 0:
        metrics["holdout_eval"] = evaluate_holdout(settings)
    return metrics


def run_training(settings: TrainSettings, info: DistInfo) -> dict[str, Any]:
    """Prepare the run folder, build the run, train (or resume) it and finish it."""
    out_dir = settings.output_dir
    ckpt_dir = out_dir / "checkpoints"
    resume = _resume_path(settings.trainer.resume, ckpt_dir)
    check_run_dir(out_dir, resume, settings.overwrite, info)
    if settings.calibration.from_runs:
        read_out_of_fold(settings.calibration.from_runs)  # a refit's calibration scores, checked before it trains
    device = train_device(settings.trainer.accelerator, info)
    autocast_for(settings.trainer.precision, device)  # fails early on impossible combinations (fp16 on CPU)
    seed_everything(settings.seed + info.rank)
    run = build_run(settings, info, device)
    if info.is_main:  # only once the config has built data and model: a bad config leaves no run folder behind
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(settings.config)))
    progress = resume_from(run, resume) if resume is not None else Progress()
    logger = build_logger(settings.logger, out_dir, settings.config, enabled=info.is_main)
    card = base_card(run)
    try:
        finished = fit(run, progress, card, logger)
    finally:
        logger.close()
    if not finished:
        return {"stopped_at_epoch": progress.epoch, **(progress.history[-1] if progress.history else {})}
    return finish(run, progress, card)


def evaluate_holdout(settings: TrainSettings) -> str:
    """Leave-one-source-out, second half: evaluate the trained model on the held-out source (and in-domain test).

    Writes `output_dir/holdout_eval/` (metrics.json, scores.csv, report.html); returns that folder.
    """
    from deepdetect.evaluation.evaluate import evaluate

    out = settings.output_dir / "holdout_eval"
    evaluate(holdout_eval_config(settings, out))
    return str(out)


def holdout_eval_config(settings: TrainSettings, out: Path) -> DictConfig:
    """The evaluate config of the held-out source's evaluation: this run's model and manifests, output in `out`,
    then `holdout_eval_overrides` (an experiment's, or debug=fast's small bootstrap)."""
    from deepdetect.utils.config import compose_stage

    manifests = [str(p) for p in manifest_paths(settings.data.manifest)]
    return compose_stage(
        "evaluate",
        [
            f"checkpoint={settings.output_dir}",
            f"data.manifest=[{','.join(manifests)}]",
            f"holdout_source={settings.data.holdout_source}",
            f"output_dir={out}",
            *settings.holdout_eval_overrides,
        ],
    )


# What a training run writes in output_dir; another run into the same folder would overwrite or mix with them.
RUN_OUTPUTS = (
    "model.safetensors",
    "model.json",
    "metrics.json",
    "log.csv",
    "checkpoints/last.pt",
    "checkpoints/best.safetensors",
    "checkpoints/best.json",
)


def check_run_dir(out_dir: Path, resume: Path | None, overwrite: bool, info: DistInfo) -> None:
    """Refuse to train into a folder holding another run unless resuming it or `overwrite=true` (which removes
    that run's outputs, see `RUN_OUTPUTS`, so log.csv never mixes two runs)."""
    found = [name for name in RUN_OUTPUTS if (out_dir / name).exists()]
    if not found or resume is not None:
        return
    if not overwrite:
        raise TrainConfigError(
            f"{out_dir} already holds a training run ({', '.join(found)}); use another output_dir, "
            "trainer.resume=auto to continue it, or overwrite=true to replace it"
        )
    if info.is_main:
        log.warning("overwrite=true: removing the earlier run's %s in %s", ", ".join(found), out_dir)
        for name in found:
            (out_dir / name).unlink(missing_ok=True)


def _resume_path(resume: Any, ckpt_dir: Path) -> Path | None:
    """`trainer.resume`: null, `auto` (output_dir/checkpoints/last.pt when present) or a path."""
    if resume in (None, "", False):
        return None
    if str(resume) == "auto":
        last = ckpt_dir / "last.pt"
        return last if last.is_file() else None
    path = Path(str(resume))
    if path.is_dir():
        path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else path / "last.pt"
    if not path.is_file():
        raise TrainConfigError(f"trainer.resume: no checkpoint at {path}")
    return path
