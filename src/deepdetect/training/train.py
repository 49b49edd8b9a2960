"""`train(cfg)`: fine-tune a detector on the train split, select on the val split, write checkpoints and the model."""

from __future__ import annotations

import json
import logging
import math
import subprocess
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

import deepdetect
from deepdetect.contract import FaceCrop
from deepdetect.data.dataset import CropDataset, check_crops_exist, normalize_sbi_mode, with_sbi_fakes
from deepdetect.data.manifest import drop_source, manifest_paths, read_manifests, select_split
from deepdetect.data.sampling import EpochSampler, keep_groups
from deepdetect.data.transforms import build_transforms
from deepdetect.evaluation.calibration import apply_temperature, choose_threshold, fit_temperature
from deepdetect.models.checkpoint import FINAL_NAME, save_detector
from deepdetect.models.detector import build_from_config
from deepdetect.training.distributed import DistInfo, broadcast_object, cleanup_distributed, init_distributed
from deepdetect.training.loggers import build_logger
from deepdetect.training.state import (
    load_training_state,
    rng_state,
    save_training_state,
    seed_everything,
    set_rng_state,
)
from deepdetect.training.validate import is_better, predict_logits, validation_metrics
from deepdetect.utils.io import atomic_write_text

log = logging.getLogger(__name__)

PRECISIONS = ("32", "bf16", "16")


class TrainConfigError(ValueError):
    """A training option that cannot work as given (bad value, impossible combination)."""


def resolve_device(accelerator: str, info: DistInfo) -> torch.device:
    """`cpu`, `cuda` or `auto` -> the torch device of this process."""
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator == "cuda":
        if not torch.cuda.is_available():
            raise TrainConfigError("trainer.accelerator=cuda but no CUDA device is visible; use trainer=cpu")
        return torch.device("cuda", info.local_rank)
    if accelerator != "cpu":
        raise TrainConfigError(f"unknown trainer.accelerator {accelerator!r}; expected cpu, cuda or auto")
    return torch.device("cpu")


def autocast_for(precision: str, device: torch.device) -> Any:
    """The autocast context for a precision (nullcontext for fp32)."""
    if precision == "32":
        return nullcontext()
    if precision == "16" and device.type != "cuda":
        raise TrainConfigError("trainer.precision=16 needs CUDA (fp16 + GradScaler); use bf16 on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


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


def face_crop_meta(manifest: Path, fallback: Any) -> dict[str, Any]:
    """Face-crop settings from the extraction's `extract.json` beside the manifest, else `data.face_crop`."""
    meta = dict(OmegaConf.to_container(fallback, resolve=True)) if fallback is not None else {}  # type: ignore[arg-type]
    side = manifest.parent / "extract.json"
    if side.is_file():
        try:
            info = json.loads(side.read_text(encoding="utf-8"))
            src = info.get("face_crop", info)
            for key in (f.name for f in fields(FaceCrop)):  # the contract defines the face-crop fields
                if key in src:
                    meta[key] = src[key]
        except (json.JSONDecodeError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", side, exc)
    return meta


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


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers, without Hydra's own node."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(raw, dict)
    raw.pop("hydra", None)
    container = OmegaConf.to_container(OmegaConf.create(raw), resolve=True)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def sbi_validation(sbi_cfg: Any) -> bool:
    """Whether val fakes are self-blends of the val reals: `data.sbi.val` sbi, or auto with SBI-only training."""
    choice = str(sbi_cfg.get("val", "auto"))
    if choice not in ("auto", "sbi", "manifest"):
        raise TrainConfigError(f"data.sbi.val must be auto, sbi or manifest, got {choice!r}")
    return choice == "sbi" or (choice == "auto" and normalize_sbi_mode(sbi_cfg.mode) == "only")


def load_frames(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Train and val rows of `data.manifest`; every other row (the test split) is dropped before anything opens it."""
    if cfg.data.get("manifest") in (None, "", "???"):
        raise TrainConfigError("set data.manifest=PATH/manifest.csv (written by deepdetect-extract)")
    manifest = manifest_paths(cfg.data.manifest)[0]
    frame = read_manifests(cfg.data.manifest)
    holdout = cfg.data.get("holdout_source")
    if holdout:
        frame = drop_source(frame, str(holdout))
        log.info("leave-one-source-out: every row of source %r is held out of training and validation", holdout)
    train_split, val_split = str(cfg.data.train_split), str(cfg.data.val_split)
    train = keep_groups(select_split(frame, train_split), cfg.data.get("train_groups"), int(cfg.get("seed", 0)))
    val = select_split(frame, val_split)
    if len(train) == 0 or len(val) == 0:
        raise TrainConfigError(f"{manifest} needs rows in both the {train_split!r} and {val_split!r} splits")
    if normalize_sbi_mode(cfg.data.sbi.mode) == "only":
        train = train[train["label"] == "real"].reset_index(drop=True)
        log.info("SBI-only training: %d real train crops, fakes are self-blended on the fly", len(train))
    if sbi_validation(cfg.data.sbi):
        val = with_sbi_fakes(val)
        log.info("validating on %d val reals and a self-blended fake of each (data.sbi.val)", len(val) // 2)
    check_crops_exist(train, "train")
    check_crops_exist(val, "val")
    return train, val, manifest


def build_loader(dataset: CropDataset, sampler: Any, batch_size: int, cfg: DictConfig, train: bool) -> DataLoader[Any]:
    """DataLoader with the configured workers; drops the last partial batch in training (BatchNorm)."""
    workers = int(cfg.data.num_workers)
    pin = bool(cfg.data.get("pin_memory", False)) and torch.cuda.is_available()
    opts: dict[str, Any] = {}
    if workers > 0:
        opts = {
            "persistent_workers": bool(cfg.data.get("persistent_workers", True)),
            "prefetch_factor": int(cfg.data.get("prefetch_factor", 2)),
        }
    n = len(sampler)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin,
        drop_last=train and n > batch_size,
        **opts,
    )


def _pos_weight(cfg: DictConfig, train: pd.DataFrame, device: torch.device) -> torch.Tensor | None:
    """BCE pos_weight: null (none), `auto` (n_real / n_fake of the train split) or a number."""
    value = cfg.data.get("pos_weight")
    if value is None:
        return None
    if str(value) == "auto":
        n_fake = int((train["label"] == "fake").sum())
        value = (len(train) - n_fake) / max(1, n_fake)
    return torch.tensor(float(value), device=device)


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train a detector as `cfg` describes; returns the final metrics (also written to `output_dir/metrics.json`)."""
    trainer = cfg.trainer
    info = init_distributed(str(trainer.get("strategy", "single")), str(trainer.accelerator))
    try:
        metrics = _train(cfg, info)
    finally:
        cleanup_distributed(info)
    if cfg.data.get("holdout_source") and cfg.get("holdout_eval") and info.rank == 0:
        metrics["holdout_eval"] = evaluate_holdout(cfg)
    return metrics


def evaluate_holdout(cfg: DictConfig) -> str:
    """Leave-one-source-out, second half: evaluate the trained model on the held-out source (and in-domain test).

    Writes `output_dir/holdout_eval/` (metrics.json, scores.csv, report.html); returns that folder.
    """
    from deepdetect.evaluation.evaluate import evaluate
    from deepdetect.utils.config import compose_stage

    out = Path(str(cfg.output_dir)) / "holdout_eval"
    manifests = [str(p) for p in manifest_paths(cfg.data.manifest)]
    ev = compose_stage(
        "evaluate",
        [
            f"checkpoint={cfg.output_dir}",
            f"data.manifest=[{','.join(manifests)}]",
            f"holdout_source={cfg.data.holdout_source}",
            f"output_dir={out}",
            *[str(o) for o in (cfg.get("holdout_eval_overrides") or [])],
        ],
    )
    evaluate(ev)
    return str(out)


def _train(cfg: DictConfig, info: DistInfo) -> dict[str, Any]:
    trainer = cfg.trainer
    out_dir = Path(str(cfg.output_dir))
    ckpt_dir = out_dir / "checkpoints"
    check_run_dir(out_dir, _resume_path(trainer.get("resume"), ckpt_dir), bool(cfg.get("overwrite", False)), info)
    precision = str(trainer.precision)
    if precision not in PRECISIONS:
        raise TrainConfigError(f"unknown trainer.precision {precision!r}; expected one of {PRECISIONS}")
    device = resolve_device(str(trainer.accelerator), info)
    autocast = autocast_for(precision, device)  # fails early on impossible combinations (fp16 on CPU)
    seed = int(cfg.seed)
    seed_everything(seed + info.rank)

    train_df, val_df, manifest = load_frames(cfg)
    model, spec, preprocess, init_report = build_from_config(cfg.model)
    train_tf, eval_tf = build_transforms(cfg.get("augment"), preprocess)
    if info.is_main:  # only once the config has built data and model: a bad config leaves no run folder behind
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(plain_config(cfg))))
    sbi = cfg.data.sbi
    train_ds = CropDataset(train_df, train_tf, sbi_mode=sbi.mode, sbi_prob=float(sbi.prob), seed=seed)
    val_ds = CropDataset(val_df, eval_tf, seed=seed)
    sampler = EpochSampler(
        train_df,
        frames_per_video=cfg.data.get("frames_per_video_epoch"),
        balance=str(cfg.data.balance),
        seed=seed,
        rank=info.rank,
        world_size=info.world_size,
    )
    batch = int(cfg.data.batch_size)
    train_loader = build_loader(train_ds, sampler, batch, cfg, train=True)
    val_indices = list(range(info.rank, len(val_ds), info.world_size))
    val_loader = build_loader(val_ds, val_indices, int(cfg.data.get("eval_batch_size") or batch), cfg, train=False)

    channels_last = bool(trainer.get("channels_last", False))
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    ema = None
    if trainer.ema.enabled:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=float(trainer.ema.decay), use_warmup=bool(trainer.ema.get("warmup", True)))
    optimizer = instantiate(cfg.optimizer)(params=[p for p in model.parameters() if p.requires_grad])
    accum = max(1, int(trainer.get("accumulate_grad_batches", 1)))
    micro_per_epoch = len(train_loader)
    if trainer.get("max_steps_per_epoch"):
        micro_per_epoch = min(micro_per_epoch, int(trainer.max_steps_per_epoch))
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / accum))
    max_epochs = int(trainer.max_epochs)
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer, total_steps=steps_per_epoch * max_epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "16")
    pos_weight = _pos_weight(cfg, train_df, device)

    run_model: nn.Module = model
    if info.enabled:
        run_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if trainer.get("compile", False):
        run_model = torch.compile(run_model)  # type: ignore[assignment]

    progress: dict[str, Any] = {"epoch": 0, "step": 0, "best": None, "best_epoch": -1, "bad_epochs": 0, "history": []}
    resume = _resume_path(trainer.get("resume"), ckpt_dir)
    if resume is not None:
        state = load_training_state(resume)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        for key in progress:
            progress[key] = state[key]
        set_rng_state(state["rng"][min(info.rank, len(state["rng"]) - 1)])
        log.info("resumed from %s at epoch %d (step %d)", resume, progress["epoch"], progress["step"])

    logger = build_logger(cfg.get("logger"), out_dir, plain_config(cfg), enabled=info.is_main)
    monitor, mode = str(trainer.monitor), str(trainer.get("mode", "max"))
    patience = trainer.get("patience")
    meta_base = {
        "model": spec,
        "preprocess": preprocess.to_dict(),
        "face_crop": face_crop_meta(manifest, cfg.data.get("face_crop")),
        "output": {"type": "logit", "positive_class": "fake"},
        "init_weights": init_report.to_dict() if init_report else {"source": "random"},
        "training_data": {
            "manifest": str(manifest),
            "sbi": normalize_sbi_mode(sbi.mode),
            **data_summary(pd.concat([train_df, val_df])),
        },
        "config": plain_config(cfg),
        "code_version": code_version(),
    }
    eval_model = lambda: ema.module if ema is not None else model  # noqa: E731
    stop_after = trainer.get("stop_after_epoch")
    finished = True
    while progress["epoch"] < max_epochs:
        epoch = progress["epoch"]
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        train_loss = _train_epoch(
            run_model,
            model,
            train_loader,
            optimizer,
            scheduler,
            scaler,
            ema,
            autocast,
            device,
            pos_weight,
            progress,
            cfg,
            micro_per_epoch,
            info,
        )
        index, logits = predict_logits(
            eval_model(), val_loader, device, autocast_for(precision, device), channels_last, info
        )
        metrics = {"epoch": float(epoch), "train/loss": train_loss, "lr": float(optimizer.param_groups[0]["lr"])}
        metrics.update(validation_metrics(val_df.iloc[index], val_ds.labels[index], logits))
        if monitor not in metrics:
            raise TrainConfigError(f"trainer.monitor={monitor!r} is not a metric; have {sorted(metrics)}")
        improved = is_better(metrics[monitor], progress["best"], mode)
        if improved:
            progress["best"], progress["best_epoch"], progress["bad_epochs"] = metrics[monitor], epoch, 0
            if info.is_main:
                save_detector(eval_model(), ckpt_dir / "best.safetensors", {**meta_base, "val_metrics": metrics})
        else:
            progress["bad_epochs"] += 1
        progress["history"].append(metrics)
        progress["epoch"] = epoch + 1
        rngs = gather_rng(info)
        if info.is_main:
            logger.log(metrics, step=progress["step"])
            log.info("epoch %d: %s", epoch, " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
            save_training_state(
                ckpt_dir / "last.pt",
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "rng": rngs,
                    "sampler_epoch": progress["epoch"],
                    **progress,
                },
            )
        if patience is not None and progress["bad_epochs"] > int(patience):
            log.info("early stopping: %s did not improve for %d epochs", monitor, progress["bad_epochs"])
            break
        if stop_after is not None and progress["epoch"] >= int(stop_after) and progress["epoch"] < max_epochs:
            log.info("stopping after epoch %d as asked (trainer.stop_after_epoch); resume to continue", epoch)
            finished = False
            break
    logger.close()
    if not finished:
        return {"stopped_at_epoch": progress["epoch"], **(progress["history"][-1] if progress["history"] else {})}
    return _finish(
        cfg, info, model, ema, val_loader, val_ds, val_df, device, channels_last, progress, meta_base, out_dir
    )


def gather_rng(info: DistInfo) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank order), so a resumed DDP run restores each rank's stream."""
    from deepdetect.training.distributed import gather_objects

    return gather_objects(rng_state(), info)


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


def _train_epoch(
    run_model: nn.Module,
    model: nn.Module,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    ema: Any,
    autocast: Any,
    device: torch.device,
    pos_weight: torch.Tensor | None,
    progress: dict[str, Any],
    cfg: DictConfig,
    micro_per_epoch: int,
    info: DistInfo,
) -> float:
    """One pass over the train loader; returns the mean loss (averaged over ranks)."""
    trainer = cfg.trainer
    accum = max(1, int(trainer.get("accumulate_grad_batches", 1)))
    clip = trainer.get("gradient_clip_val")
    channels_last = bool(trainer.get("channels_last", False))
    run_model.train()
    total, count = 0.0, 0
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, total=micro_per_epoch, disable=not info.is_main, desc=f"epoch {progress['epoch']}", leave=False)
    for i, (images, labels, _) in enumerate(bar):
        if i >= micro_per_epoch:
            break
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        last_micro = (i + 1) % accum == 0 or i + 1 == micro_per_epoch
        sync = (
            nullcontext() if last_micro or not isinstance(run_model, DistributedDataParallel) else run_model.no_sync()
        )
        with sync:
            with autocast:
                logits = run_model(images)
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels, pos_weight=pos_weight)
            scaler.scale(loss / accum).backward()
        total += float(loss.detach()) * len(labels)
        count += len(labels)
        if last_micro:
            if clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            progress["step"] += 1
            if ema is not None:
                ema.update(model, step=progress["step"])
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    from deepdetect.training.distributed import gather_objects

    parts = gather_objects((total, count), info)
    return sum(p[0] for p in parts) / max(1, sum(p[1] for p in parts))


def _finish(
    cfg: DictConfig,
    info: DistInfo,
    model: nn.Module,
    ema: Any,
    val_loader: DataLoader[Any],
    val_ds: CropDataset,
    val_df: pd.DataFrame,
    device: torch.device,
    channels_last: bool,
    progress: dict[str, Any],
    meta_base: dict[str, Any],
    out_dir: Path,
) -> dict[str, Any]:
    """Reload the best weights, calibrate on val, write model.safetensors + sidecar and metrics.json."""
    best_path = out_dir / "checkpoints" / "best.safetensors"
    from safetensors.torch import load_file

    target = ema.module if ema is not None else model
    if info.enabled:
        torch.distributed.barrier()
    target.load_state_dict(load_file(str(best_path)))
    index, logits = predict_logits(
        target, val_loader, device, autocast_for(str(cfg.trainer.precision), device), channels_last, info
    )
    labels = val_ds.labels[index].astype(np.int64)
    calib_cfg = cfg.get("calibration") or {}
    rule = str(calib_cfg.get("threshold_rule", "fpr"))
    target_fpr = float(calib_cfg.get("target_fpr", 0.05))
    temperature = fit_temperature(logits, labels)
    probs = apply_temperature(logits, temperature)
    try:
        threshold = choose_threshold(probs, labels, rule=rule, target_fpr=target_fpr)
    except ValueError as exc:
        log.warning("no threshold chosen on val (%s); using 0.5", exc)
        threshold = 0.5
    best_metrics = progress["history"][progress["best_epoch"]] if progress["best_epoch"] >= 0 else {}
    flagged = probs >= threshold
    calibration = {
        "temperature": temperature,
        "threshold": threshold,
        "threshold_rule": rule,
        "target_fpr": target_fpr,
        # Rates at the threshold on val: the reference an evaluation compares unseen sources against.
        "val_fpr": float(flagged[labels == 0].mean()) if (labels == 0).any() else None,
        "val_tpr": float(flagged[labels == 1].mean()) if (labels == 1).any() else None,
    }
    result = {
        **best_metrics,
        "best_epoch": progress["best_epoch"],
        "epochs_run": len(progress["history"]),
        "steps": progress["step"],
        "monitor": str(cfg.trainer.monitor),
        "best": progress["best"],
        "calibration": calibration,
        "history": progress["history"],
    }
    if info.is_main:
        save_detector(
            target, out_dir / FINAL_NAME, {**meta_base, "calibration": calibration, "val_metrics": best_metrics}
        )
        atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2, default=float))
        log.info(
            "wrote %s and metrics.json (best %s=%.4f at epoch %d)",
            out_dir / FINAL_NAME,
            cfg.trainer.monitor,
            progress["best"] or float("nan"),
            progress["best_epoch"],
        )
    return broadcast_object(result, info)
