"""Refit after cross-validation: fold runs write their out-of-fold val scores, a refit trains on every train+val
group with no validation, keeps its last epoch and is calibrated on the pooled out-of-fold scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from deepdetect.contract import ModelCard
from deepdetect.evaluation.calibration import apply_temperature, choose_threshold, fit_temperature
from deepdetect.models.checkpoint import load_detector, safe_torch_load
from deepdetect.training.train import TrainConfigError, train
from deepdetect.training.valscores import VAL_SCORES
from tiny_data import make_tiny_manifest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Test rows are listed but their files do not exist: neither folds nor the refit may open them.
    return make_tiny_manifest(tmp_path_factory.mktemp("tiny"), n_videos=24, missing_test_files=True)


@pytest.fixture(scope="module")
def fold_runs(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from conftest import compose_config

    out = tmp_path_factory.mktemp("cv")
    runs = []
    for fold in range(2):
        run = out / f"cv_{fold}"
        cfg = compose_config(
            "train",
            ["debug=fast", "model=test", f"data.manifest={manifest}", "data.cv_folds=2", f"data.cv_fold={fold}",
             "trainer.keep=last", f"output_dir={run}"],
        )  # fmt: skip
        train(cfg)
        runs.append(run)
    return runs


def test_a_fold_run_writes_its_val_scores(fold_runs: list[Path], manifest: Path) -> None:
    scores = [pd.read_csv(run / VAL_SCORES) for run in fold_runs]
    rows = pd.read_csv(manifest)
    pooled = rows[rows["split"].isin(["train", "val"])]
    # the two folds' val rows partition the train+val rows; each row's logit is the kept model's
    both = pd.concat(scores)
    assert sorted(both["crop_path"].map(lambda p: Path(p).name)) == sorted(
        pooled["crop_path"].map(lambda p: Path(p).name)
    )
    assert not set(scores[0]["group"]) & set(scores[1]["group"])
    assert np.isfinite(both["logit"]).all() and both["logit"].std() > 0


def last_epoch_weights(run: Path) -> dict[str, torch.Tensor]:
    """The weights a run validates after its last epoch: the EMA copy (on in the trainer config) in `last.pt`."""
    ema = safe_torch_load(run / "checkpoints" / "last.pt")["ema"]
    return {k.removeprefix("module."): v for k, v in ema.items()}


def test_keep_last_keeps_the_last_epoch_weights(fold_runs: list[Path]) -> None:
    run = fold_runs[0]
    final = load_file(str(run / "model.safetensors"))
    last = last_epoch_weights(run)
    assert set(last) == set(final) and all(torch.equal(last[k], final[k]) for k in final)


def test_refit_trains_on_train_and_val_and_calibrates_on_out_of_fold_scores(
    cfg_factory, manifest: Path, fold_runs: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "refit"
    runs = ",".join(str(r) for r in fold_runs)
    cfg = cfg_factory(
        "train",
        ["model=test", f"data.manifest={manifest}", "data.refit=true", f"calibration.from_runs=[{runs}]",
         f"output_dir={out}"],
    )  # fmt: skip
    metrics = train(cfg)
    _, meta = load_detector(out)
    card = ModelCard.from_sidecar(meta)
    # every train+val row trained; no val, no test
    assert set(card.training_data["splits"]) == {"train", "val"}
    rows = pd.read_csv(manifest)
    assert (
        sum(sum(v.values()) for v in card.training_data["splits"].values())
        == rows["split"].isin(["train", "val"]).sum()
    )
    assert not (out / VAL_SCORES).exists() and metrics["epochs_run"] == 2 and metrics["best_epoch"] == 1
    # the stored temperature and threshold are those of the pooled out-of-fold scores
    pool = pd.concat([pd.read_csv(r / VAL_SCORES) for r in fold_runs])
    labels = (pool["label"] == "fake").to_numpy(np.int64)
    temperature = fit_temperature(pool["logit"].to_numpy(), labels)
    threshold = choose_threshold(apply_temperature(pool["logit"].to_numpy(), temperature), labels, "fpr", 0.05)
    assert card.calibration.temperature == pytest.approx(temperature)
    assert card.calibration.threshold == pytest.approx(threshold)
    assert card.calibration.extra["calibrated_on"] == "out_of_fold"
    assert card.calibration.extra["from_runs"] == [str(r) for r in fold_runs]
    assert 0.0 <= metrics["oof/video_auc"] <= 1.0 and metrics["oof/n_frames"] == len(pool)
    # the kept weights are the last epoch's
    last = last_epoch_weights(out)
    final = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(last[k], final[k]) for k in final)


def test_refit_without_runs_is_uncalibrated(cfg_factory, manifest: Path, tmp_path: Path, caplog) -> None:
    cfg = cfg_factory("train", ["model=test", f"data.manifest={manifest}", "data.refit=true", "trainer.max_epochs=1"])
    train(cfg)
    _, meta = load_detector(Path(cfg.output_dir))
    card = ModelCard.from_sidecar(meta)
    assert not card.calibration.calibrated and card.calibration.threshold == 0.5
    assert "uncalibrated" in caplog.text


def test_refit_options_refuse_what_cannot_work(cfg_factory, manifest: Path, fold_runs: list[Path]) -> None:
    base = ["model=test", f"data.manifest={manifest}"]
    with pytest.raises(TrainConfigError, match="from_runs calibrates a refit"):
        train(cfg_factory("train", [*base, f"calibration.from_runs=[{fold_runs[0]}]"]))
    with pytest.raises(TrainConfigError, match="cross-validation fold"):
        train(cfg_factory("train", [*base, "data.refit=true", "data.cv_folds=2"]))
    with pytest.raises(TrainConfigError, match=r"trainer\.keep"):
        train(cfg_factory("train", [*base, "trainer.keep=middle"]))
    twice = f"calibration.from_runs=[{fold_runs[0]},{fold_runs[0]}]"
    with pytest.raises(TrainConfigError, match="more than one run"):
        train(cfg_factory("train", [*base, "data.refit=true", twice]))
    missing = f"calibration.from_runs=[{fold_runs[0].parent / 'nope'}]"
    with pytest.raises(TrainConfigError, match="not found"):
        train(cfg_factory("train", [*base, "data.refit=true", missing]))
