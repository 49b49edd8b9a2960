"""The reference's fuse stage reads each expert's evaluation scores.csv instead of scoring the same crops again:
the fused metrics are the re-scored ones, and a missing, partial or older scores file falls back to scoring."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import compose_config
from deepdetect.evaluation.evaluate import evaluate
from deepdetect.evaluation.scorefile import read_scores, write_scores
from deepdetect.models.checkpoint import save_detector
from deepdetect.models.detector import create_detector, resolve_preprocess
from deepdetect.reference import fuse_experts

try:
    from .tiny_data import make_tiny_manifest
except ImportError:  # tests/ not a package: pytest put it on sys.path
    from tiny_data import make_tiny_manifest  # type: ignore[no-redef]

EXPERTS = {"a": (0, 1.5), "b": (1, 0.8)}  # name: (init seed, temperature)
EVALS = {"test": "test", "every": "all"}  # evaluation key: split


def _expert(run_dir: Path, seed: int, temperature: float) -> Path:
    """A random-init tiny EfficientNet (its own seed and temperature) saved as a run."""
    torch.manual_seed(seed)
    model = create_detector("test_efficientnet", img_size=64)
    with torch.no_grad():  # a random head scores every crop nearly alike; a louder one spreads the scores
        model.backbone.classifier.weight.mul_(50.0)
    meta = {
        "model": {"name": "test_efficientnet", "head": "linear", "img_size": 64},
        "preprocess": resolve_preprocess(model, 64).to_dict(),
        "calibration": {"temperature": temperature, "threshold": 0.5, "threshold_rule": "fpr"},
    }
    save_detector(model, run_dir / "model.safetensors", meta)
    return run_dir


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], dict[str, dict[str, Path]]]:
    """A tiny manifest, two experts, and each expert's evaluations (`saved[key][expert]` = its scores.csv)."""
    root = tmp_path_factory.mktemp("saved")
    manifest = make_tiny_manifest(root / "data", n_videos=16, frames_per_video=3)
    runs = {name: _expert(root / "experts" / name, *spec) for name, spec in EXPERTS.items()}
    saved: dict[str, dict[str, Path]] = {key: {} for key in EVALS}
    for name, run in runs.items():
        for key, split in EVALS.items():
            ev = root / f"evaluate_{name}_{key}"
            where = [f"checkpoint={run}", f"data.manifest={manifest}", f"data.split={split}", f"output_dir={ev}"]
            cfg = compose_config("evaluate", [*where, "bootstrap.n=0", "robustness=[]", "report.enabled=false"])
            evaluate(cfg)
            saved[key][name] = ev / "scores.csv"
    return manifest, runs, saved


def _fuse(manifest: Path, runs: dict[str, Path], out: Path, saved: dict[str, dict[str, Path]] | None) -> dict:
    cfg = compose_config("reference", [f"output_dir={out}", "evaluate=['bootstrap.n=20']"])
    evals = {key: ([str(manifest)], split) for key, split in EVALS.items()}
    stacker, _ = fuse_experts(cfg, [], runs, [str(manifest)], evals, out, saved)  # type: ignore[arg-type]
    fused = {key: json.loads((out / f"metrics_{key}.json").read_text()) for key in EVALS}
    info = json.loads(stacker.read_text())
    info.pop("runs")  # relative to `out`, which differs between the runs compared
    return {"stacker": info, **fused}


def _assert_close(a: object, b: object, where: str = "") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-6, nan_ok=True), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def rescored(evaluated, tmp_path_factory: pytest.TempPathFactory) -> dict:
    manifest, runs, _ = evaluated
    return _fuse(manifest, runs, tmp_path_factory.mktemp("rescored"), None)


def test_scores_csv_carries_the_fusion_key(evaluated) -> None:
    manifest, _, saved = evaluated
    scores = read_scores(saved["test"]["a"])
    frames = scores[scores["level"] == "frame"]
    rows = pd.read_csv(manifest)
    rows = rows[rows["split"] == "test"]
    assert sorted(zip(frames["source_path"], frames["frame_index"], strict=True)) == sorted(
        zip(rows["source_path"], rows["frame_index"], strict=True)
    )
    assert frames["frame_index"].notna().all() and (frames["group"] != "").all()
    assert (scores.loc[scores["level"] == "video", "source_path"] == "").all()


def test_fused_metrics_from_saved_scores_equal_rescoring(evaluated, rescored, tmp_path: Path, caplog) -> None:
    manifest, runs, saved = evaluated
    with caplog.at_level(logging.INFO, logger="deepdetect.evaluation.stacking"):
        reused = _fuse(manifest, runs, tmp_path / "fusion", saved)
    read = [r.getMessage() for r in caplog.records if "scores read from" in r.getMessage()]
    assert len(read) == len(EXPERTS) * len(EVALS), caplog.text  # every evaluation came from its file
    assert "scoring its" not in caplog.text
    assert reused["test"]["video"]["n"] == rescored["test"]["video"]["n"] > 0
    _assert_close(reused, rescored)


def _partial(path: Path, out: Path) -> Path:
    scores = read_scores(path)
    crops = scores.index[scores["level"] == "frame"]
    write_scores(scores.drop(index=crops[::2]), out, list(scores.columns))
    return out


def _without_key(path: Path, out: Path) -> Path:
    scores = read_scores(path)
    write_scores(scores, out, [c for c in scores.columns if c not in ("source_path", "frame_index", "group")])
    return out


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p, tmp: tmp / "none.csv", "not found"),
        (_partial, "covers"),
        (_without_key, "has no source_path, frame_index"),
    ],
)
def test_missing_or_partial_scores_fall_back_to_scoring(
    evaluated, rescored, tmp_path: Path, caplog, damage, reason: str
) -> None:
    manifest, runs, saved = evaluated
    files = {key: dict(per) for key, per in saved.items()}
    files["test"]["b"] = damage(saved["test"]["b"], tmp_path / "scores.csv")
    with caplog.at_level(logging.INFO, logger="deepdetect.evaluation.stacking"):
        fused = _fuse(manifest, runs, tmp_path / "fusion", files)
    fallback = [r.getMessage() for r in caplog.records if "scoring its" in r.getMessage()]
    assert len(fallback) == 1 and reason in fallback[0] and fallback[0].startswith("[fuse] b:"), caplog.text
    _assert_close(fused, rescored)


def test_scores_older_than_the_weights_are_not_used(evaluated, tmp_path: Path, caplog) -> None:
    import os

    from deepdetect.evaluation.stacking import crop_rows, saved_scores

    manifest, runs, saved = evaluated
    stale = tmp_path / "scores.csv"
    stale.write_bytes(saved["test"]["a"].read_bytes())
    weights = runs["a"] / "model.safetensors"
    os.utime(stale, (weights.stat().st_mtime - 60,) * 2)
    lookup = saved_scores({"a": stale}, runs, crop_rows([manifest], "test"))
    with caplog.at_level(logging.INFO, logger="deepdetect.evaluation.stacking"):
        assert lookup("a") is None
    assert "older than" in caplog.text
