"""The epoch loop: train one epoch, validate, keep the best checkpoint, save the resumable state, stop early."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from deepdetect.contract import ModelCard
from deepdetect.models.checkpoint import save_detector
from deepdetect.models.tuning import svd_penalty
from deepdetect.training.distributed import gather_objects
from deepdetect.training.loggers import MetricLogger
from deepdetect.training.settings import TrainConfigError
from deepdetect.training.setup import TrainRun
from deepdetect.training.state import load_training_state, rng_state, save_training_state, set_rng_state
from deepdetect.training.validate import is_better, predict_logits, validation_metrics

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where a run stands: epochs done, optimizer steps, the best monitored value and the per-epoch history."""

    epoch: int = 0
    step: int = 0
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The entries stored in `last.pt` (the same keys as before this was a dataclass)."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Progress:
        """The progress saved in a training state."""
        return cls(**{k: state[k] for k in asdict(cls())})

    @property
    def best_metrics(self) -> dict[str, float]:
        """The validation metrics of the best epoch ({} before any)."""
        return self.history[self.best_epoch] if self.best_epoch >= 0 else {}


def resume_from(run: TrainRun, path: Path) -> Progress:
    """Load model, optimizer, scheduler, scaler, EMA and this rank's RNG from `path`; returns its progress."""
    state = load_training_state(path)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    if run.ema is not None and state.get("ema") is not None:
        run.ema.load_state_dict(state["ema"])
    progress = Progress.from_state(state)
    set_rng_state(state["rng"][min(run.info.rank, len(state["rng"]) - 1)])
    log.info("resumed from %s at epoch %d (step %d)", path, progress.epoch, progress.step)
    return progress


def train_epoch(run: TrainRun, progress: Progress) -> float:
    """One pass over the train loader; returns the mean loss (averaged over ranks)."""
    trainer = run.settings.trainer
    accum, clip = trainer.accumulate_grad_batches, trainer.gradient_clip_val
    constraints = run.settings.tuning.constraints  # svd mode: Effort's penalties join the loss (models.tuning)
    run.run_model.train()
    total, count = 0.0, 0
    run.optimizer.zero_grad(set_to_none=True)
    autocast = run.autocast()
    bar = tqdm(
        run.data.train_loader,
        total=run.micro_per_epoch,
        disable=not run.info.is_main,
        desc=f"epoch {progress.epoch}",
        leave=False,
    )
    for i, (images, labels, _) in enumerate(bar):
        if i >= run.micro_per_epoch:
            break
        images = images.to(run.device, non_blocking=True)
        if trainer.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(run.device, non_blocking=True)
        last_micro = (i + 1) % accum == 0 or i + 1 == run.micro_per_epoch
        ddp = isinstance(run.run_model, DistributedDataParallel)
        with nullcontext() if last_micro or not ddp else run.run_model.no_sync():  # type: ignore[operator]
            with autocast:
                logits = run.run_model(images)
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels, pos_weight=run.pos_weight)
            penalty = svd_penalty(run.model) if constraints else None
            objective = loss if penalty is None else loss + constraints * penalty
            run.scaler.scale(objective / accum).backward()
        total += float(loss.detach()) * len(labels)
        count += len(labels)
        if last_micro:
            _optimizer_step(run, clip)
            progress.step += 1
            if run.ema is not None:
                run.ema.update(run.model, step=progress.step)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    parts = gather_objects((total, count), run.info)
    return sum(p[0] for p in parts) / max(1, sum(p[1] for p in parts))


def _optimizer_step(run: TrainRun, clip: float | None) -> None:
    """Unscale and clip (when asked), step optimizer and scaler, zero the gradients, step the scheduler."""
    if clip:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.scheduler.step()


def validate(run: TrainRun, model: torch.nn.Module | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(val row indices, logits) of `model` (default: the EMA or plain model) gathered over ranks."""
    trainer = run.settings.trainer
    return predict_logits(
        model if model is not None else run.eval_model,
        run.data.val_loader,
        run.device,
        run.autocast(),
        trainer.channels_last,
        run.info,
    )


def epoch_metrics(run: TrainRun, epoch: int, train_loss: float) -> dict[str, float]:
    """Loss, learning rate and the validation metrics after an epoch (none in a refit); refuses a monitor that is
    not among them when it selects the weights kept."""
    metrics = {"epoch": float(epoch), "train/loss": train_loss, "lr": float(run.optimizer.param_groups[0]["lr"])}
    if not run.data.has_val:
        return metrics
    index, logits = validate(run)
    val = run.data
    metrics.update(validation_metrics(val.val_df.iloc[index], val.val_ds.labels[index], logits))
    monitor = run.settings.trainer.monitor
    if monitor not in metrics:
        raise TrainConfigError(f"trainer.monitor={monitor!r} is not a metric; have {sorted(metrics)}")
    return metrics


def save_state(run: TrainRun, progress: Progress, rngs: list[dict[str, Any]]) -> None:
    """`checkpoints/last.pt`: everything a resumed run needs (every rank's RNG included)."""
    save_training_state(
        run.ckpt_dir / "last.pt",
        {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "ema": run.ema.state_dict() if run.ema is not None else None,
            "rng": rngs,
            "sampler_epoch": progress.epoch,
            **progress.to_dict(),
        },
    )


def keep_last_epoch(run: TrainRun) -> bool:
    """Whether the weights kept are the last epoch's (`trainer.keep=last`, or a refit: nothing to select on);
    then nothing stops early either."""
    if run.settings.trainer.keep == "last":
        return True
    if not run.data.has_val:
        log.info("no validation set: the last epoch's weights are kept (trainer.monitor and patience are unused)")
        return True
    return False


def fit(run: TrainRun, progress: Progress, card: ModelCard, logger: MetricLogger) -> bool:
    """Run epochs until max_epochs, early stopping or `stop_after_epoch`; returns False when stopped early on
    request (the run is to be resumed), True when training is over."""
    trainer, info = run.settings.trainer, run.info
    keep_last = keep_last_epoch(run)
    while progress.epoch < trainer.max_epochs:
        epoch = progress.epoch
        run.data.sampler.set_epoch(epoch)
        run.data.train_ds.set_epoch(epoch)
        metrics = epoch_metrics(run, epoch, train_epoch(run, progress))
        value = metrics.get(trainer.monitor)  # absent in a refit
        if keep_last or (value is not None and is_better(value, progress.best, trainer.mode)):
            progress.best, progress.best_epoch, progress.bad_epochs = value, epoch, 0
            if info.is_main:
                best = replace(card, val_metrics=metrics)
                save_detector(run.eval_model, run.ckpt_dir / "best.safetensors", best.to_sidecar())
        else:
            progress.bad_epochs += 1
        progress.history.append(metrics)
        progress.epoch = epoch + 1
        rngs = gather_objects(rng_state(), info)  # every rank's RNG, so a resumed DDP run restores each stream
        if info.is_main:
            logger.log(metrics, step=progress.step)
            log.info("epoch %d: %s", epoch, " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
            save_state(run, progress, rngs)
        if trainer.patience is not None and progress.bad_epochs > trainer.patience:
            log.info("early stopping: %s did not improve for %d epochs", trainer.monitor, progress.bad_epochs)
            return True
        stop_after = trainer.stop_after_epoch
        if stop_after is not None and stop_after <= progress.epoch < trainer.max_epochs:
            log.info("stopping after epoch %d as asked (trainer.stop_after_epoch); resume to continue", epoch)
            return False
    return True
