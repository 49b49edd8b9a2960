"""The demo pipeline end to end at tiny size: sample set -> extract -> train -> evaluate -> export -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pandas as pd
from omegaconf import OmegaConf

from conftest import compose_config
from deepdetect.data.demo_set import build_demo_set
from deepdetect.demo import run_demo
from deepdetect.media import read_video_frames


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
