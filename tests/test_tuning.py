"""Fine-tuning modes: each freezes exactly what it says, full is untouched, a low-rank residual merges into plain
timm weights, every mode trains end to end and exports, and a bad mode is a one-line config error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from deepdetect.models.checkpoint import load_detector
from deepdetect.models.detector import Detector, create_detector
from deepdetect.models.tuning import (
    MODES,
    Tuning,
    TuningError,
    apply_tuning,
    last_blocks,
    merge_lowrank,
    plain_state_dict,
    svd_penalty,
)
from deepdetect.training.settings import TrainConfigError, TrainSettings
from deepdetect.training.train import train
from tiny_data import make_tiny_manifest


def _tuned(name: str, mode: str, **settings: object) -> Detector:
    torch.manual_seed(0)
    model = create_detector(name, img_size=64 if "vit" in name else None)
    apply_tuning(model, Tuning.from_config({"mode": mode, **settings}))
    return model


def _trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _step(model: nn.Module, steps: int = 1) -> None:
    """SGD steps on a random batch, with only the trainable parameters in the optimizer (as training does)."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    for _ in range(steps):
        x, y = torch.randn(4, 3, 64, 64), torch.tensor([0.0, 1.0, 0.0, 1.0])
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()
        opt.zero_grad()


def test_full_is_untouched() -> None:
    torch.manual_seed(0)
    model = create_detector("test_efficientnet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    report = apply_tuning(model, Tuning())
    assert torch.equal(rng, torch.get_rng_state())  # draws nothing: a full run's results are as before
    assert all(p.requires_grad for p in model.parameters()) and model.fixed_stats == []
    assert list(model.state_dict()) == list(before)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert report.trainable_params == report.total_params == sum(p.numel() for p in model.parameters())
    model.train()
    assert all(m.training for m in model.modules())


def test_norm_trains_norm_layers_and_head_only() -> None:
    model = _tuned("test_efficientnet", "norm")
    bn = {f"{n}.{p}" for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) for p in ("weight", "bias")}
    assert bn and _trainable(model) == bn | {"backbone.classifier.weight", "backbone.classifier.bias"}
    vit = _tuned("test_vit", "norm")
    assert _trainable(vit) == {n for n in dict(vit.named_parameters()) if "norm" in n.split(".")[-2] or ".head." in n}


def test_last_n_trains_the_last_blocks_and_head() -> None:
    model = _tuned("test_resnet", "last_n", last_n=2)  # blocks: layer1.0 .. layer4.0
    expected = {n for n in dict(model.named_parameters()) if n.startswith(("backbone.layer3.", "backbone.layer4."))}
    assert _trainable(model) == expected | {"backbone.fc.weight", "backbone.fc.bias"}
    vit = _tuned("test_vit", "last_n", last_n=1)
    last = {n for n in dict(vit.named_parameters()) if n.startswith("backbone.blocks.")}
    last = {n for n in last if n.split(".")[2] == str(max(int(m.split(".")[2]) for m in last))}
    tail = {n for n in dict(vit.named_parameters()) if n.startswith(("backbone.norm", "backbone.head"))}
    assert _trainable(vit) == last | tail
    effnet = create_detector("test_efficientnet")
    names = last_blocks(effnet.backbone, 1)
    assert "classifier.weight" in names and "conv_head.weight" in names and "conv_stem.weight" not in names
    with pytest.raises(TuningError, match="has 4 blocks"):
        apply_tuning(create_detector("test_resnet"), Tuning(mode="last_n", last_n=5))


def test_svd_trains_the_smallest_singular_components_and_head() -> None:
    torch.manual_seed(0)
    model = create_detector("test_efficientnet")
    pw = model.backbone.conv_head
    singular = torch.linalg.svdvals(pw.weight.detach().flatten(1))
    apply_tuning(model, Tuning(mode="svd", rank=3))
    minor = _parametrizations_of(pw)
    torch.testing.assert_close(minor.s.detach(), singular[-3:])  # the 3 smallest
    trainable = _trainable(model)
    assert trainable - {"backbone.classifier.weight", "backbone.classifier.bias"} == {
        n for n in dict(model.named_parameters()) if n.endswith((".u", ".s", ".vh"))
    }


def test_effort_penalties_are_zero_at_the_start_and_pull_the_trained_vectors_back() -> None:
    model = _tuned("test_efficientnet", "svd", rank=3, constraints=1.0)
    start = svd_penalty(model)
    assert start is not None and float(start.detach()) < 1e-3  # orthonormal vectors, the pretrained norm
    assert svd_penalty(_tuned("test_efficientnet", "lowrank")) is None
    head = model.backbone.conv_head
    minor = _parametrizations_of(head)
    with torch.no_grad():
        minor.u.add_(0.3 * minor.u_main[:, :3])  # no longer orthogonal to the frozen vectors, nor unit length
    drifted = svd_penalty(model)
    assert drifted is not None and float(drifted.detach()) > 100 * float(start.detach())
    before = float(minor.penalty(head.weight).detach())
    opt = torch.optim.SGD([minor.u, minor.s, minor.vh], lr=0.02)
    for _ in range(60):  # the penalty's gradient alone leads the vectors back
        opt.zero_grad()
        minor.penalty(head.weight).backward()
        opt.step()
    assert float(minor.penalty(head.weight).detach()) < 0.2 * before
    assert float((minor.u_main.T @ minor.u.detach()).abs().max()) < 0.05  # back near orthogonal to the frozen vectors


def test_constraints_join_the_training_loss(cfg_factory, tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "tiny", n_videos=8)
    base = ["model=test", f"data.manifest={manifest}", "trainer.max_epochs=1", "model.tuning.mode=svd"]
    finals = {}
    for weight in (0.0, 1.0):
        out = tmp_path / f"c{weight}"
        train(cfg_factory("train", [*base, f"model.tuning.constraints={weight}", f"output_dir={out}", "seed=0"]))
        meta = json.loads((out / "model.json").read_text())
        assert meta["tuning"]["constraints"] == weight
        finals[weight] = load_detector(out)[0].state_dict()
    changed = [k for k, v in finals[0.0].items() if v.is_floating_point() and not torch.equal(v, finals[1.0][k])]
    assert changed  # the same seed and data: only the penalty differs


def _parametrizations_of(module: nn.Module) -> nn.Module:
    return module.parametrizations["weight"][0]  # type: ignore[index]


def test_lowrank_trains_only_the_residuals_and_head() -> None:
    model = _tuned("test_efficientnet", "lowrank", rank=4)
    pointwise = [
        n for n, m in model.backbone.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1
    ]  # fmt: skip
    adapted = [n for n, m in model.backbone.named_modules() if parametrize.is_parametrized(m)]
    assert adapted and sorted(adapted) == sorted(pointwise)
    residuals = {n for n in dict(model.named_parameters()) if n.endswith((".down", ".up"))}
    assert _trainable(model) == residuals | {"backbone.classifier.weight", "backbone.classifier.bias"}
    assert all(model.get_parameter(n).shape[0 if n.endswith(".down") else 1] <= 4 for n in residuals)


@pytest.mark.parametrize("mode", ["norm", "last_n", "lowrank", "svd"])
def test_a_step_changes_what_trains_and_nothing_else(mode: str) -> None:
    model = _tuned("test_efficientnet", mode, last_n=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _step(model)
    after = model.state_dict()
    changed = {k for k, v in before.items() if not torch.equal(v, after[k])}
    assert "backbone.conv_stem.weight" not in changed  # frozen in every mode
    assert "backbone.classifier.weight" in changed
    trainable = _trainable(model)
    assert {k for k in changed if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))} <= trainable
    frozen_bn = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and m in model.fixed_stats]
    assert frozen_bn and not any(f"{n}.running_mean" in changed for n in frozen_bn)
    if mode == "norm":
        assert "backbone.bn1.weight" in changed
    if mode == "svd":
        minor = [k for k in trainable if k.endswith(".u")]  # (a singular value's step can be below its ulp)
        assert minor and all(k in changed for k in minor) and not any(k.endswith(".original") for k in changed)
    if mode == "lowrank":
        ups = [k for k in trainable if k.endswith(".up")]
        assert ups and all(f"{k}" in changed for k in ups)
        assert not any(k.endswith(".original") for k in changed)


def test_bn_stats_update_where_the_mode_says() -> None:
    last = _tuned("test_resnet", "last_n", last_n=1)
    last.train()
    assert last.backbone.layer4[0].bn1.training and not last.backbone.layer1[0].bn1.training
    assert not _tuned("test_resnet", "norm").train().backbone.layer4[0].bn1.training
    assert _tuned("test_resnet", "norm", norm_stats="update").train().backbone.layer4[0].bn1.training


@pytest.mark.parametrize(("name", "mode"), [("test_efficientnet", "lowrank"), ("test_vit", "lowrank"),
                                           ("test_efficientnet", "svd")])  # fmt: skip
def test_lowrank_merge_equals_the_unmerged_forward(name: str, mode: str) -> None:
    model = _tuned(name, mode)
    x = torch.randn(3, 3, 64, 64)
    if mode == "svd":  # starts exactly at the pretrained weights
        fresh = create_detector(name).eval()
        fresh.load_state_dict(plain_state_dict(model))
        torch.testing.assert_close(fresh(x), model.eval()(x), atol=0, rtol=0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith((".up", ".u")):
                p.add_(torch.randn_like(p), alpha=0.05)
    model.eval()
    with torch.no_grad():
        y = model(x)
        plain = create_detector(name, img_size=64 if "vit" in name else None).eval()
        plain.load_state_dict(plain_state_dict(model))  # strict: exactly the plain timm names
        torch.testing.assert_close(plain(x), y, atol=1e-5, rtol=0)
        merge_lowrank(model)
        assert not any(parametrize.is_parametrized(m) for m in model.modules())
        torch.testing.assert_close(model(x), y, atol=1e-5, rtol=0)
    assert (plain(x) - create_detector(name, img_size=64 if "vit" in name else None).eval()(x)).abs().max() > 0


def test_bad_tuning_settings_are_one_line_config_errors(cfg_factory) -> None:
    with pytest.raises(TrainConfigError, match=r"^model.tuning.mode='lora' is not a tuning mode") as err:
        TrainSettings.from_config(cfg_factory("train", ["model=test", "data.manifest=x.csv", "model.tuning.mode=lora"]))
    assert "\n" not in str(err.value)
    with pytest.raises(TrainConfigError, match=r"model\.tuning\.rank must be > 0"):
        TrainSettings.from_config(cfg_factory("train", ["model=test", "data.manifest=x.csv", "model.tuning.rank=0"]))
    with pytest.raises(TrainConfigError, match=r"^model\.tuning\.constraints applies to mode=svd only"):
        TrainSettings.from_config(
            cfg_factory("train", ["model=test", "data.manifest=x.csv", "model.tuning.constraints=1"])
        )
    with pytest.raises(TuningError, match=r"constraints must be >= 0"):
        Tuning.from_config({"mode": "svd", "constraints": -1})
    assert Tuning.from_config(None) == Tuning() and set(MODES) == {"full", "norm", "last_n", "lowrank", "svd"}


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_manifest(tmp_path_factory.mktemp("tiny"), n_videos=8)


@pytest.mark.parametrize("mode", ["norm", "last_n", "lowrank", "svd"])
def test_each_mode_trains_and_saves_a_plain_model(mode: str, cfg_factory, tiny_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / mode
    overrides = ["model=test", f"data.manifest={tiny_manifest}", "trainer.max_epochs=1", f"model.tuning.mode={mode}"]
    if mode == "lowrank":  # the EMA copy carries the residuals too, and is what is saved
        overrides.append("trainer.ema.enabled=true")
    train(cfg_factory("train", [*overrides, f"output_dir={out}"]))
    meta = json.loads((out / "model.json").read_text())
    assert meta["tuning"]["mode"] == mode and 0 < meta["tuning"]["trainable_params"] < meta["tuning"]["total_params"]
    assert "tuning" not in meta["model"]  # the spec rebuilds a plain timm model
    model, _ = load_detector(out)  # strict: the saved names are a plain detector's
    fresh = create_detector("test_efficientnet", img_size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.equal(model(x), fresh(x))
        best, _ = load_detector(out / "checkpoints" / "best.safetensors")
        torch.testing.assert_close(best(x), model(x), atol=0, rtol=0)  # one epoch: the kept epoch, merged alike
    if mode == "lowrank":
        from deepdetect.export.pipeline import export
        from test_export import export_cfg

        export(export_cfg(out, tmp_path / "onnx"))
        saved = json.loads((tmp_path / "onnx" / "export.json").read_text())
        assert saved["parity"]["passed"]
