"""Grad-CAM / saliency maps and the self-contained HTML pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepdetect.evaluation.perturb import get_perturbation
from deepdetect.evaluation.report import array_to_data_uri, table
from deepdetect.models.detector import create_detector
from deepdetect.models.gradcam import find_target_layer, gradcam, overlay


@pytest.mark.parametrize(("name", "has_conv"), [("test_efficientnet", True), ("test_vit", False)])
def test_gradcam_maps_cnn_and_vit_fallback(name: str, has_conv: bool) -> None:
    torch.manual_seed(0)
    model = create_detector(name, img_size=64).eval()
    assert (find_target_layer(model) is not None) == has_conv
    heat = gradcam(model, torch.randn(2, 3, 64, 64))
    assert heat.shape == (2, 64, 64) and heat.min() >= 0 and heat.max() <= 1
    assert not model.training
    crop = np.full((80, 80, 3), 100, np.uint8)
    assert overlay(crop, heat[0]).shape == crop.shape


def test_perturbations_keep_shape_and_reject_unknown() -> None:
    crop = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    for name in ("jpeg90", "jpeg30", "blur", "blur3", "downscale", "downscale25"):
        assert get_perturbation(name)(crop).shape == crop.shape
    with pytest.raises(ValueError, match="unknown perturbation"):
        get_perturbation("sharpen")


def test_html_pieces_escape_and_embed() -> None:
    assert array_to_data_uri(np.zeros((4, 4, 3), np.uint8)).startswith("data:image/png;base64,")
    html = table([{"source": "<script>", "fpr": float("nan"), "ci": [0.1, 0.2]}])
    assert "<script>" not in html and "&lt;script&gt;" in html and "[0.1000, 0.2000]" in html
