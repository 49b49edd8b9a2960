"""Typed predict settings (built once at the edge, by the CLI) and the operating point they resolve to."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from deepdetect.contract import Calibration, ModelCard
from deepdetect.contract.aggregate import AGGREGATIONS
from deepdetect.contract.trust import lowest_supported_fpr, trust_problems, val_reals, val_unit
from deepdetect.media import MAX_FRAMES_PER_VIDEO

PREDICT_AGGREGATIONS = tuple(a for a in AGGREGATIONS if a != "confidence")  # mean | max | topk


class SettingsError(ValueError):
    """Raised for settings that cannot be used together or with this model (a usage error)."""


# Full face detection on every 4th sampled video frame, the others tracked: measured in docs/performance.md.
DETECT_EVERY_DEFAULT = 4
ENGINES = ("local", "ray")
# MTCNN's backend: `auto` is ONNX Runtime for an ONNX model on the CPU (no PyTorch import), else PyTorch.
DETECTORS = ("auto", "ort", "torch")


@dataclass(frozen=True)
class PredictSettings:
    """How to score a batch: sampling, faces, operating point, aggregation, explanations, output handling.

    `frames` and `min_face_score` default (None) to the model contract's; `threshold` and `fpr` choose the
    operating point (at most one of them; neither: the model's stored threshold). `workers` threads decode and
    detect the next files while the model scores (0: one file at a time in the calling thread); `detect_threads`
    is torch's thread count during the run on CPU (None: leave it as it is); MTCNN searches faces down to
    `detect_min_face_fraction` x the contract's `min_face` (never under its 20 px floor); in a video the full
    detector runs on every `detect_every`-th sampled frame and the frames between follow the faces
    (`faces.track.detect_tracked`; 1: the full detector on every frame). `detector` picks MTCNN's backend
    (`stages.faces.detector_backend`).
    """

    device: str = "cpu"
    frames: int | None = None
    batch_size: int = 32
    min_face_score: float | None = None
    threshold: float | None = None
    fpr: float | None = None
    aggregate: str = "mean"
    topk: int = 3
    explain_dir: str | None = None
    explain_top: int = 20
    index: str | None = None
    overwrite: bool = False
    resume: bool = False
    progress: bool = True
    report: str | None = None  # the triage HTML page (deepdetect.triage) written from the records at the end
    workers: int = 2
    detect_threads: int | None = 1
    detect_min_face_fraction: float = 0.5
    detect_every: int = DETECT_EVERY_DEFAULT
    engine: str = "local"  # where the stages run: local threads, or Ray Data (`inference.engine_ray`)
    ray_address: str = "local"  # --engine ray: `local` starts Ray here; `auto` or host:port joins a cluster
    detector: str = "auto"  # MTCNN on `ort` (ONNX Runtime) or `torch`; `auto`: ort for an ONNX model on the CPU

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise SettingsError("workers must be >= 0")
        if self.detect_threads is not None and self.detect_threads < 1:
            raise SettingsError("detect threads must be positive")
        if not 0.0 < self.detect_min_face_fraction <= 1.0:
            raise SettingsError("detect min face fraction must be in (0, 1]")
        if self.detect_every < 1:
            raise SettingsError("detect every must be >= 1 (1: the full detector on every sampled frame)")
        if self.frames is not None and not 1 <= self.frames <= MAX_FRAMES_PER_VIDEO:
            raise SettingsError(f"frames must be in [1, {MAX_FRAMES_PER_VIDEO}]")
        if self.batch_size < 1:
            raise SettingsError("batch size must be positive")
        if self.threshold is not None and self.fpr is not None:
            raise SettingsError("give --threshold or --fpr, not both")
        for name in ("threshold", "fpr", "min_face_score"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise SettingsError(f"{name} must be in [0, 1], got {value}")
        if self.aggregate not in PREDICT_AGGREGATIONS:
            raise SettingsError(f"unknown aggregation {self.aggregate!r}; expected one of {PREDICT_AGGREGATIONS}")
        if self.topk < 1 or self.explain_top < 0:
            raise SettingsError("topk must be >= 1 and explain_top >= 0")
        if self.overwrite and self.resume:
            raise SettingsError("give --overwrite or --resume, not both")
        if self.engine not in ENGINES:
            raise SettingsError(f"unknown engine {self.engine!r}; expected one of {ENGINES}")
        if self.detector not in DETECTORS:
            raise SettingsError(f"unknown detector {self.detector!r}; expected one of {DETECTORS}")
        if self.engine == "ray" and self.explain_dir:
            raise SettingsError("--explain is not available with --engine ray (the flagged crops stay on the workers)")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for the run header)."""
        return asdict(self)

    def with_paths_absolute(self) -> PredictSettings:
        """A copy whose path settings are absolute (the run header records where things went)."""
        from dataclasses import replace

        return replace(
            self,
            explain_dir=os.path.abspath(self.explain_dir) if self.explain_dir else None,
            index=os.path.abspath(self.index) if self.index else None,
        )


@dataclass(frozen=True)
class OperatingPointChoice:
    """The threshold a run uses, where it came from (model | fpr | threshold) and its validation rates."""

    threshold: float
    source: str
    target_fpr: float | None
    val_fpr: float | None
    val_tpr: float | None

    def to_dict(self) -> dict[str, Any]:
        """The record's `operating_point` entry."""
        return asdict(self)


def choose_operating_point(card: ModelCard, settings: PredictSettings) -> OperatingPointChoice:
    """`--threshold` as given (val rates only when it is a stored point), `--fpr` from the stored validation ROC
    (largest val TPR with val FPR <= target), else the model's stored threshold; raises SettingsError."""
    cal = card.calibration
    if settings.fpr is not None:
        if not cal.roc:
            raise SettingsError(
                f"--fpr needs the model's validation ROC, and {card.name} {card.version} has none stored "
                "(trained before operating points were recorded); use --threshold"
            )
        n_real = val_reals(cal.to_dict(), card.training_data)
        supported = lowest_supported_fpr(n_real)
        point = cal.point_at_fpr(settings.fpr)
        if point is None or (supported is not None and settings.fpr < supported):
            raise SettingsError(unsupported_fpr_message(settings.fpr, cal, n_real, supported))
        return OperatingPointChoice(point.threshold, "fpr", settings.fpr, point.fpr, point.tpr)
    if settings.threshold is not None:
        exact = [p for p in cal.roc if p.threshold == settings.threshold]
        if settings.threshold == cal.threshold and cal.val_tpr is not None:
            return OperatingPointChoice(settings.threshold, "threshold", None, cal.val_fpr, cal.val_tpr)
        if exact:
            return OperatingPointChoice(settings.threshold, "threshold", None, exact[0].fpr, exact[0].tpr)
        return OperatingPointChoice(settings.threshold, "threshold", None, None, None)
    target = cal.target_fpr if cal.threshold_rule == "fpr" else None  # an EER threshold has no FPR target
    return OperatingPointChoice(cal.threshold, "model", target, cal.val_fpr, cal.val_tpr)


ROUND_FPRS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def unsupported_fpr_message(fpr: float, cal: Calibration, n_real: int | None, supported: float | None) -> str:
    """Why `--fpr` cannot be honoured: how many validation reals the model had, which operating points it can
    honour (their val FPR / TPR) and the nearest one to ask for instead."""
    lowest_stored = min(p.fpr for p in cal.roc)
    floor = max(supported or 0.0, lowest_stored)
    candidates = [(f, cal.point_at_fpr(f)) for f in ROUND_FPRS if f >= floor]
    honoured = [(f, p) for f, p in candidates if p is not None][:4]
    if supported is not None and fpr < supported:
        why = (
            f"its validation set had {n_real} real crops, and n reals vouch for an FPR of about 3/n = "
            f"{supported:.2g} and above, not lower"
        )
    else:
        why = f"no stored operating point has a val FPR that low (lowest: {lowest_stored:g})"
    points = ", ".join(f"--fpr {f:g} (val TPR {p.tpr:.2f})" for f, p in honoured) or "none of the usual points"
    nearest = f"; nearest: --fpr {honoured[0][0]:g}" if honoured else ""
    return f"--fpr {fpr:g} is lower than this model's validation can support: {why}; it can honour {points}{nearest}"


def model_trust_warning(card: ModelCard, choice: OperatingPointChoice) -> str | None:
    """One line saying why this model's labels should not be taken at face value at `choice`, or None."""
    cal = card.calibration
    problems = trust_problems(
        threshold=choice.threshold,
        val_fpr=choice.val_fpr,
        target_fpr=choice.target_fpr,
        n_val_real=val_reals(cal.to_dict(), card.training_data),
        calibration_failed=cal.failed,
        unit=val_unit(cal.to_dict()),
    )
    return f"model {card.name} {card.version}: " + "; ".join(problems) if problems else None
