"""The demo pipeline end to end at tiny size: sample set -> extract -> train -> evaluate -> export -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import compose_config
from deepdetect.cli.demo import print_result
from deepdetect.data.demo_set import build_demo_set
from deepdetect.demo import DemoResult, predict_sample, run_demo
from deepdetect.export.pipeline import export
from deepdetect.media import read_video_frames
from test_export import export_cfg, make_calibrated_checkpoint


def test_demo_set_has_real_images_and_encoded_videos(tmp_path: Path) -> None:
    demo = build_demo_set(tmp_path, n_real=4, n_fake=4, n_videos=2, seed=3)
    assert len(list((tmp_path / "real").rglob("*.jpg"))) == 4
    assert len(list((tmp_path / "fake").rglob("*.jpg"))) == 4
    assert len(demo.videos) == 2
    frames = read_video_frames(demo.videos[0], frames_per_video=4)
    assert len(frames) == 4 and frames[0][1].ndim == 3


def test_demo_runs_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cfg = compose_config(
        "demo",
        [
            f"output_dir={out}",
            "sample.n_real=16",
            "sample.n_fake=16",
            "sample.n_videos=2",
            "extract=['frames_per_video=4','size=64','min_face_size=30','val_fraction=0.25','test_fraction=0.25']",
            "train=['model=test','trainer.max_epochs=1','data.batch_size=8','data.num_workers=0',"
            "'data.frames_per_video_epoch=null']",
            "evaluate=['bootstrap.n=20','robustness=[jpeg50]','report.gradcam=1']",
            "predict.frames=4",
            "debug=fast",
        ],
    )
    assert list(cfg.stage_overrides) == ["debug=fast"]
    result = run_demo(cfg)
    manifest = pd.read_csv(result.manifest)
    assert {"train", "val", "test"} <= set(manifest["split"]) and {"real", "fake"} <= set(manifest["label"])
    assert (result.run_dir / "model.safetensors").is_file()
    trained = OmegaConf.load(result.run_dir / "config.yaml")
    assert trained.trainer.patience is None  # debug=fast reached the training stage (the trainer default is 5)
    html = result.report.read_text(encoding="utf-8")
    assert "data:image/png;base64" in html
    metrics = json.loads((result.report.parent / "metrics.json").read_text())
    assert metrics["results"][0]["video"]["n"] > 0
    onnx.checker.check_model(onnx.load(str(result.onnx_model)))
    export = json.loads((result.onnx_model.parent / "export.json").read_text())
    assert export["parity"]["passed"] is True
    records = [json.loads(line) for line in result.predictions.read_text().splitlines()]
    assert len(records) == 16 + 16 + 2, "one record per sample file"
    assert {r["kind"] for r in records} == {"image", "video"}
    assert sum(r["status"] == "ok" for r in records) >= 30
    assert all(r["score"] is not None for r in records if r["status"] == "ok")
    assert result.triage_page is not None
    page = result.triage_page.read_text(encoding="utf-8")
    assert all(Path(r["path"]).name in page for r in records)  # the triage page has a row per file
    # a handful of validation reals cannot vouch for the 5% FPR training aimed at: the demo says so, as predict does
    assert result.trust_warning is not None and "too few to set a false-positive rate of 0.05" in result.trust_warning


def _onnx_model(root: Path, **calibration: object) -> Path:
    """A tiny model exported to ONNX (as the demo's export stage makes it) whose validation says `calibration`."""
    ckpt = make_calibrated_checkpoint(root / "run", **calibration)
    export(export_cfg(ckpt, root / "export"))
    return root / "export" / "model.onnx"


@pytest.mark.parametrize("val_fpr", [0.294, 0.04])
def test_demo_prints_the_model_trust_warning_predict_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], val_fpr: float
) -> None:
    from PIL import Image
    from skimage.data import astronaut

    from deepdetect.cli.predict import main as predict_main

    model = _onnx_model(tmp_path, target_fpr=0.05, val_fpr=val_fpr, val_tpr=0.9, n_val_real=400)
    sample = tmp_path / "sample"
    sample.mkdir()
    Image.fromarray(astronaut()[0:260, 100:360]).resize((130, 130)).save(sample / "face.jpg")
    summary = predict_sample(sample, model, tmp_path / "demo" / "predictions.jsonl", "cpu", 4)
    assert summary.statuses == {"ok": 1} and summary.report is not None
    result = DemoResult(
        sample_dir=sample,
        manifest=tmp_path / "manifest.csv",
        run_dir=tmp_path / "run",
        report=tmp_path / "report.html",
        onnx_model=model,
        predictions=tmp_path / "demo" / "predictions.jsonl",
        triage_page=summary.report,
        prediction_status=dict(summary.statuses),
        trust_warning=summary.trust,
    )
    capsys.readouterr()
    print_result(result)
    demo_err = capsys.readouterr().err
    args = [str(sample), "--model", str(model), "--output", str(tmp_path / "p.jsonl"), "--quiet"]
    assert predict_main(args) == 0
    predict_warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    demo_warnings = demo_err.splitlines()
    if val_fpr > 0.1:
        assert len(demo_warnings) == 1 and "29% of its own validation reals" in demo_warnings[0]
        assert demo_warnings == [w.replace("deepdetect-predict:", "deepdetect-demo:") for w in predict_warnings]
        assert 'id="trust"' in summary.report.read_text(encoding="utf-8")  # and the demo's triage page shows it
    else:  # control: a model its validation supports gets no warning from either
        assert demo_warnings == [] and predict_warnings == []
