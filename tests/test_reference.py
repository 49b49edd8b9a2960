"""The reference pipeline: config checks, and the whole chain on a tiny generated tree, one expert or two (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict

from conftest import compose_config
from deepdetect.data.demo_set import build_demo_set
from deepdetect.data.splits import check_no_leak
from deepdetect.reference import (
    ReferenceError,
    ReferenceResult,
    expert_recipes,
    expert_sources,
    fuse_experts,
    run_reference,
    source_paths,
)


def test_missing_data_root_is_a_clear_error(tmp_path: Path) -> None:
    cfg = compose_config("reference", [f"output_dir={tmp_path}", f"data_root={tmp_path / 'nowhere'}"])
    with pytest.raises(ReferenceError, match="development data not found"):
        source_paths(cfg)


def test_cli_without_data_exits_2_without_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "deepdetect.cli.reference", f"data_root={tmp_path / 'none'}", f"output_dir={tmp_path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "development data not found" in proc.stderr + proc.stdout


def test_default_sources_exist_in_the_dev_data(dev_data: Path, tmp_path: Path) -> None:
    cfg = compose_config("reference", [f"output_dir={tmp_path}", f"data_root={dev_data}"])
    paths = source_paths(cfg)
    assert {"faceswap-dfl", "ffpp-c23", "photos"} <= set(paths)
    roles = {n: cfg.sources[n].role for n in paths}
    assert roles["photos"] == "unseen" and roles["faceswap-dfl"] == "train"


def test_default_reference_fuses_a_face_swap_and_a_self_blend_expert(tmp_path: Path) -> None:
    cfg = compose_config("reference", [f"output_dir={tmp_path}"])
    experts = expert_recipes(cfg)
    assert list(experts) == ["faceswap", "sbi"] and cfg.stacker == "mean"
    assert "experiment=sbi_reference" in experts["sbi"]
    solo = compose_config("reference", [f"output_dir={tmp_path}", "~experts.sbi"])
    assert list(expert_recipes(solo)) == ["faceswap"]


# The self-blend expert alone as a reference, as README and RESULTS write the command (one expert, the low-rank residual
# on SBI's 16-epoch schedule, gan-faces' real portraits beside the face-swap sources' reals).
SELF_BLEND_ALONE = [
    "~experts.faceswap",
    'experts.sbi=["experiment=sbi_reference","model.tuning.mode=lowrank","optimizer.lr=3.0e-3"]',
    "+sources.gan-faces={path: gan-faces, role: reals, extract: []}",
    "+expert_sources.sbi=[gan-faces]",
]


def test_the_documented_self_blend_reference_composes(tmp_path: Path) -> None:
    from deepdetect.training.settings import TrainSettings

    cfg = compose_config("reference", [f"output_dir={tmp_path}", *SELF_BLEND_ALONE])
    experts = expert_recipes(cfg)
    assert list(experts) == ["sbi"] and expert_sources(cfg, experts) == {"sbi": ["gan-faces"]}
    train = TrainSettings.from_config(compose_config("train", ["data.manifest=x.csv", *experts["sbi"]]))
    assert train.tuning.mode == "lowrank" and train.trainer.max_epochs == 16 and train.data.sbi.mode == "pairs"
    root = Path(__file__).resolve().parents[1]
    for doc in ("README.md", "docs/RESULTS.md"):
        text = (root / doc).read_text()
        assert all(f"'{override}'" in text for override in SELF_BLEND_ALONE), doc


@pytest.mark.parametrize("experts", [{}, {"bad name": []}])
def test_expert_names_are_checked(tmp_path: Path, experts: dict[str, list[str]]) -> None:
    cfg = compose_config("reference", [f"output_dir={tmp_path}"])
    with open_dict(cfg):
        cfg.experts = experts
    with pytest.raises(ReferenceError, match="experts"):
        expert_recipes(cfg)


def test_expert_sources_name_experts_and_sources_of_role_reals(tmp_path: Path) -> None:
    cfg = compose_config("reference", [f"output_dir={tmp_path}"])
    experts = expert_recipes(cfg)
    with open_dict(cfg):
        cfg.sources["portraits"] = {"path": "portraits", "role": "reals", "extract": []}
        cfg.expert_sources = {"sbi": ["portraits"]}
    assert expert_sources(cfg, experts) == {"faceswap": [], "sbi": ["portraits"]}
    for bad, needle in ({"nobody": ["portraits"]}, "not experts"), ({"sbi": ["photos"]}, "not sources of role reals"):
        with open_dict(cfg):
            cfg.expert_sources = bad
        with pytest.raises(ReferenceError, match=needle):
            expert_sources(cfg, experts)


TINY_TRAIN = ["model=test", "trainer.max_epochs=1", "data.batch_size=8", "data.num_workers=0", "logger=none"]


def _tiny_reference(
    tmp_path: Path, experts: dict[str, list[str]], extra: dict[str, list[str]] | None = None
) -> tuple[Path, object]:
    """A generated tree: `swaps` (train), `other` (unseen reals) and, for `extra` (expert_sources), `portraits`
    (role reals: 6 reals and 6 fakes, of which only the reals may reach an expert)."""
    data = tmp_path / "data"
    build_demo_set(data / "swaps", n_real=10, n_fake=10, n_videos=2, seed=1)
    build_demo_set(data / "other", n_real=4, n_fake=0, n_videos=0, seed=2)
    if extra:
        build_demo_set(data / "portraits", n_real=6, n_fake=6, n_videos=0, seed=3)
    out = tmp_path / "ref"
    cfg = compose_config(
        "reference",
        [
            f"output_dir={out}",
            f"data_root={data}",
            "extract=['size=64','margin=0.3','min_face_size=30','val_fraction=0.25','test_fraction=0.25',"
            "'num_workers=0']",
            "evaluate=['bootstrap.n=20','robustness=[]','report.gradcam=0']",
            "export=['parity.n=8']",
        ],
    )
    with open_dict(cfg):
        cfg.experts = experts
        cfg.sources = OmegaConf.create(
            {
                "swaps": {"path": "swaps", "role": "train", "extract": ["frames_per_video=4"]},
                "other": {"path": "other", "role": "unseen", "extract": []},
                **({"portraits": {"path": "portraits", "role": "reals", "extract": []}} if extra else {}),
            }
        )
        cfg.expert_sources = extra or {}
    return out, cfg


@pytest.mark.slow
def test_reference_chain_on_a_tiny_tree(tmp_path: Path) -> None:
    _, cfg = _tiny_reference(tmp_path, {"solo": TINY_TRAIN})
    result = run_reference(cfg)  # type: ignore[arg-type]
    manifest = pd.read_csv(result.manifests["swaps"])
    check_no_leak(manifest)
    run_dir = result.runs["solo"]
    side = json.loads((run_dir / "model.json").read_text())
    assert side["face_crop"]["min_face"] == 30 and side["face_crop"]["size"] == 64
    assert set(result.reports) == {"test", "unseen_real"} and all(p.is_file() for p in result.reports.values())
    unseen = json.loads((result.reports["unseen_real"].parent / "metrics.json").read_text())
    assert unseen["results"][0]["frame"]["n_fake"] == 0 and unseen["results"][0]["frame"]["n_real"] > 0
    assert result.onnx_model.is_file() and result.stacker is None


@pytest.mark.slow
def test_reference_fuses_two_experts_into_one_onnx(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import onnxruntime as ort

    experts = {"a": TINY_TRAIN, "b": [*TINY_TRAIN, "seed=1", "data.paired=false"]}
    out, cfg = _tiny_reference(tmp_path, experts, extra={"b": ["portraits"]})
    with open_dict(cfg):
        cfg.export = ["parity.n=8", "quantize.int8=true", "quantize.calibration_n=8"]  # as make reference: + INT8
    with caplog.at_level(logging.INFO, logger="deepdetect.evaluation.stacking"):
        result = run_reference(cfg)  # type: ignore[arg-type]
    # expert b trained on the portraits' reals too (never their fakes), a did not; their val reals join the stacker's
    reals = out / "reals_only" / "portraits" / "manifest.csv"
    assert set(pd.read_csv(reals)["label"]) == {"real"}
    trained_on = {e: str(OmegaConf.load(result.runs[e] / "config.yaml").data.manifest) for e in "ab"}
    assert str(reals) in trained_on["b"] and "portraits" not in trained_on["a"]
    # the fuse stage read every expert's evaluation scores instead of scoring those crops again ...
    assert sum("scores read from" in r.getMessage() for r in caplog.records) == 4, caplog.text
    assert "scoring its" not in caplog.text
    # ... and they give the fused metrics that scoring them again gives
    evals = {"test": (_trained(result), "test"), "unseen_real": ([str(result.manifests["other"])], "all")}
    again = tmp_path / "rescored"
    fuse_experts(cfg, [], result.runs, [*_trained(result), str(reals)], evals, again)  # type: ignore[arg-type]
    for key in evals:
        saved = json.loads((result.stacker.parent / f"metrics_{key}.json").read_text())
        rescored = json.loads((again / f"metrics_{key}.json").read_text())
        for level in ("frame", "video"):
            assert saved[level]["n"] == rescored[level]["n"] > 0
            for metric in ("auc", "fpr_at_threshold", "tpr_at_threshold", "log_loss"):
                assert saved[level][metric] == pytest.approx(rescored[level][metric], abs=1e-6, nan_ok=True)
    assert set(result.runs) == {"a", "b"} and result.stacker is not None
    assert set(result.reports) == {"a_test", "a_unseen_real", "b_test", "b_unseen_real"}
    stacker = json.loads(result.stacker.read_text())
    assert stacker["stacker"] == "mean" and set(stacker["weights"]) == {"a", "b"}
    assert all(w > 0 for w in stacker["weights"].values())  # standardised: each weight is 1 / (2 x its real spread)
    fused = json.loads((result.stacker.parent / "metrics_unseen_real.json").read_text())
    assert fused["video"]["n_fake"] == 0 and fused["video"]["n_real"] > 0
    assert result.headline["unseen_real"]["n_videos"] == fused["video"]["n"]
    export = json.loads((result.onnx_model.parent / "export.json").read_text())
    assert export["parity"]["passed"] and [e["name"] for e in export["experts"]] == ["a", "b"]
    session = ort.InferenceSession(str(result.onnx_model))
    assert [o.name for o in session.get_outputs()] == ["logit", "experts"]
    int8 = export["variants"]["int8"]  # the fused INT8 variant beside it, same outputs
    assert int8["path"].endswith("model.int8.onnx") and int8["coverage"]["int8_conv"] > 0
    assert [o.name for o in ort.InferenceSession(int8["path"]).get_outputs()] == ["logit", "experts"]


def _trained(result: ReferenceResult) -> list[str]:
    return [str(result.manifests["swaps"])]
