"""Training: a fast run end to end, the test split never read, exact resume, every model config, CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deepdetect.contract import ModelCard
from deepdetect.models.checkpoint import load_detector, safe_torch_load
from deepdetect.models.detector import build_from_config
from deepdetect.training.train import TrainConfigError, train
from tiny_data import make_tiny_manifest

ROOT = Path(__file__).resolve().parents[1]
MODEL_CONFIGS = sorted(p.stem for p in (ROOT / "configs" / "model").glob("*.yaml"))
TINY_MODELS = ("test", "test_vit")
BIG_MODELS = ("convnext_tiny", "efficientnet_b4", "resnet50", "vit_base_patch16_224", "xception41")  # > 10 s on 2 cores


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Test rows are listed but their files do not exist: training must never try to open them.
    return make_tiny_manifest(tmp_path_factory.mktemp("tiny"), missing_test_files=True)


def test_fast_run_writes_model_and_never_reads_test(
    cfg_factory, tiny_manifest: Path, tmp_path: Path, monkeypatch
) -> None:
    import deepdetect.data.dataset as dataset_mod

    opened: list[str] = []
    real_read = dataset_mod.read_crop
    monkeypatch.setattr(dataset_mod, "read_crop", lambda p: opened.append(p) or real_read(p))
    out = tmp_path / "run"
    cfg = cfg_factory("train", ["model=test", f"data.manifest={tiny_manifest}", f"output_dir={out}"])
    metrics = train(cfg)
    assert opened and not any("vid0" in Path(p).name and _is_test(p, tiny_manifest) for p in opened)
    for name in ("model.safetensors", "model.json", "metrics.json", "config.yaml", "log.csv"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "best.safetensors").is_file() and (out / "checkpoints" / "last.pt").is_file()
    _, meta = load_detector(out)
    assert meta["output"] == {"type": "logit", "positive_class": "fake"}
    assert {"temperature", "threshold", "threshold_rule"} <= set(meta["calibration"])
    roc = ModelCard.from_sidecar(meta).calibration.roc  # the val ROC as operating points (predict --fpr)
    assert roc and all(0 <= p.fpr <= 1 and 0 <= p.tpr <= 1 for p in roc) and len(roc) <= 200
    assert meta["preprocess"]["input_size"] == [64, 64]
    assert "test" not in meta["training_data"]["splits"]
    card = ModelCard.from_sidecar(meta)  # the sidecar is exactly what the model card writes
    assert card.to_sidecar() == {k: v for k, v in meta.items() if k != "format"}
    assert card.config is not None and card.config["data"]["manifest"] == str(tiny_manifest)
    assert "val/video_auc" in metrics and metrics["epochs_run"] == 2
    state = safe_torch_load(out / "checkpoints" / "last.pt")
    assert {"model", "optimizer", "scheduler", "scaler", "ema", "rng", "epoch", "step", "best"} <= set(state)


def _is_test(path: str, manifest: Path) -> bool:
    import pandas as pd

    frame = pd.read_csv(manifest)
    test = {str((manifest.parent / p).resolve()) for p in frame.loc[frame["split"] == "test", "crop_path"]}
    return str(Path(path).resolve()) in test


def test_resume_matches_uninterrupted(cfg_factory, tiny_manifest: Path, tmp_path: Path) -> None:
    common = [
        "model=test",
        f"data.manifest={tiny_manifest}",
        "trainer.max_epochs=2",
        "augment=strong",
        "data.sbi.mode=mix",
    ]
    straight = tmp_path / "straight"
    train(cfg_factory("train", [*common, f"output_dir={straight}"]))
    resumed = tmp_path / "resumed"
    partial = train(cfg_factory("train", [*common, f"output_dir={resumed}", "trainer.stop_after_epoch=1"]))
    assert partial["stopped_at_epoch"] == 1 and not (resumed / "metrics.json").exists()
    train(cfg_factory("train", [*common, f"output_dir={resumed}", "trainer.resume=auto"]))
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((resumed / "metrics.json").read_text())
    assert a == b
    wa, wb = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG_MODELS else n for n in MODEL_CONFIGS]
)
def test_every_model_config(name: str, cfg_factory, tiny_manifest: Path, tmp_path: Path) -> None:
    if name in TINY_MODELS:
        metrics = train(
            cfg_factory("train", [f"model={name}", f"data.manifest={tiny_manifest}", "trainer.max_epochs=1"])
        )
        assert metrics["epochs_run"] == 1
        return
    cfg = cfg_factory("train", [f"model={name}", "model.input_size=64"])
    model, spec, pre, _ = build_from_config(cfg.model)
    assert spec["name"] == cfg.model.name and pre.input_size == (64, 64)
    model.train()
    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2,)
    logits.sum().backward()


def test_missing_manifest_is_a_clear_error(cfg_factory) -> None:
    with pytest.raises(TrainConfigError, match=r"data\.manifest"):
        train(cfg_factory("train", ["model=test"]))


def test_cli_pretrained_offline_exits_2_without_traceback(tiny_manifest: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch")}
    cmd = [
        sys.executable, "-m", "deepdetect.cli.train", "debug=fast", "model=test", "model.pretrained=true",
        f"data.manifest={tiny_manifest}", f"output_dir={tmp_path / 'run'}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "pretrained" in proc.stderr + proc.stdout


def test_options_bf16_onecycle_sgd_accumulation(cfg_factory, tiny_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "opts"
    overrides = [
        "model=test", f"data.manifest={tiny_manifest}", f"output_dir={out}", "trainer.precision=bf16",
        "scheduler=onecycle", "optimizer=sgd", "trainer.accumulate_grad_batches=2", "trainer.channels_last=true",
        "trainer.max_epochs=1", "data.balance=source", "data.frames_per_video_epoch=1", "logger=none",
        "data.pos_weight=auto", "trainer.ema.enabled=false",
    ]  # fmt: skip
    metrics = train(cfg_factory("train", overrides))
    assert metrics["epochs_run"] == 1 and metrics["steps"] >= 1
    state = safe_torch_load(out / "checkpoints" / "last.pt")  # onecycle/sgd state loads weights-only
    assert state["ema"] is None
    assert not (out / "log.csv").exists()


def test_fp16_on_cpu_is_a_clear_error(cfg_factory, tiny_manifest: Path) -> None:
    with pytest.raises(TrainConfigError, match="bf16"):
        train(cfg_factory("train", ["model=test", f"data.manifest={tiny_manifest}", "trainer.precision=16"]))


@pytest.mark.slow
def test_wandb_offline(cfg_factory, tiny_manifest: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "wb"
    train(
        cfg_factory(
            "train",
            [
                "model=test",
                f"data.manifest={tiny_manifest}",
                f"output_dir={out}",
                "logger=wandb",
                "trainer.max_epochs=1",
            ],
        )
    )
    assert (out / "wandb").is_dir()
    assert (out / "log.csv").is_file()  # wandb never replaces the CSV log
