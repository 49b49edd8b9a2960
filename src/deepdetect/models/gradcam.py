"""Grad-CAM on a detector's last convolutional feature map (input-gradient saliency for non-CNN backbones)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def find_target_layer(model: nn.Module) -> nn.Module | None:
    """The last Conv2d module of the model (None when it has none, e.g. a ViT)."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            last = module
    # Patch-embedding convs of ViTs are the only conv there: a 1-step map is useless, so treat ViTs as conv-free.
    if last is not None and last.stride[0] >= 8:
        return None
    return last


def _normalise(cam: np.ndarray) -> np.ndarray:
    """Scale each map to [0, 1]."""
    cam = cam - cam.min(axis=(1, 2), keepdims=True)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return cam / np.where(peak > 0, peak, 1.0)


def saliency(model: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """|d logit / d input| maxed over channels, (B, H, W) in [0, 1]."""
    x = batch.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    assert x.grad is not None
    return _normalise(x.grad.abs().amax(dim=1).cpu().numpy())


def gradcam(model: nn.Module, batch: torch.Tensor, layer: nn.Module | None = None) -> np.ndarray:
    """Heatmaps (B, H, W) in [0, 1] of evidence for "fake" at input resolution."""
    layer = layer if layer is not None else find_target_layer(model)
    was_training = model.training
    model.eval()
    try:
        if layer is None:
            return saliency(model, batch)
        store: dict[str, torch.Tensor] = {}

        def fwd_hook(_m: nn.Module, _i: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            store["act"] = out
            out.register_hook(lambda g: store.__setitem__("grad", g))

        handle = layer.register_forward_hook(fwd_hook)
        try:
            with torch.enable_grad():
                x = batch.detach().clone().requires_grad_(True)
                model.zero_grad(set_to_none=True)
                model(x).sum().backward()
        finally:
            handle.remove()
        act, grad = store["act"].detach(), store["grad"].detach()
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * act).sum(dim=1, keepdim=True))
        cam = nn.functional.interpolate(cam, size=batch.shape[-2:], mode="bilinear", align_corners=False)
        return _normalise(cam[:, 0].cpu().numpy())
    finally:
        model.train(was_training)


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] heatmap (any size) over an HxWx3 uint8 crop with a red-yellow colour map."""
    from PIL import Image

    h, w = crop.shape[:2]
    heat_img = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    hm = np.asarray(heat_img, dtype=np.float32) / 255.0
    colour = np.stack([np.ones_like(hm), hm, np.zeros_like(hm)], axis=-1) * 255.0
    a = alpha * hm[..., None]
    return np.asarray((1 - a) * crop.astype(np.float32) + a * colour).clip(0, 255).astype(np.uint8)
