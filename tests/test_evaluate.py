"""End-to-end evaluation on a tiny generated manifest with a tiny random-init model (no training)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from deepdetect.data.manifest import read_manifest, write_manifest
from deepdetect.evaluation.evaluate import SCHEMA_VERSION, evaluate
from deepdetect.evaluation.sources import holdout_split
from deepdetect.models.checkpoint import save_detector
from deepdetect.models.detector import create_detector, resolve_preprocess

try:
    from .tiny_data import make_tiny_manifest
except ImportError:  # tests/ not a package: pytest put it on sys.path
    from tiny_data import make_tiny_manifest  # type: ignore[no-redef]


def _save_model(run_dir: Path, threshold: float = 0.5, val_fpr: float | None = 0.02) -> Path:
    """A random-init tiny EfficientNet saved with its sidecar and calibration."""
    model = create_detector("test_efficientnet", img_size=64)
    meta = {
        "model": {"name": "test_efficientnet", "head": "linear", "img_size": 64},
        "preprocess": resolve_preprocess(model, 64).to_dict(),
        "calibration": {"temperature": 1.5, "threshold": threshold, "threshold_rule": "fpr"},
        "val_metrics": {"fpr_at_threshold": val_fpr} if val_fpr is not None else {},
    }
    return save_detector(model, run_dir / "model.safetensors", meta)


class _Refs(HTMLParser):
    """Collect every src/href attribute value."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    manifest = make_tiny_manifest(root / "data", n_videos=16, frames_per_video=2)
    _save_model(root / "run")
    return manifest, root / "run"


def test_evaluate_end_to_end(tiny: tuple[Path, Path], cfg_factory, tmp_path: Path) -> None:
    manifest, run = tiny
    out = tmp_path / "EV"
    cfg = cfg_factory("evaluate", [f"checkpoint={run}", f"data.manifest={manifest}", f"output_dir={out}"])
    metrics = evaluate(cfg)
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION == metrics["schema_version"]
    res = on_disk["results"][0]
    for level in ("frame", "video"):
        for key in ("auc", "ap", "eer", "accuracy", "balanced_accuracy", "tpr_at_fpr_1pct", "log_loss", "ece"):
            assert key in res[level]
        assert set(res[level]["ci95"]) >= {"auc", "ap", "eer"}
    assert res["n_frames"] == 8 and res["n_videos"] == 4  # test split: 2 pairs x 2 frames
    assert {r["source"] for r in res["breakdown"]["source"]["frame"]} == {"src1"}  # test pairs are all src1
    assert set(res["robustness"]) == {"jpeg50", "blur"}
    assert res["calibration"]["temperature"] == 1.5 and res["calibration"]["reference_fpr"] == 0.02
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["level"]) == {"frame", "video"}
    assert (scores["level"] == "frame").sum() == 8 and (scores["level"] == "video").sum() == 4
    assert scores["prob"].between(0, 1).all()

    text = (out / "report.html").read_text()
    parser = _Refs()
    parser.feed(text)
    assert parser.refs, "report has no images"
    assert all(r.startswith("data:image/png;base64,") for r in parser.refs), parser.refs[:3]
    assert 'src="http' not in text and 'href="http' not in text
    assert text.index("Per-source results") < text.index("Summary")
    assert "${" not in json.dumps(on_disk["config"]) and "${" not in text  # interpolations resolved
    assert {"name", "version", "training_data"} <= set(res["model_card"])


def test_threshold_zero_flags_every_real_and_warns(tiny: tuple[Path, Path], cfg_factory, tmp_path: Path) -> None:
    manifest, _ = tiny
    run = _save_model(tmp_path / "run0", threshold=0.0, val_fpr=0.02).parent
    ov = [f"checkpoint={run}", f"data.manifest={manifest}", "robustness=[]", "report.enabled=false"]
    cfg = cfg_factory("evaluate", ov)
    res = evaluate(cfg)["results"][0]
    assert all(r["fpr"] == 1.0 for r in res["breakdown"]["source"]["frame"])
    assert len(res["source_warnings"]) == 1 and "src1" in res["source_warnings"][0]


def test_holdout_and_cross_dataset_and_comparison(tiny: tuple[Path, Path], cfg_factory, tmp_path: Path) -> None:
    manifest, run = tiny
    df = holdout_split(read_manifest(manifest), "src0")
    loso = manifest.parent / "loso.csv"
    write_manifest(df, loso)
    run2 = _save_model(tmp_path / "run2").parent
    cfg = cfg_factory(
        "evaluate",
        [
            f"checkpoints=[{run},{run2}]",
            f"manifests=[{manifest},{loso}]",
            "holdout_source=src0",
            "robustness=[]",
            "report.gradcam=1",
        ],
    )
    metrics = evaluate(cfg)
    assert len(metrics["results"]) == 4 and len(metrics["summary"]) == 4
    # A held-out source is evaluated on every one of its rows, whatever split the manifest gave them.
    assert metrics["results"][0]["holdout"]["heldout"]["n_frames"] == 16
    assert metrics["results"][0]["holdout"]["in_domain"]["n_frames"] == 8
    hold = metrics["results"][1]["holdout"]
    assert hold["source"] == "src0"
    assert hold["heldout"]["n_frames"] == 16  # every src0 row moved to test: 4 pairs x 2 videos x 2 frames
    assert hold["in_domain"]["n_frames"] == 8  # src1's own test pairs
    with pytest.raises(ValueError, match="not found"):
        holdout_split(df, "nope")


def test_bad_manifest_is_clear_error(tiny: tuple[Path, Path], cfg_factory, tmp_path: Path) -> None:
    _, run = tiny
    from deepdetect.data.manifest import ManifestError

    cfg = cfg_factory("evaluate", [f"checkpoint={run}", f"data.manifest={tmp_path / 'nope.csv'}"])
    with pytest.raises(ManifestError, match="manifest not found"):
        evaluate(cfg)


def test_per_source_rates_have_video_bootstrap_intervals() -> None:
    from deepdetect.evaluation.sources import group_table

    # Source "a": 4 real videos of 5 frames; 2 videos entirely flagged (prob 0.9), 2 not (0.1) -> FPR 0.5.
    rows = [
        {"source": "a", "video_id": f"v{v}", "y": 0, "prob": 0.9 if v < 2 else 0.1} for v in range(4) for _ in range(5)
    ]
    rows += [{"source": "b", "video_id": f"f{v}", "y": 1, "prob": 0.8} for v in range(3)]
    table = group_table(pd.DataFrame(rows), "source", threshold=0.5, boot_n=200, seed=0).set_index("source")
    a = table.loc["a"]
    assert a["fpr"] == 0.5
    lo, hi = a["fpr_ci95"]
    assert lo < 0.5 < hi and lo >= 0.0 and hi <= 1.0, "resampling 4 videos, not 20 frames, gives a wide interval"
    assert table.loc["b", "detection_rate"] == 1.0 and table.loc["b", "detection_rate_ci95"] == [1.0, 1.0]
    assert all(v != v for v in a["detection_rate_ci95"]), "no fakes in the source: no detection-rate interval"


def test_sbi_fakes_of_the_reals_are_their_own_source(tiny: tuple[Path, Path], cfg_factory, tmp_path: Path) -> None:
    manifest, run = tiny
    out = tmp_path / "ev"
    ov = [f"checkpoint={run}", f"data.manifest={manifest}", "sbi_fakes=true", "robustness=[]", "report.enabled=false"]
    res = evaluate(cfg_factory("evaluate", [*ov, f"output_dir={out}"]))["results"][0]
    test_reals = read_manifest(manifest).query("split == 'test' and label == 'real'")
    sources = {r["source"]: r for r in res["breakdown"]["source"]["frame"]}
    sbi = {k: v for k, v in sources.items() if k.startswith("sbi-")}
    assert sum(v["n_fake"] for v in sbi.values()) == len(test_reals), "one self-blend per real test crop"
    assert all(v["n_real"] == 0 for v in sbi.values())
    assert len(list((out / "sbi").rglob("*.png"))) == len(test_reals)
