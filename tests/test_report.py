"""Grad-CAM / saliency maps and the self-contained HTML pieces."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
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


def _metrics_and_scores() -> tuple[dict, pd.DataFrame]:
    """A small evaluation result as evaluate() writes it: one run, one test set, an only-real source."""
    rng = np.random.default_rng(0)
    y = np.array([0] * 20 + [1] * 20)
    prob = np.clip(0.35 * y + rng.uniform(0, 0.65, size=40), 0, 1)
    frames = pd.DataFrame({"run": "run1", "manifest": "crops", "level": "frame", "y": y, "prob": prob})
    videos = frames.iloc[::2].assign(level="video")
    level = {k: 0.8 for k in ("auc", "ap", "balanced_accuracy")} | {"n": 40, "n_real": 20, "n_fake": 20}
    sources = [
        {"source": "youtube", "n": 30, "n_real": 10, "n_fake": 20, "auc": 0.81, "fpr": 0.1, "detection_rate": 0.7},
        {"source": "webcam", "n": 10, "n_real": 10, "n_fake": 0, "auc": None, "fpr": 0.3, "detection_rate": None},
    ]
    summary = {"run": "run1", "manifest": "crops"} | {f"{lv}_{k}": 0.5 for lv in ("frame", "video") for k in "abcdefgh"}
    result = {
        "run": "run1",
        "manifest_name": "crops",
        "calibration": {"threshold": 0.5, "reference_fpr": 0.05, "reference_fpr_from": "validation"},
        "model_card": {
            "name": "efficientnet_b0",
            "version": "1.2.0",
            "training_data": {"manifest": "crops/ffpp/manifest.csv", "sbi": "off", "sources": {"youtube": {"real": 7}}},
            "init_weights": {"source": "timm pretrained"},
        },
        "source_warnings": [],
        "breakdown": {"source": {"frame": sources}, "method": {"frame": [sources[1] | {"method": ""}]}},
        "frame": level,
        "video": level,
    }
    metrics = {
        "created": "now",
        "schema_version": 1,
        "aggregation": {"method": "mean"},
        "bootstrap": {"n": 0},
        "results": [result],
        "summary": [summary],
        "config": {"paths": {"root_dir": "."}},
    }
    return metrics, pd.concat([frames, videos], ignore_index=True)


def test_report_reads_at_laptop_width_and_says_what_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    import deepdetect.evaluation.report as report

    legends: list[list[str]] = []
    real_uri = report.fig_to_data_uri

    def capture(fig):  # the ROC/PR legends, read before the figure is closed
        legend = fig.axes[0].get_legend()
        legends.append([t.get_text() for t in legend.get_texts()] if legend else [])
        return real_uri(fig)

    monkeypatch.setattr(report, "fig_to_data_uri", capture)
    metrics, scores = _metrics_and_scores()
    crop = np.zeros((8, 8, 3), np.uint8)
    gradcam = [{"kind": "false positive", "crop_path": "a.png", "source": "webcam", "prob": 0.9,
                "image": report.array_to_data_uri(np.hstack([crop, crop]))}]  # fmt: skip
    text = report.render_report(metrics, scores, gradcam)
    # the 18-metric summary is transposed: one column per run x test set, one line per metric
    summary = text.split("<h2>Summary", 1)[1].split("</table>", 1)[0]
    assert summary.count("<th>") == 2 and summary.count("<tr>") == 1 + 16
    # the model card: name, version, training data
    model = text.split("<h2>Model</h2>", 1)[1].split("</table>", 1)[0]
    assert "efficientnet_b0" in model and "1.2.0" in model and "crops/ffpp/manifest.csv" in model
    assert "timm pretrained" in model and "7 real" in model
    # per-source: the level is said and an undefined AUC says why
    assert "Per-source results at the stored threshold (frame level" in text
    assert "– (only real)" in text and "(frame level, counted in crops)" in text
    # ROC legends carry the AUC and the threshold's operating point; Grad-CAM pairs are labelled
    roc_legends = [lg for lg in legends if any("AUC" in t for t in lg)]
    assert len(roc_legends) == 2  # frame and video
    fpr, tpr = report.operating_point(scores["y"].to_numpy()[:40], scores["prob"].to_numpy()[:40], 0.5)
    assert f"threshold 0.500: FPR {fpr:.3f}, TPR {tpr:.3f}" in roc_legends[0]
    assert "AUC 0.800" in roc_legends[0][0]
    assert "<span>face crop</span><span>Grad-CAM heat map</span>" in text and "left: the face crop" in text


def test_one_class_reason_and_operating_point() -> None:
    from deepdetect.evaluation.report import one_class_reason, operating_point

    assert one_class_reason({"n_real": 3, "n_fake": 0}) == "only real"
    assert one_class_reason({"n_real": 0, "n_fake": 2}) == "only fake"
    assert one_class_reason({"n_real": 1, "n_fake": 1}) is None and one_class_reason({}) is None
    y, prob = np.array([0, 0, 0, 0, 1, 1]), np.array([0.1, 0.6, 0.2, 0.3, 0.7, 0.4])
    assert operating_point(y, prob, 0.5) == (0.25, 0.5)


def test_config_dump_resolves_interpolations(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import compose_config
    from deepdetect.utils.config import resolved_config

    monkeypatch.setenv("PROJECT_ROOT", str(tmp_path))
    cfg = compose_config("evaluate", [f"output_dir={tmp_path}/ev"])
    plain = resolved_config(cfg)
    assert "hydra" not in plain and "${" not in json.dumps(plain)
    assert plain["paths"]["root_dir"] == str(tmp_path) and plain["paths"]["data_dir"].startswith(str(tmp_path))
