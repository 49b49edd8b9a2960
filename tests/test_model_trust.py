"""When a model cannot be trusted, the tools say so: training refuses a one-class validation split, a failed
calibration is warned about and recorded in the model card."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepdetect.contract import Calibration, ModelCard
from deepdetect.data.manifest import read_manifest, write_manifest
from deepdetect.training.finish import calibrate
from deepdetect.training.settings import CalibrationSettings
from deepdetect.training.train import train
from tiny_data import make_tiny_manifest


def _rewrite(manifest: Path, change: object) -> Path:
    frame = read_manifest(manifest)
    frame = change(frame)  # type: ignore[operator]
    out = manifest.with_name("changed.csv")
    write_manifest(frame.reset_index(drop=True), out)
    return out


@pytest.mark.parametrize("dropped", ["fake", "real"])
def test_train_refuses_a_val_split_without_both_classes(tmp_path: Path, dropped: str) -> None:
    manifest = make_tiny_manifest(tmp_path / "tiny")
    changed = _rewrite(manifest, lambda f: f[~((f["split"] == "val") & (f["label"] == dropped))])
    kept = "real" if dropped == "fake" else "fake"
    n_kept = int(((read_manifest(changed)["split"] == "val") & (read_manifest(changed)["label"] == kept)).sum())
    cmd = [
        sys.executable, "-m", "deepdetect.cli.train", "debug=fast", "model=test", "logger=none",
        f"data.manifest={changed}", f"output_dir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-2000:]
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if "validation" in line]
    assert len(lines) == 1, out
    assert f"has no {dropped} crops" in lines[0]
    assert f"{kept} {n_kept}" in lines[0] and f"{dropped} 0" in lines[0]
    assert not (tmp_path / "run" / "model.json").exists()  # refused before training


def test_calibration_at_its_bound_warns_and_the_card_says_it_failed(caplog: pytest.LogCaptureFixture) -> None:
    logits = np.repeat(np.linspace(-2.0, 2.0, 20), 2)  # each logit once as a real, once as a fake: no signal
    labels = np.tile([0, 1], 20)
    with caplog.at_level(logging.WARNING):
        cal = calibrate(logits, labels, CalibrationSettings())
    assert cal.failed is not None and "upper bound" in cal.failed
    assert any("calibration failed" in r.getMessage() for r in caplog.records)
    assert (cal.n_val_real, cal.n_val_fake) == (20, 20)
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.failed == cal.failed and again.n_val_real == 20 and again.extra == {}


def test_a_training_run_whose_val_has_no_signal_records_failed_calibration(cfg_factory, tmp_path: Path) -> None:
    manifest = make_tiny_manifest(tmp_path / "tiny")

    def twin_fakes(frame: pd.DataFrame) -> pd.DataFrame:
        # val fakes are the val reals' own files: identical logits for both classes, nothing to calibrate on
        val_real = frame[(frame["split"] == "val") & (frame["label"] == "real")]
        twins = val_real.assign(label="fake", video_id=val_real["video_id"] + "_twin")
        return pd.concat([frame[frame["split"] != "val"], val_real, twins])

    out = tmp_path / "run"
    train(cfg_factory("train", ["model=test", f"data.manifest={_rewrite(manifest, twin_fakes)}", f"output_dir={out}"]))
    meta = json.loads((out / "model.json").read_text())
    card = ModelCard.from_sidecar(meta)
    assert card.calibration.failed is not None and "upper bound" in card.calibration.failed
    assert meta["calibration"]["failed"] == card.calibration.failed
    assert card.calibration.n_val_real == card.calibration.n_val_fake > 0


def _model_with(tmp_path: Path, **calibration: object) -> Path:
    """A tiny checkpoint whose stored calibration says `calibration` (as training writes it)."""
    from test_export import make_calibrated_checkpoint

    return make_calibrated_checkpoint(tmp_path / "run", **calibration).parent


def _face(tmp_path: Path) -> Path:
    from PIL import Image
    from skimage.data import astronaut

    path = tmp_path / "face.jpg"
    Image.fromarray(astronaut()[0:260, 100:360]).resize((130, 130)).save(path)
    return path


ROC = [[0.9, 0.0, 0.1], [0.7, 0.03, 0.4], [0.6, 0.1, 0.6], [0.45, 0.2, 0.8], [0.2, 0.5, 0.95], [0.0, 1.0, 1.0]]


def test_predict_refuses_an_fpr_validation_cannot_support_and_offers_the_nearest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepdetect.cli.predict import main

    model = _model_with(tmp_path, target_fpr=0.05, val_fpr=0.03, val_tpr=0.4, roc=ROC, n_val_real=34, n_val_fake=30)
    out = tmp_path / "p.jsonl"
    args = [str(_face(tmp_path)), "--model", str(model), "--output", str(out), "--quiet"]
    assert main([*args, "--fpr", "0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and not out.exists()
    assert "34 real crops" in err and "0.088" in err  # 3/34: the lowest FPR 34 reals vouch for
    assert "--fpr 0.1 (val TPR 0.60)" in err and "nearest: --fpr 0.1" in err
    assert main([*args, "--fpr", "0.1"]) == 0  # the offered point is honoured
    assert json.loads(out.read_text().splitlines()[0])["operating_point"]["threshold"] == 0.6


def test_predict_warns_in_one_line_when_the_model_distrusts_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepdetect.cli.predict import main

    model = _model_with(tmp_path, target_fpr=0.05, val_fpr=0.294, val_tpr=0.9, n_val_real=400)
    out, page = tmp_path / "p.jsonl", tmp_path / "t.html"
    args = [str(_face(tmp_path)), "--model", str(model), "--output", str(out), "--quiet", "--report", str(page)]
    assert main(args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "29% of its own validation reals" in warnings[0]
    assert 'id="trust"' in page.read_text(encoding="utf-8")
    trusted = _model_with(tmp_path / "ok", target_fpr=0.05, val_fpr=0.04, val_tpr=0.9, n_val_real=400)
    assert main([*args[:2], str(trusted), "--output", str(tmp_path / "q.jsonl"), "--quiet"]) == 0
    assert "warning:" not in capsys.readouterr().err  # control: a model its validation supports


def test_explain_top_without_explain_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deepdetect.cli.predict import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--model", str(tmp_path / "m.onnx"), "--explain-top", "5"])
    assert exc.value.code == 2 and "--explain-top needs --explain" in capsys.readouterr().err


def test_a_threshold_set_on_videos_counts_its_reals_in_videos() -> None:
    """A fused model's threshold was set on validation videos: the warning must not call 4 videos '4 crops'."""
    from deepdetect.contract.trust import trust_problems, val_unit

    unit = val_unit({"unit": "video: mean of the frames' fused probabilities"})
    (line,) = trust_problems(
        threshold=0.7, val_fpr=0.0, target_fpr=0.05, n_val_real=4, calibration_failed=None, unit=unit
    )
    assert "only 4 real videos, too few" in line
    assert val_unit({"threshold": 0.5}) == "real crops"
