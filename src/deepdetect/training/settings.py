"""Typed training settings: `TrainSettings.from_config(cfg)` turns the Hydra config into frozen dataclasses once,
at the edge, so the library below reads fields (each default written here, once) instead of `cfg.get(k, default)`.

Groups that are instantiated (`optimizer`, `scheduler`: `_partial_` targets) or interpreted by their own builders
(`model`, `augment`, `logger`) stay config nodes: they are built late, where the model's parameters exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from deepdetect.data.dataset import normalize_sbi_mode
from deepdetect.data.sbi import ALL_HULLS, HULLS, unknown_hulls
from deepdetect.models.tuning import Tuning, TuningError

PRECISIONS = ("32", "bf16", "16")


class TrainConfigError(ValueError):
    """A training option that cannot work as given (bad value, impossible combination)."""


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None or value is False else float(value)


@dataclass(frozen=True)
class SbiSettings:
    """Self-blended pseudo-fakes: `mode` off | mix | only, `prob` (mix), `val` auto | sbi | manifest, and the mask
    shapes a blend draws from (`hulls`, data/sbi.py: the paper's four by default)."""

    mode: str = "off"
    prob: float = 0.5
    val: str = "auto"
    hulls: tuple[str, ...] = HULLS

    @classmethod
    def from_config(cls, sbi: Mapping[str, Any] | None) -> SbiSettings:
        """`data.sbi`; the mode is normalised (YAML's `off` may arrive as False), `val` and `hulls` checked."""
        sbi = sbi or {}
        val = str(sbi.get("val", "auto"))
        if val not in ("auto", "sbi", "manifest"):
            raise TrainConfigError(f"data.sbi.val must be auto, sbi or manifest, got {val!r}")
        hulls = tuple(str(h) for h in (sbi.get("hulls") or HULLS))
        unknown = unknown_hulls(hulls)
        if unknown:
            raise TrainConfigError(f"data.sbi.hulls: unknown shapes {unknown}; expected some of {list(ALL_HULLS)}")
        mode = normalize_sbi_mode(sbi.get("mode", "off"))
        return cls(mode=mode, prob=float(sbi.get("prob", 0.5)), val=val, hulls=hulls)

    @property
    def validate_on_blends(self) -> bool:
        """Whether val fakes are self-blends of the val reals: `val: sbi`, or auto with SBI-only training."""
        return self.val == "sbi" or (self.val == "auto" and self.mode in ("only", "pairs"))


@dataclass(frozen=True)
class LoaderSettings:
    """DataLoader options shared by the train and val loaders."""

    batch_size: int = 32
    eval_batch_size: int | None = None  # None: batch_size
    num_workers: int = 4
    pin_memory: bool = False
    persistent_workers: bool = True
    prefetch_factor: int = 2

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> LoaderSettings:
        """The loader keys of `data`."""
        return cls(
            batch_size=int(data.get("batch_size", cls.batch_size)),
            eval_batch_size=_opt_int(data.get("eval_batch_size")) or None,
            num_workers=int(data.get("num_workers", cls.num_workers)),
            pin_memory=bool(data.get("pin_memory", False)),
            persistent_workers=bool(data.get("persistent_workers", True)),
            prefetch_factor=int(data.get("prefetch_factor", cls.prefetch_factor)),
        )

    @property
    def val_batch_size(self) -> int:
        """Batch size of the validation loader."""
        return self.eval_batch_size or self.batch_size


@dataclass(frozen=True)
class DataSettings:
    """Which manifest rows train and validate, and how the train rows are sampled each epoch."""

    manifest: str | tuple[str, ...]
    holdout_source: str | None = None
    train_groups: float | None = None
    cv_folds: int | None = None  # cross-validation over people: pool train+val groups into this many folds
    cv_fold: int = 0  # ... and validate on this one
    refit: bool = False  # train on the train+val groups together, validate on nothing (after choosing by cv)
    train_split: str = "train"
    val_split: str = "val"
    balance: str = "class"
    frames_per_video_epoch: int | None = None  # None: every frame each epoch
    paired: bool = False  # an original frame and its swap drawn together (data.sampling.EpochSampler)
    pos_weight: str | float | None = None
    sbi: SbiSettings = field(default_factory=SbiSettings)
    face_crop: dict[str, Any] = field(default_factory=dict)  # recorded when the manifest has no extract.json

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> DataSettings:
        """`data.*`; refuses a missing manifest."""
        manifest = data.get("manifest")
        if manifest in (None, "", "???"):
            raise TrainConfigError("set data.manifest=PATH/manifest.csv (written by deepdetect-extract)")
        pos_weight = data.get("pos_weight")
        face_crop = data.get("face_crop")
        folds, fold = _opt_int(data.get("cv_folds")), int(data.get("cv_fold") or 0)
        if folds is not None and (folds < 2 or not 0 <= fold < folds):
            raise TrainConfigError(f"data.cv_folds must be >= 2 and data.cv_fold in [0, cv_folds), got {folds}, {fold}")
        refit = bool(data.get("refit", False))
        if refit and folds is not None:
            raise TrainConfigError("data.refit trains on every train+val group; it cannot be a cross-validation fold")
        return cls(
            manifest=str(manifest) if isinstance(manifest, str | Path) else tuple(str(m) for m in manifest),
            holdout_source=str(data["holdout_source"]) if data.get("holdout_source") else None,
            train_groups=_opt_float(data.get("train_groups")),
            cv_folds=folds,
            cv_fold=fold,
            refit=refit,
            train_split=str(data.get("train_split", cls.train_split)),
            val_split=str(data.get("val_split", cls.val_split)),
            balance=str(data.get("balance", cls.balance)),
            frames_per_video_epoch=_opt_int(data.get("frames_per_video_epoch")),
            paired=bool(data.get("paired", False)),
            pos_weight=None if pos_weight is None else ("auto" if str(pos_weight) == "auto" else float(pos_weight)),
            sbi=SbiSettings.from_config(data.get("sbi")),
            face_crop=_plain(face_crop) if face_crop is not None else {},
        )

    @property
    def manifests(self) -> str | list[str]:
        """The manifest argument `read_manifests` takes (one path, or a list combined)."""
        return self.manifest if isinstance(self.manifest, str) else list(self.manifest)


@dataclass(frozen=True)
class TrainerSettings:
    """How the loop runs: device, precision, length, accumulation, EMA, selection and stopping, resume."""

    accelerator: str = "cpu"
    strategy: str = "single"
    precision: str = "32"
    max_epochs: int = 10
    max_steps_per_epoch: int | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    channels_last: bool = False
    compile: bool = False
    ema: bool = False
    ema_decay: float = 0.999
    ema_warmup: bool = True
    monitor: str = "val/video_auc"
    mode: str = "max"
    keep: str = "best"  # best: the monitor's best epoch | last: the last epoch (no early stopping)
    patience: int | None = None
    resume: str | None = None
    stop_after_epoch: int | None = None

    @classmethod
    def from_config(cls, trainer: Mapping[str, Any]) -> TrainerSettings:
        """`trainer.*`; refuses an unknown precision."""
        precision = str(trainer.get("precision", cls.precision))
        if precision not in PRECISIONS:
            raise TrainConfigError(f"unknown trainer.precision {precision!r}; expected one of {PRECISIONS}")
        ema = trainer.get("ema") or {}
        resume = trainer.get("resume")
        return cls(
            accelerator=str(trainer.get("accelerator", cls.accelerator)),
            strategy=str(trainer.get("strategy", cls.strategy)),
            precision=precision,
            max_epochs=int(trainer.get("max_epochs", cls.max_epochs)),
            max_steps_per_epoch=_opt_int(trainer.get("max_steps_per_epoch")) or None,
            accumulate_grad_batches=max(1, int(trainer.get("accumulate_grad_batches", 1))),
            gradient_clip_val=_opt_float(trainer.get("gradient_clip_val")) or None,
            channels_last=bool(trainer.get("channels_last", False)),
            compile=bool(trainer.get("compile", False)),
            ema=bool(ema.get("enabled", False)),
            ema_decay=float(ema.get("decay", cls.ema_decay)),
            ema_warmup=bool(ema.get("warmup", True)),
            monitor=_monitor(trainer.get("monitor", cls.monitor)),
            mode=_mode(trainer.get("mode", cls.mode)),
            keep=_keep(trainer.get("keep", cls.keep)),
            patience=_opt_int(trainer.get("patience")),
            resume=None if resume in (None, "", False) else str(resume),
            stop_after_epoch=_opt_int(trainer.get("stop_after_epoch")),
        )


# What `trainer.monitor` may name: the metrics every epoch logs (training/loop.py::epoch_metrics).
MONITORS = ("val/video_auc", "val/frame_auc", "val/loss", "val/acc", "train/loss")


def _monitor(value: Any) -> str:
    """A metric the loop logs, checked before any epoch runs (a typo used to fail only after the first epoch)."""
    if str(value) not in MONITORS:
        raise TrainConfigError(f"trainer.monitor={value!r} is not a logged metric; expected one of {MONITORS}")
    return str(value)


def _keep(value: Any) -> str:
    if str(value) not in ("best", "last"):
        raise TrainConfigError(f"trainer.keep={value!r}; expected best or last")
    return str(value)


def _mode(value: Any) -> str:
    if str(value) not in ("max", "min"):
        raise TrainConfigError(f"trainer.mode={value!r}; expected max or min")
    return str(value)


@dataclass(frozen=True)
class CalibrationSettings:
    """How the finishing step picks the operating threshold: on validation, or (a refit, which has none) on the
    pooled out-of-fold validation scores of the cross-validation runs in `from_runs`."""

    threshold_rule: str = "fpr"
    target_fpr: float = 0.05
    from_runs: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, calib: Mapping[str, Any] | None) -> CalibrationSettings:
        """`calibration.*` (absent: the defaults)."""
        calib = calib or {}
        runs = calib.get("from_runs") or ()
        return cls(
            threshold_rule=str(calib.get("threshold_rule", cls.threshold_rule)),
            target_fpr=float(calib.get("target_fpr", cls.target_fpr)),
            from_runs=(str(runs),) if isinstance(runs, str | Path) else tuple(str(r) for r in runs),
        )


@dataclass(frozen=True)
class TrainSettings:
    """Everything `train()` needs, typed; `config` is the resolved run config as recorded (config.yaml, card)."""

    output_dir: Path
    seed: int
    data: DataSettings
    loader: LoaderSettings
    trainer: TrainerSettings
    calibration: CalibrationSettings
    model: Any  # config node: detectors are built by models.build_from_config
    tuning: Tuning  # model.tuning: which weights train (models.tuning)
    optimizer: Any  # config node: `_partial_` target, finished with the model's parameters
    scheduler: Any  # config node: `_partial_` target, finished with the optimizer and total steps
    augment: Any = None
    logger: Any = None
    overwrite: bool = False
    holdout_eval: bool = False
    holdout_eval_overrides: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> TrainSettings:
        """Read and check the whole training config once."""
        data, calibration = DataSettings.from_config(cfg.data), CalibrationSettings.from_config(cfg.get("calibration"))
        if calibration.from_runs and not data.refit:
            raise TrainConfigError(
                "calibration.from_runs calibrates a refit (data.refit=true), which has no validation split; "
                "a run with validation calibrates on it"
            )
        try:
            tuning = Tuning.from_config(cfg.model.get("tuning"))
        except TuningError as exc:
            raise TrainConfigError(str(exc)) from None
        return cls(
            output_dir=Path(str(cfg.output_dir)),
            seed=int(cfg.get("seed", 0)),
            data=data,
            loader=LoaderSettings.from_config(cfg.data),
            trainer=TrainerSettings.from_config(cfg.trainer),
            calibration=calibration,
            model=cfg.model,
            tuning=tuning,
            optimizer=cfg.optimizer,
            scheduler=cfg.scheduler,
            augment=cfg.get("augment"),
            logger=cfg.get("logger"),
            overwrite=bool(cfg.get("overwrite", False)),
            holdout_eval=bool(cfg.get("holdout_eval", False)),
            holdout_eval_overrides=tuple(str(o) for o in (cfg.get("holdout_eval_overrides") or [])),
            config=plain_config(cfg),
        )


def _plain(node: Any) -> dict[str, Any]:
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers, without Hydra's own node."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(raw, dict)
    raw.pop("hydra", None)
    container = OmegaConf.to_container(OmegaConf.create(raw), resolve=True)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]
