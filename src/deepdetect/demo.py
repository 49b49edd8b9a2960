"""The offline demo: build a sample set, then extract -> train -> evaluate -> export -> predict on it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

if TYPE_CHECKING:
    from deepdetect.inference.runlog import PredictSummary

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """Where each stage wrote its outputs, and the headline figures."""

    sample_dir: Path
    manifest: Path
    run_dir: Path
    report: Path
    onnx_model: Path
    predictions: Path
    triage_page: Path | None = None
    test_video_auc: float | None = None
    prediction_status: dict[str, int] = field(default_factory=dict)
    trust_warning: str | None = None  # why the model's labels should not be taken at face value (as predict warns)


def run_demo(cfg: DictConfig) -> DemoResult:
    """Run every stage at small size under `cfg.output_dir`; each stage is the library function its CLI calls."""
    from deepdetect.data.demo_set import build_demo_set
    from deepdetect.data.extract import extract
    from deepdetect.evaluation.evaluate import evaluate
    from deepdetect.export.pipeline import export
    from deepdetect.training.train import train
    from deepdetect.utils.config import compose_stage

    stages = list(cfg.get("stage_overrides") or [])  # debug=fast: every stage gets the fast overlay too

    out = Path(cfg.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = str(cfg.device)
    seed = int(cfg.seed)

    log.info("[1/6] building the sample set")
    sample = build_demo_set(out / "sample", cfg.sample.n_real, cfg.sample.n_fake, cfg.sample.n_videos, seed=seed)

    log.info("[2/6] extracting faces")
    extract_dir = out / "extract"
    ex_cfg = compose_stage(
        "extract",
        [
            f"input={sample.root}",
            f"output_dir={extract_dir}",
            "layout=folder",
            "dataset=demo",
            f"device={device}",
            f"seed={seed}",
            "overwrite=true",  # the sample set is rebuilt each run: an extraction with other settings is replaced
            *list(cfg.extract),
            *stages,
        ],
    )
    extract(ex_cfg)
    manifest = extract_dir / "manifest.csv"

    log.info("[3/6] training")
    run_dir = out / "train"
    tr_cfg = compose_stage(
        "train",
        [
            f"data.manifest={manifest}",
            f"output_dir={run_dir}",
            f"seed={seed}",
            "overwrite=true",
            *list(cfg.train),
            *stages,
        ],
    )
    train(tr_cfg)

    log.info("[4/6] evaluating on the test split")
    ev_dir = out / "evaluate"
    ev_cfg = compose_stage(
        "evaluate",
        [
            f"checkpoint={run_dir}",
            f"data.manifest={manifest}",
            f"output_dir={ev_dir}",
            f"device={device}",
            *list(cfg.evaluate),
            *stages,
        ],
    )
    metrics = evaluate(ev_cfg)

    log.info("[5/6] exporting to ONNX")
    ex_dir = out / "export"
    export(compose_stage("export", [f"checkpoint={run_dir}", f"output_dir={ex_dir}", *list(cfg.export), *stages]))

    log.info("[6/6] predicting on the sample files with the ONNX model")
    predictions = out / "predictions.jsonl"
    summary = predict_sample(sample.root, ex_dir / "model.onnx", predictions, device, int(cfg.predict.frames))
    return DemoResult(
        sample_dir=sample.root,
        manifest=manifest,
        run_dir=run_dir,
        report=ev_dir / "report.html",
        onnx_model=ex_dir / "model.onnx",
        predictions=predictions,
        triage_page=summary.report,
        test_video_auc=_video_auc(metrics),
        prediction_status=dict(summary.statuses),
        trust_warning=summary.trust,
    )


def predict_sample(sample: Path, model: Path, predictions: Path, device: str, frames: int) -> PredictSummary:
    """The demo's predict stage: every sample file scored into `predictions` (rebuilt each run) and the triage page
    beside it; the summary carries predict's own model-trust warning (`summary.trust`)."""
    from deepdetect.inference.predict import run_predict
    from deepdetect.inference.settings import PredictSettings

    report = predictions.with_name("triage.html")
    settings = PredictSettings(device=device, frames=frames, overwrite=True, report=str(report))
    return run_predict([sample], model, predictions, settings)


def _video_auc(metrics: dict[str, Any]) -> float | None:
    """The headline video-level AUC from evaluate()'s result, when present."""
    try:
        return float(metrics["results"][0]["video"]["auc"])
    except (KeyError, TypeError, ValueError):
        return None
