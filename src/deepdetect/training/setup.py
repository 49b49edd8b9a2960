"""Building a training run from its settings: the data (train/val rows, datasets, loaders), the model and its
optimisation (optimizer, scheduler, scaler, EMA, DDP/compile wrappers), held together in one `TrainRun`."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from deepdetect.contract import FaceCrop, Preprocess
from deepdetect.data.dataset import CropDataset, check_crops_exist, with_sbi_fakes
from deepdetect.data.manifest import drop_source, manifest_paths, read_manifests, select_split
from deepdetect.data.sampling import EpochSampler, cv_split, keep_groups
from deepdetect.data.transforms import build_transforms
from deepdetect.models.detector import build_from_config
from deepdetect.models.tuning import TuningError, TuningReport, apply_tuning
from deepdetect.models.weights import LoadReport
from deepdetect.training.distributed import DistInfo
from deepdetect.training.settings import DataSettings, LoaderSettings, TrainConfigError, TrainSettings
from deepdetect.utils.device import DeviceError, resolve_device
from deepdetect.utils.targets import instantiate_group

log = logging.getLogger(__name__)


def train_device(accelerator: str, info: DistInfo) -> torch.device:
    """`trainer.accelerator` -> this process's device (see `utils.device.resolve_device`; CUDA takes the local rank)."""
    try:
        return resolve_device(accelerator, info.local_rank)
    except DeviceError as exc:
        raise TrainConfigError(f"trainer.accelerator: {exc}") from None


def autocast_for(precision: str, device: torch.device) -> Any:
    """The autocast context for a precision (nullcontext for fp32)."""
    if precision == "32":
        return nullcontext()
    if precision == "16" and device.type != "cuda":
        raise TrainConfigError("trainer.precision=16 needs CUDA (fp16 + GradScaler); use bf16 on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def load_frames(data: DataSettings, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Train and val rows of `data.manifest` (a refit: train+val rows, and no val); every other row (the test
    split) is dropped before anything opens it."""
    manifest = manifest_paths(data.manifest)[0]
    frame = read_manifests(data.manifest)
    if data.holdout_source:
        frame = drop_source(frame, data.holdout_source)
        log.info(
            "leave-one-source-out: every row of source %r is held out of training and validation", data.holdout_source
        )
    if data.cv_folds:
        pooled = select_split(frame, [data.train_split, data.val_split])
        train, val = cv_split(pooled, data.cv_folds, data.cv_fold, seed)
        train, val = keep_groups(train.reset_index(drop=True), data.train_groups, seed), val.reset_index(drop=True)
        log.info(
            "cross-validation fold %d of %d over the %r+%r groups: %d train / %d val groups",
            data.cv_fold, data.cv_folds, data.train_split, data.val_split,
            train["group"].nunique(), val["group"].nunique(),
        )  # fmt: skip
    elif data.refit:
        train = keep_groups(select_split(frame, [data.train_split, data.val_split]), data.train_groups, seed)
        val = train.iloc[:0]
        log.info(
            "refit: training on the %r+%r splits together (%d groups) with no validation; the last epoch is kept",
            data.train_split, data.val_split, train["group"].nunique(),
        )  # fmt: skip
    else:
        train = keep_groups(select_split(frame, data.train_split), data.train_groups, seed)
        val = select_split(frame, data.val_split)
    if len(train) == 0 or (len(val) == 0 and not data.refit):
        raise TrainConfigError(f"{manifest} needs rows in both the {data.train_split!r} and {data.val_split!r} splits")
    if data.sbi.mode in ("only", "pairs"):
        train = train[train["label"] == "real"].reset_index(drop=True)
        log.info("SBI-only training: %d real train crops, fakes are self-blended on the fly", len(train))
    if data.sbi.mode == "pairs":
        train = with_sbi_fakes(train)
        log.info("SBI pairs: each real crop and its self-blend side by side in a batch, a new blend each epoch")
    if data.sbi.validate_on_blends:
        val = with_sbi_fakes(val)
        log.info("validating on %d val reals and a self-blended fake of each (data.sbi.val)", len(val) // 2)
    if not data.refit:
        where = f"cross-validation fold {data.cv_fold}" if data.cv_folds else f"the {data.val_split!r} split"
        check_val_classes(val, where, manifest)
    check_crops_exist(train, "train")
    check_crops_exist(val, "val")
    return train, val, manifest


def check_val_classes(val: pd.DataFrame, where: str, manifest: Path) -> None:
    """Refuse a validation set without both classes: its AUC is NaN, so no checkpoint could be selected on it
    and no threshold calibrated; raises TrainConfigError naming the counts per class."""
    counts = {label: int((val["label"] == label).sum()) for label in ("real", "fake")}
    missing = [label for label, n in counts.items() if n == 0]
    if missing:
        raise TrainConfigError(
            f"validation ({where} of {manifest}) has no {' and no '.join(missing)} crops "
            f"(real {counts['real']}, fake {counts['fake']}): validation needs both classes to select a checkpoint "
            "and calibrate; give that split both classes (or data.sbi.val=sbi to validate on self-blends of its reals)"
        )


def build_loader(
    dataset: CropDataset, sampler: Any, batch_size: int, loader: LoaderSettings, train: bool
) -> DataLoader[Any]:
    """DataLoader with the configured workers; drops the last partial batch in training (BatchNorm)."""
    pin = loader.pin_memory and torch.cuda.is_available()
    opts: dict[str, Any] = {}
    if loader.num_workers > 0:
        opts = {"persistent_workers": loader.persistent_workers, "prefetch_factor": loader.prefetch_factor}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        pin_memory=pin,
        drop_last=train and len(sampler) > batch_size,
        **opts,
    )


def _manifest_face_crop(manifest: Path, fallback: dict[str, Any]) -> FaceCrop:
    """Face-crop contract from the extraction's `extract.json` beside one manifest, else `data.face_crop`."""
    meta = dict(fallback)
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
    return FaceCrop.from_dict(meta)


# Fields that change what a crop looks like: every training manifest must agree on them.
CROP_GEOMETRY = ("detector", "margin", "size")


def face_crop_record(manifests: Sequence[Path], fallback: dict[str, Any]) -> FaceCrop:
    """The face-crop contract of the training data, from every manifest's `extract.json` (else `data.face_crop`).

    Manifests cut with a different detector, margin or size are refused (a model would learn the difference).
    Selection rules merge so predict never scores a face smaller or less certain than any training crop:
    the smallest `min_face`, `min_score` and `detector_min_face_size`; `keep` and the frame sampling are kept
    when all agree, else left unrecorded, and `note` says so.
    """
    crops = [_manifest_face_crop(Path(m), fallback) for m in manifests]
    first = crops[0]
    if len(crops) == 1:
        return first
    for name in CROP_GEOMETRY:
        values = {getattr(c, name) for c in crops if getattr(c, name) is not None}
        if len(values) > 1:
            found = ", ".join(f"{m}: {getattr(c, name)}" for m, c in zip(manifests, crops, strict=True))
            raise TrainConfigError(f"training manifests were cut with different face-crop {name} ({found}); "
                                   "extract them with one setting")  # fmt: skip

    def smallest(name: str) -> Any:
        values = [getattr(c, name) for c in crops if getattr(c, name) is not None]
        return min(values) if values else None

    def agreed(name: str) -> Any:
        values = {getattr(c, name) for c in crops}
        return values.pop() if len(values) == 1 else None

    differ = [n for n in ("keep", "frames_per_video", "every_k") if len({getattr(c, n) for c in crops}) > 1]
    return replace(
        first,
        min_face=smallest("min_face"),
        min_score=smallest("min_score"),
        detector_min_face_size=smallest("detector_min_face_size"),
        keep=agreed("keep"),
        frames_per_video=agreed("frames_per_video"),
        every_k=agreed("every_k"),
        note=f"merged from {len(crops)} manifests" + (f"; they differ in {', '.join(differ)}" if differ else ""),
    )


def pos_weight(value: str | float | None, train: pd.DataFrame, device: torch.device) -> torch.Tensor | None:
    """BCE pos_weight: None (none), `auto` (n_real / n_fake of the train split) or a number."""
    if value is None:
        return None
    if value == "auto":
        n_fake = int((train["label"] == "fake").sum())
        value = (len(train) - n_fake) / max(1, n_fake)
    return torch.tensor(float(value), device=device)


@dataclass
class TrainData:
    """The rows, datasets and loaders of a run."""

    manifest: Path
    train_df: pd.DataFrame
    val_df: pd.DataFrame
    train_ds: CropDataset
    val_ds: CropDataset
    sampler: EpochSampler
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any]

    @property
    def has_val(self) -> bool:
        """Whether there is a validation set (a refit has none)."""
        return len(self.val_df) > 0


def build_data(
    settings: TrainSettings, rows: tuple[pd.DataFrame, pd.DataFrame, Path], preprocess: Preprocess, info: DistInfo
) -> TrainData:
    """Datasets (train augmented, val plain) and loaders (val rows split over ranks) for `load_frames`' rows."""
    data, seed = settings.data, settings.seed
    train_df, val_df, manifest = rows
    train_tf, eval_tf = build_transforms(settings.augment, preprocess)
    sbi = data.sbi
    train_ds = CropDataset(train_df, train_tf, sbi_mode=sbi.mode, sbi_prob=sbi.prob, seed=seed, sbi_hulls=sbi.hulls)
    val_ds = CropDataset(val_df, eval_tf, seed=seed, sbi_hulls=sbi.hulls)  # validation blends of the same shapes
    sampler = EpochSampler(
        train_df,
        frames_per_video=data.frames_per_video_epoch,
        balance=data.balance,
        seed=seed,
        rank=info.rank,
        world_size=info.world_size,
        paired=data.paired or data.sbi.mode == "pairs",
    )
    loader = settings.loader
    val_indices = list(range(info.rank, len(val_ds), info.world_size))
    return TrainData(
        manifest=manifest,
        train_df=train_df,
        val_df=val_df,
        train_ds=train_ds,
        val_ds=val_ds,
        sampler=sampler,
        train_loader=build_loader(train_ds, sampler, loader.batch_size, loader, train=True),
        val_loader=build_loader(val_ds, val_indices, loader.val_batch_size, loader, train=False),
    )


@dataclass
class TrainRun:
    """Everything the epoch loop and the finishing step work on."""

    settings: TrainSettings
    info: DistInfo
    device: torch.device
    data: TrainData
    model: nn.Module  # the plain detector (weights saved from it)
    run_model: nn.Module  # what the forward pass calls: the model, maybe DDP- and/or compile-wrapped
    ema: Any  # timm ModelEmaV3 or None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    pos_weight: torch.Tensor | None
    micro_per_epoch: int  # loader batches per epoch
    spec: dict[str, Any]
    preprocess: Preprocess
    init_report: LoadReport | None
    tuning: TuningReport

    @property
    def eval_model(self) -> nn.Module:
        """The weights validated, selected and saved: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def ckpt_dir(self) -> Path:
        """`output_dir/checkpoints`."""
        return self.settings.output_dir / "checkpoints"

    def autocast(self) -> Any:
        """A fresh autocast context for the configured precision."""
        return autocast_for(self.settings.trainer.precision, self.device)


def build_run(settings: TrainSettings, info: DistInfo, device: torch.device) -> TrainRun:
    """Model, data and optimisation for a run, on `device`, wrapped for DDP / torch.compile as configured."""
    trainer = settings.trainer
    rows = load_frames(settings.data, settings.seed)  # before the model is built: the RNG order of earlier runs
    model, spec, preprocess, init_report = build_from_config(settings.model)
    try:
        tuning = apply_tuning(model, settings.tuning)
    except TuningError as exc:
        raise TrainConfigError(str(exc)) from None
    if info.is_main:
        log.info(
            "tuning %s: %d of %d parameters train (%.2f%%)", settings.tuning.mode, tuning.trainable_params,
            tuning.total_params, 100.0 * tuning.trainable_params / max(1, tuning.total_params),
        )  # fmt: skip
    data = build_data(settings, rows, preprocess, info)
    model.to(device)
    if trainer.channels_last:
        model.to(memory_format=torch.channels_last)
    ema = None
    if trainer.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=trainer.ema_decay, use_warmup=trainer.ema_warmup)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = instantiate_group("optimizer", settings.optimizer)(params=params)
    micro_per_epoch = len(data.train_loader)
    if trainer.max_steps_per_epoch:
        micro_per_epoch = min(micro_per_epoch, trainer.max_steps_per_epoch)
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / trainer.accumulate_grad_batches))
    total_steps = steps_per_epoch * trainer.max_epochs
    scheduler = instantiate_group("scheduler", settings.scheduler)(optimizer=optimizer, total_steps=total_steps)
    run_model: nn.Module = model
    if info.enabled:
        run_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if trainer.compile:
        run_model = torch.compile(run_model)  # type: ignore[assignment]
    return TrainRun(
        settings=settings,
        info=info,
        device=device,
        data=data,
        model=model,
        run_model=run_model,
        ema=ema,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=trainer.precision == "16"),
        pos_weight=pos_weight(settings.data.pos_weight, data.train_df, device),
        micro_per_epoch=micro_per_epoch,
        spec=spec,
        preprocess=preprocess,
        init_report=init_report,
        tuning=tuning,
    )
